import type * as Fastify from 'fastify';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { SessionError } from '../core/errors.js';
import { SessionManager } from '../core/manager.js';
import type { SameSite, SessionOptions } from '../core/options.js';
import { defineData, fastifyPassportUser, PlainSession, type UserOf, refuseCompat } from '../core/plain.js';
import type { SessionHandle } from '../core/session.js';
import { MemoryStore } from '../stores/memory.js';
import { isStore } from '../stores/store.js';
// From the package's root, not core/: so an app that imports only this adapter still loads the
// module that `declare module 'latchkey'` augments.
import type { SessionAdmin } from '../index.js';
import { noteFailures, openFastifySession, withoutDetails, type FastifyRequestSession } from './fastify-shared.js';

declare module './fastify-shared.js' {
  interface FastifySessionTypes {
    plain: FastifySessionObject;
  }
}

declare module 'fastify' {
  /**
   * The keys your sessions hold, as with @fastify/session: declare them once in the app
   * (`declare module 'fastify' { interface Session { user?: string } }`), and `request.session.user`,
   * `get('user')` and `set('user', ...)` are typed.
   */
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the app's declaration fills it in
  interface Session {}
  interface FastifyRequest {
    /**
     * The session of this request, set by `latchkey/fastify-session`: a
     * {@link FastifySessionObject} (the type is declared through {@link FastifyRequestSession},
     * shared with `latchkey/fastify`).
     */
    session: FastifyRequestSession;
  }
  interface FastifyInstance {
    /** Sessions by user (list, revoke) on the plugin's store. */
    sessionAdmin: SessionAdmin;
  }
}

/** A callback of @fastify/session's methods: called with the error, if any. */
export type Callback = (error?: unknown) => void;

/**
 * The session cookie as `request.session.cookie` shows it, in @fastify/session's (and
 * express-session's) terms: times in milliseconds.
 */
export interface SessionCookie {
  /**
   * What the cookie's lifetime was set to, in milliseconds; `null` for a browser-session cookie.
   */
  readonly originalMaxAge: number | null;
  /**
   * Milliseconds left before the cookie expires, `null` for a browser-session cookie. Setting it
   * ("remember me") sends the cookie again with that lifetime (in whole seconds, capped by
   * `absoluteLifetime`); `null` makes it a browser-session cookie.
   */
  maxAge: number | null;
  /** When the cookie expires, `null` for a browser-session cookie. Setting it works as `maxAge`. */
  expires: Date | null;
  readonly path: string;
  readonly domain: string | null;
  readonly secure: boolean | 'auto';
  readonly httpOnly: boolean;
  readonly sameSite: SameSite;
}

/**
 * `request.session` as @fastify/session shapes it: the data as properties (and through
 * `get`/`set`), and its methods. Loaded before the handlers run; what changed is written per
 * top-level key before the response is sent.
 */
export interface FastifySessionObject extends Fastify.Session {
  /**
   * The session's public handle (not the cookie's token, which latchkey never hands out), or the
   * one a session this request saves will get. Changes with `regenerate()` and `destroy()`.
   */
  readonly sessionId: string;
  /** The same as {@link FastifySessionObject.sessionId}: latchkey never exposes the cookie's token. */
  readonly encryptedSessionId: string;
  /** The session cookie; set `cookie.maxAge` (milliseconds) for "remember me". */
  readonly cookie: SessionCookie;
  /**
   * Nothing to do: each request that uses the session extends its expiry in the store; accepted
   * for code written for @fastify/session.
   */
  touch(): void;
  /**
   * Ends the session and starts a new one, keeping only the keys in `ignoreFields` (as
   * @fastify/session does); the new session is saved under a new id with the response. The old id
   * is dead at once, whatever happens next.
   */
  /* eslint-disable @typescript-eslint/unified-signatures -- @fastify/session's overloads, as apps know them */
  regenerate(callback: Callback): void;
  regenerate(ignoreFields: string[], callback: Callback): void;
  regenerate(): Promise<void>;
  regenerate(ignoreFields: string[]): Promise<void>;
  /* eslint-enable @typescript-eslint/unified-signatures */
  /**
   * Per-request cookie options: `maxAge` (milliseconds, as `cookie.maxAge`) or `expires`. Other
   * options are the plugin's and throw `INVALID_ARGUMENT`.
   */
  options(opts: { maxAge?: number | null; expires?: Date | null }): void;
  /** Deletes the session from the store, empties this object and expires the cookie. */
  destroy(callback: Callback): void;
  destroy(): Promise<void>;
  /** Reads the session again from the store, dropping changes not saved yet. */
  reload(callback: Callback): void;
  reload(): Promise<void>;
  /**
   * Writes what changed now, per top-level key, in one round trip (the plugin does it anyway before
   * the response is sent).
   */
  save(callback: Callback): void;
  save(): Promise<void>;
  /** Sets a value, as `request.session[key] = value` does. */
  set<K extends keyof Fastify.Session>(key: K, value: Fastify.Session[K]): void;
  /** Gets a value, as `request.session[key]` does. */
  get<K extends keyof Fastify.Session>(key: K): Fastify.Session[K] | undefined;
  /** Whether the data differs from what was loaded or saved (a change in place included). */
  isModified(): boolean;
  /** Whether this request has saved the session (by `save()`, or before its response). */
  isSaved(): boolean;
}

/** @fastify/session's cookie options, as `cookie: {...}` takes them. */
export interface CookieOptions {
  /**
   * Idle timeout in milliseconds: a session unused this long ends (latchkey's `cookieLifetime`, in
   * whole seconds). The cookie itself lives until the absolute deadline (`absoluteLifetime`),
   * since the store enforces the idle timeout. Unset: a browser-session cookie, and the store
   * keeps an idle session for 7 days.
   * @default undefined
   */
  maxAge?: number;
  /**
   * The Secure attribute; `'auto'` sets it for requests that came over HTTPS (honouring
   * `trustProxy`). As in @fastify/session, set it to `false` (or `'auto'`) for plain HTTP.
   * @default true
   */
  secure?: boolean | 'auto';
  /** @default true */
  httpOnly?: boolean;
  /**
   * The SameSite attribute; `true` is `'strict'`, `false` is `'lax'` (what browsers assume
   * without one).
   * @default 'lax'
   */
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'Lax' | 'Strict' | 'None';
  /** @default '/' */
  path?: string;
  /** @default undefined (this host only) */
  domain?: string;
}

/**
 * The options of `latchkey/fastify-session`: @fastify/session's, mapped onto latchkey's, and
 * latchkey's own that have no counterpart there (`redis`, `store`, `absoluteLifetime`, `limits`,
 * `maxSessionsPerUser`, ...). Refused, with `INVALID_OPTIONS` and what to do instead: a store that
 * is not latchkey's, `idGenerator`, a signer object as `secret`, `algorithm` other than `'sha256'`,
 * a non-empty `cookiePrefix`, `cookie.expires`, `cookie.partitioned` and other cookie options.
 */
export interface FastifySessionOptions extends Omit<
  SessionOptions<FastifyRequest>,
  'store' | 'cookieName' | 'cookieLifetime' | 'keyword' | 'secure' | 'httpOnly' | 'sameSite' | 'path' | 'domain' | 'secrets'
> {
  /**
   * Secret(s) to sign the cookie with, each at least 32 characters (`openssl rand -base64 32`):
   * the first signs, every one is accepted. An array is copied when the plugin starts; rotate by
   * restarting with the new secret first.
   */
  secret: string | string[];
  /** Only `'sha256'` (latchkey signs with HMAC-SHA256). @default 'sha256' */
  algorithm?: 'sha256';
  /** @default 'sessionId' */
  cookieName?: string;
  /**
   * Only `''`: latchkey's cookie value has its own format (old cookies are not read either).
   * @default ''
   */
  cookiePrefix?: '';
  /** The session cookie; see {@link CookieOptions}. */
  cookie?: CookieOptions;
  /** A latchkey store (`MemoryStore` from this module, `RedisStore`); else use `redis: client`. */
  store?: SessionOptions['store'];
  /**
   * Accepted, no effect: latchkey never stores a session that holds nothing, so visitors who store
   * nothing cost no Redis command and get no cookie (as with `false`).
   * @default true
   */
  saveUninitialized?: boolean;
  /**
   * Accepted, no effect: every request that uses a session extends its expiry in the store (the
   * idle timeout), and the cookie lasts until the absolute deadline, so it is not sent again.
   * @default true
   */
  rolling?: boolean;
  /**
   * Where the session's data names its user, for `sessionAdmin` (listing and revoking a user's
   * sessions) and the new id at login; latchkey's own option.
   * @default @fastify/passport's `passport` key (`fastifyPassportUser`)
   */
  userOf?: UserOf;
}

/** Options of @fastify/session that latchkey does differently, with what to use instead. */
const REFUSED: Record<string, string> = {
  idGenerator: 'latchkey makes its own 256-bit random ids (hashed at rest); remove idGenerator',
  signer: 'pass secret as a string or an array of strings',
};

const MAPPED = new Set(['secret', 'algorithm', 'cookieName', 'cookiePrefix', 'cookie', 'store', 'saveUninitialized', 'rolling', 'userOf']);
const COOKIE_OPTIONS = new Set(['maxAge', 'secure', 'httpOnly', 'sameSite', 'path', 'domain']);

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message);
}

function toSameSite(value: CookieOptions['sameSite']): SameSite | undefined {
  if (value === undefined) return undefined;
  if (value === true) return 'strict';
  if (value === false) return 'lax';
  if (typeof value === 'string' && ['lax', 'strict', 'none'].includes(value.toLowerCase())) return value.toLowerCase() as SameSite;
  throw invalid(`cookie.sameSite must be true, false, 'lax', 'strict' or 'none', got ${JSON.stringify(value)}`);
}

/**
 * latchkey's options from @fastify/session's.
 * @throws {@link SessionError} `INVALID_OPTIONS` for an option latchkey does differently
 */
function toLatchkeyOptions(options: FastifySessionOptions): { latchkey: SessionOptions<FastifyRequest>; userOf: UserOf } {
  if (options === null || typeof options !== 'object') throw invalid('options must be an object such as { secret, redis: client }');
  const own: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (REFUSED[name] !== undefined) throw invalid(`${name} is not supported: ${REFUSED[name]}`);
    if (!MAPPED.has(name)) own[name] = value;
  }
  const { secret, algorithm, cookieName, cookiePrefix, cookie = {}, store, userOf = fastifyPassportUser } = options;
  if (secret === undefined) throw invalid('secret is required: a string of at least 32 characters, e.g. from `openssl rand -base64 32`');
  if (typeof secret !== 'string' && !Array.isArray(secret)) {
    throw invalid('secret must be a string or an array of strings (a signer object is not supported), each of at least 32 characters, e.g. from `openssl rand -base64 32`');
  }
  if (algorithm !== undefined && algorithm !== 'sha256') throw invalid(`algorithm '${String(algorithm)}' is not supported: latchkey signs with HMAC-SHA256; remove algorithm`);
  if (cookiePrefix !== undefined && cookiePrefix !== '') {
    throw invalid("cookiePrefix is not supported: latchkey's cookie value has its own format, and existing cookies are not read anyway; remove cookiePrefix");
  }
  if (store !== undefined && !isStore(store)) {
    throw invalid(
      "store must be a latchkey store (MemoryStore from 'latchkey/fastify-session', or RedisStore); for Redis, pass your client as `redis: client` instead of a @fastify/session or express-session store",
    );
  }
  if (typeof userOf !== 'function') throw invalid('userOf must be a function (data) => user id');
  if (cookie === null || typeof cookie !== 'object') throw invalid('cookie must be an object such as { secure: true, maxAge: 86400000 }');
  for (const name of Object.keys(cookie)) {
    if (name === 'expires') throw invalid('cookie.expires is not supported (one date for every session); use cookie.maxAge (milliseconds), the idle timeout');
    if (!COOKIE_OPTIONS.has(name)) throw invalid(`cookie.${name} is not supported; the cookie options are ${[...COOKIE_OPTIONS].join(', ')}`);
  }
  const { maxAge } = cookie;
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge < 1000)) {
    throw invalid(`cookie.maxAge is in milliseconds and must be at least 1000 (one second), got ${JSON.stringify(maxAge)}`);
  }
  const latchkey: SessionOptions<FastifyRequest> = {
    ...own,
    ...(store === undefined ? {} : { store }),
    secrets: secret,
    cookieName: cookieName ?? 'sessionId',
    cookieLifetime: maxAge === undefined ? null : Math.ceil(maxAge / 1000),
    secure: cookie.secure ?? true,
  };
  const sameSite = toSameSite(cookie.sameSite);
  if (sameSite !== undefined) latchkey.sameSite = sameSite;
  if (cookie.httpOnly !== undefined) latchkey.httpOnly = cookie.httpOnly;
  if (cookie.path !== undefined) latchkey.path = cookie.path;
  if (cookie.domain !== undefined) latchkey.domain = cookie.domain;
  return { latchkey, userOf };
}

/** No cookie change asked for. */
const UNCHANGED = Symbol('unchanged');

/** What the plugin keeps per request. */
interface RequestState {
  readonly handle: SessionHandle;
  readonly plain: PlainSession;
  /** The object handed out as `request.session`. */
  readonly data: PlainFastifySession;
  /** Whether onSend has saved the session (or tried: a failure is not retried by the error response). */
  sent: boolean;
}

/** The cookie's lifetime asked for in this request, in milliseconds (`null`: browser session). */
type CookieChange = number | null | typeof UNCHANGED;

class PlainSessionCookie implements SessionCookie {
  readonly originalMaxAge: number | null;
  readonly path: string;
  readonly domain: string | null;
  readonly secure: boolean | 'auto';
  readonly httpOnly: boolean;
  readonly sameSite: SameSite;
  #expires: Date | null;
  /** The lifetime a handler asked for. */
  change: CookieChange = UNCHANGED;

  constructor(manager: SessionManager) {
    const { cookieLifetime, path, domain, secure, httpOnly, sameSite } = manager.options;
    this.originalMaxAge = cookieLifetime === null ? null : cookieLifetime * 1000;
    this.#expires = this.originalMaxAge === null ? null : new Date(Date.now() + this.originalMaxAge);
    this.path = path;
    this.domain = domain ?? null;
    this.secure = typeof secure === 'function' ? 'auto' : secure;
    this.httpOnly = httpOnly;
    this.sameSite = sameSite ?? 'lax';
  }

  get maxAge(): number | null {
    return this.#expires === null ? null : this.#expires.getTime() - Date.now();
  }

  set maxAge(ms: number | null) {
    if (ms !== null && (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)) {
      throw new SessionError('INVALID_ARGUMENT', `cookie.maxAge takes milliseconds above 0, or null for a browser-session cookie; got ${String(ms)}`);
    }
    this.#expires = ms === null ? null : new Date(Date.now() + ms);
    this.change = ms;
  }

  get expires(): Date | null {
    return this.#expires;
  }

  set expires(date: Date | null) {
    if (date !== null && !(date instanceof Date && Number.isFinite(date.getTime()))) {
      throw new SessionError('INVALID_ARGUMENT', 'cookie.expires takes a Date, or null for a browser-session cookie');
    }
    this.maxAge = date === null ? null : Math.max(1, date.getTime() - Date.now());
  }

  toJSON(): Record<string, unknown> {
    return { originalMaxAge: this.originalMaxAge, expires: this.#expires, path: this.path, domain: this.domain, secure: this.secure, httpOnly: this.httpOnly, sameSite: this.sameSite };
  }
}

/** Runs `work` for a method that takes an optional callback: the promise without one. */
function settle(work: Promise<void>, callback: Callback | undefined): Promise<void> | undefined {
  if (callback === undefined) return work;
  work.then(() => callback(), (error: unknown) => callback(error));
  return undefined;
}

/** Removes every own key of `target`: its data. */
function clear(target: object): void {
  for (const key of Object.keys(target)) Reflect.deleteProperty(target, key);
}

/**
 * `request.session`: its own enumerable properties are the session's data, everything else lives
 * on the prototype or in private fields, so that `Object.keys()` (which the save compares) sees
 * only data.
 */
class PlainFastifySession {
  readonly #plain: PlainSession;
  readonly #cookie: PlainSessionCookie;
  #saved = false;

  constructor(plain: PlainSession, cookie: PlainSessionCookie, entries: Iterable<readonly [string, unknown]>) {
    this.#plain = plain;
    this.#cookie = cookie;
    defineData(this, entries);
  }

  get sessionId(): string {
    return this.#plain.handle;
  }

  get encryptedSessionId(): string {
    return this.#plain.handle;
  }

  get cookie(): PlainSessionCookie {
    return this.#cookie;
  }

  get(key: string): unknown {
    return Object.hasOwn(this, key) ? (this as Record<string, unknown>)[key] : undefined;
  }

  set(key: string, value: unknown): void {
    defineData(this, [[key, value]]);
  }

  touch(): void {}

  options(opts: { maxAge?: number | null; expires?: Date | null }): void {
    for (const name of Object.keys(opts)) {
      if (name !== 'maxAge' && name !== 'expires') {
        throw new SessionError('INVALID_ARGUMENT', `session.options() takes maxAge and expires; '${name}' is set for every session in the plugin's cookie options`);
      }
    }
    if (opts.maxAge !== undefined) this.#cookie.maxAge = opts.maxAge;
    else if (opts.expires !== undefined) this.#cookie.expires = opts.expires;
  }

  regenerate(...args: [] | [Callback] | [string[]] | [string[], Callback]): Promise<void> | undefined {
    const [first, second] = args;
    const keep = Array.isArray(first) ? first : [];
    const callback = typeof first === 'function' ? first : second;
    const work = (async () => {
      const kept = keep.filter((key) => Object.hasOwn(this, key)).map((key) => [key, (this as Record<string, unknown>)[key]] as const);
      await this.#plain.regenerate();
      clear(this);
      defineData(this, kept);
      this.#saved = false;
    })();
    return settle(work, callback);
  }

  destroy(callback?: Callback): Promise<void> | undefined {
    const work = (async () => {
      await this.#plain.destroy();
      clear(this);
    })();
    return settle(work, callback);
  }

  reload(callback?: Callback): Promise<void> | undefined {
    const work = (async () => {
      const entries = await this.#plain.reload();
      clear(this);
      defineData(this, entries);
    })();
    return settle(work, callback);
  }

  save(callback?: Callback): Promise<void> | undefined {
    return settle(this.saveNow(), callback);
  }

  /** Writes what changed, then the cookie lifetime a handler asked for. */
  async saveNow(): Promise<void> {
    await this.#plain.save(this);
    const change = this.#cookie.change;
    if (change !== UNCHANGED) this.#plain.resendCookie(change === null ? undefined : Math.ceil(change / 1000));
    this.#saved = true;
  }

  isModified(): boolean {
    return this.#plain.isModified(this);
  }

  isSaved(): boolean {
    return this.#saved;
  }
}

// The API lives on the prototype: hide it from `for...in` as well, like the data's neighbours.
for (const name of Object.getOwnPropertyNames(PlainFastifySession.prototype)) {
  const descriptor = Object.getOwnPropertyDescriptor(PlainFastifySession.prototype, name);
  if (descriptor !== undefined) Object.defineProperty(PlainFastifySession.prototype, name, { ...descriptor, enumerable: false });
}

/** Fastify's view of a request's headers, for {@link SessionHandle.writeHeaders}. */
function headersOf(reply: FastifyReply): Parameters<SessionHandle['writeHeaders']>[0] {
  return {
    get: (name) => reply.getHeader(name),
    set: (name, value) => void reply.header(name, value),
    // Fastify adds each Set-Cookie as a header of its own (and @fastify/cookie keeps them).
    appendSetCookie: (value) => void reply.header('set-cookie', value),
  };
}

const SESSION: string = 'session';

// Async, so that a wrong option rejects app.register() / app.ready() instead of throwing out of the boot loop.
const plugin: FastifyPluginAsync<FastifySessionOptions> = async (fastify, options) => {
  const { latchkey, userOf } = toLatchkeyOptions(options);
  refuseCompat(latchkey, 'latchkey/fastify-session');
  const manager = new SessionManager(latchkey);
  // A request property under a symbol, not a WeakMap: a WeakMap entry per request costs the
  // garbage collector several times what the whole session layer costs.
  const stateKey = Symbol('latchkey.fastify-session');
  type WithState = FastifyRequest & { [stateKey]?: RequestState | null };
  try {
    // A string, not the literal: its type is the request's session, which null is not.
    fastify.decorateRequest(SESSION, null);
    fastify.decorateRequest(stateKey, null);
    fastify.decorate('sessionAdmin', manager.admin);
  } catch (error) {
    await manager.close();
    throw error;
  }
  // In onRequest, so that hooks registered after the plugin (@fastify/passport's) see the data.
  fastify.addHook('onRequest', async (request, reply) => {
    const handle = openFastifySession(manager, request, reply);
    const plain = new PlainSession(handle, userOf);
    const data = new PlainFastifySession(plain, new PlainSessionCookie(manager), await plain.load());
    (request as WithState)[stateKey] = { handle, plain, data, sent: false };
    (request as { session: unknown }).session = data;
  });
  noteFailures(fastify);
  // Saved here, before the response goes out: a redirect never loses a write. A failed save fails
  // the request (503 when the store is down); the error response passes here again, unsaved.
  fastify.addHook('onSend', async (request, reply, payload) => {
    const state = (request as WithState)[stateKey];
    if (state === undefined || state === null) return withoutDetails(request, payload, reply.statusCode);
    if (!state.sent) {
      state.sent = true;
      await state.data.saveNow();
    }
    state.handle.writeHeaders(headersOf(reply));
    return withoutDetails(request, payload, reply.statusCode);
  });
  fastify.addHook('onClose', async () => {
    await manager.close();
  });
};

/**
 * A drop-in for @fastify/session on Fastify 5, backed by latchkey: register it as you did
 * @fastify/session (with or without @fastify/cookie, which it does not need), and add your Redis
 * client as `redis: client`. `request.session` keeps @fastify/session's API; the session is loaded
 * in one round trip before the handlers run (none without a cookie), and what changed is written
 * per top-level key before the response is sent, so concurrent requests never undo each other.
 * A user @fastify/passport signs in is bound to the session: `app.sessionAdmin` lists and revokes
 * a user's sessions.
 *
 * ```ts
 * await app.register(fastifySession, { secret, cookie: { secure: 'auto' }, redis: client });
 * ```
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong or is one latchkey does
 *   differently (at registration)
 */
export const fastifySession = fastifyPlugin(plugin, { fastify: '5.x', name: '@fastify/session' });

// A default export, against the house style: @fastify/session has one, and apps import it so.
// eslint-disable-next-line no-restricted-syntax
export default fastifySession;

/** latchkey's in-memory store, for `store: new MemoryStore()` (development and tests). */
export { MemoryStore };
/** The same as {@link MemoryStore}, as @fastify/session exports it. */
export { MemoryStore as Store };
export { fastifyPassportUser };
