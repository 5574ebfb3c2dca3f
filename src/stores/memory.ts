import { SessionError } from '../core/errors.js';
import {
  CREATED_AT_FIELD,
  ENDED_GRACE_MS,
  limitExceeded,
  MAX_COUNTER,
  parseCreatedAt,
  sessionEnded,
  type Store,
  type StoreChange,
  type StoreExpiry,
  type StoreField,
  type StoreLimits,
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
  /** Whether this entry only remembers that the id was ended (see {@link ENDED_GRACE_MS}). */
  readonly ended?: true;
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

  /** How many sessions the store holds now, expired and ended ones not counted. */
  get size(): number {
    return this.ids().length;
  }

  /**
   * The fields and remaining time to live (ms) of a stored session, for tests and debugging;
   * `undefined` when there is no such session.
   */
  inspect(id: string): { fields: Map<string, string>; ttlMs: number } | undefined {
    const entry = this.#live(id, false);
    return entry && !entry.ended ? { fields: new Map(entry.fields), ttlMs: entry.expiresAt - Date.now() } : undefined;
  }

  /** The ids of all stored sessions, for tests and debugging. */
  ids(): string[] {
    this.#sweep(Infinity);
    return [...this.#sessions].filter(([, entry]) => !entry.ended).map(([id]) => id);
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
    if (expiry.maxAgeMs === null) return expiry.ttlMs;
    const created = parseCreatedAt(entry.fields.get(CREATED_AT_FIELD));
    const left = created === undefined ? 0 : created + expiry.maxAgeMs - expiry.now;
    if (left > 0) return Math.min(expiry.ttlMs, left);
    this.#sessions.delete(id);
    return undefined;
  }

  /**
   * The live session `id` for a write: `undefined` when there is none, a rejection with
   * `SESSION_GONE` when it was ended recently.
   */
  #writable(id: string): Entry | undefined {
    const entry = this.#live(id, true);
    if (entry?.ended) throw sessionEnded();
    return entry;
  }

  /** Replaces `id` with the mark that it ended, kept for {@link ENDED_GRACE_MS}. */
  #end(id: string): void {
    this.#sessions.delete(id);
    this.#sessions.set(id, { fields: new Map(), expiresAt: Date.now() + ENDED_GRACE_MS, ended: true });
  }

  /** {@inheritDoc Store.load} */
  async load(id: string): Promise<Map<string, string> | null> {
    const entry = this.#live(id, true);
    return entry === undefined || entry.ended ? null : new Map(entry.fields);
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
    const entry = this.#writable(id);
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
    const entry = this.#writable(id);
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

  /** {@inheritDoc Store.move} */
  async move(from: string, to: string, change: StoreChange, expiry: StoreExpiry): Promise<Map<string, string> | null> {
    const entry = this.#writable(from);
    if (entry === undefined) return null;
    const ttl = this.#ttl(from, entry, expiry);
    if (ttl === undefined) return null;
    if (this.#live(to, false)) throw new SessionError('STORE_ERROR', 'the new id of a regenerated session exists already');
    const fields = new Map(entry.fields);
    for (const field of change.remove) fields.delete(field);
    for (const [field, value] of change.set) fields.set(field, value);
    if (parseCreatedAt(fields.get(CREATED_AT_FIELD)) === undefined) fields.set(CREATED_AT_FIELD, String(expiry.now));
    this.#end(from);
    this.#sessions.set(to, { fields, expiresAt: Date.now() + ttl });
    return new Map(fields);
  }

  /** {@inheritDoc Store.destroy} */
  async destroy(id: string): Promise<void> {
    if (this.#live(id, false)) this.#end(id);
  }

  /** Drops every session. */
  async close(): Promise<void> {
    this.#sessions.clear();
  }
}
