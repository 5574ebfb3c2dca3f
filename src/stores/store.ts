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

/** The expiry a store gives a session it changes. */
export interface StoreExpiry {
  /** The idle time to live to set, in milliseconds. */
  readonly ttlMs: number;
  /**
   * The absolute lifetime in milliseconds, counted from the session's {@link CREATED_AT_FIELD};
   * `null` for none. The time to live set is never longer than what is left of it, and a session
   * with nothing left is deleted and treated as one that does not exist.
   */
  readonly maxAgeMs: number | null;
  /** The current time in milliseconds since the epoch, by the application's clock. */
  readonly now: number;
}

/** The expiry refresh a store applies while loading a session, in the same round trip. */
export interface StoreRefresh extends StoreExpiry {
  /** Fields to set at the same time (latchkey's last-seen time). */
  readonly set: readonly StoreField[];
}

/**
 * Bounds a write must keep a session within, counted over the whole stored hash (metadata
 * included) as it would be after the write. A write that would pass one rejects with a
 * `SessionError` with code `LIMIT_EXCEEDED` and changes nothing.
 */
export interface StoreLimits {
  /** Most fields the hash may hold. */
  readonly maxFields: number;
  /** Most bytes (UTF-8) of field names and values together. */
  readonly maxBytes: number;
}

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
 * Every method is one round trip to the backing service. Methods that change an existing session
 * are conditional: they never create a session that does not exist (so a session deleted by one
 * request cannot be brought back by another that was already under way).
 *
 * Failures to reach the backing service must reject with a `SessionError` with code
 * `STORE_UNAVAILABLE`.
 *
 * `id` is the storage id: latchkey passes a hash of the cookie's id, never the id itself.
 */
export interface Store {
  /**
   * The session's fields, or `null` when it does not exist (or has expired). With `refresh`, an
   * existing session's expiry is reset and the given fields are set, atomically with the read; a
   * session past its `maxAgeMs` is then deleted and read as `null`.
   */
  load(id: string, refresh?: StoreRefresh): Promise<Map<string, string> | null>;
  /**
   * Creates a session with these fields (never empty: latchkey always writes its metadata,
   * {@link CREATED_AT_FIELD} included) and time to live. Resolves `false`, changing nothing, if a
   * session with this id exists already.
   */
  create(id: string, fields: readonly StoreField[], ttlMs: number): Promise<boolean>;
  /**
   * Sets and deletes fields of an existing session and resets its time to live. Resolves `false`,
   * changing nothing, when the session does not exist (or is past its `maxAgeMs`, which deletes
   * it). A session left without fields is gone. Rejects with `LIMIT_EXCEEDED`, changing nothing,
   * when the result would pass `limits`.
   */
  update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean>;
  /**
   * Adds `by` to the integer in `field` (a missing field counts as 0), sets `set`, resets the time
   * to live, and resolves the new value; `null`, changing nothing, when the session does not exist
   * (or is past its `maxAgeMs`, which deletes it). Rejects with a `SessionError`, changing nothing:
   * code `INVALID_ARGUMENT` when the field does not hold an integer or the result would pass
   * {@link MAX_COUNTER}, code `LIMIT_EXCEEDED` when the result would pass `limits`.
   */
  increment(
    id: string,
    field: string,
    by: number,
    set: readonly StoreField[],
    expiry: StoreExpiry,
    limits: StoreLimits,
  ): Promise<number | null>;
  /** Reads and deletes a session in one atomic step: its fields, or `null` if it did not exist. */
  take(id: string): Promise<Map<string, string> | null>;
  /** Deletes a session; deleting one that does not exist is not an error. */
  destroy(id: string): Promise<void>;
  /** Releases what the store created itself (never a client that was handed to it). */
  close(): Promise<void>;
}

const STORE_METHODS = ['load', 'create', 'update', 'increment', 'take', 'destroy', 'close'] as const;

/** Whether `value` has every method of {@link Store}. */
export function isStore(value: unknown): value is Store {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return STORE_METHODS.every((name) => typeof record[name] === 'function');
}
