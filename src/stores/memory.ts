import { SessionError } from '../core/errors.js';
import {
  CREATED_AT_FIELD,
  limitExceeded,
  MAX_COUNTER,
  type Store,
  type StoreExpiry,
  type StoreField,
  type StoreLimits,
  type StoreRefresh,
} from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most sessions kept at once; creating one more evicts the least recently used.
   * @default 10000
   */
  maxSessions?: number;
}

/** The defaults of {@link MemoryStoreOptions}. */
export const DEFAULT_MEMORY_STORE_OPTIONS = { maxSessions: 10_000 } as const;

interface Entry {
  readonly fields: Map<string, string>;
  expiresAt: number;
}

/** An integer as Redis' HINCRBY accepts it: no sign but '-', no leading zeros, no spaces. */
const INTEGER = /^(?:0|-?[1-9]\d*)$/;

/** UTF-8 bytes of a field name and value, as Redis counts them. */
function sizeOf(field: string, value: string): number {
  return Buffer.byteLength(field) + Buffer.byteLength(value);
}

/** Whether `fields`, with `set` applied and `remove` deleted, stays within `limits`. */
function within(fields: Map<string, string>, set: readonly StoreField[], remove: readonly string[], limits: StoreLimits): boolean {
  const after = new Map(fields);
  for (const [field, value] of set) after.set(field, value);
  for (const field of remove) after.delete(field);
  if (after.size > limits.maxFields) return false;
  let bytes = 0;
  for (const [field, value] of after) bytes += sizeOf(field, value);
  return bytes <= limits.maxBytes;
}

/** Expired sessions removed, at most, by one operation; keeps every call short. */
const SWEEP_LIMIT = 16;

/**
 * Sessions in this process's memory, with the same semantics as {@link RedisStore}: expiry,
 * atomic increments, conditional updates. Bounded in size (least recently used sessions go
 * first), and it never starts a timer, so it never keeps a process alive. Data is lost when the
 * process ends and is not shared between processes: for development, tests and single-process
 * apps that can afford to log everyone out on restart.
 */
export class MemoryStore implements Store {
  readonly #sessions = new Map<string, Entry>();
  readonly #max: number;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when `maxSessions` is not a positive integer
   */
  constructor(options: MemoryStoreOptions = {}) {
    const max = options.maxSessions ?? DEFAULT_MEMORY_STORE_OPTIONS.maxSessions;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new SessionError('INVALID_OPTIONS', `maxSessions must be a whole number above 0, got ${String(max)}`);
    }
    this.#max = max;
  }

  /** How many sessions the store holds now, expired ones not counted. */
  get size(): number {
    this.#sweep(Infinity);
    return this.#sessions.size;
  }

  /**
   * The fields and remaining time to live (ms) of a stored session, for tests and debugging;
   * `undefined` when there is no such session.
   */
  inspect(id: string): { fields: Map<string, string>; ttlMs: number } | undefined {
    const entry = this.#live(id, false);
    return entry && { fields: new Map(entry.fields), ttlMs: entry.expiresAt - Date.now() };
  }

  /** The ids of all stored sessions, for tests and debugging. */
  ids(): string[] {
    this.#sweep(Infinity);
    return [...this.#sessions.keys()];
  }

  /** The entry for `id` if it has not expired; `touch` marks it as recently used. */
  #live(id: string, touch: boolean): Entry | undefined {
    const entry = this.#sessions.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    if (touch) {
      this.#sessions.delete(id);
      this.#sessions.set(id, entry);
    }
    return entry;
  }

  /** Drops expired sessions from the least recently used end, up to `limit`. */
  #sweep(limit: number): void {
    const now = Date.now();
    let checked = 0;
    for (const [id, entry] of this.#sessions) {
      if (checked++ >= limit) break;
      if (entry.expiresAt <= now) this.#sessions.delete(id);
    }
  }

  /**
   * The time to live `entry` may get under `expiry`, or `undefined` when it has outlived its
   * absolute lifetime (and is deleted).
   */
  #ttl(id: string, entry: Entry, expiry: StoreExpiry): number | undefined {
    const created = Number(entry.fields.get(CREATED_AT_FIELD));
    if (expiry.maxAgeMs === null || !Number.isFinite(created)) return expiry.ttlMs;
    const left = created + expiry.maxAgeMs - expiry.now;
    if (left > 0) return Math.min(expiry.ttlMs, left);
    this.#sessions.delete(id);
    return undefined;
  }

  /** {@inheritDoc Store.load} */
  async load(id: string, refresh?: StoreRefresh): Promise<Map<string, string> | null> {
    const entry = this.#live(id, true);
    if (entry === undefined) return null;
    const fields = new Map(entry.fields);
    if (refresh) {
      const ttl = this.#ttl(id, entry, refresh);
      if (ttl === undefined) return null;
      entry.expiresAt = Date.now() + ttl;
      for (const [field, value] of refresh.set) entry.fields.set(field, value);
    }
    return fields;
  }

  /** {@inheritDoc Store.create} */
  async create(id: string, fields: readonly StoreField[], ttlMs: number): Promise<boolean> {
    if (this.#live(id, false)) return false;
    this.#sweep(SWEEP_LIMIT);
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value as string;
      this.#sessions.delete(oldest);
    }
    this.#sessions.set(id, { fields: new Map(fields), expiresAt: Date.now() + ttlMs });
    return true;
  }

  /** {@inheritDoc Store.update} */
  async update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean> {
    const entry = this.#live(id, true);
    if (entry === undefined) return false;
    const ttl = this.#ttl(id, entry, expiry);
    if (ttl === undefined) return false;
    if (!within(entry.fields, set, remove, limits)) throw limitExceeded();
    entry.expiresAt = Date.now() + ttl;
    for (const [field, value] of set) entry.fields.set(field, value);
    for (const field of remove) entry.fields.delete(field);
    // Like Redis, which deletes a hash when its last field goes.
    if (entry.fields.size === 0) this.#sessions.delete(id);
    return true;
  }

  /** {@inheritDoc Store.increment} */
  async increment(
    id: string,
    field: string,
    by: number,
    set: readonly StoreField[],
    expiry: StoreExpiry,
    limits: StoreLimits,
  ): Promise<number | null> {
    const entry = this.#live(id, true);
    if (entry === undefined) return null;
    const ttl = this.#ttl(id, entry, expiry);
    if (ttl === undefined) return null;
    const current = entry.fields.get(field) ?? '0';
    if (!Number.isSafeInteger(by)) {
      throw new SessionError('INVALID_ARGUMENT', `cannot increment '${field}': value is not an integer or out of range`);
    }
    if (!INTEGER.test(current)) {
      throw new SessionError('INVALID_ARGUMENT', `cannot increment '${field}': hash value is not an integer`);
    }
    const next = Number(current) + by;
    if (Math.abs(next) > MAX_COUNTER) {
      throw new SessionError('INVALID_ARGUMENT', `cannot increment '${field}': increment would overflow ${MAX_COUNTER}`);
    }
    if (!within(entry.fields, [[field, String(next)], ...set], [], limits)) throw limitExceeded();
    entry.expiresAt = Date.now() + ttl;
    entry.fields.set(field, String(next));
    for (const [name, value] of set) entry.fields.set(name, value);
    return next;
  }

  /** {@inheritDoc Store.take} */
  async take(id: string): Promise<Map<string, string> | null> {
    const entry = this.#live(id, false);
    if (entry === undefined) return null;
    this.#sessions.delete(id);
    return entry.fields;
  }

  /** {@inheritDoc Store.destroy} */
  async destroy(id: string): Promise<void> {
    this.#sessions.delete(id);
  }

  /** Drops every session. */
  async close(): Promise<void> {
    this.#sessions.clear();
  }
}
