import { isSessionError, SessionError } from './errors.js';
import { sessionHandle } from './id.js';
import { MAX_COOKIE_AGE, type CookieWriter } from './cookie.js';
import type { SessionFormat } from './format.js';
import type { InvalidCookieReason, ResolvedOptions } from './options.js';
import { CSRF_KEY } from './csrf.js';
import { toUserId, trimUserSessions } from './admin.js';
import type { Adopter, OldCookie } from './adopt.js';
import type { ResponseHeaders } from './headers.js';
import { publishCookieRefused, publishLifecycle, publishLimitExceeded, type LimitName } from './diagnostics.js';
import {
  CLIENT_IP_FIELD,
  CREATED_AT_FIELD,
  hasUserIndex,
  LAST_SEEN_FIELD,
  NO_LIMITS,
  UNCOUNTED_FIELDS,
  USER_AGENT_FIELD,
  USER_FIELD,
  parseStoredTime,
  type Store,
  type StoreExpiry,
  type StoreField,
  type StoreLimits,
  type UserIndexStore,
} from '../stores/store.js';

/**
 * Your app's session data: the type of every session that is given no type argument, such as
 * `req.session` in Express, `request.session` in Fastify and `ctx.session` in Koa. It is empty
 * until you augment it, and while it is empty those sessions take any string key with any JSON
 * value. Augment it once, in any file of the app, whichever adapter it imports:
 *
 * ```ts
 * declare module 'latchkey' {
 *   interface SessionData { name: string; visits?: number }
 * }
 * ```
 *
 * Then only those keys compile, each with its type, and `incr` takes only `visits`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the app's augmentation fills it in
export interface SessionData {}

/** Session data with any string key and any value: a session nobody has given a type. */
export type UntypedSessionData = Record<string, unknown>;

/**
 * The data of a session that is given no type argument: {@link SessionData} once the app has
 * augmented it, {@link UntypedSessionData} until then.
 */
export type DefaultSessionData = keyof SessionData extends never ? UntypedSessionData : SessionData;

/** The string keys of `Data`. */
export type SessionKey<Data> = keyof Data & string;

/** The keys of `Data` that can hold a number, the ones {@link Session.incr} accepts. */
export type NumericSessionKey<Data> = {
  [K in SessionKey<Data>]-?: number extends Data[K] ? K : never;
}[SessionKey<Data>];

/**
 * The session of one request, the same object in every framework.
 *
 * Reads are lazy: the first of `get`, `has`, `size`, `keys`, `values`, `entries`, `all` or `load`
 * fetches the whole session in one round trip, and the rest of the request reads from memory. A
 * read extends the session's expiry with a second command when no request has done so for
 * `touchInterval`. A request that never touches its session sends nothing to the store and no
 * cookie.
 *
 * Writes go straight through: when `set`, `delete` or `incr` resolves, the store holds the change
 * and the extended expiry. Each call is one round trip and changes only the fields it names, so
 * concurrent requests writing different fields never undo each other.
 *
 * Values go through JSON: anything `JSON.stringify` accepts comes back with its JSON type. A
 * value you got from `get` is a copy: change it, then `set` it again.
 * With `compat: 'bottle-session'` values are text instead: strings, and finite numbers stored as
 * their decimal text, which come back as strings (see the `compat` option).
 *
 * @typeParam Data - the keys and value types the session holds
 */
export interface Session<Data extends object = DefaultSessionData> {
  /**
   * The session's public handle once it is known to exist (after a read found it in the store, or
   * after a write created it); `undefined` for a visitor without a session, and before the first
   * read. It is not the cookie's token and cannot be turned into one: safe to log, to show on an
   * admin page or to put in a URL. It stays the same for the life of the session, and changes with
   * `regenerate()`.
   */
  readonly id: string | undefined;
  /**
   * `true` while the request has no session that existed before it: no cookie, an unknown or
   * expired id, a session created or destroyed by this request. Settled by the first read.
   */
  readonly isNew: boolean;
  /** Loads the session now, if it was not loaded yet (other reads do this by themselves). */
  load(): Promise<void>;
  /** The value stored under `key`, or `undefined` when there is none. */
  get<K extends SessionKey<Data>>(key: K): Promise<Data[K] | undefined>;
  /** The value stored under `key`, or `fallback` when there is none. */
  get<K extends SessionKey<Data>>(key: K, fallback: Exclude<Data[K], undefined>): Promise<Exclude<Data[K], undefined>>;
  /** Whether a value is stored under `key`. */
  has(key: SessionKey<Data>): Promise<boolean>;
  /** How many keys the session holds. */
  size(): Promise<number>;
  /** The keys the session holds. */
  keys(): Promise<Array<SessionKey<Data>>>;
  /** The values the session holds. */
  values(): Promise<Array<Data[SessionKey<Data>]>>;
  /** The `[key, value]` pairs the session holds. */
  entries(): Promise<Array<[SessionKey<Data>, Data[SessionKey<Data>]]>>;
  /** The whole session as a plain object (a copy). */
  all(): Promise<Partial<Data>>;
  /** Stores `value` under `key`: one round trip; durable when the promise resolves. */
  set<K extends SessionKey<Data>>(key: K, value: Data[K]): Promise<void>;
  /** Stores every key of `values` at once: one round trip however many keys. */
  set(values: Partial<Data>): Promise<void>;
  /** Removes `key` from the session. */
  delete(key: SessionKey<Data>): Promise<void>;
  /**
   * Adds `by` to the integer under `key` atomically in the store (a missing key counts as 0)
   * and resolves the new value. Concurrent increments from any number of requests all count.
   */
  incr(key: NumericSessionKey<Data>, by?: number): Promise<number>;
  /**
   * Deletes the session from the store and expires the cookie. Requests that were under way with
   * it fail their writes with `SESSION_GONE`. Using the session afterwards in the same request
   * starts a new, empty one.
   */
  destroy(): Promise<void>;
  /**
   * Moves the session's data to a new id and ends the old id. Call it when a user logs in or
   * changes privileges, so an id planted before login (session fixation) is worthless. The CSRF
   * token of `csrfToken()` is not carried over (the next call makes a new one), and the creation
   * time is: regenerating does not extend the absolute lifetime.
   *
   * It never loses the session: if the store fails, it rejects with `STORE_UNAVAILABLE` and the
   * old id keeps the data. Rejects with `SESSION_GONE` when another request ended the session
   * after this one saw it.
   */
  regenerate(): Promise<void>;
  /**
   * Signs the session in as `userId`: moves it to a new id as `regenerate()` does (the OWASP
   * renewal at authentication; a visitor without a session gets a new one), records the user in
   * it and in the user's index, so that `listUserSessions` and `revokeUserSessions` find it.
   * A number is stored as its decimal digits. The user's index is read, which drops the entries
   * of sessions that ended; with `maxSessionsPerUser`, the user's oldest sessions beyond it are
   * revoked (and a failure to do so fails the login, which has happened: the new id is sent).
   *
   * Rejects with `SESSION_GONE` when another request ended the session after this one saw it
   * (or a revocation of the same user raced the login), and with `STORE_UNAVAILABLE` when the
   * store failed: if the move failed, the old session, if any, is as it was; if only the
   * `maxSessionsPerUser` step failed, the user is signed in under the new id.
   */
  login(userId: string | number): Promise<void>;
  /**
   * Signs out: ends the session as `destroy()` does and removes it from its user's index. Requests
   * under way with it fail their writes with `SESSION_GONE`.
   */
  logout(): Promise<void>;
  /** The user the session is signed in as (by `login()`), or `undefined`; loads the session if needed. */
  userId(): Promise<string | undefined>;
}

/** What the core needs to know about the request and response, supplied by an adapter. */
export interface RequestContext {
  /** The request's Cookie header. Called at most once, when the session is first used. */
  cookieHeader(): string | undefined;
  /** Whether the request came over HTTPS (used when `secure` is `'auto'`). */
  isSecure(): boolean;
  /**
   * The request's path as it came in (percent-encoded, query string allowed), and its Host
   * header. Used only to clear every copy of a session cookie that the browser sent twice (see
   * {@link InvalidCookieReason} `'duplicate'`): such copies differ in Path or Domain, and
   * only a Set-Cookie with the same ones clears them.
   */
  target?(): { readonly path: string; readonly host: string | undefined };
  /**
   * Whether the response headers have been sent, so no cookie can be set any more. Needed only
   * where headers can go out before {@link SessionHandle.setCookies} is called (e.g. a response
   * written directly to the socket); after that call the core knows by itself.
   */
  headersSent?(): boolean;
  /** Called once, when a handler first uses the session. */
  onActive?(): void;
  /**
   * The client's user agent and IP address, for `recordClient: true`; the IP as the framework
   * reports it (honouring its trust-proxy setting where it has one).
   */
  client?(): { readonly userAgent?: string | undefined; readonly ip?: string | undefined };
  /** The framework's request object, handed to `onInvalidCookie` and to a `secure` function. */
  readonly request?: unknown;
}

/** The parts of the manager a session works with. */
export interface SessionRuntime {
  readonly options: ResolvedOptions;
  readonly store: Store;
  /** Writes the Set-Cookie values. */
  readonly cookies: CookieWriter;
  /** The limits as the store counts them (created-at and last-seen included). */
  readonly storeLimits: StoreLimits;
  /** The store itself, not observed: for its user index. */
  readonly backing: Store;
  /** The cookie, id and value format: latchkey's own, or another library's (the `compat` option). */
  readonly format: SessionFormat;
  /** The cookie a request that used an existing session sends again, with a format that slides it (see {@link SessionFormat.resendOnUse}). */
  readonly resent: CookieAction;
  /** With `adopt`: takes over the old library's sessions (see core/adopt.ts). */
  readonly adopter: Adopter | undefined;
}

/** The extra metadata of a session that holds none. */
const NO_EXTRA: ReadonlyMap<string, string> = new Map();

/** Longest user agent kept with `recordClient`, in characters; longer ones are cut. */
const MAX_USER_AGENT = 512;
/** Longest client address kept with `recordClient` (an IPv6 address with a zone fits). */
const MAX_IP = 64;


/** Field names in the store that hold latchkey's metadata; user keys starting with ':' are escaped. */
const CREATED_AT = CREATED_AT_FIELD;
const LAST_SEEN = LAST_SEEN_FIELD;

/** A key of the app as a stored field: a key starting with ':' gets another, so it never meets latchkey's metadata fields. */
export function toField(key: string): string {
  return key.startsWith(':') ? `:${key}` : key;
}

/** The user's keys and encoded values out of a stored hash, metadata left out. */
function userData(fields: Map<string, string>): Map<string, string> {
  const data = new Map<string, string>();
  for (const [field, value] of fields) {
    if (!field.startsWith(':')) data.set(field, value);
    else if (field.startsWith('::')) data.set(field.slice(1), value);
  }
  return data;
}

/** A few words on what a value is, for error messages (never the value itself). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  if (Array.isArray(value)) return 'an array';
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
}

function checkKey(key: unknown, method: string): asserts key is string {
  if (typeof key !== 'string') {
    throw new SessionError('INVALID_ARGUMENT', `${method}() takes a string key, got ${kindOf(key)}`);
  }
}

/** Whether `value` is an object literal (or made by `Object.create(null)`), the only kind `set(values)` takes. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The error of a write that would pass `limit`, published on the session channel. */
function limitExceeded(limit: LimitName, message: string): SessionError {
  publishLimitExceeded(limit);
  return new SessionError('LIMIT_EXCEEDED', `${message}; nothing was written`);
}

/**
 * Checks keys and values about to be written against the limits that do not depend on what the
 * session holds already; the store checks the rest atomically with the write.
 */
function checkLimits(pairs: ReadonlyArray<readonly [string, string]>, limits: ResolvedOptions['limits']): void {
  if (pairs.length > limits.maxKeys) throw limitExceeded('maxKeys', `${pairs.length} keys at once pass limits.maxKeys (${limits.maxKeys})`);
  let total = 0;
  for (const [key, json] of pairs) {
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(json);
    if (keyBytes > limits.maxKeyLength) {
      throw limitExceeded('maxKeyLength', `the key '${key.slice(0, 32)}...' is ${keyBytes} bytes, over limits.maxKeyLength (${limits.maxKeyLength})`);
    }
    if (valueBytes > limits.maxValueBytes) {
      throw limitExceeded('maxValueBytes', `the value for '${key.slice(0, 64)}' is ${valueBytes} bytes as JSON, over limits.maxValueBytes (${limits.maxValueBytes})`);
    }
    total += keyBytes + valueBytes;
  }
  if (total > limits.maxSessionBytes) {
    throw limitExceeded('maxSessionBytes', `these values add up to ${total} bytes, over limits.maxSessionBytes (${limits.maxSessionBytes})`);
  }
}

/** The limit a whole stored hash passes, as the store counts them, if any. */
function passedLimit(fields: readonly StoreField[], limits: StoreLimits): 'maxKeys' | 'maxSessionBytes' | undefined {
  if (fields.filter(([field]) => !(UNCOUNTED_FIELDS as readonly string[]).includes(field)).length > limits.maxFields) return 'maxKeys';
  let bytes = 0;
  for (const [field, value] of fields) bytes += Buffer.byteLength(field) + Buffer.byteLength(value);
  return bytes > limits.maxBytes ? 'maxSessionBytes' : undefined;
}

/** The error of a request whose session another request ended after this one saw it; `outcome` says what did not happen. */
function sessionGone(outcome: string): SessionError {
  return new SessionError('SESSION_GONE', `the session was ended by another request (logout, regenerate or timeout) while this one was using it; ${outcome}`);
}

/** The Set-Cookie this request owes the browser: none, the session's id, or a cleared cookie. */
export type CookieAction = { readonly kind: 'none' } | { readonly kind: 'set'; readonly maxAge: number | undefined } | { readonly kind: 'clear' };

const NO_COOKIE: CookieAction = { kind: 'none' };
const CLEAR_COOKIE: CookieAction = { kind: 'clear' };

/**
 * The {@link Session} of one request. The adapter holds it through {@link SessionHandle}; the
 * handler sees only the {@link Session} interface.
 *
 * The cookie is written only when this request changes the session's id: when it creates a
 * session, regenerates or destroys it. A response never re-sends an id the browser has: a
 * request that was under way while another one logged in or out must not put the old id back
 * over the newer cookie. So the cookie's Max-Age is the session's whole absolute lifetime; the
 * idle timeout lives in the store alone.
 */
export class RequestSession implements Session<UntypedSessionData> {
  readonly #rt: SessionRuntime;
  readonly #ctx: RequestContext;
  #active = false;
  /** Whether the Cookie header has been read. */
  #cookieRead = false;
  /** Whether the browser sent a session cookie at all (so there is one to clear). */
  #cookiePresent = false;
  /** Whether the browser sent the session cookie more than once (copies to clear). */
  #duplicate = false;
  /** A well-formed id from the cookie that has not yet been found in the store. */
  #candidate: string | undefined;
  /** The id of the session that is known to exist in the store. */
  #id: string | undefined;
  /** The public handle of {@link RequestSession.#id}, made when first asked for. */
  #handle: string | undefined;
  /** Whether that session existed before this request. */
  #existed = false;
  /**
   * Whether this request has seen its session exist (found it, or created it): if the store then
   * no longer has it, another request ended it, and writes fail with `SESSION_GONE`.
   */
  #seen = false;
  /** The user's keys and JSON values, once known (after a read, or after this request created the session). */
  #data: Map<string, string> | undefined;
  /** The user the session is signed in as, once known. */
  #user: string | undefined;
  /** latchkey's metadata fields beyond created-at and last-seen that the stored session holds, as last known. */
  #extra: ReadonlyMap<string, string> = NO_EXTRA;
  /** Operations that reach the store run one after another, in call order (none yet: undefined). */
  #queue: Promise<unknown> | undefined;
  #cookie: CookieAction = NO_COOKIE;
  /** The Secure attribute of the cookie this request writes, settled when it decides to write one. */
  #secure = false;
  /** Whether the adapter has taken the Set-Cookie values: the headers are on their way out. */
  #sealed = false;
  /**
   * When the request began: a store tells by it whether the request was under way when its
   * session was revoked (its writes fail) or came after (it finds no session, and may start one).
   */
  readonly #began: number;
  /** Whether onInvalidCookie has been told about this request. */
  #reported = false;
  /** The id a session this request creates will get, chosen early when its handle was asked for. */
  #nextId: string | undefined;
  /** When the session was created, as last read or written (for a cookie sent again by resendCookie). */
  #createdAt: number | undefined;
  /** With `adopt`: the old library's verified cookie, until its session is adopted. */
  #old: OldCookie | undefined;
  /** With `adopt`: the old cookie this request adopted (or found dead), cleared by the response. */
  #oldDone: OldCookie | undefined;

  constructor(runtime: SessionRuntime, context: RequestContext) {
    this.#rt = runtime;
    this.#ctx = context;
    this.#began = Date.now();
  }

  get id(): string | undefined {
    if (this.#id === undefined) return undefined;
    this.#handle ??= sessionHandle(this.#rt.format.storageId(this.#id));
    return this.#handle;
  }

  get isNew(): boolean {
    return !this.#existed;
  }

  /** The Set-Cookie values this request must send. From now on no new id can reach the browser. */
  setCookies(): string[] {
    this.#sealed = true;
    const { cookies } = this.#rt;
    const action = this.#cookie;
    const lines = this.#duplicate ? cookies.clearedCopies(this.#secure, this.#ctx.target?.(), action.kind === 'set') : [];
    if (this.#oldDone !== undefined) lines.push(...(this.#rt.adopter as Adopter).cleared(this.#oldDone, this.#secure));
    if (action.kind === 'set') lines.push(cookies.session(this.#id as string, this.#secure, action.maxAge));
    else if (action.kind === 'clear' && !this.#duplicate) lines.push(cookies.cleared(this.#secure));
    return lines;
  }

  /** Whether a handler has used the session (so the response depends on the Cookie header). */
  get active(): boolean {
    return this.#active;
  }

  #headersSent(): boolean {
    return this.#sealed || (this.#ctx.headersSent?.() ?? false);
  }

  /**
   * What to throw when reading the request through the adapter failed. Some runtimes (Deno) close
   * the request once its response has gone out, and reading it then throws: a session first used
   * after that cannot know its cookie, so it fails with `HEADERS_SENT`, as a session created after
   * the response does everywhere.
   */
  #unreadable(error: unknown): unknown {
    if (!this.#headersSent()) return error;
    return new SessionError(
      'HEADERS_SENT',
      'cannot use the session for the first time after the response was sent: this runtime has closed the request, and its Cookie header with it. Use the session before sending the response.',
      { cause: error },
    );
  }

  #activate(): void {
    if (this.#active) return;
    this.#active = true;
    this.#ctx.onActive?.();
  }

  /**
   * Settles the Secure attribute of the cookie this request is about to write. Called before the
   * store changes anything, so that a `secure` function that throws fails the call and changes
   * nothing (it never leaves a session the browser cannot get the cookie of).
   */
  #settleSecure(): void {
    const { secure } = this.#rt.options;
    if (typeof secure === 'function') this.#secure = secure(this.#ctx.request) === true;
    else if (secure !== 'auto') this.#secure = secure;
    else {
      try {
        this.#secure = this.#ctx.isSecure();
      } catch (error) {
        throw this.#unreadable(error);
      }
    }
  }

  /** The id store operations should target: the known session, else the cookie's candidate. */
  #target(): string | undefined {
    if (!this.#cookieRead) {
      this.#cookieRead = true;
      let header: string | undefined;
      try {
        header = this.#ctx.cookieHeader();
      } catch (error) {
        throw this.#unreadable(error);
      }
      const cookie = this.#rt.format.readCookie(header);
      this.#cookiePresent = cookie.present;
      this.#candidate = cookie.id;
      if (cookie.invalid === 'duplicate') {
        // Which copy is current cannot be told, and choosing would let a planted one win: use
        // neither, and clear them all so that the browser recovers.
        this.#settleSecure();
        this.#duplicate = true;
      }
      // With `adopt`, a cookie of the old library (under latchkey's name too, with the drop-in
      // adapters) is no invalid latchkey cookie when it verifies.
      if (cookie.id === undefined && !this.#duplicate && this.#rt.adopter !== undefined) this.#old = this.#rt.adopter.verify(header);
      if (cookie.invalid !== undefined && this.#old === undefined) this.#report(cookie.invalid);
    }
    return this.#id ?? this.#candidate;
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    this.#activate();
    // With `adopt`, the old library's session is taken over before the first operation (or the
    // next one, if that failed), so that even a write-only request keeps the old data.
    if (this.#rt.adopter !== undefined && !this.#cookieRead) this.#readCookie();
    const step = this.#old === undefined ? operation : this.#adopting(operation);
    // The next operation runs once this one has settled, whatever its outcome.
    const run = this.#queue ? this.#queue.then(step, step) : step();
    this.#queue = run;
    return run;
  }

  /**
   * Reads the Cookie header now, with `adopt`, to know before the first operation whether there
   * is an old cookie to adopt. If reading fails, it is left for that operation to fail with.
   */
  #readCookie(): void {
    try {
      this.#target();
    } catch {
      this.#cookieRead = false;
    }
  }

  /** `operation`, preceded by the adoption of the old library's session (see core/adopt.ts). */
  #adopting<T>(operation: () => Promise<T>): () => Promise<T> {
    return async () => {
      const old = this.#old;
      if (old !== undefined) {
        this.#settleSecure();
        const adopted = await (this.#rt.adopter as Adopter).adopt(old, this.#rt.store, this.#clientFields());
        this.#old = undefined;
        this.#oldDone = old;
        if (adopted !== 'gone') {
          const now = Date.now();
          this.#confirmed(adopted.id);
          this.#data = userData(adopted.fields);
          this.#known(adopted.fields);
          this.#createdAt = parseStoredTime(adopted.fields.get(CREATED_AT)) ?? now;
          this.#cookie = this.#cookieFor(this.#createdAt, now);
        }
      }
      return operation();
    };
  }

  /** Tells the app's onInvalidCookie hook, once per request, why the cookie was not honoured. */
  #report(reason: InvalidCookieReason): void {
    if (this.#reported) return;
    this.#reported = true;
    publishCookieRefused(reason);
    this.#rt.options.onInvalidCookie?.(reason, this.#ctx.request);
  }

  /**
   * The cookie's id is not (or no longer) in the store. With signed cookies only latchkey can
   * have issued it, so it ended (timed out, or logged out elsewhere); unsigned, it may be a guess.
   */
  #unknown(): void {
    this.#report(this.#rt.options.secrets.length > 0 ? 'expired' : 'unknown-id');
  }

  /** The store operation found `id` confirmed: the session exists. */
  #confirmed(id: string): void {
    if (this.#id !== id) {
      this.#id = id;
      this.#handle = undefined;
      this.#existed = true;
    }
    this.#seen = true;
    this.#candidate = undefined;
    if (this.#rt.format.resendOnUse) this.#resend();
  }

  /**
   * Sends the cookie of the session just used again, in a format whose cookie slides (its store
   * expiry was just extended to the full lifetime, and the cookie's Max-Age goes with it). Not
   * once the headers are out: the session was used all the same.
   */
  #resend(): void {
    if (this.#cookie.kind !== 'none' || this.#headersSent()) return;
    this.#settleSecure();
    this.#cookie = this.#rt.resent;
  }

  /** The expiry a store operation starting at `now` gives the session. */
  #expiry(now: number): StoreExpiry {
    return { ttlMs: this.#rt.options.storeLifetimeMs, maxAgeMs: this.#rt.options.maxAgeMs, now, since: this.#began };
  }

  /**
   * Whether a stored session is past the absolute lifetime, or cannot be given one: its created-at
   * field is missing or unreadable (written by something else, or damaged).
   */
  #outlived(fields: Map<string, string>, now: number): boolean {
    const maxAgeMs = this.#rt.options.maxAgeMs;
    if (maxAgeMs === null) return false;
    const createdAt = parseStoredTime(fields.get(CREATED_AT));
    return createdAt === undefined || createdAt + maxAgeMs <= now;
  }

  /**
   * The session this request targeted is not (or no longer) in the store: from now on the request
   * reads none, and has no id to send. Its writes still target that id, so that the store can
   * tell whether it was ended by another request (they fail) or never existed (they start a new
   * session).
   */
  #lost(): void {
    if (this.#id !== undefined) this.#candidate = this.#id;
    if (this.#cookie.kind === 'set') this.#cookie = NO_COOKIE;
    this.#id = undefined;
    this.#handle = undefined;
    this.#existed = false;
    this.#data = new Map();
    this.#user = undefined;
    this.#extra = NO_EXTRA;
  }

  /** Notes latchkey's extra metadata of a stored session: its user, and client details. */
  #known(fields: ReadonlyMap<string, string>): void {
    // Read on every load: no allocation for a session that has none of them.
    let extra: Map<string, string> | undefined;
    for (const name of UNCOUNTED_FIELDS) {
      const value = fields.get(name);
      if (value !== undefined) (extra ??= new Map()).set(name, value);
    }
    this.#extra = extra ?? NO_EXTRA;
    this.#user = extra?.get(USER_FIELD);
  }

  /** The client's user agent and IP as fields to store, with `recordClient`; none without. */
  #clientFields(): StoreField[] {
    const { recordClient, clientIp } = this.#rt.options;
    if (!recordClient) return [];
    let client: ReturnType<NonNullable<RequestContext['client']>> | undefined;
    let ip: string | undefined;
    try {
      client = this.#ctx.client?.();
      ip = clientIp ? clientIp(this.#ctx.request) : client?.ip;
    } catch (error) {
      throw this.#unreadable(error);
    }
    const fields: StoreField[] = [];
    const agent = client?.userAgent;
    if (typeof agent === 'string' && agent !== '') fields.push([USER_AGENT_FIELD, agent.slice(0, MAX_USER_AGENT)]);
    if (typeof ip === 'string' && ip !== '') fields.push([CLIENT_IP_FIELD, ip.slice(0, MAX_IP)]);
    return fields;
  }

  load(): Promise<void> {
    if (this.#data !== undefined) {
      this.#activate();
      return Promise.resolve();
    }
    return this.#serial(async () => {
      if (this.#data !== undefined) return;
      const id = this.#target();
      if (id === undefined) {
        this.#data = new Map();
        return;
      }
      const sid = this.#rt.format.storageId(id);
      const now = Date.now();
      const { store, options } = this.#rt;
      // When every read extends the expiry (and nothing else is refreshed with it), a store that
      // can read and extend at once saves the second round trip.
      const touched = options.touchInterval === 0 && options.maxAgeMs === null && !options.recordClient ? store.loadTouched : undefined;
      const fields = touched === undefined ? await store.load(sid) : await touched.call(store, sid, this.#expiry(now));
      if (fields === null) {
        if (!this.#seen) this.#unknown();
        this.#lost();
        return;
      }
      if (this.#outlived(fields, now)) {
        // The store's expiry never passes the deadline, so this takes clocks that disagree, or a
        // hash latchkey did not write. A conditional write deletes it: the store finds it outlived too.
        this.#report('expired');
        await this.#rt.store.update(sid, [], [], this.#expiry(now), NO_LIMITS).catch(() => false);
        this.#lost();
        return;
      }
      this.#confirmed(id);
      this.#data = userData(fields);
      this.#known(fields);
      this.#createdAt = parseStoredTime(fields.get(CREATED_AT));
      // The stored last-seen time says when any process last extended the expiry, so a read
      // refreshes it at most once per touchInterval whatever other clients do.
      // A missing or unreadable last-seen counts as long ago.
      const lastSeen = parseStoredTime(fields.get(LAST_SEEN)) ?? 0;
      if (touched === undefined && now - lastSeen >= options.touchInterval * 1000) await this.#refresh(sid, now);
    });
  }

  /** Extends the expiry of the session just loaded; a refresh never fails for the limits. */
  async #refresh(sid: string, now: number): Promise<void> {
    let refreshed: boolean;
    // The client's details go along when they changed (a phone that moved networks).
    const client = this.#clientFields().filter(([field, value]) => this.#extra.get(field) !== value);
    try {
      refreshed = await this.#rt.store.update(sid, [[LAST_SEEN, String(now)], ...client], [], this.#expiry(now), NO_LIMITS);
      if (refreshed && client.length > 0) this.#extra = new Map([...this.#extra, ...client]);
    } catch (error) {
      if (!isSessionError(error, 'SESSION_GONE')) throw error;
      refreshed = false;
    }
    // Ended by another request since the load: this one reads no session either.
    if (!refreshed) this.#lost();
  }

  async #loaded(): Promise<Map<string, string>> {
    await this.load();
    return this.#data ?? new Map();
  }

  async get(key: string, fallback?: unknown): Promise<unknown> {
    checkKey(key, 'get');
    await this.load();
    const json = this.#data?.get(key);
    return json === undefined ? fallback : this.#rt.format.decode(json);
  }

  async has(key: string): Promise<boolean> {
    checkKey(key, 'has');
    return (await this.#loaded()).has(key);
  }

  async size(): Promise<number> {
    return (await this.#loaded()).size;
  }

  async keys(): Promise<string[]> {
    return [...(await this.#loaded()).keys()];
  }

  async values(): Promise<unknown[]> {
    return [...(await this.#loaded()).values()].map(this.#rt.format.decode);
  }

  async entries(): Promise<Array<[string, unknown]>> {
    const { decode } = this.#rt.format;
    return [...(await this.#loaded())].map(([key, json]) => [key, decode(json)]);
  }

  async all(): Promise<UntypedSessionData> {
    // Object.fromEntries defines own properties, so a '__proto__' key stays data.
    return Object.fromEntries(await this.entries());
  }

  async set(...args: [key: string, value: unknown] | [values: UntypedSessionData]): Promise<void> {
    const [keyOrValues, value] = args;
    let pairs: Array<[string, string]>;
    if (typeof keyOrValues === 'string') {
      if (args.length < 2) throw new SessionError('INVALID_ARGUMENT', `set(key, value) needs a value; to remove a key, use delete()`);
      pairs = [[keyOrValues, this.#rt.format.encode(keyOrValues, value)]];
    } else if (isPlainObject(keyOrValues) && args.length === 1) {
      const { encode } = this.#rt.format;
      pairs = Object.entries(keyOrValues).map(([key, item]) => [key, encode(key, item)]);
    } else if (keyOrValues instanceof Map) {
      throw new SessionError('INVALID_ARGUMENT', 'set() takes a plain object of keys and values, not a Map: pass Object.fromEntries(map)');
    } else {
      throw new SessionError(
        'INVALID_ARGUMENT',
        `set() takes a string key and a value, or one plain object of keys and values; got ${kindOf(keyOrValues)}${args.length > 1 ? ' and a second argument' : ''}`,
      );
    }
    checkLimits(pairs, this.#rt.options.limits);
    if (pairs.length > 0) await this.#serial(() => this.#write(pairs, []));
  }

  async delete(key: string): Promise<void> {
    checkKey(key, 'delete');
    await this.#serial(() => this.#write([], [key]));
  }

  /**
   * Runs one conditional store operation on the session this request targets. On success the
   * session is confirmed. When the operation finds no session, that id is never brought back: if
   * this request had seen the session exist, another request ended it meanwhile (logout,
   * regenerate, timeout), and the write fails with `SESSION_GONE` rather than hand the browser a
   * session that would replace the other request's cookie; if it had not, the cookie's id was
   * unknown, and the request has no session from then on (the operation resolves `null`). An id
   * the store knows was ended recently fails with `SESSION_GONE` either way, so a request that was
   * under way during a login or logout never starts a session over the newer cookie.
   */
  async #change<T>(operation: (sid: string, lastSeen: StoreField, expiry: StoreExpiry) => Promise<T | null>): Promise<T | null> {
    const id = this.#target();
    if (id === undefined) return null;
    const sid = this.#rt.format.storageId(id);
    const now = Date.now();
    let result: T | null;
    try {
      result = await operation(sid, [LAST_SEEN, String(now)], this.#expiry(now));
    } catch (error) {
      if (isSessionError(error, 'SESSION_GONE')) this.#lost();
      throw error;
    }
    if (result === null) {
      this.#lost();
      if (this.#seen) throw sessionGone('the write was not applied');
      this.#unknown();
      return null;
    }
    this.#confirmed(id);
    return result;
  }

  async #write(set: Array<[string, string]>, remove: string[]): Promise<void> {
    const fields: StoreField[] = set.map(([key, json]) => [toField(key), json]);
    const updated = await this.#change(async (sid, lastSeen, expiry) =>
      (await this.#rt.store.update(sid, [...fields, lastSeen], remove.map(toField), expiry, this.#rt.storeLimits)) || null,
    );
    if (updated) {
      for (const [key, json] of set) this.#data?.set(key, json);
      for (const key of remove) this.#data?.delete(key);
    } else if (set.length > 0) {
      await this.#create(new Map(set));
    } else {
      this.#data ??= new Map();
    }
  }

  async incr(key: string, by = 1): Promise<number> {
    checkKey(key, 'incr');
    if (!Number.isSafeInteger(by)) {
      throw new SessionError('INVALID_ARGUMENT', `incr(key, by) takes a whole number as by, got ${String(by)}`);
    }
    checkLimits([[key, String(by)]], this.#rt.options.limits);
    return this.#serial(async () => {
      const value = await this.#change((sid, lastSeen, expiry) =>
        this.#rt.store.increment(sid, toField(key), by, [lastSeen], expiry, this.#rt.storeLimits),
      );
      if (value !== null) {
        this.#data?.set(key, String(value));
        return value;
      }
      await this.#create(new Map([[key, String(by)]]));
      return by;
    });
  }

  #checkHeaders(what: string): void {
    if (this.#headersSent()) {
      throw new SessionError('HEADERS_SENT', `cannot ${what} after the response headers were sent: the browser would never get the new cookie. Use the session before sending the response.`);
    }
  }

  /** This request gave the session the new id `id`, holding `data`: the browser gets it with `cookie`. */
  #issued(id: string, data: Map<string, string>, cookie: CookieAction): void {
    this.#id = id;
    this.#handle = undefined;
    this.#candidate = undefined;
    this.#seen = true;
    this.#data = data;
    this.#cookie = cookie;
  }

  /** The cookie for a session created at `createdAt`: its Max-Age reaches the absolute deadline. */
  #cookieFor(createdAt: number, now: number): CookieAction {
    const { cookieLifetime, maxAgeMs } = this.#rt.options;
    if (cookieLifetime === null) return { kind: 'set', maxAge: undefined };
    // A sliding cookie lasts as long as the store keeps the idle session.
    if (this.#rt.format.resendOnUse) return this.#rt.resent;
    const leftMs = maxAgeMs === null ? Infinity : createdAt + maxAgeMs - now;
    return { kind: 'set', maxAge: Math.max(1, Math.min(MAX_COOKIE_AGE, Math.ceil(leftMs / 1000))) };
  }

  /**
   * Stores `data` (user keys, JSON values) as a new session under a fresh id, signed in as `user`
   * if given.
   */
  async #create(data: Map<string, string>, user?: string): Promise<string> {
    this.#checkHeaders('start a session');
    this.#settleSecure();
    const nowMs = Date.now();
    const now = String(nowMs);
    const extra: StoreField[] = user === undefined ? [] : [[USER_FIELD, user]];
    extra.push(...this.#clientFields());
    const fields: StoreField[] = [[CREATED_AT, now], [LAST_SEEN, now], ...extra];
    for (const [key, json] of data) fields.push([toField(key), json]);
    const passed = passedLimit(fields, this.#rt.storeLimits);
    if (passed !== undefined) throw limitExceeded(passed, `the session would pass limits.${passed}`);
    const { storeLifetimeMs, maxAgeMs } = this.#rt.options;
    const ttlMs = Math.min(storeLifetimeMs, maxAgeMs ?? Infinity);
    // A collision of 256-bit random ids will not happen; the conditional create makes sure of it.
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = (attempt === 0 ? this.#nextId : undefined) ?? this.#rt.format.newId();
      this.#nextId = undefined;
      const sid = this.#rt.format.storageId(id);
      if (await this.#rt.store.create(sid, fields, ttlMs, maxAgeMs)) {
        this.#issued(id, data, this.#cookieFor(nowMs, nowMs));
        this.#createdAt = nowMs;
        this.#known(new Map(extra));
        publishLifecycle('created');
        return sid;
      }
    }
    throw new SessionError('STORE_ERROR', 'the store refused three fresh session ids; is it returning false from create()?');
  }

  destroy(): Promise<void> {
    return this.#serial(async () => {
      const id = this.#target();
      if (this.#cookiePresent) this.#settleSecure();
      if (id !== undefined) {
        await this.#rt.store.destroy(this.#rt.format.storageId(id));
        publishLifecycle('destroyed');
      }
      // Ended by this request: using the session afterwards starts a new one.
      this.#lost();
      this.#candidate = undefined;
      this.#seen = false;
      this.#cookie = this.#cookiePresent ? CLEAR_COOKIE : NO_COOKIE;
    });
  }

  regenerate(): Promise<void> {
    return this.#serial(async () => {
      const id = this.#target();
      if (id === undefined) return;
      // Checked before the move: without a way to send the new id, the old session must survive.
      this.#checkHeaders('regenerate the session');
      this.#settleSecure();
      const seen = this.#seen;
      const now = Date.now();
      const newId = this.#rt.format.newId();
      // Whoever planted the old session knows its CSRF token too: the new id gets a new one.
      const change = { set: [[LAST_SEEN, String(now)]] as const, remove: [toField(CSRF_KEY)] };
      let fields: Map<string, string> | null;
      try {
        fields = await this.#rt.store.move(this.#rt.format.storageId(id), this.#rt.format.storageId(newId), change, this.#expiry(now));
      } catch (error) {
        if (!isSessionError(error, 'SESSION_GONE')) throw error;
        fields = null;
      }
      if (fields === null) {
        this.#lost();
        // Ended by another request meanwhile: its response carries the cookie the browser should keep.
        if (seen) throw sessionGone('it was not regenerated');
        // The cookie's id was unknown (or ended before this request began): like a login without
        // a session, the next write starts a new one, under a new id.
        this.#candidate = undefined;
        this.#unknown();
        return;
      }
      this.#createdAt = parseStoredTime(fields.get(CREATED_AT)) ?? now;
      this.#issued(newId, userData(fields), this.#cookieFor(this.#createdAt, now));
      this.#known(fields);
      // Same data under a new id: the session itself is not new.
      this.#existed = true;
      publishLifecycle('regenerated');
    });
  }

  async login(userId: string | number): Promise<void> {
    if (!this.#rt.format.users) {
      throw new SessionError(
        'INVALID_OPTIONS',
        `login() cannot be used with compat: '${this.#rt.options.compat ?? ''}': bottle-session has no users, and binding one would write fields the Python app would see. Store your own key instead (await session.regenerate(); await session.set('user', id)) and read it on both sides`,
      );
    }
    const user = toUserId(userId, 'login');
    await this.#serial(async () => {
      this.#checkHeaders('log in');
      this.#settleSecure();
      const id = this.#target();
      const seen = this.#seen;
      let sid: string | undefined;
      if (id !== undefined) {
        const now = Date.now();
        const newId = this.#rt.format.newId();
        // The session's data goes along; its CSRF token does not (see regenerate()).
        const set: StoreField[] = [[LAST_SEEN, String(now)], [USER_FIELD, user], ...this.#clientFields()];
        let fields: Map<string, string> | null;
        try {
          fields = await this.#rt.store.move(this.#rt.format.storageId(id), this.#rt.format.storageId(newId), { set, remove: [toField(CSRF_KEY)] }, this.#expiry(now));
        } catch (error) {
          if (!isSessionError(error, 'SESSION_GONE')) throw error;
          fields = null;
        }
        if (fields !== null) {
          this.#createdAt = parseStoredTime(fields.get(CREATED_AT)) ?? now;
          this.#issued(newId, userData(fields), this.#cookieFor(this.#createdAt, now));
          this.#known(fields);
          this.#existed = true;
          sid = this.#rt.format.storageId(newId);
        } else {
          this.#lost();
          if (seen) throw sessionGone('the login was not applied');
          this.#candidate = undefined;
          this.#unknown();
        }
      }
      // No session (or the cookie's was unknown): a new one, holding only the user.
      sid ??= await this.#create(new Map(), user);
      publishLifecycle('logged-in');
      // The user's index is read at each login: entries of sessions that ended go, and with
      // maxSessionsPerUser the oldest sessions past it too. Without a limit it is housekeeping
      // only: the login has happened, and if this fails the next one cleans up instead.
      const { backing, options } = this.#rt;
      const max = options.maxSessionsPerUser;
      if (max !== null) await trimUserSessions(backing as UserIndexStore, user, sid, max);
      else if (hasUserIndex(backing)) await trimUserSessions(backing, user, sid, Infinity).catch(() => undefined);
    });
  }

  logout(): Promise<void> {
    return this.destroy();
  }

  async userId(): Promise<string | undefined> {
    await this.load();
    return this.#user;
  }

  // What follows is for the plain-object session of core/plain.ts (the express-session,
  // @fastify/session and koa-session APIs), not part of the Session interface.

  /** The user keys and JSON values as last read or written (empty before a load, and without a session): the session's own map, which its writes keep up to date. */
  snapshot(): ReadonlyMap<string, string> {
    return this.#data ?? NO_EXTRA;
  }

  /** The user the session is signed in as, as last read or written. */
  get user(): string | undefined {
    return this.#user;
  }

  /**
   * The public handle of the session, or of the one this request will create: the id is chosen
   * now and used by the next write that creates a session, as express-session's `req.sessionID`
   * names a session before it is saved.
   */
  plannedHandle(): string {
    const known = this.id;
    if (known !== undefined) return known;
    this.#nextId ??= this.#rt.format.newId();
    return sessionHandle(this.#rt.format.storageId(this.#nextId));
  }

  /**
   * Sets the keys of `set` (JSON values) and removes those of `remove`, in one round trip; starts
   * a session when there is none and `set` is not empty.
   */
  write(set: Array<[string, string]>, remove: string[]): Promise<void> {
    for (const [key] of set) checkKey(key, 'set');
    checkLimits(set, this.#rt.options.limits);
    if (set.length === 0 && remove.length === 0) return Promise.resolve();
    return this.#serial(() => this.#write(set, remove));
  }

  /** Forgets what was read and reads the session again from the store. */
  reload(): Promise<void> {
    return this.#serial(async () => {
      this.#data = undefined;
    }).then(() => this.load());
  }

  /**
   * Sends the existing session's cookie again with `maxAge` seconds (`undefined`: a browser-session
   * cookie), capped by what is left of the absolute lifetime. Does nothing without a session.
   */
  resendCookie(maxAge: number | undefined): void {
    if (this.#id === undefined || this.#cookie.kind === 'clear') return;
    this.#checkHeaders('send the session cookie');
    this.#settleSecure();
    const now = Date.now();
    const { maxAgeMs } = this.#rt.options;
    const leftMs = maxAgeMs === null ? Infinity : (this.#createdAt ?? now) + maxAgeMs - now;
    const seconds = maxAge === undefined ? undefined : Math.max(1, Math.min(MAX_COOKIE_AGE, Math.floor(maxAge), Math.ceil(leftMs / 1000)));
    this.#cookie = { kind: 'set', maxAge: seconds };
  }
}

/** What an adapter holds for one request: the session to hand to the app, and what to send back. */
export interface SessionHandle<Data extends object = DefaultSessionData> {
  /** The session, for the handler. */
  readonly session: Session<Data>;
  /**
   * The Set-Cookie header values the response must carry, in order (usually none, at most one
   * for the session cookie, more when copies of a duplicated cookie are cleared). Call it once,
   * just before the headers go out: afterwards, starting or regenerating a session throws
   * `HEADERS_SENT`. {@link SessionHandle.writeHeaders} calls it for you.
   */
  setCookies(): string[];
  /**
   * Adds what the response needs, just before its headers go out: the Set-Cookie values, with
   * `Cache-Control: no-store` unless the app chose its own caching, and `Vary: Cookie` when the
   * handler used the session. Call it once, in place of {@link SessionHandle.setCookies}.
   */
  writeHeaders(headers: ResponseHeaders): void;
}
