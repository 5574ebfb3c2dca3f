import { IncomingMessage, ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { hookResponseHeaders, openNodeSession } from '../core/http.js';
import { SessionManager } from '../core/manager.js';
import { DEFAULT_OPTIONS, type ResolvedOptions, type SessionOptions } from '../core/options.js';
import { defineData, PlainSession, refuseCompat } from '../core/plain.js';
import type { SessionHandle } from '../core/session.js';
import { SessionError } from '../core/errors.js';
import { isStore } from '../stores/store.js';
import { MemoryStore } from '../stores/memory.js';

// `req.session` and `req.sessionID` are typed by express-session-request.d.ts, which the build
// ships beside this module's declarations (see that file for why it stays out of this program).

export { MemoryStore };

/** A callback as express-session's session methods take it: called with the error, or none. */
export type SessionCallback = (error?: unknown) => void;

/**
 * The parts of an Express request this mode reads: Express' `secure`, `hostname` and `ip` honour
 * the app's `trust proxy` setting.
 */
export type ExpressRequest = IncomingMessage & { secure?: boolean; hostname?: string; ip?: string };

/**
 * express-session's `cookie` options, as latchkey maps them onto its own. Options latchkey does
 * differently are typed `never` and refused when the middleware is created.
 */
export interface ExpressSessionCookieOptions {
  /**
   * Milliseconds a session lives unused: latchkey's idle timeout (`cookieLifetime`, rounded up to
   * whole seconds), kept by the store and extended by every request that uses the session. Unset
   * or `null`: a browser-session cookie (no Max-Age) while the store keeps the data 7 days. The
   * cookie's own Max-Age is the absolute lifetime (see `absoluteLifetime`), and a session can be
   * given a longer cookie ("remember me") with `req.session.cookie.maxAge = ms`.
   * @default null
   */
  maxAge?: number | null;
  /** Refused: a fixed date for every session. Use `maxAge`. */
  expires?: never;
  /**
   * The HttpOnly attribute.
   * @default true
   */
  httpOnly?: boolean;
  /**
   * The Secure attribute: `'auto'` sets it on HTTPS requests, as `req.secure` (and `proxy`) see them.
   * @default 'auto' (express-session's default is `false`; on plain HTTP both send no Secure)
   */
  secure?: boolean | 'auto';
  /**
   * The SameSite attribute: `true` is `'strict'`; `false` (express-session's "no attribute") is
   * latchkey's default `'lax'`, what browsers assume for a cookie without one. `'auto'` is refused.
   * @default 'lax'
   */
  sameSite?: boolean | 'lax' | 'strict' | 'none';
  /**
   * The Path attribute.
   * @default '/'
   */
  path?: string;
  /**
   * The Domain attribute; unset means this host only.
   * @default undefined
   */
  domain?: string;
  /** Refused: latchkey does not write the Partitioned attribute. */
  partitioned?: never;
  /** Refused: latchkey does not write the Priority attribute. */
  priority?: never;
  /** Refused: latchkey's cookie holds its own id format. */
  encode?: never;
  /** Refused: latchkey signs with `secret`, not per cookie. */
  signed?: never;
}

/** latchkey's options that express-session names differently, so that they are not given twice. */
type Renamed = 'cookieName' | 'cookieLifetime' | 'secrets' | 'secure' | 'httpOnly' | 'sameSite' | 'path' | 'domain' | 'keyword';

/**
 * Options of {@link session}: express-session's, mapped onto latchkey's, and latchkey's own that
 * express-session has no counterpart for (`redis`, `store`, `absoluteLifetime`, `touchInterval`,
 * `limits`, `prefix`, `maxSessionsPerUser`, `recordClient`, `clientIp`, `onInvalidCookie`).
 * Checked when the middleware is created: a refused or wrong option throws a {@link SessionError}
 * with code `INVALID_OPTIONS` that says what to use instead.
 */
export interface ExpressSessionOptions extends Omit<SessionOptions<ExpressRequest>, Renamed> {
  /**
   * Name of the session cookie (latchkey's `cookieName`).
   * @default 'connect.sid'
   */
  name?: string;
  /** express-session's old name of `name`. */
  key?: string;
  /**
   * Secret (or secrets, current first) that sign the cookie, each at least 32 characters (make one
   * with `openssl rand -base64 32`). Unset: unsigned cookies, which latchkey's 256-bit random
   * ids make safe; signing lets `onInvalidCookie` tell forged from expired.
   * @default undefined
   */
  secret?: string | readonly string[];
  /** The cookie's options; see {@link ExpressSessionCookieOptions}. */
  cookie?: ExpressSessionCookieOptions;
  /**
   * Accepted, no effect: latchkey's idle timeout always slides with use (in the store), and the
   * cookie is sent only when the id changes, so that a late response never puts back an old id.
   */
  rolling?: boolean;
  /** Accepted, no effect: latchkey writes only the keys that changed, so an unchanged session costs no write. */
  resave?: boolean;
  /**
   * Accepted, no effect: latchkey never stores an empty session nor sends its cookie (as with
   * `saveUninitialized: false`); a session starts with its first key.
   */
  saveUninitialized?: boolean;
  /**
   * Whether to trust `X-Forwarded-Proto` for `cookie.secure: 'auto'`: `true` trusts it, `false`
   * trusts only the connection's own TLS, unset follows Express' `req.secure` (the app's `trust
   * proxy` setting).
   * @default undefined
   */
  proxy?: boolean;
  /**
   * What happens when a handler sets `req.session` to `null` (or deletes it): the session is
   * destroyed, with or without this option. `'keep'` (express-session's default) is refused.
   * @default 'destroy'
   */
  unset?: 'destroy';
  /** Refused: latchkey makes its own 256-bit ids; `req.sessionID` names the next one before it is saved. */
  genid?: never;
}

/** The names of the session object's own members: never data. */
const MEMBERS: ReadonlySet<string> = new Set(['id', 'cookie', 'regenerate', 'destroy', 'reload', 'save', 'touch', 'resetMaxAge']);

/** express-session's options with an effect latchkey has its own way to get, and that way. */
const REFUSED: Record<string, string> = {
  genid: 'latchkey makes its own 256-bit ids; to know the id before the session is saved, read req.sessionID',
  unset: "with unset: 'keep' a session set to null stays in the store; latchkey destroys it (unset: 'destroy'). Leave unset out, or call req.session.destroy() yourself",
};

/** latchkey's option names express-session has its own name for. */
const RENAMED: Record<Renamed, string> = {
  cookieName: 'name',
  cookieLifetime: 'cookie.maxAge (milliseconds)',
  secrets: 'secret',
  secure: 'cookie.secure',
  httpOnly: 'cookie.httpOnly',
  sameSite: 'cookie.sameSite',
  path: 'cookie.path',
  domain: 'cookie.domain',
  keyword: 'nothing: this mode always sets req.session (use latchkey/express for another keyword)',
};

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', `latchkey/express-session: ${message}`);
}

/** What the middleware needs beyond latchkey's options. */
interface Mapped {
  readonly options: SessionOptions<ExpressRequest>;
  readonly proxy: boolean | undefined;
}

function mapCookie(cookie: ExpressSessionCookieOptions | undefined): Partial<SessionOptions<ExpressRequest>> {
  if (cookie === undefined) return { cookieLifetime: null };
  if (typeof cookie === 'function') throw invalid('cookie as a function of the request is not supported: give one cookie options object');
  if (cookie === null || typeof cookie !== 'object') throw invalid(`cookie must be an object of cookie options, got ${String(cookie)}`);
  const given = cookie as Record<string, unknown>;
  if (given['expires'] !== undefined && given['expires'] !== null) {
    throw invalid('cookie.expires (one date for every session) is not supported: give cookie.maxAge in milliseconds, or set req.session.cookie.expires per session');
  }
  for (const name of ['partitioned', 'priority', 'encode', 'signed']) {
    if (given[name] !== undefined && given[name] !== false) throw invalid(`cookie.${name} is not supported by latchkey; leave it out`);
  }
  const mapped: Partial<SessionOptions<ExpressRequest>> = {};
  const { maxAge, sameSite } = cookie;
  if (maxAge === undefined || maxAge === null) mapped.cookieLifetime = null;
  else if (typeof maxAge === 'number' && Number.isFinite(maxAge) && maxAge > 0) mapped.cookieLifetime = Math.ceil(maxAge / 1000);
  else throw invalid(`cookie.maxAge must be a number of milliseconds above 0, or null for a browser-session cookie; got ${String(maxAge)}`);
  if (cookie.httpOnly !== undefined) mapped.httpOnly = cookie.httpOnly;
  if (cookie.secure !== undefined) mapped.secure = cookie.secure;
  if (cookie.path !== undefined) mapped.path = cookie.path;
  if (cookie.domain !== undefined) mapped.domain = cookie.domain;
  if (sameSite === true) mapped.sameSite = 'strict';
  else if (sameSite === false || sameSite === undefined) mapped.sameSite = DEFAULT_OPTIONS.sameSite;
  else if ((sameSite as string) === 'auto') throw invalid("cookie.sameSite: 'auto' is not supported: choose 'lax', 'strict' or 'none' (with secure: true)");
  else if (typeof sameSite === 'string') mapped.sameSite = sameSite.toLowerCase() as 'lax' | 'strict' | 'none';
  else mapped.sameSite = sameSite;
  return mapped;
}

/** express-session's options as latchkey's; throws `INVALID_OPTIONS` for one latchkey does differently. */
function mapOptions(options: ExpressSessionOptions): Mapped {
  if (options === null || typeof options !== 'object') throw invalid(`options must be an object, got ${String(options)}`);
  const { name, key, secret, cookie, rolling: _rolling, resave: _resave, saveUninitialized: _saveUninitialized, proxy, unset, genid, ...rest } = options;
  void [_rolling, _resave, _saveUninitialized];
  if (genid !== undefined) throw invalid(`genid is not supported: ${REFUSED['genid']}`);
  if (unset !== undefined && unset !== 'destroy') throw invalid(`unset: ${JSON.stringify(unset)} is not supported: ${REFUSED['unset']}`);
  if (proxy !== undefined && typeof proxy !== 'boolean') throw invalid(`proxy must be true, false or left out, got ${String(proxy)}`);
  for (const own of Object.keys(rest)) {
    if (own in RENAMED) throw invalid(`'${own}' is latchkey's name; with express-session's options use ${RENAMED[own as Renamed]}`);
  }
  const store: unknown = rest.store;
  if (store !== undefined && !isStore(store)) {
    throw invalid(
      "store must be a latchkey store (`new MemoryStore()` from latchkey/express-session, or latchkey's RedisStore); an express-session store (connect-redis, connect-mongo, memorystore ...) is not used: pass your Redis client as `redis: client` instead",
    );
  }
  const cookieOptions = mapCookie(cookie);
  const lifetime = cookieOptions.cookieLifetime;
  const mapped: SessionOptions<ExpressRequest> = { ...rest, ...cookieOptions, cookieName: name ?? key ?? 'connect.sid' };
  // latchkey checks the secrets as its own (at least 32 characters each) and says how to make one.
  if (secret !== undefined) mapped.secrets = secret;
  // A session may live at least one idle period: an absolute lifetime shorter than cookie.maxAge would end it first.
  if (rest.absoluteLifetime === undefined && typeof lifetime === 'number' && lifetime > DEFAULT_OPTIONS.absoluteLifetime) mapped.absoluteLifetime = lifetime;
  return { options: mapped, proxy };
}

/** Whether the request came over HTTPS, as express-session's `proxy` option decides it. */
function isSecure(req: ExpressRequest, proxy: boolean | undefined): boolean {
  if ((req.socket as Partial<TLSSocket>).encrypted === true) return true;
  if (proxy === false) return false;
  if (proxy !== true) return req.secure === true;
  const header = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0] ?? '';
  return first.trim().toLowerCase() === 'https';
}

/** The response methods held until the session is saved. */
type Held = 'writeHead' | 'write' | 'end' | 'flushHeaders';
const HELD: readonly Held[] = ['writeHead', 'write', 'end', 'flushHeaders'];

/** One request's session: the plain session under it, `req.session`, and the held response. */
class Exchange {
  readonly handle: Pick<SessionHandle, 'writeHeaders'>;
  readonly plain: PlainSession;
  readonly req: ExpressRequest;
  readonly res: ServerResponse;
  readonly options: ResolvedOptions;
  readonly proxy: boolean | undefined;
  /** Operations the app started (save, regenerate ...): the response waits for them. */
  #pending = new Set<Promise<unknown>>();
  /** Whether this request ended the session itself (destroy()). */
  #destroyed = false;

  constructor(handle: Pick<SessionHandle, 'writeHeaders'>, plain: PlainSession, req: ExpressRequest, res: ServerResponse, options: ResolvedOptions, proxy: boolean | undefined) {
    this.handle = handle;
    this.plain = plain;
    this.req = req;
    this.res = res;
    this.options = options;
    this.proxy = proxy;
  }

  get secure(): boolean {
    const { secure } = this.options;
    if (typeof secure === 'function') return secure(this.req) === true;
    return secure === 'auto' ? isSecure(this.req, this.proxy) : secure;
  }

  /** Puts `session` in `req.session`. */
  install(session: Session | undefined): void {
    const target = this.req as unknown as Record<string, unknown>;
    if (session === undefined) delete target['session'];
    else target['session'] = session;
  }

  /** Runs an operation the app asked for, tracked so that the response waits for it. */
  track<T>(operation: Promise<T>): Promise<T> {
    this.#pending.add(operation);
    const done = (): void => void this.#pending.delete(operation);
    operation.then(done, done);
    return operation;
  }

  async regenerate(): Promise<void> {
    await this.plain.regenerate();
    this.install(new Session(this, []));
  }

  async destroy(): Promise<void> {
    this.#destroyed = true;
    await this.plain.destroy();
  }

  async reload(): Promise<void> {
    const entries = await this.plain.reload();
    this.install(new Session(this, entries));
  }

  async save(data: object): Promise<void> {
    await this.plain.save(data, MEMBERS);
    this.#sendCookie(data);
  }

  /** Sends the cookie again when the app set `req.session.cookie.maxAge` (or `expires`). */
  #sendCookie(data: object): void {
    if (!(data instanceof Session)) return;
    const wish = data.cookie.wish;
    if (wish !== undefined) this.plain.resendCookie(wish === null ? undefined : Math.max(1, Math.ceil(wish / 1000)));
  }

  /** The session's data, or `undefined` when the app unset `req.session`. */
  #data(): object | undefined {
    const data: unknown = (this.req as unknown as Record<string, unknown>)['session'];
    return data !== null && typeof data === 'object' ? data : undefined;
  }

  /** Whether the response has to wait for the store. */
  needsCommit(): boolean {
    if (this.#pending.size > 0) return true;
    const data = this.#data();
    if (data === undefined) return !this.#destroyed;
    return this.plain.isModified(data, MEMBERS);
  }

  /** Saves what changed (or destroys an unset session) before the response goes out. */
  async commit(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    const data = this.#data();
    if (data === undefined) {
      if (!this.#destroyed) await this.destroy();
      return;
    }
    await this.save(data);
  }

  /** The cookie-only part of a commit, when nothing needs the store. */
  commitCookie(): void {
    const data = this.#data();
    if (data !== undefined) this.#sendCookie(data);
  }

  /**
   * Holds the response's first write (headers or body) and every one after it until the session
   * is saved, then lets them through in order. A failed save replaces the response: the headers
   * the handlers set go (those set before this middleware stay), and `next(error)` reaches the
   * app's error handler, or Express' own (503 for `STORE_UNAVAILABLE`).
   */
  holdResponse(next: (error?: unknown) => void): void {
    this.#next = next;
    // getHeaders() returns a copy.
    this.#before = this.res.getHeaders();
    const res = this.res as WithHold;
    res[HOLD] = this;
    // On Express' own response prototype (app.response) the held methods are shared by every
    // response; a response of another kind gets them as its own properties.
    if (!holdOnPrototype(Object.getPrototypeOf(res) as object)) {
      for (const name of HELD) {
        const original = res[name] as Method;
        (res as unknown as Record<Held, Method>)[name] = function (this: ServerResponse, ...args: unknown[]) {
          return held(this, name, original, args);
        };
      }
    }
  }

  #state: 'open' | 'holding' | 'passing' | 'failed' = 'open';
  #queue: Array<[Held, Method, unknown[]]> = [];
  #before: OutgoingHttpHeaders = {};
  #next: (error?: unknown) => void = () => {};
  /** Whether the session's headers are hooked to the response's. */
  #hooked = false;
  /** Whether the hook has added them (the response's headers are being written). */
  #headersAdded = false;

  /** Adds the session's headers when the response's go out: from the moment the response is let through. */
  hookHeaders(): void {
    if (this.#hooked) return;
    this.#hooked = true;
    hookResponseHeaders(this.handle, this.res, () => void (this.#headersAdded = true));
  }

  #pass(name: Held, original: Method, args: unknown[]): unknown {
    this.hookHeaders();
    // The hook sits in front of the held writeHead: a writeHead let through before it has run
    // goes through it (which calls back here), so the session's headers are added first.
    if (name === 'writeHead' && !this.#headersAdded) return (this.res.writeHead as Method).apply(this.res, args);
    return original.apply(this.res, args);
  }

  #replaceResponse(error: unknown): void {
    const res = this.res;
    const before = this.#before;
    for (const header of res.getHeaderNames()) if (!(header in before)) res.removeHeader(header);
    for (const [header, value] of Object.entries(before)) if (value !== undefined) res.setHeader(header, value);
    const status = (error as { status?: unknown }).status;
    res.statusCode = typeof status === 'number' ? status : 500;
    this.hookHeaders();
    this.#next(error);
  }

  /** One call of a held method: held, let through, or dropped, by where the save stands. */
  call(name: Held, original: Method, args: unknown[]): unknown {
    const res = this.res;
    const reply = name === 'write' ? true : res;
    switch (this.#state) {
      case 'passing':
        return this.#pass(name, original, args);
      case 'failed':
        // The error response has ended: what the handler still sends has nowhere to go.
        if (res.writableEnded) return name === 'write' ? false : res;
        return this.#pass(name, original, args);
      case 'holding':
        this.#queue.push([name, original, args]);
        return reply;
      case 'open':
        break;
    }
    let needed: boolean;
    try {
      needed = !res.headersSent && this.needsCommit();
    } catch (error) {
      // A value the session cannot store (a BigInt ...): the save would fail the same way.
      this.#state = 'failed';
      this.#replaceResponse(error);
      return name === 'write' ? false : res;
    }
    if (!needed) {
      try {
        this.commitCookie();
      } catch (error) {
        this.#state = 'failed';
        this.#replaceResponse(error);
        return name === 'write' ? false : res;
      }
      this.#state = 'passing';
      return this.#pass(name, original, args);
    }
    this.#state = 'holding';
    this.#queue = [[name, original, args]];
    this.commit().then(
      () => {
        this.#state = 'passing';
        const calls = this.#queue;
        this.#queue = [];
        for (const [held, heldOriginal, heldArgs] of calls) this.#pass(held, heldOriginal, heldArgs);
      },
      (error: unknown) => {
        this.#state = 'failed';
        this.#queue = [];
        this.#replaceResponse(error);
      },
    );
    return reply;
  }
}

/** A response method, as held. */
type Method = (...args: unknown[]) => unknown;

/** A response under a session of this middleware. */
type WithHold = ServerResponse & { [HOLD]?: Exchange };

/** Where a response keeps its exchange, for the held methods. */
const HOLD = Symbol('latchkey.express-session');

/** A held method's call: to the response's exchange, or straight through when it has none. */
function held(res: ServerResponse, name: Held, original: Method, args: unknown[]): unknown {
  const exchange = (res as WithHold)[HOLD];
  return exchange === undefined ? original.apply(res, args) : exchange.call(name, original, args);
}

/** The prototypes that have the held methods and the `sessionID` accessor. */
const extended = new WeakSet<object>();

/**
 * Gives Express' response prototype (`app.response`, one per app) the held methods, once.
 * Adding four methods to each response instead would cost every request more than the whole
 * session layer: V8 gives each such response a shape of its own. Node's own prototype is left
 * alone (false): a response that has it is not Express'.
 */
function holdOnPrototype(proto: object): boolean {
  if (proto === ServerResponse.prototype || !(proto instanceof ServerResponse)) return false;
  if (extended.has(proto)) return true;
  extended.add(proto);
  const parent = Object.getPrototypeOf(proto) as Record<Held, Method>;
  for (const name of HELD) {
    const own = Object.getOwnPropertyDescriptor(proto, name)?.value as Method | undefined;
    Object.defineProperty(proto, name, {
      value: function (this: ServerResponse, ...args: unknown[]) {
        // Looked up at each call: an instrumentation that wraps Node's methods later is still called.
        return held(this, name, own ?? parent[name], args);
      },
      writable: true,
      configurable: true,
    });
  }
  return true;
}

/** Where a request keeps its exchange, for `req.sessionID`. */
const EXCHANGE = Symbol('latchkey.express-session.exchange');

/**
 * Gives `req` its `sessionID`: an accessor on Express' request prototype (`app.request`), added
 * once, or, on a request of another kind, on the request itself. An app that assigns
 * `req.sessionID` replaces it on that request.
 */
function exposeSessionId(req: IncomingMessage, exchange: Exchange): void {
  const proto = Object.getPrototypeOf(req) as object;
  if (proto === IncomingMessage.prototype || !(proto instanceof IncomingMessage)) {
    Object.defineProperty(req, 'sessionID', { get: () => exchange.plain.handle, configurable: true, enumerable: true });
    return;
  }
  (req as IncomingMessage & { [EXCHANGE]?: Exchange })[EXCHANGE] = exchange;
  if (extended.has(proto)) return;
  extended.add(proto);
  Object.defineProperty(proto, 'sessionID', {
    get(this: { [EXCHANGE]?: Exchange }) {
      return this[EXCHANGE]?.plain.handle;
    },
    set(this: object, value: unknown) {
      Object.defineProperty(this, 'sessionID', { value, writable: true, enumerable: true, configurable: true });
    },
    configurable: true,
  });
}

/** Calls `callback` with the outcome of `operation` and returns `self`, or returns the promise when there is no callback. */
function settle<T>(operation: Promise<void>, callback: SessionCallback | undefined, self: T): T | Promise<void> {
  if (callback === undefined) return operation;
  operation.then(() => callback(), (error: unknown) => callback(error));
  return self;
}

/**
 * `req.session.cookie`: the session cookie as express-session describes it. Setting `maxAge`
 * (milliseconds) or `expires` sends this session's cookie again with that lifetime, for a
 * "remember me" choice (capped by `absoluteLifetime`); `null` makes it a browser-session cookie.
 * The other attributes are the middleware's options. Never stored with the data.
 */
export class Cookie {
  readonly #exchange: Exchange;
  #expiresAt: number | null | undefined;

  /** Made by the middleware for each session object; not for apps to construct. */
  constructor(exchange: unknown) {
    if (!(exchange instanceof Exchange)) throw new TypeError('latchkey/express-session: a Cookie is made by the session middleware');
    this.#exchange = exchange;
  }

  /** The idle timeout in milliseconds (`cookie.maxAge` of the options), or `null` for a browser-session cookie. */
  get originalMaxAge(): number | null {
    const { cookieLifetime } = this.#exchange.options;
    return cookieLifetime === null ? null : cookieLifetime * 1000;
  }

  /**
   * Milliseconds left: the idle timeout (each request restarts it), or what is left of the
   * lifetime this request set; `null` for a browser-session cookie.
   */
  get maxAge(): number | null {
    if (this.#expiresAt === undefined) return this.originalMaxAge;
    return this.#expiresAt === null ? null : this.#expiresAt - Date.now();
  }

  set maxAge(ms: number | null) {
    if (ms !== null && (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)) {
      throw new SessionError('INVALID_ARGUMENT', `latchkey/express-session: cookie.maxAge takes milliseconds above 0, or null; got ${String(ms)}`);
    }
    this.#expiresAt = ms === null ? null : Date.now() + ms;
  }

  /** When the cookie expires if unused, or `null` for a browser-session cookie. */
  get expires(): Date | null {
    const left = this.maxAge;
    return left === null ? null : new Date(Date.now() + left);
  }

  set expires(date: Date | null) {
    this.maxAge = date === null ? null : date.getTime() - Date.now();
  }

  /** The lifetime asked for in this request, in milliseconds (`null`: browser session), or `undefined` for none. */
  get wish(): number | null | undefined {
    if (this.#expiresAt === undefined || this.#expiresAt === null) return this.#expiresAt;
    return Math.max(1, this.#expiresAt - Date.now());
  }

  /** Forgets a lifetime set in this request. */
  reset(): void {
    this.#expiresAt = undefined;
  }

  /** The HttpOnly attribute. */
  get httpOnly(): boolean {
    return this.#exchange.options.httpOnly;
  }

  /** The Path attribute. */
  get path(): string {
    return this.#exchange.options.path;
  }

  /** The Domain attribute, `undefined` for this host only. */
  get domain(): string | undefined {
    return this.#exchange.options.domain;
  }

  /** Whether this request's cookie carries the Secure attribute. */
  get secure(): boolean {
    return this.#exchange.secure;
  }

  /** The SameSite attribute. */
  get sameSite(): 'lax' | 'strict' | 'none' {
    return this.#exchange.options.sameSite ?? DEFAULT_OPTIONS.sameSite;
  }

  /** The attributes as express-session serializes its cookie. */
  toJSON(): { originalMaxAge: number | null; expires: Date | null; secure: boolean; httpOnly: boolean; domain: string | undefined; path: string; sameSite: string } {
    return { originalMaxAge: this.originalMaxAge, expires: this.expires, secure: this.secure, httpOnly: this.httpOnly, domain: this.domain, path: this.path, sameSite: this.sameSite };
  }
}

/**
 * `req.session`: the session's keys are its own enumerable properties, loaded before the handlers
 * run; change them synchronously, in place or not, and what changed is saved, per key, before the
 * response goes out. The methods are express-session's: with a callback they return the session,
 * without one a promise.
 */
export class Session {
  readonly #exchange: Exchange;
  readonly #cookie: Cookie;

  /** Made by the middleware; not for apps to construct. */
  constructor(exchange: unknown, entries: Iterable<readonly [string, unknown]>) {
    if (!(exchange instanceof Exchange)) throw new TypeError('latchkey/express-session: a Session is made by the session middleware');
    this.#exchange = exchange;
    this.#cookie = new Cookie(exchange);
    // The members stay methods: a stored key of that name is not data here.
    defineData(this, entries, MEMBERS);
  }

  /** The session's public handle (also `req.sessionID`), named before the session is saved; changes with `regenerate()`. */
  get id(): string {
    return this.#exchange.plain.handle;
  }

  /** The session cookie; see {@link Cookie}. */
  get cookie(): Cookie {
    return this.#cookie;
  }

  /** Ends the session and gives `req.session` a new, empty one that a save stores under a new id. */
  regenerate(): Promise<void>;
  regenerate(callback: SessionCallback): this;
  regenerate(callback?: SessionCallback): this | Promise<void> {
    return settle(this.#exchange.track(this.#exchange.regenerate()), callback, this);
  }

  /** Deletes the session from the store and expires the cookie; `req.session` is `undefined` at once. */
  destroy(): Promise<void>;
  destroy(callback: SessionCallback): this;
  destroy(callback?: SessionCallback): this | Promise<void> {
    this.#exchange.install(undefined);
    return settle(this.#exchange.track(this.#exchange.destroy()), callback, this);
  }

  /** Reads the session again from the store into a new `req.session`, dropping unsaved changes. */
  reload(): Promise<void>;
  reload(callback: SessionCallback): this;
  reload(callback?: SessionCallback): this | Promise<void> {
    return settle(this.#exchange.track(this.#exchange.reload()), callback, this);
  }

  /** Saves what changed now (the middleware saves anyway before the response). */
  save(): Promise<void>;
  save(callback: SessionCallback): this;
  save(callback?: SessionCallback): this | Promise<void> {
    return settle(this.#exchange.track(this.#exchange.save(this)), callback, this);
  }

  /** No effect: every request that uses the session extends its idle timeout in the store. */
  touch(): this {
    return this;
  }

  /** Forgets a cookie lifetime set in this request (`cookie.maxAge`), back to the middleware's. */
  resetMaxAge(): this {
    this.#cookie.reset();
    return this;
  }
}

/** The Express middleware returned by {@link session}. */
export interface ExpressSessionMiddleware {
  (req: ExpressRequest, res: ServerResponse, next: (error?: unknown) => void): void;
  /** The manager behind the middleware: `manager.admin` lists and revokes a user's sessions. */
  readonly manager: SessionManager;
  /** Closes the Redis connection the middleware created itself (a client or store you passed stays open). */
  close(): Promise<void>;
}

/**
 * express-session's middleware, backed by latchkey: `req.session` is a plain object loaded before
 * the handlers (no store command without a cookie, one with), saved per changed key before the
 * response goes out (the response waits; a failed save becomes the error's response, 503 when the
 * store is down), so that concurrent requests never undo each other's keys. Passport's user is
 * bound to the session for `manager.admin`. Express 5 and 4.
 *
 * ```ts
 * app.use(session({ secret: process.env.SESSION_SECRET, redis: client, cookie: { maxAge: 30 * 60_000 } }));
 * ```
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong or refused
 */
export function session(options: ExpressSessionOptions = {}): ExpressSessionMiddleware {
  const { options: mapped, proxy } = mapOptions(options);
  refuseCompat(mapped, 'latchkey/express-session');
  const manager = new SessionManager(mapped);
  const middleware = (req: ExpressRequest, res: ServerResponse, next: (error?: unknown) => void): void => {
    // A second session middleware on the same request leaves the first one's session in place.
    if ((req as unknown as Record<string, unknown>)['session'] !== undefined) {
      next();
      return;
    }
    // The session's headers are hooked when the response is let through, after the save.
    const handle = openNodeSession(manager, req, res, { isSecure: () => isSecure(req, proxy), host: () => req.hostname, ip: () => req.ip, hookHeaders: false });
    const exchange = new Exchange(handle, new PlainSession(handle), req, res, manager.options, proxy);
    exposeSessionId(req, exchange);
    exchange.plain.load().then(
      (entries) => {
        exchange.install(new Session(exchange, entries));
        exchange.holdResponse(next);
        next();
      },
      (error: unknown) => {
        exchange.hookHeaders();
        next(error);
      },
    );
  };
  return Object.assign(middleware, { manager, close: () => manager.close() });
}

/**
 * Stands where express-session's `Store` class was, the base of connect-redis, connect-mongo,
 * memorystore...: latchkey does not use those stores, and constructing one (or a subclass)
 * throws `INVALID_OPTIONS` saying what to use instead.
 */
// A class, so that `class MyStore extends Store` still parses and fails when constructed.
// eslint-disable-next-line @typescript-eslint/no-extraneous-class
export class Store {
  constructor() {
    throw invalid(
      "express-session's Store (the base of connect-redis, connect-mongo, memorystore ...) is not used by latchkey: pass your Redis client as `redis: client`, or a latchkey store as `store` (`new MemoryStore()`, or your own implementing latchkey's Store)",
    );
  }
}

/** The default export, as express-session's: the middleware factory, with the classes as its members. */
const expressSession: typeof session & { readonly session: typeof session; readonly Store: typeof Store; readonly MemoryStore: typeof MemoryStore; readonly Cookie: typeof Cookie; readonly Session: typeof Session } =
  Object.assign((options?: ExpressSessionOptions) => session(options), { session, Store, MemoryStore, Cookie, Session });

// express-session's default export is the middleware factory: apps import it that way.
// eslint-disable-next-line no-restricted-syntax
export default expressSession;
