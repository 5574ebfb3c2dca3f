import { inspect } from 'node:util';
import type { Context, Middleware } from 'koa';
import { SessionError } from '../core/errors.js';
import { openNodeSession } from '../core/http.js';
import { SessionManager } from '../core/manager.js';
import type { InvalidCookieReason, SameSite, SessionOptions as LatchkeyOptions } from '../core/options.js';
import { PlainSession, defineData, refuseCompat } from '../core/plain.js';
import { isStore } from '../stores/store.js';
// From the package's root, not core/: so an app that imports only this module still loads the
// module that `declare module 'latchkey'` augments (see SessionData).
import type { DefaultSessionData } from '../index.js';

/** The data of `ctx.session`: {@link DefaultSessionData}, every key optional. */
export type KoaSessionData = Partial<DefaultSessionData>;

/**
 * What `ctx.session` offers besides its data, as koa-session's session object does. Its own
 * enumerable properties are the data; these live on its prototype.
 */
export interface KoaSessionMethods {
  /** Whether the request came without a session (no cookie, or one of a session that ended). */
  readonly isNew: boolean;
  /** How many keys the session holds. */
  readonly length: number;
  /** Whether the session holds any key. */
  readonly populated: boolean;
  /**
   * The cookie's lifetime in milliseconds, or `'session'` for a cookie that ends with the browser.
   * Setting it sends the session's cookie again with that lifetime ("remember me"), capped by
   * `absoluteLifetime`; it does not change the idle timeout, which is the `maxAge` option.
   */
  maxAge: number | 'session';
  /**
   * The session's public handle (safe to log; not the cookie's value, unlike koa-session's
   * `externalKey`), or the one the session will get when this request saves it.
   */
  readonly externalKey: string;
  /** The data as a plain object (a shallow copy). */
  toJSON(): Record<string, unknown>;
  /** Writes what changed now, rather than at the end of the request. */
  save(): Promise<void>;
  /** Writes what changed now, then calls `callback` (with the error, if any). */
  save(callback: (error?: unknown) => void): void;
  /**
   * Moves the session to a new id, its data kept (as koa-session does), at the next save: `save()`,
   * `manuallyCommit()` or the end of the request. A save that signs a Passport user in or out
   * moves it anyway, so Passport's login costs one move.
   */
  regenerate(): Promise<void>;
  /** {@inheritDoc KoaSessionMethods.(regenerate:1)}; then calls `callback`. */
  regenerate(callback: (error?: unknown) => void): void;
  /** Saves the session: what `autoCommit: false` asks the app to call. */
  manuallyCommit(): Promise<void>;
}

/** `ctx.session`: the data (typed by `SessionData`, see {@link DefaultSessionData}) and {@link KoaSessionMethods}. */
export type KoaSession = KoaSessionMethods & KoaSessionData;

/** `ctx.sessionOptions`: the options of this request's session, as koa-session exposes them. */
export interface KoaSessionContextOptions {
  readonly key: string;
  /** This request's cookie lifetime; setting it does what setting `ctx.session.maxAge` does. */
  maxAge: number | 'session';
  readonly signed: boolean;
  readonly httpOnly: boolean;
  readonly autoCommit: boolean;
}

declare module 'koa' {
  // ExtendableContext rather than DefaultContext, which latchkey/koa gives its own `session`.
  interface ExtendableContext {
    /**
     * The session of this request as a plain object, set by `latchkey/koa-session`; `null` after
     * the app set it to `null` (the session is then destroyed when the request ends).
     */
    get session(): KoaSession;
    /** `null` destroys the session when the request ends; an object replaces its data. */
    set session(value: KoaSessionData | null);
    /** The options of this request's session. */
    readonly sessionOptions: KoaSessionContextOptions;
  }
}

/** The parts of a Koa application `session()` uses. */
export interface KoaApp {
  use(...args: never[]): unknown;
  readonly context: object;
  keys?: unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * Options of koa-session's `session(options, app)`, mapped onto latchkey's, plus latchkey's own
 * that koa-session has no counterpart for. The options latchkey does differently are typed
 * `never` and refused when the middleware is created, with a message saying what to use instead.
 */
export interface KoaSessionOptions extends Omit<LatchkeyOptions<Context>, 'cookieName' | 'cookieLifetime' | 'keyword' | 'sameSite' | 'secrets'> {
  /**
   * The cookie's name (latchkey's `cookieName`).
   * @default 'koa.sess'
   */
  key?: string;
  /**
   * Milliseconds a session lives unused: latchkey's idle timeout (`cookieLifetime`, in seconds),
   * enforced by the store. `'session'`: the cookie ends with the browser (the store keeps an idle
   * session 7 days). The absolute lifetime, unless `absoluteLifetime` is given, is the longer of
   * 24 hours and `maxAge`.
   * @default 86400000 (one day)
   */
  maxAge?: number | 'session';
  /**
   * Signs the cookie with `app.keys` (each at least 32 characters), or with `secrets` when given.
   * `false` sends the bare id (256-bit random, so unguessable either way).
   * @default true
   */
  signed?: boolean;
  /**
   * Secrets to sign with instead of `app.keys` (latchkey's `secrets`).
   * @default app.keys
   */
  secrets?: string | readonly string[];
  /**
   * The cookie's SameSite attribute: `'lax'`, `'strict'` or `'none'` (any case); `true` means
   * `'strict'`; `false`, `null` or nothing leaves latchkey's default, `'lax'` (what browsers do
   * with a cookie that has none).
   * @default 'lax'
   */
  sameSite?: SameSite | 'Lax' | 'Strict' | 'None' | boolean | null;
  /**
   * Whether the session is saved after downstream middleware by itself; with `false`, call
   * `ctx.session.manuallyCommit()`.
   * @default true
   */
  autoCommit?: boolean;
  /** Accepted, no effect: latchkey writes its cookie once per response. */
  overwrite?: boolean;
  /**
   * Accepted, no effect: every request that uses the session extends its idle timeout in the store
   * (at most once per `touchInterval` for reads), and the cookie outlives it, so it is never re-sent.
   */
  rolling?: boolean;
  /** Accepted, no effect, for the reason given at `rolling`. */
  renew?: boolean;
  /** Refused: pass your Redis client as `redis: client`, or a latchkey store as `store`. */
  ContextStore?: never;
  /** Refused: the id travels in the cookie named `key`. */
  externalKey?: never;
  /** Refused: latchkey makes 256-bit random ids and keeps only their hashes in the store. */
  genid?: never;
  /** Refused: values are kept as JSON, one hash field per top-level key. */
  encode?: never;
  /** Refused: values are kept as JSON, one hash field per top-level key. */
  decode?: never;
  /** Refused: check the session in a middleware after this one, and set `ctx.session = null` to end it. */
  valid?: never;
  /** Refused: change the session in a middleware after this one, after its `await next()`. */
  beforeSave?: never;
}

/** koa-session's name for the options `session()` takes. */
export type CreateSessionOptions = KoaSessionOptions;
/** koa-session's name for its options; here a type only (koa-session's is also a zod schema). */
export type SessionOptions = KoaSessionOptions;

/** The middleware `session()` returns. */
export type KoaSessionMiddleware = Middleware & {
  /** The manager behind the middleware: options, store, and `admin` for sessions by user. */
  readonly manager: SessionManager;
  /** Closes the Redis connection the middleware created itself (a client or store you passed stays open). */
  close(): Promise<void>;
};

const DEFAULT_KEY = 'koa.sess';
const DEFAULT_MAX_AGE = 86_400_000;
const ONE_DAY_SECONDS = 86_400;

/** koa-session options latchkey does differently, and what to use instead. */
const REFUSED: Record<string, string> = {
  ContextStore: 'latchkey keeps sessions in Redis itself: pass your Redis client as `redis: client`, or a latchkey store (RedisStore, MemoryStore) as `store`',
  externalKey: 'latchkey reads the session id from the cookie named by `key` only',
  genid: 'latchkey makes 256-bit random ids itself and keeps only their hashes in the store',
  encode: 'latchkey keeps each top-level key as its own JSON field; there is no cookie payload to encode',
  decode: 'latchkey keeps each top-level key as its own JSON field; there is no cookie payload to decode',
  valid: 'check the session in a middleware placed after session(), and set `ctx.session = null` to end it',
  beforeSave: 'change the session in a middleware placed after session(), after its `await next()`: the session is saved after that',
  cookieName: "koa-session's `key` names the cookie here",
  cookieLifetime: "koa-session's `maxAge` (milliseconds, or 'session') sets it here",
  keyword: 'the session is always `ctx.session` here; use latchkey/koa for another name',
};

/** Options passed on to latchkey as they are. */
const PASSED = new Set<string>([
  'redis', 'store', 'secure', 'httpOnly', 'path', 'domain', 'prefix', 'touchInterval', 'absoluteLifetime', 'secrets',
  'limits', 'onInvalidCookie', 'maxSessionsPerUser', 'recordClient', 'clientIp', 'adopt',
]);
/** koa-session options with a meaning here, or accepted without one. */
const OWN = new Set<string>(['key', 'maxAge', 'maxage', 'signed', 'sameSite', 'autoCommit', 'overwrite', 'rolling', 'renew']);

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message);
}

/** koa-session's events for a cookie that was not honoured. */
const EVENTS: Record<InvalidCookieReason, string> = {
  expired: 'session:expired',
  'unknown-id': 'session:missed',
  malformed: 'session:invalid',
  'bad-signature': 'session:invalid',
  duplicate: 'session:invalid',
};

/** The secrets koa-session would sign with: `app.keys`, checked for latchkey. */
function keysOf(app: KoaApp): readonly string[] {
  const keys = app.keys;
  if (keys === undefined || (Array.isArray(keys) && keys.length === 0)) {
    throw invalid(
      'signed cookies (koa-session\'s default) need app.keys: set app.keys = [a secret of at least 32 characters, e.g. from `openssl rand -base64 32`] before session(options, app), pass `secrets`, or pass signed: false',
    );
  }
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) {
    throw invalid('app.keys must be an array of strings for latchkey to sign with (a Keygrip cannot be read); pass them as `secrets: [...]`');
  }
  const short = keys.findIndex((key: string) => key.length < 32);
  if (short >= 0) {
    throw invalid(
      `app.keys[${short}] has ${(keys[short] as string).length} characters; latchkey signs only with secrets of at least 32 (koa-session took shorter ones): make one with \`openssl rand -base64 32\``,
    );
  }
  return keys as string[];
}

function sameSiteOf(value: KoaSessionOptions['sameSite']): SameSite | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (value === true) return 'strict';
  return (typeof value === 'string' ? value.toLowerCase() : value) as SameSite;
}

/** The settings of one middleware: latchkey's options, and what this module keeps for itself. */
interface Settings {
  readonly latchkey: LatchkeyOptions<Context>;
  readonly key: string;
  readonly maxAge: number | 'session';
  readonly signed: boolean;
  readonly httpOnly: boolean;
  readonly autoCommit: boolean;
}

/** Maps koa-session's options onto latchkey's, refusing what latchkey does differently. */
function settingsOf(options: KoaSessionOptions, app: KoaApp): Settings {
  if (options === null || typeof options !== 'object') throw invalid(`options must be an object, got ${String(options)}`);
  const given = options as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (given[name] === undefined) continue;
    const refused = REFUSED[name];
    if (refused !== undefined) throw invalid(`koa-session's option '${name}' is not supported: ${refused}`);
    if (!PASSED.has(name) && !OWN.has(name)) {
      throw invalid(`unknown option '${name}'; known options are ${[...OWN].filter((n) => n !== 'maxage').join(', ')}, ${[...PASSED].join(', ')}`);
    }
  }
  if (given['store'] !== undefined && !isStore(given['store'])) {
    throw invalid(
      "koa-session's `store` (koa-redis and the like) is not used: latchkey keeps sessions in Redis itself. Pass your node-redis or ioredis client as `redis: client`, or a latchkey store (RedisStore, MemoryStore) as `store`",
    );
  }
  for (const name of ['autoCommit', 'overwrite', 'rolling', 'renew', 'signed']) {
    if (given[name] !== undefined && typeof given[name] !== 'boolean') throw invalid(`${name} must be true or false, got ${String(given[name])}`);
  }
  const maxAge = options.maxAge ?? (given['maxage'] as KoaSessionOptions['maxAge']) ?? DEFAULT_MAX_AGE;
  if (maxAge !== 'session' && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge < 1000)) {
    throw invalid(`maxAge must be a number of milliseconds, at least 1000, or 'session'; got ${String(maxAge)}`);
  }
  const idle = maxAge === 'session' ? null : maxAge / 1000;
  const signed = options.signed ?? true;
  const secrets = options.secrets ?? (signed ? keysOf(app) : undefined);

  const latchkey: Record<string, unknown> = {};
  for (const name of PASSED) if (given[name] !== undefined) latchkey[name] = given[name];
  latchkey['cookieName'] = options.key ?? DEFAULT_KEY;
  latchkey['cookieLifetime'] = idle;
  latchkey['absoluteLifetime'] = options.absoluteLifetime === undefined ? Math.max(ONE_DAY_SECONDS, idle ?? 0) : options.absoluteLifetime;
  latchkey['secrets'] = secrets;
  latchkey['sameSite'] = sameSiteOf(options.sameSite);
  latchkey['onInvalidCookie'] ??= (reason: InvalidCookieReason, ctx: unknown) => {
    // As koa-session does: told on the app, after the request's own work.
    setImmediate(() => app.emit(EVENTS[reason], { key: undefined, value: undefined, ctx }));
  };
  return {
    latchkey: latchkey as LatchkeyOptions<Context>,
    key: latchkey['cookieName'] as string,
    maxAge,
    signed: secrets !== undefined,
    httpOnly: options.httpOnly ?? true,
    autoCommit: options.autoCommit ?? true,
  };
}

const STATE = Symbol('latchkey koa-session');
const DEFINED = Symbol('latchkey koa-session context');

type Callback = (error?: unknown) => void;

function withCallback(promise: Promise<void>, callback: Callback | undefined): Promise<void> | undefined {
  if (callback === undefined) return promise;
  promise.then(() => callback(), callback);
  return undefined;
}

/** The session object of `ctx.session`: data as own properties, the API on the prototype. */
class SessionObject {
  readonly #state: RequestState;

  constructor(state: RequestState, entries: Iterable<readonly [string, unknown]>) {
    this.#state = state;
    defineData(this, entries);
  }

  get isNew(): boolean {
    return this.#state.isNew;
  }

  get length(): number {
    return Object.keys(this).length;
  }

  get populated(): boolean {
    return this.length > 0;
  }

  get maxAge(): number | 'session' {
    return this.#state.maxAge;
  }

  set maxAge(value: number | 'session') {
    this.#state.setMaxAge(value);
  }

  get externalKey(): string {
    return this.#state.plain.handle;
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries(Object.entries(this));
  }

  [inspect.custom](): Record<string, unknown> {
    return this.toJSON();
  }

  save(callback?: Callback): Promise<void> | undefined {
    return withCallback(this.#state.commit(), callback);
  }

  regenerate(callback?: Callback): Promise<void> | undefined {
    this.#state.plain.renewOnSave();
    return withCallback(Promise.resolve(), callback);
  }

  manuallyCommit(): Promise<void> {
    return this.#state.commit();
  }
}

/** What the middleware keeps for one request. */
class RequestState {
  readonly plain: PlainSession;
  /** The session object, or `null` once the app set `ctx.session = null`. */
  session: SessionObject | null = null;
  isNew = true;
  maxAge: number | 'session';
  /** Whether the app chose this request's cookie lifetime. */
  #maxAgeSet = false;
  /** The commit under way, if any: the next one waits for it. */
  #commits: Promise<void> | undefined;
  readonly #settings: Settings;
  #options: KoaSessionContextOptions | undefined;

  constructor(plain: PlainSession, settings: Settings) {
    this.plain = plain;
    this.maxAge = settings.maxAge;
    this.#settings = settings;
  }

  /** `ctx.sessionOptions`, made when first asked for: few requests do. */
  get options(): KoaSessionContextOptions {
    if (this.#options === undefined) {
      const { key, signed, httpOnly, autoCommit } = this.#settings;
      const maxAge = { get: () => this.maxAge, set: (value: number | 'session') => this.setMaxAge(value), enumerable: true };
      this.#options = Object.defineProperty({ key, signed, httpOnly, autoCommit }, 'maxAge', maxAge) as KoaSessionContextOptions;
    }
    return this.#options;
  }

  async load(): Promise<void> {
    const entries = await this.plain.load();
    this.isNew = !this.plain.exists;
    this.session = new SessionObject(this, entries);
  }

  replace(value: unknown): void {
    if (value === null) this.session = null;
    else if (typeof value === 'object') this.session = new SessionObject(this, Object.entries(value as object));
    else throw new SessionError('INVALID_ARGUMENT', `ctx.session can only be set to null or an object, got ${typeof value}`);
  }

  setMaxAge(value: number | 'session'): void {
    if (value !== 'session' && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) {
      throw new SessionError('INVALID_ARGUMENT', `maxAge must be a number of milliseconds above 0, or 'session'; got ${String(value)}`);
    }
    this.maxAge = value;
    this.#maxAgeSet = true;
  }

  /** Saves what changed (or destroys the session), one commit after another. */
  commit(): Promise<void> {
    const run = this.#commits === undefined ? this.#commit() : this.#commits.then(() => this.#commit());
    // A failed commit fails its caller; the next one still runs.
    this.#commits = run.catch(() => undefined);
    return run;
  }

  async #commit(): Promise<void> {
    if (this.session === null) {
      await this.plain.destroy();
      return;
    }
    await this.plain.save(this.session);
    if (this.#maxAgeSet) this.plain.resendCookie(this.maxAge === 'session' ? undefined : this.maxAge / 1000);
  }
}

function stateOf(ctx: object): RequestState | undefined {
  return (ctx as { [STATE]?: RequestState })[STATE];
}

/** Gives the app's context prototype `session` and `sessionOptions`, as koa-session does. */
function extendContext(context: object): void {
  if (Object.prototype.hasOwnProperty.call(context, DEFINED)) return;
  Object.defineProperties(context, {
    [DEFINED]: { value: true },
    session: {
      get(this: object) {
        // undefined before the middleware ran for this request, as with no session support at all.
        return stateOf(this)?.session;
      },
      set(this: object, value: unknown) {
        const state = stateOf(this);
        if (state === undefined) throw new SessionError('INVALID_ARGUMENT', 'ctx.session was set before the session middleware ran for this request; app.use(session(...)) first');
        state.replace(value);
      },
      configurable: true,
    },
    sessionOptions: {
      get(this: object) {
        return stateOf(this)?.options;
      },
      configurable: true,
    },
  });
}

/**
 * koa-session's middleware, backed by latchkey: `session(options, app)` or `session(app,
 * options)`. `ctx.session` is a plain object loaded before downstream middleware (one round trip
 * with a cookie, none without) and saved after it, before Koa sends the response: each top-level
 * key that changed (a change in place included), in one round trip, so concurrent requests
 * changing different keys never undo each other. A failed load or save takes Koa's error path
 * with status 503 (`SessionError` `STORE_UNAVAILABLE`).
 *
 * ```ts
 * app.keys = [process.env.SESSION_SECRET];
 * app.use(session({ maxAge: 86_400_000, redis: client }, app));
 * ```
 *
 * When the data names a Passport user (`passport.user`), the session is signed in as that user,
 * so `middleware.manager.admin` lists and revokes it.
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong or is one latchkey does differently
 */
export function createSession(options: KoaSessionOptions | undefined, app: KoaApp): KoaSessionMiddleware;
/** {@inheritDoc (createSession:1)} */
export function createSession(app: KoaApp, options?: KoaSessionOptions): KoaSessionMiddleware;
export function createSession(first: KoaSessionOptions | KoaApp | undefined, second?: KoaSessionOptions | KoaApp): KoaSessionMiddleware {
  const isApp = (value: unknown): value is KoaApp => typeof (value as { use?: unknown } | undefined)?.use === 'function';
  const [app, options] = isApp(first) ? [first, second as KoaSessionOptions | undefined] : [second, first];
  if (!isApp(app)) throw invalid('the Koa app is required, as koa-session requires it: session(options, app) or session(app, options)');
  const settings = settingsOf(options ?? {}, app);
  refuseCompat(settings.latchkey, 'latchkey/koa-session');
  const manager = new SessionManager(settings.latchkey);
  extendContext(app.context);
  const middleware: Middleware = async (ctx, next) => {
    // ctx.secure and ctx.hostname honour the app's `proxy` setting.
    const handle = openNodeSession(manager, ctx.req, ctx.res, { isSecure: () => ctx.secure, host: () => ctx.hostname, ip: () => ctx.ip, request: ctx });
    const state = new RequestState(new PlainSession(handle), settings);
    (ctx as { [STATE]?: RequestState })[STATE] = state;
    await state.load();
    try {
      await next();
    } finally {
      // As koa-session: saved even when downstream middleware threw.
      if (settings.autoCommit) await state.commit();
    }
  };
  return Object.assign(middleware, { manager, close: () => manager.close() });
}

// koa-session's own export is a default one: `import session from 'koa-session'` must keep working.
// eslint-disable-next-line no-restricted-syntax
export default createSession;
