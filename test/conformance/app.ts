// The app the conformance suite drives: its routes, its session options from a plain-data spec, and
// what it observed (store operations, errors, hook calls). Nothing here is Node-only: the suite runs
// it in the test process, and test/runtimes/app.ts runs it in Bun and Deno.
import type { IncomingMessage } from 'node:http';
import { Hono } from 'hono';
import { hasUserIndex, isSessionError, type SessionAdmin, type Session, type SessionOptions, type Store, type UserIndexStore } from '../../src/index.js';
import { session as honoSession, type HonoSessionMiddleware } from '../../src/adapters/hono.js';
import { defaultErrorHandler, withSession, type NodeSessionListener } from '../../src/adapters/node.js';

/** What a test route gets: the session and the query string. */
export type Route = (session: Session, query: URLSearchParams, response: AppResponse) => Promise<unknown>;

/** What a route may do to the response besides its body, the framework's own way. */
export interface AppResponse {
  /** Adds a Set-Cookie header of the app's own. */
  cookie(line: string): void;
  /** Sets a response header (Vary, Cache-Control, ...), replacing any value it had. */
  header(name: string, value: string): void;
}

/** A promise the test resolves to let a held request go on. */
export class Gate {
  readonly reached: Promise<void>;
  readonly released: Promise<void>;
  reach!: () => void;
  release!: () => void;
  constructor() {
    this.reached = new Promise((resolve) => (this.reach = resolve));
    this.released = new Promise((resolve) => (this.release = resolve));
  }
}

/** A query parameter a route cannot do without. */
export function param(query: URLSearchParams, name: string): string {
  const value = query.get(name);
  if (value === null) throw new Error(`missing ?${name}=`);
  return value;
}

/** A store wrapper that counts operations: each operation is one round trip to the backend. */
export class CountingStore implements Store {
  calls = 0;
  /** Every operation in order (a load that refreshes the expiry as `load+refresh`), since the store's reset(). */
  readonly ops: string[] = [];
  readonly inner: Store;
  constructor(inner: Store) {
    this.inner = inner;
    // The user index is optional: this wrapper has one only when the wrapped store has, so that
    // hasUserIndex() tells of it what it would tell of the store.
    if (hasUserIndex(inner)) {
      const index: Pick<UserIndexStore, 'userSessions' | 'endSessions' | 'endUserSessions' | 'scanSessions'> = {
        userSessions: (...args) => (this.#count('userSessions'), inner.userSessions(...args)),
        endSessions: (...args) => (this.#count('endSessions'), inner.endSessions(...args)),
        endUserSessions: (...args) => (this.#count('endUserSessions'), inner.endUserSessions(...args)),
        scanSessions: () => (this.#count('scanSessions'), inner.scanSessions()),
      };
      Object.assign(this, index);
    }
  }
  #count(op: string): void {
    this.calls++;
    this.ops.push(op);
  }
  load: Store['load'] = (...args) => (this.#count('load'), this.inner.load(...args));
  create: Store['create'] = (...args) => (this.#count('create'), this.inner.create(...args));
  update: Store['update'] = (...args) => (this.#count('update'), this.inner.update(...args));
  increment: Store['increment'] = (...args) => (this.#count('increment'), this.inner.increment(...args));
  move: Store['move'] = (...args) => (this.#count('move'), this.inner.move(...args));
  destroy: Store['destroy'] = (...args) => (this.#count('destroy'), this.inner.destroy(...args));
  close: Store['close'] = () => this.inner.close();
}

/**
 * An error a route throws on purpose, to follow it through the framework's error path. Like Hono's
 * HTTPException it carries its response, so Hono's default error handler answers with it instead
 * of printing the stack of an expected error; the other frameworks ignore it.
 */
export class RouteError extends Error {
  getResponse(): Response {
    return new Response('Internal Server Error', { status: 500 });
  }
}

/**
 * The session options of a conformance app as plain data, so that they can cross into another
 * process. The functions an app may be given are named instead.
 */
export type AppSpec = Omit<SessionOptions, 'store' | 'redis' | 'secure' | 'onInvalidCookie'> & {
  /**
   * As in {@link SessionOptions.secure}, or a function of the framework request: `'forwarded'`
   * trusts `X-Forwarded-Proto` (what a proxy that terminates TLS says), `'throws'` throws a
   * {@link RouteError}. Each call is seen in {@link Observed.secureCalls}.
   */
  secure?: boolean | 'auto' | 'forwarded' | 'throws';
  /** Gives the app an `onInvalidCookie` hook; the reasons it is told are in {@link Observed.invalidCookies}. */
  recordInvalidCookies?: boolean;
};

/** An error that reached the framework's error path, as the app saw it. */
export interface SeenError {
  readonly message: string;
  /** Whether it is the {@link RouteError} a route or hook threw on purpose. */
  readonly route: boolean;
  /** Its code when it is a `SessionError`. */
  readonly code: string | undefined;
}

/** How the session work a route started after its response ended. */
export type LateOutcome = { readonly ok: true } | ({ readonly ok: false } & SeenError);

/** What an app observed since it started; plain data. */
export interface Observed {
  /** Store operations (see {@link CountingStore.ops}) since the start or the last reset. */
  readonly storeOps: readonly string[];
  /** Errors that reached the framework's own error path (handler, hook or event), in order. */
  readonly errors: readonly SeenError[];
  /** The reasons `onInvalidCookie` was told, in order. */
  readonly invalidCookies: readonly string[];
  /** For each call of a `secure` function, `typeof` the request it got. */
  readonly secureCalls: readonly string[];
  /** How the work `/late` started after answering ended, once it has. */
  readonly late: readonly LateOutcome[];
  /** Unhandled rejections in the app's process (another runtime's; the test process watches its own). */
  readonly unhandled: readonly string[];
}

/** The stored hash of the session with this public handle, or `null`. */
export type Peek = (handle: string) => Promise<Record<string, string> | null>;

/** Describes `error` as plain data. */
export function seenError(error: unknown): SeenError {
  return {
    message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    route: error instanceof RouteError,
    code: isSessionError(error) ? error.code : undefined,
  };
}

/** What a proxy that terminates TLS says, read through each framework's request object. */
function forwardedProto(request: unknown): string | undefined {
  const holder = request as { req?: { header?(name: string): string | undefined }; headers?: Record<string, string | string[] | undefined> };
  if (typeof holder.req?.header === 'function') return holder.req.header('x-forwarded-proto');
  const value = holder.headers?.['x-forwarded-proto'];
  return Array.isArray(value) ? value[0] : value;
}

/** One conformance app's state: options and routes to serve, gates, and what it observed. */
export class ConformanceApp {
  readonly options: SessionOptions;
  readonly routes: Record<string, Route>;
  readonly #store: CountingStore;
  readonly #gates = new Map<string, Gate>();
  readonly #late: Array<Promise<unknown>> = [];
  readonly #invalidCookies: string[] = [];
  readonly #secureCalls: string[] = [];
  #admin: SessionAdmin | undefined;

  /** An app on `store` (wrapped to count operations) with the options of `spec`; `peek` backs `/setpeek`. */
  constructor(store: Store, spec: AppSpec, peek: Peek) {
    this.#store = new CountingStore(store);
    const { secure, recordInvalidCookies, ...options } = spec;
    this.options = { ...options, store: this.#store };
    if (secure === 'forwarded' || secure === 'throws') {
      this.options.secure = (request) => {
        this.#secureCalls.push(typeof request);
        if (secure === 'throws') throw new RouteError('secure() failed');
        return forwardedProto(request) === 'https';
      };
    } else if (secure !== undefined) {
      this.options.secure = secure;
    }
    if (recordInvalidCookies) this.options.onInvalidCookie = (reason) => void this.#invalidCookies.push(reason);
    this.routes = routes(this, peek);
  }

  /**
   * Gives the routes the {@link SessionAdmin} of the app's middleware, as the app reaches it
   * (`middleware.manager.admin`), once the app is built around {@link ConformanceApp.routes}.
   */
  useAdmin(admin: SessionAdmin): void {
    this.#admin = admin;
  }

  /** The admin given to {@link ConformanceApp.useAdmin}. */
  get admin(): SessionAdmin {
    if (this.#admin === undefined) throw new Error('the app was started without useAdmin(): the routes of sessions per user need it');
    return this.#admin;
  }

  /** The gate `/hold?gate=<name>` and `/holdBlind?gate=<name>` wait at. */
  gate(name: string): Gate {
    let gate = this.#gates.get(name);
    if (!gate) this.#gates.set(name, (gate = new Gate()));
    return gate;
  }

  /** Starts work that ends after the response (see `/late`). */
  later(work: Promise<unknown>): void {
    this.#late.push(work);
  }

  /** Forgets the store operations counted so far. */
  resetStoreOps(): void {
    this.#store.calls = 0;
    this.#store.ops.length = 0;
  }

  /** Resolves once the work started after responses has ended. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#late);
  }

  /** What the app observed, once the work started after responses has ended; `errors` are the framework's. */
  async observed(errors: readonly unknown[], unhandled: readonly unknown[] = []): Promise<Observed> {
    const late = await Promise.allSettled(this.#late);
    return {
      storeOps: [...this.#store.ops],
      errors: errors.map(seenError),
      invalidCookies: [...this.#invalidCookies],
      secureCalls: [...this.#secureCalls],
      late: late.map((outcome) => (outcome.status === 'fulfilled' ? { ok: true } : { ok: false, ...seenError(outcome.reason) })),
      unhandled: unhandled.map((reason) => seenError(reason).message),
    };
  }
}

/** The routes the suite uses; each returns what the session shows. */
function routes(app: ConformanceApp, peek: Peek): Record<string, Route> {
  return {
    plain: async () => 'plain',
    get: async (s, q) => ({ value: (await s.get(param(q, 'key'))) ?? null, id: s.id ?? null, isNew: s.isNew }),
    set: async (s, q) => {
      await s.set(param(q, 'key'), JSON.parse(param(q, 'value')));
      return { id: s.id ?? null };
    },
    setmany: async (s, q) => {
      await s.set(JSON.parse(param(q, 'values')) as Record<string, unknown>);
      return { id: s.id ?? null };
    },
    setpeek: async (s, q) => {
      await s.set(param(q, 'key'), param(q, 'value'));
      return { stored: await peek(s.id as string) };
    },
    setundefined: async (s) => s.set('u', undefined),
    setbigint: async (s) => s.set('big', 10n),
    incr: async (s, q) => ({ value: await s.incr(param(q, 'key'), Number(q.get('by') ?? 1)) }),
    del: async (s, q) => {
      await s.delete(param(q, 'key'));
      return { has: await s.has(param(q, 'key')) };
    },
    view: async (s) => ({
      all: await s.all(),
      keys: await s.keys(),
      values: await s.values(),
      entries: await s.entries(),
      size: await s.size(),
      id: s.id ?? null,
      isNew: s.isNew,
    }),
    proto: async (s) => {
      const all = (await s.all()) as Record<string, unknown>;
      return {
        proto: (await s.get('__proto__')) ?? null,
        ctor: (await s.get('constructor')) ?? null,
        ownProto: Object.prototype.hasOwnProperty.call(all, '__proto__'),
        polluted: ({} as Record<string, unknown>).polluted ?? null,
      };
    },
    destroy: async (s) => {
      await s.destroy();
      return { id: s.id ?? null };
    },
    destroyThenSet: async (s) => {
      await s.get('a');
      const before = s.id;
      await s.destroy();
      await s.set('after', true);
      return { before, after: s.id, all: await s.all(), isNew: s.isNew };
    },
    regenerate: async (s) => {
      await s.load();
      const before = s.id;
      await s.regenerate();
      return { before, after: s.id, all: await s.all(), isNew: s.isNew };
    },
    theme: async (s, _q, response) => {
      response.cookie('theme=dark; Path=/');
      await s.set('a', 1);
      response.cookie('lang=en; Path=/');
      return 'themed';
    },
    setThenThrow: async (s) => {
      await s.set('a', 1);
      throw new RouteError('thrown after a write');
    },
    late: async (s) => {
      // Answers at once and uses the session only after the response has gone out.
      app.later(new Promise((resolve) => setTimeout(resolve, 50)).then(() => s.set('late', 1)));
      return 'answered';
    },
    hold: async (s, q) => {
      const gate = app.gate(param(q, 'gate'));
      await s.get('a');
      gate.reach();
      await gate.released;
      await s.set('late', 1);
      return { id: s.id ?? null };
    },
    holdBlind: async (s, q) => {
      const gate = app.gate(param(q, 'gate'));
      gate.reach();
      await gate.released;
      await s.set('late', 1);
      return { id: s.id ?? null };
    },
    // Sessions per user: what a "Your devices" page does, with the middleware's admin.
    login: async (s, q) => {
      await s.login(param(q, 'user'));
      return { id: s.id ?? null, userId: (await s.userId()) ?? null };
    },
    whoami: async (s) => ({ userId: (await s.userId()) ?? null, id: s.id ?? null, all: await s.all() }),
    logout: async (s) => {
      await s.logout();
      return { id: s.id ?? null };
    },
    devices: async (s) => {
      const userId = await s.userId();
      return { userId: userId ?? null, devices: userId === undefined ? [] : await app.admin.listUserSessions(userId, { current: s }) };
    },
    revoke: async (s, q) => {
      const userId = await s.userId();
      return { revoked: userId !== undefined && (await app.admin.revokeSession(userId, param(q, 'handle'))) };
    },
    revokeOthers: async (s) => {
      const userId = await s.userId();
      return { revoked: userId === undefined ? 0 : await app.admin.revokeUserSessions(userId, { except: s }) };
    },
  };
}

/** Turns what a route returns into status, body and content type. */
export function toResponse(result: unknown): { status: number; body: string; type: string } {
  if (typeof result === 'string') return { status: 200, body: result, type: 'text/plain; charset=utf-8' };
  return { status: 200, body: JSON.stringify(result ?? null), type: 'application/json' };
}

/**
 * A Hono app with the session middleware and `routes` at `/<name>`, wired the way Hono users wire
 * it; errors that reach Hono's default error handler are pushed to `errors`. Serve `app.fetch`.
 */
export function honoApp(options: SessionOptions, routes: Record<string, Route>, errors: unknown[]): { app: Hono; middleware: HonoSessionMiddleware } {
  const middleware = honoSession(options);
  const app = new Hono();
  // Watches the default error handler's work without replacing it.
  app.use(async (c, next) => {
    await next();
    if (c.error) errors.push(c.error);
  });
  app.use(middleware);
  app.all('/:route', async (c) => {
    const route = routes[c.req.param('route')];
    if (!route) return c.text('no such route', 404);
    const session = (c as unknown as { get(key: string): Session }).get(options.keyword ?? 'session');
    const { status, body, type } = toResponse(
      await route(session, new URL(c.req.url).searchParams, {
        cookie: (line) => c.header('Set-Cookie', line, { append: true }),
        header: (name, value) => c.header(name, value),
      }),
    );
    return c.body(body, status as 200, { 'content-type': type });
  });
  return { app, middleware };
}

/**
 * A `node:http` request listener with `withSession` and `routes` at `/<name>`; errors that reach
 * `onError` are pushed to `errors` before the default handler answers them.
 */
export function nodeListener(options: SessionOptions, routes: Record<string, Route>, errors: unknown[]): NodeSessionListener {
  // node:http has no keyword: the session is the handler's third argument.
  const { keyword: _keyword, ...sessionOptions } = options as SessionOptions<IncomingMessage>;
  return withSession(
    {
      ...sessionOptions,
      onError: (error, req, res) => {
        errors.push(error);
        defaultErrorHandler(error, req, res);
      },
    },
    async (req, res, session) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const route = routes[url.pathname.slice(1)];
      if (!route) return void res.writeHead(404).end('no such route');
      const { status, body, type } = toResponse(
        await route(session, url.searchParams, {
          cookie: (line) => res.appendHeader('Set-Cookie', line),
          header: (name, value) => void res.setHeader(name, value),
        }),
      );
      res.writeHead(status, { 'content-type': type }).end(body);
    },
  );
}
