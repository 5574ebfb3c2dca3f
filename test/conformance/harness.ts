import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import express5 from 'express';
import express4 from 'express4';
import Fastify, { type FastifyInstance } from 'fastify';
import Koa from 'koa';
import Koa2 from 'koa2';
import { createServer } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import type { SessionAdmin} from '../../src/index.js';
import { LAST_SEEN_FIELD, MemoryStore, RedisStore, STATE_FIELD, type Session, type SessionOptions } from '../../src/index.js';
import { sessionHandle, storageId as storageIdOf } from '../../src/core/id.js';
import { BYTES_FIELD } from '../../src/stores/redis.js';
import { UNCOUNTED_FIELDS } from '../../src/stores/store.js';
import { session as expressSession } from '../../src/adapters/express.js';
import { session as fastifySession } from '../../src/adapters/fastify.js';
import { session as koaSession } from '../../src/adapters/koa.js';
import { startRedis, type RedisServer } from '../redis/server.js';
import { ConformanceApp, CountingStore, honoApp, nodeListener, toResponse, type AppSpec, type Observed, type Route } from './app.js';

export { CountingStore, Gate, param, type AppResponse, type Route } from './app.js';

/** Collects the process's unhandled rejections from now until `stop()`, which returns them. */
export function watchUnhandled(): { readonly rejections: unknown[]; stop(): unknown[] } {
  const rejections: unknown[] = [];
  const listener = (reason: unknown): void => void rejections.push(reason);
  process.on('unhandledRejection', listener);
  return {
    rejections,
    stop: () => {
      process.off('unhandledRejection', listener);
      return rejections;
    },
  };
}

/** A running app with the session middleware and the test's routes at `/<name>`. */
export interface App {
  readonly url: string;
  /** Errors that reached the framework's own error path (handler, hook or event), in order. */
  readonly errors: unknown[];
  /** Sessions by user, as the app reaches them: its middleware's `manager.admin`. */
  readonly admin: SessionAdmin;
  close(): Promise<void>;
}

/** A key and certificate for 127.0.0.1, to serve over HTTPS. */
export interface Tls {
  readonly key: string;
  readonly cert: string;
}

/** The test certificate (self-signed for 127.0.0.1 and localhost). */
export const TEST_TLS: Tls = {
  key: readFileSync(new URL('../fixtures/tls-key.pem', import.meta.url), 'utf8'),
  cert: readFileSync(new URL('../fixtures/tls-cert.pem', import.meta.url), 'utf8'),
};

/** One framework, wired the way its users wire it. */
export interface AdapterHarness {
  readonly name: string;
  /** Starts an app on 127.0.0.1, over HTTPS when `tls` is given. */
  start(options: SessionOptions, routes: Record<string, Route>, tls?: Tls): Promise<App>;
}

/**
 * Waits for `server` to listen; the app it serves is closed by `closeApp` after the server.
 * `admin` gives the app's {@link SessionAdmin}.
 */
async function listen(server: Server, errors: unknown[], admin: () => SessionAdmin, closeApp: () => Promise<void>): Promise<App> {
  if (!server.listening) await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const scheme = server instanceof HttpsServer ? 'https' : 'http';
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    errors,
    get admin() {
      return admin();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeApp();
    },
  };
}

function keywordOf(options: SessionOptions): string {
  return options.keyword ?? 'session';
}

/** The session a framework put on its request or context under `keyword`. */
function sessionAt(holder: object, keyword: string): Session {
  return (holder as Record<string, Session>)[keyword] as Session;
}

const hono: AdapterHarness = {
  name: 'hono',
  async start(options, routes, tls) {
    const errors: unknown[] = [];
    const { app, middleware } = honoApp(options, routes, errors);
    const server = serve({
      fetch: app.fetch,
      port: 0,
      hostname: '127.0.0.1',
      ...(tls && { createServer: createHttpsServer, serverOptions: tls }),
    }) as Server;
    return listen(server, errors, () => middleware.manager.admin, () => middleware.close());
  },
};

function expressHarness(name: string, createApp: typeof express5, catchErrors: boolean): AdapterHarness {
  return {
    name,
    async start(options, routes, tls) {
      const errors: unknown[] = [];
      const middleware = expressSession(options);
      const app = createApp();
      app.use(middleware);
      app.all('/:route', async (req, res, next) => {
        const route = routes[req.params.route as string];
        if (!route) return void res.status(404).send('no such route');
        const run = async (): Promise<void> => {
          const { status, body, type } = toResponse(
            await route(sessionAt(req, keywordOf(options)), new URL(req.url, 'http://x').searchParams, {
              cookie: (line) => res.append('Set-Cookie', line),
              header: (name, value) => void res.setHeader(name, value),
            }),
          );
          res.status(status).type(type).send(body);
        };
        // Express 5 sends a rejected handler promise to the error handler; Express 4 needs next().
        if (catchErrors) await run().catch(next);
        else await run();
      });
      // Watches errors on their way to Express' default error handler.
      app.use((error: unknown, _req: unknown, _res: unknown, next: (error: unknown) => void) => {
        errors.push(error);
        next(error);
      });
      const server = tls ? createHttpsServer(tls, app).listen(0, '127.0.0.1') : app.listen(0, '127.0.0.1');
      return listen(server, errors, () => middleware.manager.admin, () => middleware.close());
    },
  };
}

const fastify: AdapterHarness = {
  name: 'fastify',
  async start(options, routes, tls) {
    const errors: unknown[] = [];
    // Typed as the plain-HTTP instance: the routes are the same either way.
    const app = (tls ? Fastify({ https: tls }) : Fastify()) as FastifyInstance;
    await app.register(fastifySession, options);
    // An onError hook observes; Fastify's default error handler still answers.
    app.addHook('onError', async (_request, _reply, error) => void errors.push(error));
    app.all('/:route', async (request, reply) => {
      const route = routes[(request.params as { route: string }).route];
      if (!route) return reply.code(404).send('no such route');
      const { status, body, type } = toResponse(
        await route(sessionAt(request, keywordOf(options)), new URL(request.url, 'http://x').searchParams, {
          cookie: (line) => reply.header('set-cookie', line),
          header: (name, value) => void reply.header(name, value),
        }),
      );
      return reply.code(status).type(type).send(body);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    // The plugin decorates the instance with its admin, under the keyword's name.
    const adminOf = (): SessionAdmin => (app as unknown as Record<string, SessionAdmin>)[`${keywordOf(options)}Admin`] as SessionAdmin;
    // app.close() closes the server and, through the plugin's onClose hook, the session manager.
    return listen(app.server as Server, errors, adminOf, () => app.close());
  },
};

function koaHarness(name: string, Application: typeof Koa): AdapterHarness {
  return {
    name,
    async start(options, routes, tls) {
      const errors: unknown[] = [];
      const middleware = koaSession(options);
      const app = new Application();
      // Koa's 'error' event; with a listener, Koa leaves logging to it.
      app.on('error', (error: unknown) => errors.push(error));
      app.use(middleware);
      app.use(async (ctx) => {
        const route = routes[ctx.path.slice(1)];
        if (!route) {
          ctx.status = 404;
          ctx.body = 'no such route';
          return;
        }
        const { status, body, type } = toResponse(
          await route(sessionAt(ctx, keywordOf(options)), new URLSearchParams(ctx.querystring), {
            cookie: (line) => ctx.append('Set-Cookie', line),
            header: (name, value) => ctx.set(name, value),
          }),
        );
        ctx.status = status;
        ctx.type = type;
        ctx.body = body;
      });
      const server = tls ? createHttpsServer(tls, app.callback()).listen(0, '127.0.0.1') : app.listen(0, '127.0.0.1');
      return listen(server, errors, () => middleware.manager.admin, () => middleware.close());
    },
  };
}

const node: AdapterHarness = {
  name: 'node',
  async start(options, routes, tls) {
    const errors: unknown[] = [];
    const listener = nodeListener(options, routes, errors);
    const server = tls ? createHttpsServer(tls, listener) : createServer(listener);
    return listen(server.listen(0, '127.0.0.1'), errors, () => listener.manager.admin, () => listener.close());
  },
};

/** Every adapter the conformance suite runs against. */
export const ADAPTERS: readonly AdapterHarness[] = [
  hono,
  expressHarness('express5', express5, false),
  expressHarness('express4', express4 as unknown as typeof express5, true),
  fastify,
  koaHarness('koa3', Koa),
  koaHarness('koa2', Koa2 as unknown as typeof Koa),
  node,
];

/** A gate in an app: `/hold?gate=<name>` waits there until released. */
export interface HeldGate {
  /** Resolves once a request waits at the gate. */
  readonly reached: Promise<void>;
  /** Lets the waiting request go on. */
  release(): Promise<void>;
}

/** A conformance app started by an {@link AppHost}, wherever it runs. */
export interface HostedApp {
  readonly url: string;
  /** What the app observed so far, once the work its routes started after answering has ended. */
  observed(): Promise<Observed>;
  /** Forgets the store operations counted so far. */
  resetStoreOps(): Promise<void>;
  /** The gate named `name`; ask for it before the request that waits there. */
  gate(name: string): HeldGate;
  close(): Promise<void>;
}

/**
 * Where the conformance suite starts its apps: in this process with one of {@link ADAPTERS}
 * ({@link inProcess}), or in another runtime's process (test/runtimes). The suite asks the app
 * what it observed rather than reaching into it, so that it runs unchanged against either.
 */
export interface AppHost {
  readonly name: string;
  /** Starts an app on 127.0.0.1 against `sut`'s store, over HTTPS with {@link TEST_TLS} when `tls`. */
  start(sut: StoreUnderTest, spec: AppSpec, tls?: boolean): Promise<HostedApp>;
  /** Stops whatever the host started besides its apps. */
  close(): Promise<void>;
}

/** The host that starts apps with `adapter` in this process. */
export function inProcess(adapter: AdapterHarness): AppHost {
  return {
    name: adapter.name,
    async start(sut, spec, tls) {
      const peek = async (handle: string): Promise<Record<string, string> | null> => {
        const hash = await sut.hashOfHandle(handle);
        return hash && Object.fromEntries(hash);
      };
      const conformanceApp = new ConformanceApp(sut.store, spec, peek);
      const app = await adapter.start(conformanceApp.options, conformanceApp.routes, tls ? TEST_TLS : undefined);
      conformanceApp.useAdmin(app.admin);
      return {
        url: app.url,
        observed: () => conformanceApp.observed(app.errors),
        resetStoreOps: async () => conformanceApp.resetStoreOps(),
        gate(name) {
          const gate = conformanceApp.gate(name);
          return { reached: gate.reached, release: async () => gate.release() };
        },
        async close() {
          await conformanceApp.settle();
          await app.close();
        },
      };
    },
    close: async () => {},
  };
}

/** Looks into the store a test runs against, the way a user would with redis-cli. */
export interface StoreUnderTest {
  readonly name: string;
  /** Session options that make the middleware use this store. */
  readonly options: SessionOptions;
  /** The store instance the middleware uses (wrapped to count operations). */
  readonly store: CountingStore;
  /** The stored hash of the session with this cookie id, or `null` (also when only the mark that it ended is left). */
  hash(id: string): Promise<Map<string, string> | null>;
  /** The stored hash of the session whose public handle (`session.id`) is `handle`, or `null`. */
  hashOfHandle(handle: string): Promise<Map<string, string> | null>;
  /** Remaining time to live of that session in ms (-2 when missing). */
  ttlMs(id: string): Promise<number>;
  /** Sets the time to live of that session (to see a refresh). */
  setTtlMs(id: string, ms: number): Promise<void>;
  /** Every session key in the store, prefix included (not the marks of sessions that ended, nor users' indexes). */
  keys(): Promise<string[]>;
  /**
   * The storage ids in the index of `userId`, sorted: on Redis, the fields of its hash
   * (`session:user:<userId>`) as they are; for MemoryStore, what its `userSessions()` finds.
   */
  userIndex(userId: string): Promise<string[]>;
  /** The Redis server behind the store, when there is one. */
  readonly redis: RedisServer | undefined;
  /** Empties the store and resets counters. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

const PREFIX = 'session:';

/** The storage id (the Redis key after the prefix) of the session with this cookie value (`<id>` or `<id>.<signature>`). */
export function storageIdOfCookie(cookie: string): string {
  const dot = cookie.indexOf('.');
  return storageIdOf(dot < 0 ? cookie : cookie.slice(0, dot));
}

/** The public handle (`session.id`) of the session with this cookie value (`<id>` or `<id>.<signature>`). */
export function handleOf(cookie: string): string {
  return sessionHandle(storageIdOfCookie(cookie));
}

/** Finds the storage id whose handle is `handle` among the store's keys. */
async function storageIdOfHandle(keys: () => Promise<string[]>, handle: string): Promise<string | undefined> {
  for (const key of await keys()) {
    const sid = key.slice(PREFIX.length);
    if (sessionHandle(sid) === handle) return sid;
  }
  return undefined;
}

async function redisBacked(name: string, connect: (url: string) => Promise<{ client: unknown; close(): Promise<void> }>): Promise<StoreUnderTest> {
  const redis = await startRedis();
  const { client, close } = await connect(redis.url);
  const store = new CountingStore(new RedisStore({ redis: client as never, commandTimeout: 1000 }));
  const key = (id: string): string => PREFIX + storageIdOf(id);
  // RedisStore's marks: 'e' (ended), 'e:<new id>' (a signed-in session moved), 'r<time>' (revoked).
  const isEndedMark = (state: unknown): boolean => typeof state === 'string' && /^(?:e(?::.+)?|r[0-9]+)$/.test(state);
  const hashAt = async (redisKey: string): Promise<Map<string, string> | null> => {
    const flat = (await redis.command('HGETALL', redisKey)) as string[];
    if (flat.length === 0) return null;
    const map = new Map<string, string>();
    for (let i = 0; i < flat.length; i += 2) map.set(flat[i] as string, flat[i + 1] as string);
    // Only the mark that the session ended, or was revoked: no session.
    if (isEndedMark(map.get(STATE_FIELD))) return null;
    // RedisStore's byte tally is bookkeeping, not session data; every hash read checks it is exact.
    const tally = map.get(BYTES_FIELD);
    if (tally !== undefined) {
      map.delete(BYTES_FIELD);
      let bytes = 0;
      for (const [field, value] of map) if (field !== STATE_FIELD) bytes += Buffer.byteLength(field) + Buffer.byteLength(value);
      // The user and client fields count towards the bytes, not the fields (see UNCOUNTED_FIELDS).
      const fields = [...map.keys()].filter((field) => field !== STATE_FIELD && !(UNCOUNTED_FIELDS as readonly string[]).includes(field)).length;
      assert.equal(tally, `${bytes}/${fields}/${map.get(LAST_SEEN_FIELD) ?? ''}`, `the tally of ${redisKey} is the size of its fields`);
    }
    return map;
  };
  // A key holding only the mark that its session ended (see ENDED_GRACE_MS) is not a session, and
  // neither is a user's index (a ':' after the prefix, which session keys never have).
  const keys = async (): Promise<string[]> => {
    const all = ((await redis.command('KEYS', '*')) as string[]).filter((each) => !each.slice(PREFIX.length).includes(':'));
    const states = await Promise.all(all.map((each) => redis.command('HGET', each, STATE_FIELD)));
    return all.filter((_, i) => !isEndedMark(states[i])).sort();
  };
  return {
    name,
    options: { store },
    store,
    redis,
    hash: (id) => hashAt(key(id)),
    async hashOfHandle(handle) {
      const sid = await storageIdOfHandle(keys, handle);
      return sid === undefined ? null : hashAt(PREFIX + sid);
    },
    ttlMs: async (id) => Number(await redis.command('PTTL', key(id))),
    setTtlMs: async (id, ms) => void (await redis.command('PEXPIRE', key(id), String(ms))),
    keys,
    userIndex: async (userId) => ((await redis.command('HKEYS', `${PREFIX}user:${userId}`)) as string[]).sort(),
    async reset() {
      await redis.command('FLUSHALL');
      await redis.resetStats();
      store.calls = 0;
      store.ops.length = 0;
    },
    async close() {
      await close();
      await redis.stop();
    },
  };
}

/** Every store (and client) the conformance suite runs against, by name. */
export const STORES: Record<string, () => Promise<StoreUnderTest>> = {
  'redis (node-redis)': () =>
    redisBacked('redis (node-redis)', async (url) => {
      const client = createClient({ url });
      client.on('error', () => {});
      await client.connect();
      return { client, close: async () => void (client.isOpen && (await client.close())) };
    }),
  'redis (ioredis)': () =>
    redisBacked('redis (ioredis)', async (url) => {
      const client = new Redis(url);
      client.on('error', () => {});
      return { client, close: async () => void client.disconnect() };
    }),
  memory: async () => {
    const memory = new MemoryStore();
    const store = new CountingStore(memory);
    return {
      name: 'memory',
      options: { store },
      store,
      redis: undefined,
      hash: async (id) => memory.inspect(storageIdOf(id))?.fields ?? null,
      async hashOfHandle(handle) {
        const sid = await storageIdOfHandle(async () => memory.ids().map((id) => PREFIX + id), handle);
        return sid === undefined ? null : (memory.inspect(sid)?.fields ?? null);
      },
      ttlMs: async (id) => memory.inspect(storageIdOf(id))?.ttlMs ?? -2,
      async setTtlMs(id, ms) {
        // MemoryStore has no PEXPIRE; an update with the same fields sets the TTL.
        await memory.update(storageIdOf(id), [], [], { ttlMs: ms, maxAgeMs: null, now: Date.now() }, { maxFields: 1e6, maxBytes: 1e9 });
      },
      keys: async () => memory.ids().map((id) => PREFIX + id).sort(),
      userIndex: async (userId) => (await memory.userSessions(userId)).map((session) => session.id).sort(),
      async reset() {
        await memory.close();
        store.calls = 0;
        store.ops.length = 0;
      },
      close: () => memory.close(),
    };
  },
};

/** A tiny browser: keeps the session cookie between requests. */
export class Browser {
  cookie: string | undefined;
  constructor(
    readonly base: string,
    readonly cookieName = 'session',
  ) {}

  async get(path: string, init: RequestInit = {}): Promise<{ status: number; body: string; setCookie: string[]; headers: Headers }> {
    const headers = new Headers(init.headers);
    if (this.cookie !== undefined && !headers.has('cookie')) headers.set('cookie', `${this.cookieName}=${this.cookie}`);
    const response = await fetch(this.base + path, { ...init, headers });
    const body = await response.text();
    const setCookie = response.headers.getSetCookie();
    for (const line of setCookie) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (pair.slice(0, eq) !== this.cookieName) continue;
      this.cookie = /max-age=0/i.test(line) ? undefined : pair.slice(eq + 1);
    }
    return { status: response.status, body, setCookie, headers: response.headers };
  }

  async json(path: string, init?: RequestInit): Promise<unknown> {
    const response = await this.get(path, init);
    if (response.status !== 200) throw new Error(`${path}: HTTP ${response.status} ${response.body}`);
    return JSON.parse(response.body) as unknown;
  }
}

/** Parses one Set-Cookie line into its name, value and attributes (lower-cased names). */
export function parseSetCookie(line: string): { name: string; value: string; attributes: Map<string, string | true> } {
  const [pair = '', ...rest] = line.split(';').map((part) => part.trim());
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string | true>();
  for (const part of rest) {
    const at = part.indexOf('=');
    if (at < 0) attributes.set(part.toLowerCase(), true);
    else attributes.set(part.slice(0, at).toLowerCase(), part.slice(at + 1));
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
}

/** One request over HTTPS that trusts the test certificate; resolves status and Set-Cookie lines. */
export async function tlsGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { ca: TEST_TLS.cert, headers }, (response) => {
      response.resume();
      response.once('end', () => resolve({ status: response.statusCode ?? 0, setCookie: response.headers['set-cookie'] ?? [] }));
    });
    request.once('error', reject);
    request.setTimeout(5000, () => request.destroy(new Error(`no answer from ${url} within 5 s`)));
    request.end();
  });
}
