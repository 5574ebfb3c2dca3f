import type { Store } from './store.js';

/** A record another session library stored, as {@link ForeignRecords.read} finds it. */
export interface ForeignRecord {
  /** The string stored under the key (express-session's stores and koa-redis keep JSON). */
  readonly value: string;
  /** Milliseconds the key has left to live; `undefined` when it has no expiry. */
  readonly ttlMs: number | undefined;
}

/**
 * The records of another session library in the same backing service, by their full key: what
 * `adopt` needs to take over the sessions of express-session, @fastify/session or koa-session.
 * The core never talks to Redis itself; a store offers this through
 * {@link ForeignRecordsStore.foreignRecords}.
 *
 * Failures to reach the backing service reject with a `SessionError` with code
 * `STORE_UNAVAILABLE`.
 */
export interface ForeignRecords {
  /**
   * The string under `key` and the time it has left, read together (one round trip); `null` when
   * there is none (or the key holds something other than a string).
   */
  read(key: string): Promise<ForeignRecord | null>;
  /** Deletes `key`; deleting one that does not exist is not an error. */
  remove(key: string): Promise<void>;
}

/** A store that can reach the records of other session libraries beside its own (RedisStore can). */
export interface ForeignRecordsStore extends Store {
  /** The other libraries' records, in the same backing service as the store's sessions. */
  foreignRecords(): ForeignRecords;
}

/** Whether `store` can reach other libraries' records ({@link ForeignRecordsStore}). */
export function hasForeignRecords(store: Store): store is ForeignRecordsStore {
  return typeof (store as Partial<ForeignRecordsStore>).foreignRecords === 'function';
}
