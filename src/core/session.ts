import { SessionError } from './errors.js';
import { createSessionId, storageId } from './id.js';
import { readSessionCookie, type CookieWriter } from './cookie.js';
import type { InvalidCookieReason, ResolvedOptions } from './options.js';
import { CSRF_KEY } from './csrf.js';
import type { ResponseHeaders } from './headers.js';
import { CREATED_AT_FIELD, type Store, type StoreExpiry, type StoreField, type StoreLimits } from '../stores/store.js';

/**
 * The default shape of session data: any string key, any JSON value. Augment it to type
 * `req.session` in frameworks that have no per-app generics:
 *
 * ```ts
 * declare module 'latchkey' {
 *   interface SessionData { name: string; visits: number }
 * }
 * ```
 */
export interface SessionData {
  [key: string]: unknown;
}

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
 * fetches the whole session in one round trip (refreshing its expiry in that same round trip),
 * and the rest of the request reads from memory. A request that never touches its session sends
 * nothing to the store and no cookie.
 *
 * Writes go straight through: when `set`, `delete` or `incr` resolves, the store holds the change
 * and the refreshed expiry. Each call is one round trip and changes only the fields it names, so
 * concurrent requests writing different fields never undo each other.
 *
 * Values go through JSON: anything `JSON.stringify` accepts comes back with its JSON type. A
 * value you got from `get` is a copy: change it, then `set` it again.
 *
 * @typeParam Data - the keys and value types the session holds
 */
export interface Session<Data extends object = SessionData> {
  /**
   * The session's id once it is known to exist: after a read found it in the store, or after a
   * write created it. `undefined` for a visitor without a session, and before the first read.
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
   * Deletes the session from the store and expires the cookie. Using the session afterwards in
   * the same request starts a new, empty one.
   */
  destroy(): Promise<void>;
  /**
   * Moves the session's data to a new id and deletes the old id at once. Call it when a user
   * logs in or changes privileges, so an id planted before login (session fixation) is worthless.
   * The CSRF token of `csrfToken()` is not carried over (the next call makes a new one), and
   * the creation time is: regenerating does not extend the absolute lifetime.
   * Rejects with `SESSION_GONE` when another request ended the session after this one saw it.
   */
  regenerate(): Promise<void>;
}

/** What the core needs to know about the request and response, supplied by an adapter. */
export interface RequestContext {
  /** The request's Cookie header. Called at most once, when the session is first used. */
  cookieHeader(): string | undefined;
  /** Whether the request came over HTTPS (used when `secure` is `'auto'`). */
  isSecure(): boolean;
  /**
   * Whether the response headers have been sent, so no cookie can be set any more. Needed only
   * where headers can go out before {@link SessionHandle.setCookie} is called (e.g. a response
   * written directly to the socket); after that call the core knows by itself.
   */
  headersSent?(): boolean;
  /** Called once, when a handler first uses the session. */
  onActive?(): void;
  /** The framework's request object, handed to `onInvalidCookie`. */
  readonly request?: unknown;
}

/** The parts of the manager a session works with. */
export interface SessionRuntime {
  readonly options: ResolvedOptions;
  readonly store: Store;
  /** Writes the Set-Cookie values. */
  readonly cookies: CookieWriter;
  /**
   * Whether this process should refresh the session now: a read its expiry in the store, any use
   * the browser's cookie (at most once per touchInterval).
   */
  shouldRefresh(sid: string, now: number): boolean;
  /** Notes that the store's expiry and the cookie of this session were refreshed at `now`. */
  refreshed(sid: string, now: number): void;
  /** Notes that a stored session no longer exists: its cookie is never to be refreshed again. */
  forget(sid: string): void;
  /** The limits as the store counts them (metadata included). */
  readonly storeLimits: StoreLimits;
}

/** Field names in the store that hold latchkey's metadata; user keys starting with ':' are escaped. */
const CREATED_AT = CREATED_AT_FIELD;
const LAST_SEEN = ':s';

function toField(key: string): string {
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

function decode(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    // Written by something other than latchkey: hand it back as the string it is.
    return json;
  }
}

function checkKey(key: unknown, method: string): asserts key is string {
  if (typeof key !== 'string') {
    throw new SessionError('INVALID_ARGUMENT', `${method}() takes a string key, got ${typeof key}`);
  }
}

function limitExceeded(message: string): SessionError {
  return new SessionError('LIMIT_EXCEEDED', `${message}; nothing was written`);
}

/**
 * Checks keys and values about to be written against the limits that do not depend on what the
 * session holds already; the store checks the rest atomically with the write.
 */
function checkLimits(pairs: ReadonlyArray<readonly [string, string]>, limits: ResolvedOptions['limits']): void {
  if (pairs.length > limits.maxKeys) throw limitExceeded(`${pairs.length} keys at once pass limits.maxKeys (${limits.maxKeys})`);
  let total = 0;
  for (const [key, json] of pairs) {
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(json);
    if (keyBytes > limits.maxKeyLength) {
      throw limitExceeded(`the key '${key.slice(0, 32)}...' is ${keyBytes} bytes, over limits.maxKeyLength (${limits.maxKeyLength})`);
    }
    if (valueBytes > limits.maxValueBytes) {
      throw limitExceeded(`the value for '${key.slice(0, 64)}' is ${valueBytes} bytes as JSON, over limits.maxValueBytes (${limits.maxValueBytes})`);
    }
    total += keyBytes + valueBytes;
  }
  if (total > limits.maxSessionBytes) {
    throw limitExceeded(`these values add up to ${total} bytes, over limits.maxSessionBytes (${limits.maxSessionBytes})`);
  }
}

/** Whether a whole stored hash stays within the limits, as the store counts them. */
function fitsLimits(fields: readonly StoreField[], limits: StoreLimits): boolean {
  let bytes = 0;
  for (const [field, value] of fields) bytes += Buffer.byteLength(field) + Buffer.byteLength(value);
  return fields.length <= limits.maxFields && bytes <= limits.maxBytes;
}

function encode(key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new SessionError('INVALID_ARGUMENT', `the value for '${key}' cannot be stored: ${(error as Error).message}`, { cause: error });
  }
  if (json === undefined) {
    throw new SessionError(
      'INVALID_ARGUMENT',
      `the value for '${key}' is ${typeof value}, which JSON cannot hold; to remove a key, use delete('${key}')`,
    );
  }
  return json;
}

type CookieAction = 'none' | 'set' | 'clear';

/**
 * The {@link Session} of one request. The adapter holds it through {@link SessionHandle}; the
 * handler sees only the {@link Session} interface.
 */
export class RequestSession implements Session<SessionData> {
  readonly #rt: SessionRuntime;
  readonly #ctx: RequestContext;
  #active = false;
  /** Whether the Cookie header has been read. */
  #cookieRead = false;
  /** Whether the browser sent a session cookie at all (so there is one to clear). */
  #cookiePresent = false;
  /** A well-formed id from the cookie that has not yet been found in the store. */
  #candidate: string | undefined;
  /** The id of the session that is known to exist in the store. */
  #id: string | undefined;
  /** Whether that session existed before this request. */
  #existed = false;
  /** The user's keys and JSON values, once known (after a read, or after this request created the session). */
  #data: Map<string, string> | undefined;
  /** Operations that reach the store run one after another, in call order (none yet: undefined). */
  #queue: Promise<unknown> | undefined;
  #cookie: CookieAction = 'none';
  /** Whether the adapter has taken the Set-Cookie value: the headers are on their way out. */
  #sealed = false;
  /** Whether the cookie was signed with a previous secret, so it is re-issued once confirmed. */
  #resign = false;
  /** Whether onInvalidCookie has been told about this request. */
  #reported = false;

  constructor(runtime: SessionRuntime, context: RequestContext) {
    this.#rt = runtime;
    this.#ctx = context;
  }

  get id(): string | undefined {
    return this.#id;
  }

  get isNew(): boolean {
    return !this.#existed;
  }

  /** The Set-Cookie value this request must send, if any. From now on no new id can reach the browser. */
  setCookie(): string | undefined {
    this.#sealed = true;
    if (this.#cookie === 'none') return undefined;
    const secure = this.#rt.options.secure === 'auto' ? this.#ctx.isSecure() : this.#rt.options.secure;
    // 'set' always has an id: #create and #extended set one, #gone drops a pending 'set'.
    return this.#cookie === 'set' ? this.#rt.cookies.session(this.#id as string, secure) : this.#rt.cookies.cleared(secure);
  }

  /** Whether a handler has used the session (so the response depends on the Cookie header). */
  get active(): boolean {
    return this.#active;
  }

  #headersSent(): boolean {
    return this.#sealed || (this.#ctx.headersSent?.() ?? false);
  }

  #activate(): void {
    if (this.#active) return;
    this.#active = true;
    this.#ctx.onActive?.();
  }

  /** The id store operations should target: the known session, else the cookie's candidate. */
  #target(): string | undefined {
    if (!this.#cookieRead) {
      this.#cookieRead = true;
      const cookie = readSessionCookie(this.#ctx.cookieHeader(), this.#rt.options.cookieName, this.#rt.options.secrets);
      this.#cookiePresent = cookie.present;
      this.#candidate = cookie.id;
      this.#resign = cookie.resign;
      if (cookie.invalid !== undefined) this.#report(cookie.invalid);
    }
    return this.#id ?? this.#candidate;
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    this.#activate();
    const run = this.#queue ? this.#queue.then(operation, operation) : operation();
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Tells the app's onInvalidCookie hook, once per request, why the cookie was not honoured. */
  #report(reason: InvalidCookieReason): void {
    if (this.#reported) return;
    this.#reported = true;
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
      this.#existed = true;
    }
    this.#candidate = undefined;
    if (this.#resign) {
      // Signed with a previous secret: hand the browser the same id signed with the current one.
      this.#resign = false;
      this.#cookie = 'set';
    }
  }

  /** The expiry a store operation starting at `now` gives the session. */
  #expiry(now: number): StoreExpiry {
    return { ttlMs: this.#rt.options.storeLifetimeMs, maxAgeMs: this.#rt.options.maxAgeMs, now };
  }

  /** Whether a session created at `createdAt` (the stored string) has outlived the absolute lifetime. */
  #outlived(createdAt: string | undefined, now: number): boolean {
    const maxAgeMs = this.#rt.options.maxAgeMs;
    return maxAgeMs !== null && createdAt !== undefined && Number(createdAt) + maxAgeMs <= now;
  }

  /**
   * The session this request targeted is not (or no longer) in the store: from now on the request
   * has none, and there is no id left to send.
   */
  #gone(sid?: string): void {
    if (sid !== undefined) this.#rt.forget(sid);
    if (this.#cookie === 'set') this.#cookie = 'none';
    this.#id = undefined;
    this.#candidate = undefined;
    this.#existed = false;
    this.#data = new Map();
  }

  /** The store's expiry was refreshed at `now`: the browser's cookie gets a fresh Max-Age too. */
  #refreshed(sid: string, now: number): void {
    this.#rt.refreshed(sid, now);
    if (this.#rt.options.cookieLifetime !== null) this.#cookie = 'set';
  }

  /**
   * A write just extended the store's expiry (every write does). The browser's cookie follows at
   * most once per touchInterval from this process: its copy then never lags the store by more than
   * that, and busy sessions do not carry a Set-Cookie on every write.
   */
  #extended(sid: string, now: number): void {
    if (this.#rt.shouldRefresh(sid, now)) this.#refreshed(sid, now);
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
      const sid = storageId(id);
      const now = Date.now();
      const refresh = this.#rt.shouldRefresh(sid, now) ? { ...this.#expiry(now), set: [[LAST_SEEN, String(now)]] as const } : undefined;
      const fields = await this.#rt.store.load(sid, refresh);
      if (fields === null) {
        if (this.#id === undefined) this.#unknown();
        this.#gone(sid);
        return;
      }
      if (this.#outlived(fields.get(CREATED_AT), now)) {
        // The store's expiry never passes the deadline, so this takes clocks that disagree.
        this.#report('expired');
        await this.#rt.store.destroy(sid);
        this.#gone(sid);
        return;
      }
      this.#confirmed(id);
      if (refresh) this.#refreshed(sid, now);
      this.#data = userData(fields);
    });
  }

  async #loaded(): Promise<Map<string, string>> {
    await this.load();
    return this.#data ?? new Map();
  }

  async get(key: string, fallback?: unknown): Promise<unknown> {
    checkKey(key, 'get');
    const json = (await this.#loaded()).get(key);
    return json === undefined ? fallback : decode(json);
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
    return [...(await this.#loaded()).values()].map(decode);
  }

  async entries(): Promise<Array<[string, unknown]>> {
    return [...(await this.#loaded())].map(([key, json]) => [key, decode(json)]);
  }

  async all(): Promise<SessionData> {
    // Object.fromEntries defines own properties, so a '__proto__' key stays data.
    return Object.fromEntries(await this.entries()) as SessionData;
  }

  async set(keyOrValues: string | SessionData, value?: unknown): Promise<void> {
    let pairs: Array<[string, string]>;
    if (typeof keyOrValues === 'string') {
      pairs = [[keyOrValues, encode(keyOrValues, value)]];
    } else if (keyOrValues !== null && typeof keyOrValues === 'object' && !Array.isArray(keyOrValues)) {
      pairs = Object.entries(keyOrValues).map(([key, item]) => [key, encode(key, item)]);
    } else {
      throw new SessionError('INVALID_ARGUMENT', `set() takes a key and a value, or an object of keys and values; got ${typeof keyOrValues}`);
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
   * session is confirmed and its expiry (and the cookie's) extended. When the operation finds no
   * session, that id is never brought back: if this request had seen the session exist, another
   * request ended it meanwhile (logout, regenerate, timeout), and the write fails with
   * `SESSION_GONE` rather than hand the browser a session that would replace the other request's
   * cookie; if it had not, the cookie's id was unknown, and the request has no session from then
   * on (the operation resolves `null`).
   */
  async #change<T>(operation: (sid: string, lastSeen: StoreField, expiry: StoreExpiry) => Promise<T | null>): Promise<T | null> {
    const id = this.#target();
    if (id === undefined) return null;
    const sid = storageId(id);
    const now = Date.now();
    const result = await operation(sid, [LAST_SEEN, String(now)], this.#expiry(now));
    if (result === null) {
      const seen = this.#id !== undefined;
      this.#gone(sid);
      if (seen) {
        throw new SessionError(
          'SESSION_GONE',
          'the session was ended by another request (logout, regenerate or timeout) while this one was using it; the write was not applied',
        );
      }
      this.#unknown();
      return null;
    }
    this.#confirmed(id);
    this.#extended(sid, now);
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
      throw new SessionError('INVALID_ARGUMENT', `incr('${key}', by) takes a whole number, got ${String(by)}`);
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

  /**
   * Stores `data` (user keys, JSON values) as a new session under a fresh id. `createdAt` is given
   * when regenerating: then the data is already stored, so it is moved whatever the limits (they
   * may have been lowered since), for a failure here would lose it.
   */
  async #create(data: Map<string, string>, createdAt?: string): Promise<void> {
    if (this.#headersSent()) {
      throw new SessionError(
        'HEADERS_SENT',
        'cannot start a session after the response headers were sent: the browser would never get its cookie. Write to the session before sending the response.',
      );
    }
    const nowMs = Date.now();
    const now = String(nowMs);
    const fields: StoreField[] = [[CREATED_AT, createdAt ?? now], [LAST_SEEN, now]];
    for (const [key, json] of data) fields.push([toField(key), json]);
    if (createdAt === undefined && !fitsLimits(fields, this.#rt.storeLimits)) {
      throw limitExceeded('the session would pass limits.maxKeys or limits.maxSessionBytes');
    }
    const { maxAgeMs } = this.#rt.options;
    const ttlMs = Math.min(this.#rt.options.storeLifetimeMs, maxAgeMs === null ? Infinity : Number(createdAt ?? now) + maxAgeMs - nowMs);
    // Only a regenerated session can be this old; it ended with its old id.
    if (!(ttlMs > 0)) return;
    // A collision of 256-bit random ids will not happen; the conditional create makes sure of it.
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = createSessionId();
      const sid = storageId(id);
      if (await this.#rt.store.create(sid, fields, ttlMs)) {
        this.#id = id;
        this.#candidate = undefined;
        this.#data = data;
        this.#cookie = 'set';
        this.#rt.refreshed(sid, nowMs);
        return;
      }
    }
    throw new SessionError('STORE_ERROR', 'the store refused three fresh session ids; is it returning false from create()?');
  }

  destroy(): Promise<void> {
    return this.#serial(async () => {
      const id = this.#target();
      const sid = id === undefined ? undefined : storageId(id);
      if (sid !== undefined) await this.#rt.store.destroy(sid);
      this.#gone(sid);
      this.#cookie = this.#cookiePresent ? 'clear' : 'none';
    });
  }

  regenerate(): Promise<void> {
    return this.#serial(async () => {
      const id = this.#target();
      if (id === undefined) return;
      // Checked before take(): without a way to send the new id, the old session must survive.
      if (this.#headersSent()) {
        throw new SessionError('HEADERS_SENT', 'cannot regenerate the session after the response headers were sent: the browser would keep the old id.');
      }
      const seen = this.#id !== undefined;
      const sid = storageId(id);
      const fields = await this.#rt.store.take(sid);
      this.#gone(sid);
      if (fields === null || this.#outlived(fields.get(CREATED_AT), Date.now())) {
        // Ended by another request meanwhile: its response carries the cookie the browser should keep.
        if (seen) throw new SessionError('SESSION_GONE', 'the session was ended by another request (logout, regenerate or timeout) before it could be regenerated');
        if (fields === null) this.#unknown();
        else this.#report('expired');
        return;
      }
      this.#cookie = 'clear';
      const data = userData(fields);
      // Whoever planted the old session knows its CSRF token too: the new id gets a new one.
      data.delete(CSRF_KEY);
      await this.#create(data, fields.get(CREATED_AT));
      // Same data under a new id: the session itself is not new.
      if (this.#id !== undefined) this.#existed = true;
    });
  }
}

/** What an adapter holds for one request: the session to hand to the app, and what to send back. */
export interface SessionHandle<Data extends object = SessionData> {
  /** The session, for the handler. */
  readonly session: Session<Data>;
  /**
   * The Set-Cookie header value the response must carry, if any. Call it once, just before the
   * headers go out: afterwards, starting or regenerating a session throws `HEADERS_SENT`.
   * {@link SessionHandle.writeHeaders} calls it for you.
   */
  setCookie(): string | undefined;
  /**
   * Adds what the response needs, just before its headers go out: the Set-Cookie value, with
   * `Cache-Control: no-store` unless the app chose its own caching, and `Vary: Cookie` when the
   * handler used the session. Call it once, in place of {@link SessionHandle.setCookie}.
   */
  writeHeaders(headers: ResponseHeaders): void;
}
