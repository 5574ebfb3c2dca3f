import { SessionError } from './errors.js';
import { hasUserIndex, isStore, type Store } from '../stores/store.js';
import { checkRedisOption, type RedisClientLike, type RedisConnectionOptions } from '../stores/redis-client.js';
import { DEFAULT_REDIS_STORE_OPTIONS, RedisStore } from '../stores/redis.js';
import { hasForeignRecords } from '../stores/foreign.js';
import type { UserOf } from './plain.js';

/**
 * The formats latchkey can speak, as the `compat` option names them: `'bottle-session'` reads and
 * writes the cookie and Redis layout of Python's bottle-session 1.0, so that a Bottle app and a
 * latchkey app share their users' sessions.
 */
export type SessionCompat = 'bottle-session';

/** Every value of {@link SessionCompat}, for the message that refuses an unknown one. */
export const KNOWN_COMPAT: readonly SessionCompat[] = ['bottle-session'];

/** The SameSite attribute values latchkey accepts. */
export type SameSite = 'lax' | 'strict' | 'none';

/**
 * Why a request's session cookie was not honoured, as told to {@link SessionOptions.onInvalidCookie}:
 *
 * - `malformed`: the cookie is not shaped like an id latchkey issues (or appears under a look-alike
 *   name, such as one with a space before the `=`).
 * - `duplicate`: the browser sent the session cookie twice (copies with different paths or
 *   domains: one left over after the app changed `path` or `domain`, or one planted from a sibling
 *   subdomain). Neither is used, and the response clears every copy it can, so the browser
 *   recovers by itself: the user is signed out once.
 * - `bad-signature`: with `secrets`, the signature is missing or matches none of them.
 * - `unknown-id`: without `secrets`, a well-formed id the store does not hold: a guess, or a
 *   session that ended (timed out, logged out); the store cannot tell which.
 * - `expired`: with `secrets`, a validly signed id the store no longer holds: only latchkey can have
 *   issued it, so the session ended. Also a session that outlived `absoluteLifetime` while the
 *   store still held it (clocks of app servers that disagree), or whose stored creation time is
 *   missing or unreadable, so that its age cannot be known.
 */
export type InvalidCookieReason = 'malformed' | 'bad-signature' | 'duplicate' | 'unknown-id' | 'expired';

/** Size limits of one session; a write that would pass one fails with `LIMIT_EXCEEDED`. */
export interface SessionLimits {
  /**
   * Most keys a session holds.
   * @default 256
   */
  maxKeys?: number;
  /**
   * Longest key, in UTF-8 bytes.
   * @default 256
   */
  maxKeyLength?: number;
  /**
   * Largest value, in bytes of its JSON encoding.
   * @default 65536
   */
  maxValueBytes?: number;
  /**
   * Largest session: the bytes of all its keys and JSON values, latchkey's own ~30 bytes of
   * metadata included.
   * @default 262144
   */
  maxSessionBytes?: number;
}

/**
 * Options of `session(options)` in every adapter. All are optional; see each for its default.
 * Options are checked when the middleware is created: a wrong one throws a {@link SessionError}
 * with code `INVALID_OPTIONS` and a message that says how to fix it.
 *
 * @typeParam Request - the framework's request object, as `secure` and `onInvalidCookie` get it
 *   (Hono's Context, Express' and node's request, Fastify's request, Koa's ctx)
 */
export interface SessionOptions<Request = unknown> {
  /**
   * Where sessions live when no `store` is given: an existing node-redis or ioredis client (the app
   * shares its connection; latchkey never closes it), a `redis://` URL, or `{ host, port, db,
   * password }`. For a URL or an object latchkey creates the client itself (with `redis` if it is
   * installed, else `ioredis`) and closes it on `close()`.
   * @default 'redis://localhost:6379/0'
   */
  redis?: RedisClientLike | string | RedisConnectionOptions;
  /** A ready-made store (`RedisStore`, `MemoryStore` or your own) instead of `redis`. */
  store?: Store;
  /**
   * Name of the session cookie. A `__Host-` name makes the cookie bound to this exact host.
   * @default 'session' ('bottle.session' with `compat: 'bottle-session'`)
   */
  cookieName?: string;
  /**
   * Idle lifetime in seconds: a session unused this long expires in the store. Each request that
   * uses the session extends it (reads at most once per `touchInterval`). The cookie is written
   * only when the id changes, with a Max-Age that reaches the absolute deadline
   * (`absoluteLifetime`, or 400 days without one): the idle timeout is enforced by the store
   * alone. `null` makes a browser-session cookie (no Max-Age) while the store keeps the data for
   * 7 days, as bottle-session did. With `compat: 'bottle-session'` the cookie is sent again, with
   * this Max-Age, by each request that uses the session, as the plugin does.
   * @default 1800 (300 with `compat: 'bottle-session'`, the plugin's default)
   */
  cookieLifetime?: number | null;
  /**
   * The name under which handlers find the session: `c.get(keyword)` in Hono, `req[keyword]` in
   * Express.
   * @default 'session'
   */
  keyword?: string;
  /**
   * The cookie's Secure attribute. `'auto'` sets it when the request came over HTTPS as the
   * framework sees it (Express `req.secure` and Fastify `request.protocol` honour the app's trust
   * proxy setting, Koa's `ctx.secure` honours `app.proxy`; Hono reads the request URL, node:http
   * the TLS socket). A function decides per request, given the framework's request object: e.g.
   * behind a proxy that terminates TLS and that you trust to set `X-Forwarded-Proto`.
   * @default 'auto' (false with `compat: 'bottle-session'`, as the plugin's `cookie_secure`)
   */
  secure?: boolean | 'auto' | ((request: Request) => boolean);
  /**
   * The cookie's HttpOnly attribute: keeps the id away from page scripts.
   * @default true (false with `compat: 'bottle-session'`, as the plugin's `cookie_httponly`)
   */
  httpOnly?: boolean;
  /**
   * The cookie's SameSite attribute. `'none'` requires `secure: true`.
   * @default 'lax' (none written with `compat: 'bottle-session'`, as by the plugin)
   */
  sameSite?: SameSite;
  /**
   * The cookie's Path attribute.
   * @default '/'
   */
  path?: string;
  /**
   * The cookie's Domain attribute; unset means "this host only".
   * @default undefined
   */
  domain?: string;
  /**
   * Prefix of the Redis keys latchkey creates from the `redis` option. With `store`, set the
   * prefix on the store instead.
   * @default 'session:'
   */
  prefix?: string;
  /**
   * Seconds between two expiry refreshes of a session that is only read. A read is one command;
   * when the session's stored last-seen time is older than this (whichever process wrote it), the
   * read sends a second one that extends the expiry and moves last-seen. Writes always extend the
   * expiry. `0` refreshes on every read.
   * @default 60, or a tenth of the session lifetime when that is shorter (0, and nothing else,
   *   with `compat: 'bottle-session'`)
   */
  touchInterval?: number;
  /**
   * Seconds after its creation when a session ends however active it is (OWASP's absolute
   * timeout); `regenerate()` keeps the creation time. The store's expiry never reaches past it,
   * so no late request can revive the session. `null` lets an active session live for ever.
   * @default 86400 (24 hours; null, and nothing else, with `compat: 'bottle-session'`)
   */
  absoluteLifetime?: number | null;
  /**
   * Secrets to sign the cookie with (HMAC-SHA256), each at least 32 characters: the first signs,
   * every one is accepted, so rotate by putting a new secret first and keeping the old one until
   * the cookies it signed have expired (`absoluteLifetime` after the switch; a cookie is never
   * re-sent, so it keeps its signature for its whole life). A cookie with a bad signature is
   * refused before any store command. Ids are 256-bit random, so this is defence in depth, and it
   * lets {@link InvalidCookieReason} tell expired from forged.
   * @default undefined (unsigned)
   */
  secrets?: string | readonly string[];
  /** Size limits per session; see {@link SessionLimits} for each default. */
  limits?: SessionLimits;
  /**
   * Called when a request's session cookie is not honoured, with the reason and the framework's
   * request object (Hono's Context, Express' and node's request, Fastify's request, Koa's ctx),
   * e.g. to count suspected guessing per client address. Never given the cookie's value. At most
   * once per request; an error it throws fails the request.
   * @default undefined
   */
  onInvalidCookie?: (reason: InvalidCookieReason, request: Request) => void;
  /**
   * Most sessions a user may have at once (`session.login(userId)` binds a session to a user). A
   * login beyond it revokes that user's sessions that were created first, until `maxSessionsPerUser`
   * are left, the new one included; the revoked devices are signed out at their next request.
   * `null` for no limit. Needs a store with a user index (RedisStore and MemoryStore have one).
   * @default null
   */
  maxSessionsPerUser?: number | null;
  /**
   * Keep each session's user agent and client IP address with it, for `listUserSessions` ("Your
   * devices"): recorded when a session starts, when it logs in, and when a read refreshes its
   * expiry. The IP is the one the framework reports, so behind a proxy it follows the framework's
   * trust-proxy setting (Express `trust proxy`, Fastify `trustProxy`, Koa `app.proxy`); on Hono and
   * node:http it is the socket's peer unless `clientIp` says otherwise. These are personal data:
   * say so in your privacy notice.
   * @default false
   */
  recordClient?: boolean;
  /**
   * With `recordClient`, how to find the client's IP address in the framework's request object,
   * instead of the adapter's own rule: e.g. the first address of `X-Forwarded-For` behind a proxy
   * you trust with Hono or node:http. Return `undefined` when unknown.
   * @default undefined (the adapter's rule)
   */
  clientIp?: (request: Request) => string | undefined;
  /**
   * Speak another library's session format, to share sessions live with an app that uses it.
   * `'bottle-session'`: the cookie (`bottle.session`, a UUID as 32 hex characters) and Redis
   * layout (`session:` + the dashed UUID, a hash of plain UTF-8 strings, TTL = `cookieLifetime`,
   * sliding) of Python's bottle-session 1.0, so a Bottle app and this one see the same logged-in
   * users. Values are then strings and numbers only (numbers come back as strings), and the
   * defaults change to the plugin's ({@link COMPAT_DEFAULTS}). Features that would write fields or
   * hashed ids the Python app cannot read are refused: `secrets`, `absoluteLifetime`,
   * `maxSessionsPerUser`, `recordClient`, a `RedisStore` as `store` (give `redis`), and
   * `session.login()`.
   * @default undefined (latchkey's own format)
   */
  compat?: SessionCompat;
  /**
   * Takes over the sessions of the library the app used before (express-session, @fastify/session
   * or koa-session, on Redis) the first time a browser comes back with its cookie: the user stays
   * signed in, the data moves into a latchkey session, the old record and cookie go. A list adopts
   * from several. See {@link AdoptOptions}; remove it once the old library's longest session
   * lifetime has passed since the switch.
   * @default undefined (nothing adopted)
   */
  adopt?: AdoptOptions | readonly AdoptOptions[];
}

/** Seconds the store keeps a session whose cookie has no Max-Age (`cookieLifetime: null`). */
export const BROWSER_SESSION_STORE_LIFETIME = 7 * 24 * 60 * 60;

/** The defaults of {@link SessionOptions}; the only place they are written down. */
export const DEFAULT_OPTIONS = {
  redis: DEFAULT_REDIS_STORE_OPTIONS.redis,
  cookieName: 'session',
  cookieLifetime: 1800,
  keyword: 'session',
  secure: 'auto',
  httpOnly: true,
  sameSite: 'lax',
  path: '/',
  prefix: DEFAULT_REDIS_STORE_OPTIONS.prefix,
  touchInterval: 60,
  absoluteLifetime: 86400,
  maxSessionsPerUser: null,
  recordClient: false,
  limits: {
    maxKeys: 256,
    maxKeyLength: 256,
    maxValueBytes: 65536,
    maxSessionBytes: 262144,
  },
} as const satisfies SessionOptions;

/**
 * The defaults that differ in each `compat` mode from {@link DEFAULT_OPTIONS}: for
 * `'bottle-session'`, those of the Python plugin's `SessionPlugin()` (cookie `bottle.session`,
 * lifetime 300 s, no HttpOnly, no Secure, no SameSite), no absolute lifetime (the plugin has
 * none, and latchkey's needs a stored creation time), and the expiry refreshed on every use.
 */
export const COMPAT_DEFAULTS = {
  'bottle-session': {
    cookieName: 'bottle.session',
    cookieLifetime: 300,
    secure: false,
    httpOnly: false,
    sameSite: undefined,
    absoluteLifetime: null,
    touchInterval: 0,
  },
} as const satisfies Record<SessionCompat, SessionOptions>;

/** The defaults a `compat` mode may change. */
interface ModeDefaults {
  readonly cookieName: string;
  readonly cookieLifetime: number | null;
  readonly secure: boolean | 'auto';
  readonly httpOnly: boolean;
  readonly sameSite: SameSite | undefined;
  readonly absoluteLifetime: number | null;
  readonly touchInterval: number;
}

/** The longest Set-Cookie header latchkey will produce; browsers ignore cookies over 4096 bytes. */
export const MAX_COOKIE_BYTES = 4096;

/** Shortest secret accepted in `secrets`: 32 characters, as iron-session asks. */
const MIN_SECRET_LENGTH = 32;

/** {@link SessionOptions} with every default applied and every value checked. */
export interface ResolvedOptions {
  /** The store given, or `undefined` when the manager creates a `RedisStore` from `redis`. */
  readonly store: Store | undefined;
  readonly redis: RedisClientLike | string | RedisConnectionOptions;
  readonly cookieName: string;
  readonly cookieLifetime: number | null;
  readonly keyword: string;
  readonly secure: boolean | 'auto' | ((request: unknown) => boolean);
  readonly httpOnly: boolean;
  /** `undefined` (no SameSite attribute) only with `compat: 'bottle-session'` and no `sameSite` given. */
  readonly sameSite: SameSite | undefined;
  readonly path: string;
  readonly domain: string | undefined;
  readonly prefix: string;
  readonly touchInterval: number;
  readonly absoluteLifetime: number | null;
  /** The signing secrets, current first; empty when cookies are not signed. */
  readonly secrets: readonly string[];
  readonly limits: Readonly<Required<SessionLimits>>;
  readonly onInvalidCookie: ((reason: InvalidCookieReason, request: unknown) => void) | undefined;
  /** How long the store keeps an idle session, in milliseconds. */
  readonly storeLifetimeMs: number;
  /** {@link ResolvedOptions.absoluteLifetime} in milliseconds, `null` for none. */
  readonly maxAgeMs: number | null;
  readonly maxSessionsPerUser: number | null;
  readonly recordClient: boolean;
  readonly clientIp: ((request: unknown) => string | undefined) | undefined;
  /** The format spoken: `undefined` for latchkey's own. */
  readonly compat: SessionCompat | undefined;
  /** The libraries whose sessions are adopted, in order; empty without `adopt`. */
  readonly adopt: readonly ResolvedAdoptSource[];
}

const KNOWN = new Set<string>([
  'redis', 'store', 'cookieName', 'cookieLifetime', 'keyword', 'secure', 'httpOnly', 'sameSite',
  'path', 'domain', 'prefix', 'touchInterval', 'absoluteLifetime', 'secrets', 'limits', 'onInvalidCookie',
  'maxSessionsPerUser', 'recordClient', 'clientIp', 'compat', 'adopt',
]);

const LIMIT_NAMES = Object.keys(DEFAULT_OPTIONS.limits) as Array<keyof SessionLimits>;

/** bottle-session's option names, so people coming from it get pointed at ours. */
const SEED_NAMES: Record<string, string> = {
  cookie_name: 'cookieName',
  cookie_lifetime: 'cookieLifetime',
  host: "redis: { host }",
  port: "redis: { port }",
  db: "redis: { db }",
  connection_pool: 'redis (pass your client)',
};

/** RFC 6265 cookie-name token characters. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A cookie Path value: starts with `/`, printable ASCII without `;`. */
const COOKIE_PATH = /^\/[\x21-\x3a\x3c-\x7e]*$/;
/** A host name for the Domain attribute, optionally with a leading dot. */
const COOKIE_DOMAIN = /^\.?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function isPositiveSeconds(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

/**
 * Applies the defaults to `options` and checks every value, so that a mistake shows up when the
 * app starts rather than on some request.
 * @throws {@link SessionError} `INVALID_OPTIONS`, with a message that says how to fix it
 */
export function resolveOptions<Request = unknown>(options: SessionOptions<Request> = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw invalid(`options must be an object, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (KNOWN.has(name)) continue;
    const hint = SEED_NAMES[name] ? ` (bottle-session's '${name}' is '${SEED_NAMES[name]}' here)` : '';
    throw invalid(`unknown option '${name}'${hint}; known options are ${[...KNOWN].join(', ')}`);
  }

  const compat = options.compat;
  if (compat !== undefined && !KNOWN_COMPAT.includes(compat)) {
    throw invalid(`compat must be one of ${KNOWN_COMPAT.map((name) => `'${name}'`).join(', ')}, or left out for latchkey's own format; got ${describe(compat)}`);
  }
  const defaults: ModeDefaults = compat === undefined ? DEFAULT_OPTIONS : { ...DEFAULT_OPTIONS, ...COMPAT_DEFAULTS[compat] };
  if (compat === 'bottle-session') refuseForBottle(options);

  const cookieName = options.cookieName ?? defaults.cookieName;
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    throw invalid(
      `cookieName must be a cookie-name token (letters, digits and !#$%&'*+-.^_\`|~), got ${describe(cookieName)}`,
    );
  }

  const cookieLifetime = options.cookieLifetime === undefined ? defaults.cookieLifetime : options.cookieLifetime;
  if (cookieLifetime !== null && !isPositiveSeconds(cookieLifetime)) {
    throw invalid(`cookieLifetime must be a number of seconds above 0, or null for a browser-session cookie; got ${describe(cookieLifetime)}`);
  }

  const keyword = options.keyword ?? DEFAULT_OPTIONS.keyword;
  if (typeof keyword !== 'string' || keyword.length === 0) {
    throw invalid(`keyword must be a non-empty string such as 'session', got ${describe(keyword)}`);
  }

  const secure = (options.secure ?? defaults.secure) as ResolvedOptions['secure'];
  if (secure !== true && secure !== false && secure !== 'auto' && typeof secure !== 'function') {
    throw invalid(`secure must be true, false, 'auto' or a function (request) => boolean, got ${describe(secure)}`);
  }

  const httpOnly = options.httpOnly ?? defaults.httpOnly;
  if (typeof httpOnly !== 'boolean') throw invalid(`httpOnly must be true or false, got ${describe(httpOnly)}`);

  const sameSite = options.sameSite ?? defaults.sameSite;
  if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none' && !(sameSite === undefined && compat !== undefined)) {
    throw invalid(`sameSite must be 'lax', 'strict' or 'none' (lower case), got ${describe(sameSite)}`);
  }
  if (sameSite === 'none' && secure !== true) {
    throw invalid(`sameSite: 'none' requires secure: true, because browsers drop SameSite=None cookies without Secure`);
  }

  const path = options.path ?? DEFAULT_OPTIONS.path;
  if (typeof path !== 'string' || !COOKIE_PATH.test(path)) {
    throw invalid(`path must start with '/' and hold only printable characters other than ';', got ${describe(path)}`);
  }

  const domain = options.domain;
  if (domain !== undefined && (typeof domain !== 'string' || !COOKIE_DOMAIN.test(domain))) {
    throw invalid(`domain must be a host name such as 'example.com', got ${describe(domain)}`);
  }

  // Browsers now match these prefixes case-insensitively (RFC 6265bis), so '__host-' binds too.
  const lowerName = cookieName.toLowerCase();
  if (lowerName.startsWith('__host-') && (secure !== true || path !== '/' || domain !== undefined)) {
    throw invalid(`a '__Host-' cookie name requires secure: true, path: '/' and no domain`);
  }
  if (lowerName.startsWith('__secure-') && secure !== true) {
    throw invalid(`a '__Secure-' cookie name requires secure: true`);
  }

  const storeLifetime = cookieLifetime ?? BROWSER_SESSION_STORE_LIFETIME;
  // The default shrinks with short lifetimes, so a session that is only read never lapses.
  const touchInterval = options.touchInterval ?? Math.min(defaults.touchInterval, storeLifetime / 10);
  if (typeof touchInterval !== 'number' || !Number.isFinite(touchInterval) || touchInterval < 0) {
    throw invalid(`touchInterval must be a number of seconds, 0 or more, got ${describe(touchInterval)}`);
  }
  if (touchInterval >= storeLifetime) {
    throw invalid(`touchInterval (${touchInterval}s) must be shorter than the session lifetime (${storeLifetime}s), or sessions that are only read would expire`);
  }

  const absoluteLifetime = options.absoluteLifetime === undefined ? defaults.absoluteLifetime : options.absoluteLifetime;
  if (absoluteLifetime !== null && !isPositiveSeconds(absoluteLifetime)) {
    throw invalid(`absoluteLifetime must be a number of seconds above 0, or null for no absolute timeout; got ${describe(absoluteLifetime)}`);
  }

  const secrets = resolveSecrets(options.secrets);
  const limits = resolveLimits(options.limits);

  const onInvalidCookie = options.onInvalidCookie;
  if (onInvalidCookie !== undefined && typeof onInvalidCookie !== 'function') {
    throw invalid(`onInvalidCookie must be a function (reason, request) => void, got ${describe(onInvalidCookie)}`);
  }

  const store = options.store;
  if (store !== undefined) {
    if (!isStore(store)) {
      throw invalid(`store must be a RedisStore, a MemoryStore or an object implementing the Store interface, got ${describe(store)}`);
    }
    if (options.redis !== undefined) throw invalid(`give either store or redis, not both`);
    if (options.prefix !== undefined) {
      throw invalid(`prefix applies only to the store latchkey creates from redis; set it on your store instead (new RedisStore({ redis, prefix }))`);
    }
  }

  const maxSessionsPerUser = options.maxSessionsPerUser === undefined ? DEFAULT_OPTIONS.maxSessionsPerUser : options.maxSessionsPerUser;
  if (maxSessionsPerUser !== null && (!Number.isSafeInteger(maxSessionsPerUser) || maxSessionsPerUser < 1)) {
    throw invalid(`maxSessionsPerUser must be a whole number above 0, or null for no limit; got ${describe(maxSessionsPerUser)}`);
  }
  if (maxSessionsPerUser !== null && store !== undefined && !hasUserIndex(store)) {
    throw invalid(
      `maxSessionsPerUser needs a store with a user index (userSessions, endSessions, endUserSessions and scanSessions), such as RedisStore or MemoryStore; this store has none`,
    );
  }

  const recordClient = options.recordClient ?? DEFAULT_OPTIONS.recordClient;
  if (typeof recordClient !== 'boolean') throw invalid(`recordClient must be true or false, got ${describe(recordClient)}`);
  const clientIp = options.clientIp;
  if (clientIp !== undefined && typeof clientIp !== 'function') {
    throw invalid(`clientIp must be a function (request) => string | undefined, got ${describe(clientIp)}`);
  }
  if (clientIp !== undefined && !recordClient) throw invalid(`clientIp is used only with recordClient: true; set both, or neither`);

  const redis = options.redis ?? DEFAULT_OPTIONS.redis;
  checkRedisOption(redis);

  const prefix = options.prefix ?? DEFAULT_OPTIONS.prefix;
  if (typeof prefix !== 'string') throw invalid(`prefix must be a string such as 'session:', got ${describe(prefix)}`);

  const adopt = resolveAdopt(options.adopt, store);

  return {
    store,
    redis,
    cookieName,
    cookieLifetime,
    keyword,
    secure,
    httpOnly,
    sameSite,
    path,
    domain,
    prefix,
    touchInterval,
    absoluteLifetime,
    secrets,
    limits,
    onInvalidCookie: onInvalidCookie as ResolvedOptions['onInvalidCookie'],
    storeLifetimeMs: storeLifetime * 1000,
    maxAgeMs: absoluteLifetime === null ? null : absoluteLifetime * 1000,
    maxSessionsPerUser,
    recordClient,
    clientIp: clientIp as ResolvedOptions['clientIp'],
    compat,
    adopt,
  };
}

/** Why each option is refused with `compat: 'bottle-session'`: what it would write that the Python app would see or break on. */
function refuseForBottle(options: SessionOptions<never>): void {
  const mode = "with compat: 'bottle-session'";
  if (options.secrets !== undefined) {
    throw invalid(`secrets cannot be used ${mode}: the Bottle app reads the cookie as a bare UUID and would not recognise a signed one; leave secrets out`);
  }
  if (options.absoluteLifetime !== undefined && options.absoluteLifetime !== null) {
    throw invalid(`absoluteLifetime cannot be used ${mode}: it needs a creation time stored in the session, a field the Python app would see as session data; leave it out (the session lasts while it is used, as in bottle-session)`);
  }
  if (options.maxSessionsPerUser !== undefined && options.maxSessionsPerUser !== null) {
    throw invalid(`maxSessionsPerUser cannot be used ${mode}: bottle-session has no users, and the per-user index would write fields and keys the Python app does not know; leave it out`);
  }
  if (options.recordClient !== undefined && options.recordClient !== false) {
    throw invalid(`recordClient cannot be used ${mode}: the client's details would be stored as fields the Python app would see as session data; leave it out`);
  }
  if (options.touchInterval !== undefined && options.touchInterval !== 0) {
    throw invalid(`touchInterval cannot be set ${mode}: the session's expiry is extended on every request that uses it, as bottle-session does (no last-seen time is stored to skip refreshes); leave it out`);
  }
  if (options.adopt !== undefined) {
    throw invalid(`adopt cannot be used ${mode}: it takes sessions over into latchkey's own layout (hashed ids, JSON values, a user index), which the Python app cannot read; adopt in an app without compat, or leave adopt out`);
  }
  if (options.store instanceof RedisStore) {
    throw invalid(`store: a RedisStore cannot be used ${mode}: it writes bookkeeping fields and hashed ids the Python app would see or miss; pass redis (a client, URL or { host, port, db, password }) instead, and latchkey creates a store for bottle-session's layout`);
  }
}

function resolveSecrets(value: SessionOptions['secrets']): readonly string[] {
  if (value === undefined) return [];
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? [...(value as unknown[])] : [value];
  if (list.length === 0) throw invalid(`secrets must hold at least one secret, or be left out to send unsigned cookies`);
  for (const secret of list) {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
      throw invalid(
        `each of secrets must be a string of at least ${MIN_SECRET_LENGTH} characters (e.g. from \`openssl rand -base64 32\`), got ${typeof secret === 'string' ? `one of ${secret.length}` : describe(secret)}`,
      );
    }
  }
  return Object.freeze(list as string[]);
}

function resolveLimits(value: SessionLimits | undefined): Readonly<Required<SessionLimits>> {
  if (value === undefined) return DEFAULT_OPTIONS.limits;
  if (value === null || typeof value !== 'object') throw invalid(`limits must be an object such as { maxKeys: 100 }, got ${describe(value)}`);
  const limits: Required<SessionLimits> = { ...DEFAULT_OPTIONS.limits };
  for (const [name, limit] of Object.entries(value)) {
    if (!LIMIT_NAMES.includes(name as keyof SessionLimits)) {
      throw invalid(`unknown limit '${name}'; known limits are ${LIMIT_NAMES.join(', ')}`);
    }
    if (limit === undefined) continue;
    if (!Number.isSafeInteger(limit) || (limit as number) < 1) {
      throw invalid(`limits.${name} must be a whole number above 0, got ${describe(limit)}`);
    }
    limits[name as keyof SessionLimits] = limit as number;
  }
  return Object.freeze(limits);
}

// --- adopt: taking over the sessions of express-session, @fastify/session and koa-session ---

/** The libraries whose sessions `adopt` takes over. */
export type AdoptFrom = 'express-session' | '@fastify/session' | 'koa-session';

/**
 * One library whose sessions {@link SessionOptions.adopt} takes over. A request that uses its
 * session, carries this library's cookie with a valid signature and no latchkey cookie, gets the
 * old session's data as a latchkey session (its Passport user signed in), and the old record and
 * cookie are removed. Its defaults are the old library's, with its usual Redis store.
 */
export interface AdoptOptions {
  /** The library the sessions come from. */
  from: AdoptFrom;
  /**
   * The secrets the old library signed its cookie with, each tried: express-session's and
   * @fastify/session's `secret`, koa's `app.keys`. The first one also derives the adopted
   * session's id, so every process must list them in the same order.
   */
  secrets: string | readonly string[];
  /**
   * The old library's cookie name.
   * @default 'connect.sid' (express-session), 'sessionId' (@fastify/session), 'koa.sess' (koa-session)
   */
  cookieName?: string;
  /**
   * The Path of the old cookie, so that it can be cleared.
   * @default '/'
   */
  cookiePath?: string;
  /**
   * The Domain of the old cookie, so that it can be cleared.
   * @default undefined (host only)
   */
  cookieDomain?: string;
  /**
   * Prefix of the old store's Redis keys, in front of the session id.
   * @default 'sess:' (connect-redis, for express-session and @fastify/session), '' (koa-redis)
   */
  prefix?: string;
  /**
   * Where the old records are, when not in the session's own Redis: a node-redis or ioredis
   * client, a `redis://` URL or `{ host, port, db, password }` (a client latchkey creates is
   * closed by `close()`). Required when `store` is not a RedisStore.
   * @default the session's own Redis
   */
  redis?: RedisClientLike | string | RedisConnectionOptions;
  /**
   * Where the old data names its user, who becomes the latchkey session's user.
   * @default Passport's `passport.user` (express-session, koa-session), @fastify/passport's `passport` (@fastify/session)
   */
  userOf?: UserOf;
}

/** {@link AdoptOptions} with the defaults applied. */
export interface ResolvedAdoptSource {
  readonly from: AdoptFrom;
  readonly secrets: readonly string[];
  readonly cookieName: string;
  readonly cookiePath: string;
  readonly cookieDomain: string | undefined;
  readonly prefix: string;
  /** `undefined`: the session's own store's Redis. */
  readonly redis: RedisClientLike | string | RedisConnectionOptions | undefined;
  /** `undefined`: the library's usual rule (see {@link AdoptOptions.userOf}). */
  readonly userOf: UserOf | undefined;
}

/** Each library's defaults for {@link AdoptOptions}: its cookie name, and its usual Redis store's key prefix. */
export const DEFAULT_ADOPT = {
  'express-session': { cookieName: 'connect.sid', prefix: 'sess:' },
  '@fastify/session': { cookieName: 'sessionId', prefix: 'sess:' },
  // koa-redis stores a session under its cookie's value as it is.
  'koa-session': { cookieName: 'koa.sess', prefix: '' },
  cookiePath: '/',
} as const;

const ADOPT_KNOWN = ['from', 'secrets', 'cookieName', 'cookiePath', 'cookieDomain', 'prefix', 'redis', 'userOf'];
const ADOPT_FROM = ['express-session', '@fastify/session', 'koa-session'] as const;

function resolveAdopt(value: SessionOptions['adopt'], store: Store | undefined): readonly ResolvedAdoptSource[] {
  if (value === undefined) return [];
  const list: unknown[] = Array.isArray(value) ? [...(value as unknown[])] : [value];
  if (list.length === 0) throw invalid(`adopt must name at least one library, or be left out`);
  return Object.freeze(list.map((item, index) => resolveAdoptSource(item, store, Array.isArray(value) ? `adopt[${index}]` : 'adopt')));
}

function resolveAdoptSource(item: unknown, store: Store | undefined, at: string): ResolvedAdoptSource {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    throw invalid(`${at} must be an object such as { from: 'express-session', secrets: ['your old secret'] }, got ${describe(item)}`);
  }
  const given = item as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!ADOPT_KNOWN.includes(name)) throw invalid(`unknown option ${at}.${name}; known are ${ADOPT_KNOWN.join(', ')}`);
  }
  const from = given['from'];
  if (!ADOPT_FROM.includes(from as AdoptFrom)) {
    throw invalid(`${at}.from must be ${ADOPT_FROM.map((name) => `'${name}'`).join(', ')}, got ${describe(from)}`);
  }
  const defaults = DEFAULT_ADOPT[from as AdoptFrom];
  const rawSecrets = given['secrets'];
  const secrets: unknown[] = typeof rawSecrets === 'string' ? [rawSecrets] : Array.isArray(rawSecrets) ? [...(rawSecrets as unknown[])] : [];
  const where = from === 'koa-session' ? "koa's app.keys" : `${String(from)}'s secret option`;
  if (secrets.length === 0 || !secrets.every((secret) => typeof secret === 'string' && secret !== '')) {
    throw invalid(`${at}.secrets must be the non-empty secret(s) the old cookies were signed with (${where}), current first; got ${describe(rawSecrets)}`);
  }
  const cookieName = given['cookieName'] ?? defaults.cookieName;
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    throw invalid(`${at}.cookieName must be the old library's cookie name, a cookie-name token; got ${describe(cookieName)}`);
  }
  const cookiePath = given['cookiePath'] ?? DEFAULT_ADOPT.cookiePath;
  if (typeof cookiePath !== 'string' || !COOKIE_PATH.test(cookiePath)) {
    throw invalid(`${at}.cookiePath must start with '/' and hold only printable characters other than ';', got ${describe(cookiePath)}`);
  }
  const cookieDomain = given['cookieDomain'];
  if (cookieDomain !== undefined && (typeof cookieDomain !== 'string' || !COOKIE_DOMAIN.test(cookieDomain))) {
    throw invalid(`${at}.cookieDomain must be a host name such as 'example.com', got ${describe(cookieDomain)}`);
  }
  const prefix = given['prefix'] ?? defaults.prefix;
  if (typeof prefix !== 'string') throw invalid(`${at}.prefix must be a string such as 'sess:', got ${describe(prefix)}`);
  const redis = given['redis'];
  if (redis !== undefined) checkRedisOption(redis);
  else if (store !== undefined && !hasForeignRecords(store)) {
    throw invalid(`${at} reads the old sessions from Redis, and this store cannot reach it: give ${at}.redis (your Redis client or URL), or use a RedisStore`);
  }
  const userOf = given['userOf'];
  if (userOf !== undefined && typeof userOf !== 'function') throw invalid(`${at}.userOf must be a function (data) => user id, got ${describe(userOf)}`);
  return Object.freeze({
    from: from as AdoptFrom,
    secrets: Object.freeze(secrets as string[]),
    cookieName,
    cookiePath,
    cookieDomain,
    prefix,
    redis: redis as ResolvedAdoptSource['redis'],
    userOf: userOf as UserOf | undefined,
  });
}
