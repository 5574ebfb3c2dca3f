import { SessionError } from '../core/errors.js';

/**
 * The largest magnitude {@link Store.increment} may produce: 2^53 - 2. JavaScript holds integers
 * exactly up to 2^53 - 1, and Redis clients read even that one as 2^53.
 */
export const MAX_COUNTER = 2 ** 53 - 2;

/** A field name and its stored string value. */
export type StoreField = readonly [field: string, value: string];

/**
 * The field holding a session's creation time (milliseconds since the epoch, as a decimal
 * string); stores read it to apply {@link StoreExpiry.maxAgeMs}.
 */
export const CREATED_AT_FIELD = ':c';

/**
 * The field holding the time (milliseconds since the epoch) the session's expiry was last
 * extended; latchkey writes it with every write and every expiry refresh.
 */
export const LAST_SEEN_FIELD = ':s';

/**
 * The field holding the id of the user a session is signed in as (`session.login(userId)`). It is
 * written when a session is created or moved (see {@link Store.move}) and never changed in place,
 * so a stored session belongs to one user, or none, for its whole life. Stores that keep a user
 * index ({@link UserIndexStore}) index a session under this user.
 */
export const USER_FIELD = ':u';

/** The field holding the user agent of the client, with `recordClient: true`. */
export const USER_AGENT_FIELD = ':a';

/** The field holding the IP address of the client, with `recordClient: true`. */
export const CLIENT_IP_FIELD = ':i';

/**
 * Metadata fields that {@link StoreLimits.maxFields} does not count (their bytes count towards
 * `maxBytes` all the same): signing in, and recording the client, leave the app its `maxKeys`.
 */
export const UNCOUNTED_FIELDS = [USER_FIELD, USER_AGENT_FIELD, CLIENT_IP_FIELD] as const;

/** latchkey's metadata fields: every one a session may hold besides the app's own keys. */
export const METADATA_FIELDS = [CREATED_AT_FIELD, LAST_SEEN_FIELD, USER_FIELD, USER_AGENT_FIELD, CLIENT_IP_FIELD] as const;

/**
 * A store's own bookkeeping field: stores that need to mark a session as ended or being moved
 * (see {@link Store.destroy} and {@link Store.move}) may keep that mark in it. latchkey never writes
 * it, and a store never returns it from {@link Store.load}.
 */
export const STATE_FIELD = ':x';

/**
 * How long, in milliseconds, an id stays known as ended after {@link Store.destroy} or
 * {@link Store.move}: requests that were already under way with it then fail their writes with
 * `SESSION_GONE` instead of starting a new session whose cookie would replace the one the
 * logout or login response gave the browser.
 */
export const ENDED_GRACE_MS = 60_000;

/**
 * A time latchkey stores in a session's metadata ({@link CREATED_AT_FIELD}, {@link LAST_SEEN_FIELD}),
 * or `undefined` when it is missing or not a whole number of milliseconds (digits only). A session
 * without a valid created-at cannot be given an absolute lifetime, so stores treat it as past it
 * whenever `maxAgeMs` is set.
 */
export function parseStoredTime(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/** The expiry a store gives a session it changes. */
export interface StoreExpiry {
  /** The idle time to live to set, in milliseconds. */
  readonly ttlMs: number;
  /**
   * The absolute lifetime in milliseconds, counted from the session's {@link CREATED_AT_FIELD};
   * `null` for none. The time to live set is never longer than what is left of it, and a session
   * with nothing left, or without a valid created-at field (see {@link parseStoredTime}), is
   * deleted and treated as one that does not exist.
   */
  readonly maxAgeMs: number | null;
  /** The current time in milliseconds since the epoch, by the application's clock. */
  readonly now: number;
  /**
   * When the request making this change began (milliseconds since the epoch), if known: a write
   * to an id revoked after that time was under way during the revocation, and rejects with
   * `SESSION_GONE`; one to an id revoked before it finds no session (see
   * {@link UserIndexStore.endSessions}). Without it, the write counts as begun now.
   */
  readonly since?: number;
}

/** Fields to set and to remove while moving a session (see {@link Store.move}). */
export interface StoreChange {
  /** Fields to set. */
  readonly set: readonly StoreField[];
  /** Fields to remove. */
  readonly remove: readonly string[];
}

/**
 * Bounds a write must keep a session within, counted over the whole stored hash (metadata
 * included) as it would be after the write. A write that would pass one rejects with a
 * `SessionError` with code `LIMIT_EXCEEDED` and changes nothing.
 */
export interface StoreLimits {
  /** Most fields the hash may hold, those of {@link UNCOUNTED_FIELDS} not counted. */
  readonly maxFields: number;
  /** Most bytes (UTF-8) of field names and values together. */
  readonly maxBytes: number;
}

/**
 * Limits that never refuse a write: for refreshing the expiry of a session, which must work even
 * when the session holds more than limits lowered since allow.
 */
export const NO_LIMITS: StoreLimits = { maxFields: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER };

/**
 * The error a store rejects with when a write would pass its {@link StoreLimits}.
 * @param cause - what the backing service answered, if anything
 */
export function limitExceeded(cause?: unknown): SessionError {
  return new SessionError(
    'LIMIT_EXCEEDED',
    'the write would pass the session limits (limits.maxKeys or limits.maxSessionBytes); nothing was written',
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Where sessions live. A session is a hash: field names to strings. latchkey encodes values and
 * field names before they reach a store, and keeps its metadata in fields whose names start with
 * `:`; a store only keeps strings, applies expiry and performs each operation atomically.
 *
 * Every method but {@link Store.move} is one round trip to the backing service. Methods that
 * change an existing session are conditional: they never create a session that does not exist
 * (so a session deleted by one request cannot be brought back by another that was already under
 * way).
 *
 * An id that was ended ({@link Store.destroy}, or the old id of a {@link Store.move}) stays known
 * as ended for {@link ENDED_GRACE_MS}: `load` reads it as `null`, `create` resolves `false`, and
 * `update`, `increment` and `move` reject with a `SessionError` with code `SESSION_GONE`.
 *
 * Failures to reach the backing service must reject with a `SessionError` with code
 * `STORE_UNAVAILABLE`.
 *
 * `id` is the storage id: latchkey passes a hash of the cookie's id, never the id itself.
 */
export interface Store {
  /**
   * The session's fields, or `null` when it does not exist (expired, ended, or being moved). A
   * plain read: it changes nothing, expiry included.
   */
  load(id: string): Promise<Map<string, string> | null>;
  /**
   * Optional: the session's fields, as {@link Store.load} reads them, with its time to live reset
   * to `expiry.ttlMs` in the same round trip (a missing session stays missing). latchkey calls it
   * in place of `load` when every read extends the expiry anyway (`touchInterval: 0`, as with
   * `compat: 'bottle-session'`), so such a read is one round trip rather than a load and then an
   * update, for sessions without an absolute lifetime (`expiry.maxAgeMs` is `null`) and without
   * client details to record. A store without it is read with `load`, then refreshed with `update`.
   */
  loadTouched?(id: string, expiry: StoreExpiry): Promise<Map<string, string> | null>;
  /**
   * Creates a session with these fields (never empty: latchkey always writes its metadata,
   * {@link CREATED_AT_FIELD} included) and time to live. Resolves `false`, changing nothing, if a
   * session with this id exists already, or the id was ended recently. `maxAgeMs` is the absolute
   * lifetime the session has (`null` for none, `undefined` when the caller does not say): a
   * {@link UserIndexStore} keeps its index of the session's user at least that long.
   */
  create(id: string, fields: readonly StoreField[], ttlMs: number, maxAgeMs?: number | null): Promise<boolean>;
  /**
   * Sets and deletes fields of an existing session and resets its time to live. Resolves `false`,
   * changing nothing, when the session does not exist (or is past its `maxAgeMs`, which deletes
   * it). A session left without fields is gone. Rejects with `LIMIT_EXCEEDED`, changing nothing,
   * when the result would pass `limits`, and with `SESSION_GONE` when the id was ended recently.
   */
  update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean>;
  /**
   * Adds `by` to the integer in `field` (a missing field counts as 0), sets `set`, resets the time
   * to live, and resolves the new value; `null`, changing nothing, when the session does not exist
   * (or is past its `maxAgeMs`, which deletes it). Rejects with a `SessionError`, changing nothing:
   * code `INVALID_ARGUMENT` when the field does not hold an integer or the result would pass
   * {@link MAX_COUNTER}, code `LIMIT_EXCEEDED` when the result would pass `limits`, code
   * `SESSION_GONE` when the id was ended recently.
   */
  increment(
    id: string,
    field: string,
    by: number,
    set: readonly StoreField[],
    expiry: StoreExpiry,
    limits: StoreLimits,
  ): Promise<number | null>;
  /**
   * Moves the session `from` to the new id `to` (latchkey's `regenerate()`): `to` gets every
   * field of `from` with `change` applied, whatever the limits (the data is already stored), the
   * same {@link CREATED_AT_FIELD} (or `expiry.now` when `from` has no valid one and `maxAgeMs` is
   * `null`), and a time to live by `expiry`; then `from` is ended as by {@link Store.destroy}.
   * Resolves the fields now stored under `to`; `null`, changing nothing, when `from` does not
   * exist (or is past its `maxAgeMs`, which deletes it). Rejects with `SESSION_GONE` when `from`
   * was ended recently, or is being moved by another call.
   *
   * A move never loses the session. When it rejects (the backing service failed or timed out),
   * `from` still holds the session, unchanged; a store that needs several round trips may keep it
   * marked as being moved (read as ended) for a few seconds after such a failure. Once `to` holds
   * the data, the move resolves, even if ending `from` failed.
   */
  move(from: string, to: string, change: StoreChange, expiry: StoreExpiry): Promise<Map<string, string> | null>;
  /**
   * Ends a session: deletes it, and keeps the id known as ended for {@link ENDED_GRACE_MS}.
   * Ending one that does not exist is not an error, and changes nothing.
   */
  destroy(id: string): Promise<void>;
  /** Releases what the store created itself (never a client that was handed to it). */
  close(): Promise<void>;
}

/** A session of one user, as {@link UserIndexStore.userSessions} and {@link UserIndexStore.scanSessions} find it. */
export interface IndexedSession {
  /** Its storage id. */
  readonly id: string;
  /** Its metadata fields (those of {@link METADATA_FIELDS} it holds); never the app's data. */
  readonly fields: ReadonlyMap<string, string>;
}

/**
 * A store that keeps, beside the sessions, an index of each user's sessions: what
 * `listUserSessions`, `revokeUserSessions` and `maxSessionsPerUser` need. Optional: a store
 * without these methods still works, and binds sessions to users, but cannot list or revoke them
 * by user.
 *
 * A store that has them must keep these rules, which `latchkey/testing`'s contract checks:
 * - A session whose fields hold {@link USER_FIELD} is in that user's index before
 *   {@link Store.create} or {@link Store.move} resolves, and a create or move that cannot index it
 *   fails, leaving no usable session under the new id.
 * - {@link Store.destroy} of such a session removes it from the index (a failure to do so may
 *   leave an entry behind: {@link UserIndexStore.userSessions} removes it later).
 * - A move whose old id was ended while it ran (by a destroy or {@link UserIndexStore.endSessions})
 *   rejects with `SESSION_GONE` and leaves the new id unusable.
 * - Ending an id that is being moved, or was moved within {@link ENDED_GRACE_MS}, ends the id it
 *   was moved to as well, so that no regenerate racing a revocation carries the session past it.
 */
export interface UserIndexStore extends Store {
  /**
   * The live sessions of `userId`, in no particular order. Entries of sessions that have ended
   * (expired, destroyed, revoked) are removed from the index as they are found.
   */
  userSessions(userId: string): Promise<IndexedSession[]>;
  /**
   * Revokes each of `ids`, even one not (or not yet) stored, unless it holds a session of another
   * user; and the ids they were being moved, or recently moved, to. Removes them from the user's
   * index. Resolves how many stored sessions it ended.
   *
   * A revoked id is ended as by {@link Store.destroy}, with one difference for the
   * {@link ENDED_GRACE_MS} it stays known: `update`, `increment` and `move` of a request that began
   * after the revocation ({@link StoreExpiry.since}) find no session (resolve `false` or `null`)
   * instead of rejecting with `SESSION_GONE`. The browser holding a revoked id was given no newer
   * cookie, so its next request must be able to start a new session; requests that were under way
   * still fail their writes. An id that had already ended (destroyed or moved) stays ended as it
   * was.
   */
  endSessions(userId: string, ids: readonly string[]): Promise<number>;
  /**
   * Ends, as {@link UserIndexStore.endSessions} does, every session the user's index holds but
   * those in `except`, whether or not a listing would show it (one being moved, or just moved, is
   * ended with the id it went to). This is "log out everywhere": once it resolves, no session of
   * the user that was indexed when it was called can be used. Resolves how many stored sessions
   * it ended.
   */
  endUserSessions(userId: string, except: readonly string[]): Promise<number>;
  /**
   * Every live session, in batches, users' or not: for tooling (counting, listing). Walks the
   * whole store without blocking it (SCAN on each Redis primary), so a session created or ended
   * meanwhile may or may not be seen.
   */
  scanSessions(): AsyncIterable<readonly IndexedSession[]>;
}

const STORE_METHODS = ['load', 'create', 'update', 'increment', 'move', 'destroy', 'close'] as const;

/** Whether `store` keeps a user index ({@link UserIndexStore}). */
export function hasUserIndex(store: Store): store is UserIndexStore {
  const record = store as unknown as Record<string, unknown>;
  return ['userSessions', 'endSessions', 'endUserSessions', 'scanSessions'].every((name) => typeof record[name] === 'function');
}

/** Whether `value` has every method of {@link Store}. */
export function isStore(value: unknown): value is Store {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return STORE_METHODS.every((name) => typeof record[name] === 'function');
}

/**
 * The error a store rejects with when the id was ended recently (destroyed, or moved away).
 * @param cause - what the backing service answered, if anything
 */
export function sessionEnded(cause?: unknown): SessionError {
  return new SessionError(
    'SESSION_GONE',
    'the session was ended by another request (logout, regenerate or revocation); nothing was written',
    cause === undefined ? undefined : { cause },
  );
}
