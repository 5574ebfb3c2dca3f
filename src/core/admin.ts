import { SessionError } from './errors.js';
import { sessionHandle } from './id.js';
import { publishRevoked } from './diagnostics.js';
import { RedisStore } from '../stores/redis.js';
import {
  CLIENT_IP_FIELD,
  CREATED_AT_FIELD,
  hasUserIndex,
  isStore,
  LAST_SEEN_FIELD,
  parseStoredTime,
  USER_AGENT_FIELD,
  USER_FIELD,
  type IndexedSession,
  type Store,
  type UserIndexStore,
} from '../stores/store.js';
import { checkRedisOption, type RedisClientLike, type RedisConnectionOptions } from '../stores/redis-client.js';
import { DEFAULT_REDIS_STORE_OPTIONS } from '../stores/redis.js';

/** A session as {@link SessionAdmin} shows it: metadata only, never a token or the app's data. */
export interface SessionInfo {
  /** The session's public handle, as `session.id` shows it: safe to show, log and put in a URL. */
  readonly handle: string;
  /** The user the session is signed in as, if any. */
  readonly userId: string | undefined;
  /** When the session started. */
  readonly createdAt: Date;
  /** When a request last wrote to it or refreshed its expiry (at most `touchInterval` ago while it is in use). */
  readonly lastSeenAt: Date;
  /** The client's user agent as of its last sign-in or refresh, with `recordClient: true`. */
  readonly userAgent?: string;
  /** The client's IP address as of its last sign-in or refresh, with `recordClient: true`. */
  readonly ip?: string;
}

/** A session of one user, as {@link SessionAdmin.listUserSessions} lists it. */
export interface UserSessionInfo extends SessionInfo {
  readonly userId: string;
  /** Whether it is the session given as `current` (the request's own). */
  readonly current: boolean;
}

/** What {@link SessionAdmin.inspectSession} tells about one key of a session. */
export interface InspectedField {
  /** The app's key. */
  readonly key: string;
  /** Bytes of the key and its stored (JSON) value. */
  readonly bytes: number;
  /** The value, only when asked for with `values: true`. */
  readonly value?: unknown;
}

/** A session's metadata and the keys it holds, from {@link SessionAdmin.inspectSession}. */
export interface SessionInspection extends SessionInfo {
  /** The app's keys, in the order the store gave them. */
  readonly fields: readonly InspectedField[];
}

/** Anything that names a session to {@link SessionAdmin}: its handle, or a request's session (its `id`). */
export type SessionRef = string | { readonly id: string | undefined };

/** Options of {@link SessionAdmin}: where the sessions are, as the middleware was given it. */
export interface SessionAdminOptions {
  /** As the middleware's `redis` option. @default 'redis://localhost:6379/0' */
  redis?: RedisClientLike | string | RedisConnectionOptions;
  /** As the middleware's `store` option (a RedisStore, a MemoryStore, or a store with a user index). */
  store?: Store;
  /** As the middleware's `prefix` option. @default 'session:' */
  prefix?: string;
}

/** Longest user id accepted, in UTF-8 bytes. */
const MAX_USER_ID_BYTES = 512;

/**
 * The user id `login()` and the admin take: a non-empty string, or a safe integer (stored as its
 * decimal digits).
 * @throws {@link SessionError} `INVALID_ARGUMENT` otherwise
 */
export function toUserId(value: unknown, method: string): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_USER_ID_BYTES) {
    throw new SessionError(
      'INVALID_ARGUMENT',
      `${method}() takes a user id: a non-empty string of at most ${MAX_USER_ID_BYTES} bytes, or a whole number; got ${typeof value === 'string' ? `a string of ${Buffer.byteLength(value)} bytes` : typeof value}`,
    );
  }
  return value;
}

function handleOf(ref: SessionRef | undefined): string | undefined {
  return typeof ref === 'string' ? ref : ref?.id;
}

function info(session: IndexedSession): SessionInfo {
  const { fields } = session;
  const createdAt = parseStoredTime(fields.get(CREATED_AT_FIELD)) ?? 0;
  const agent = fields.get(USER_AGENT_FIELD);
  const ip = fields.get(CLIENT_IP_FIELD);
  return {
    handle: sessionHandle(session.id),
    userId: fields.get(USER_FIELD),
    createdAt: new Date(createdAt),
    lastSeenAt: new Date(parseStoredTime(fields.get(LAST_SEEN_FIELD)) ?? createdAt),
    ...(agent === undefined ? {} : { userAgent: agent }),
    ...(ip === undefined ? {} : { ip }),
  };
}

/** Oldest first, by creation time, then by handle so every process orders alike. */
function byAge(a: IndexedSession, b: IndexedSession): number {
  const age = (parseStoredTime(a.fields.get(CREATED_AT_FIELD)) ?? 0) - (parseStoredTime(b.fields.get(CREATED_AT_FIELD)) ?? 0);
  return age !== 0 ? age : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The store, if it keeps a user index; else the error saying so. */
function indexOf(store: Store): UserIndexStore {
  if (hasUserIndex(store)) return store;
  throw new SessionError(
    'INVALID_OPTIONS',
    'this store keeps no user index (userSessions, endSessions and scanSessions), so sessions cannot be listed or revoked by user; use RedisStore or MemoryStore, or add those methods (see latchkey/testing)',
  );
}

/**
 * Lists the sessions of `userId` after a login, which removes the entries of ended ones from the
 * index (without this, a user who logs in often but never lists their sessions would keep an entry
 * for every session that ever expired), and revokes the oldest beyond `max`, never `keep` (the
 * storage id of the session that just logged in). Does nothing on a store without a user index.
 */
export async function trimUserSessions(store: Store, userId: string, keep: string, max: number | null): Promise<void> {
  if (max === null && !hasUserIndex(store)) return;
  const index = indexOf(store);
  const sessions = (await index.userSessions(userId)).sort(byAge);
  const excess = max === null ? 0 : sessions.length - max;
  if (excess <= 0) return;
  const revoked = sessions.filter((session) => session.id !== keep).slice(0, excess).map((session) => session.id);
  const count = await index.endSessions(userId, revoked);
  publishRevoked(count);
}

/**
 * Sessions by user, for "Your devices" pages, "log out everywhere", admin tools and scripts: works
 * without a web framework. Get one from a middleware (`middleware.manager.admin`) or build one from
 * the same `redis`/`store` and `prefix` options as the app's middleware.
 *
 * ```ts
 * const admin = new SessionAdmin({ redis: process.env.REDIS_URL });
 * await admin.revokeUserSessions('alice'); // e.g. after a password change
 * await admin.close();
 * ```
 *
 * Handles, not tokens: nothing here takes or returns a cookie's value, and a handle cannot be
 * turned into one.
 */
export class SessionAdmin {
  readonly #store: Store;
  readonly #owned: boolean;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
   */
  constructor(options: SessionAdminOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new SessionError('INVALID_OPTIONS', 'SessionAdmin takes { redis, prefix } or { store }');
    }
    const { store, redis, prefix } = options;
    if (store !== undefined) {
      if (!isStore(store)) throw new SessionError('INVALID_OPTIONS', 'store must be a RedisStore, a MemoryStore or an object implementing the Store interface');
      if (redis !== undefined || prefix !== undefined) {
        throw new SessionError('INVALID_OPTIONS', 'give either store, or redis and prefix; set the prefix on your store');
      }
      this.#store = store;
      this.#owned = false;
    } else {
      const connection = redis ?? DEFAULT_REDIS_STORE_OPTIONS.redis;
      checkRedisOption(connection);
      this.#store = new RedisStore({ redis: connection, prefix: prefix ?? DEFAULT_REDIS_STORE_OPTIONS.prefix });
      this.#owned = true;
    }
  }

  /**
   * The live sessions of `userId`, oldest first. Sessions that ended (expired, logged out, revoked)
   * are not listed, and their entries are removed from the index as they are found.
   * @param options.current - the request's session (or its handle), to flag as `current`
   */
  async listUserSessions(userId: string | number, options: { current?: SessionRef } = {}): Promise<UserSessionInfo[]> {
    const user = toUserId(userId, 'listUserSessions');
    const current = handleOf(options.current);
    const sessions = (await indexOf(this.#store).userSessions(user)).sort(byAge);
    return sessions.map((session) => {
      const shown = info(session);
      return { ...shown, userId: user, current: current !== undefined && shown.handle === current };
    });
  }

  /**
   * Ends one session of `userId`, by its handle: its next request is anonymous, and requests
   * under way with it fail their writes with `SESSION_GONE`. A handle of another user's session,
   * or of none, ends nothing.
   * @returns whether a session was ended
   */
  async revokeSession(userId: string | number, handle: SessionRef): Promise<boolean> {
    const user = toUserId(userId, 'revokeSession');
    const wanted = handleOf(handle);
    if (typeof wanted !== 'string' || wanted === '') return false;
    const index = indexOf(this.#store);
    const target = (await index.userSessions(user)).find((session) => sessionHandle(session.id) === wanted);
    if (target === undefined) return false;
    const count = await index.endSessions(user, [target.id]);
    publishRevoked(count);
    return count > 0;
  }

  /**
   * Ends every session of `userId` ("log out everywhere"), or every one but `except` ("everywhere
   * else": pass the request's session). When it resolves, no session of the user that existed
   * when it was called can be used again, including one that was being regenerated meanwhile;
   * requests under way with them fail their writes with `SESSION_GONE`.
   * @returns how many sessions were ended
   */
  async revokeUserSessions(userId: string | number, options: { except?: SessionRef | readonly SessionRef[] } = {}): Promise<number> {
    const user = toUserId(userId, 'revokeUserSessions');
    const except = new Set<string>();
    const kept = options.except;
    for (const ref of Array.isArray(kept) ? (kept as readonly SessionRef[]) : kept === undefined ? [] : [kept as SessionRef]) {
      const handle = handleOf(ref);
      if (handle !== undefined) except.add(handle);
    }
    const index = indexOf(this.#store);
    const ids = (await index.userSessions(user)).map((session) => session.id).filter((id) => !except.has(sessionHandle(id)));
    // The listing prunes ended entries; the entries still there are what must end.
    const count = ids.length === 0 ? 0 : await index.endSessions(user, ids);
    publishRevoked(count);
    return count;
  }

  /** Every live session, signed in or not, a batch at a time from the store (SCAN on each Redis primary). */
  async *sessions(): AsyncIterable<SessionInfo> {
    for await (const batch of indexOf(this.#store).scanSessions()) {
      for (const session of batch) yield info(session);
    }
  }

  /** How many live sessions the store holds, signed in or not. Walks them all: for tooling, not for requests. */
  async countSessions(): Promise<number> {
    let count = 0;
    for await (const batch of indexOf(this.#store).scanSessions()) count += batch.length;
    return count;
  }

  /**
   * The metadata and keys of one session, by handle; `undefined` when there is none. With
   * `userId`, only that user's sessions are searched (quick); without, every session is (a walk
   * of the store). Values are left out unless `values: true`: they may be personal data.
   */
  async inspectSession(handle: string, options: { userId?: string | number; values?: boolean } = {}): Promise<SessionInspection | undefined> {
    const index = indexOf(this.#store);
    let found: IndexedSession | undefined;
    if (options.userId !== undefined) {
      const user = toUserId(options.userId, 'inspectSession');
      found = (await index.userSessions(user)).find((session) => sessionHandle(session.id) === handle);
    } else {
      for await (const batch of index.scanSessions()) {
        found = batch.find((session) => sessionHandle(session.id) === handle);
        if (found !== undefined) break;
      }
    }
    if (found === undefined) return undefined;
    const stored = await this.#store.load(found.id);
    if (stored === null) return undefined;
    const fields: InspectedField[] = [];
    for (const [field, json] of stored) {
      if (field.startsWith(':') && !field.startsWith('::')) continue;
      const key = field.startsWith('::') ? field.slice(1) : field;
      const bytes = Buffer.byteLength(key) + Buffer.byteLength(json);
      fields.push(options.values === true ? { key, bytes, value: decodeStored(json) } : { key, bytes });
    }
    return { ...info({ id: found.id, fields: stored }), fields };
  }

  /** Closes the Redis connection the admin created from `redis`; a store you passed stays open. */
  async close(): Promise<void> {
    if (this.#owned) await this.#store.close();
  }
}

function decodeStored(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}
