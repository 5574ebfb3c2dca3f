import { SessionError } from '../core/errors.js';
import {
  CREATED_AT_FIELD,
  ENDED_GRACE_MS,
  limitExceeded,
  MAX_COUNTER,
  parseStoredTime,
  sessionEnded,
  UNCOUNTED_FIELDS,
  USER_FIELD,
  METADATA_FIELDS,
  type IndexedSession,
  type UserIndexStore,
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
  /**
   * Most bytes of sessions kept at once, counted as they take the heap; a write that would pass it
   * evicts the least recently used sessions (never the one written) until the store is back within
   * it. A session counts its id, field names and values (their UTF-8 bytes, or two bytes a
   * character for a string with a character beyond U+00FF, as V8 keeps it), plus 200 bytes a
   * session and 96 a field for the objects that hold them. Measured on Node 20, a session takes
   * between half and all of what it counts.
   *
   * The default is 10,000 sessions (`maxSessions`) of about 2 kB of data each, or some 120 as
   * large as the default `limits.maxSessionBytes` (256 KiB) allows: most of even a 128 MiB heap
   * is left to the app. A session larger than `maxBytes` is still stored, but alone: keep
   * `maxBytes` well above `limits.maxSessionBytes`.
   * @default 33554432 (32 MiB)
   */
  maxBytes?: number;
}

/** The defaults of {@link MemoryStoreOptions}. */
export const DEFAULT_MEMORY_STORE_OPTIONS = { maxSessions: 10_000, maxBytes: 32 * 1024 * 1024 } as const;

interface Entry {
  readonly fields: Map<string, string>;
  expiresAt: number;
  /** What the session counts against `maxBytes`: its id, fields and overheads. */
  bytes: number;
  /** What the session counts against {@link StoreLimits.maxBytes}: the UTF-8 bytes of its field names and values. */
  dataBytes: number;
  /** Whether this entry only remembers that the id was ended (see {@link ENDED_GRACE_MS}). */
  ended?: true;
  /** For an ended entry: the id the session was moved to, if it was moved rather than destroyed. */
  movedTo?: string;
  /**
   * For a revoked entry: when it was revoked. Writes of requests that began after it find no
   * session; those of requests under way fail.
   */
  revokedAt?: number;
}

/** The metadata fields of a stored session. */
function metadataOf(fields: Map<string, string>): Map<string, string> {
  const meta = new Map<string, string>();
  for (const name of METADATA_FIELDS) {
    const value = fields.get(name);
    if (value !== undefined) meta.set(name, value);
  }
  return meta;
}

/** Ids an ended session was moved through, followed at most this far (a chain of regenerations within the grace time). */
const MAX_MOVES_FOLLOWED = 16;

/**
 * Heap a session takes beyond its characters: its entry, its Map with the Map's smallest table, its
 * slot in the store's Map, the id's string header. Measured, with {@link FIELD_OVERHEAD}, by
 * test/store/memory-heap-measure.ts, so that no shape of session takes more than it counts.
 */
const SESSION_OVERHEAD = 200;
/**
 * Heap a field takes beyond its characters: its slots in a Map's table (which doubles as it
 * fills), two string headers.
 */
const FIELD_OVERHEAD = 96;

/** A character V8 cannot keep in one byte; a string holding one takes two bytes a character. */
const TWO_BYTE = /[\u0100-\uffff]/;

/** What `text` counts against `maxBytes`: its UTF-8 bytes, or what V8 keeps it in if that is more. */
function bytesOf(text: string): number {
  const utf8 = Buffer.byteLength(text);
  return utf8 === text.length || !TWO_BYTE.test(text) ? utf8 : Math.max(utf8, 2 * text.length);
}

/** An integer as Redis' HINCRBY accepts it: no sign but '-', no leading zeros, no spaces. */
const INTEGER = /^(?:0|-?[1-9]\d*)$/;

/** UTF-8 bytes of a field name and value, as Redis counts them. */
function sizeOf(field: string, value: string): number {
  return Buffer.byteLength(field) + Buffer.byteLength(value);
}

/**
 * Whether `entry`, with `set` applied and `remove` deleted, stays within `limits`. Works from the
 * entry's counts and the fields the write touches, so its cost does not grow with the session.
 */
function within(entry: Entry, set: readonly StoreField[], remove: readonly string[], limits: StoreLimits): boolean {
  let fields = entry.fields.size;
  for (const name of UNCOUNTED_FIELDS) if (entry.fields.has(name)) fields--;
  let bytes = entry.dataBytes;
  // Fields this write has changed already: one may be set twice, or set and removed.
  const written = new Map<string, string | undefined>();
  const apply = (field: string, value: string | undefined): void => {
    const old = written.has(field) ? written.get(field) : entry.fields.get(field);
    const counts = !(UNCOUNTED_FIELDS as readonly string[]).includes(field);
    if (old !== undefined) {
      if (counts) fields--;
      bytes -= sizeOf(field, old);
    }
    if (value !== undefined) {
      if (counts) fields++;
      bytes += sizeOf(field, value);
    }
    written.set(field, value);
  };
  for (const [field, value] of set) apply(field, value);
  for (const field of remove) apply(field, undefined);
  return fields <= limits.maxFields && bytes <= limits.maxBytes;
}

/** Expired sessions removed, at most, by one operation; keeps every call short. */
const SWEEP_LIMIT = 16;

/**
 * Sessions in this process's memory, with the same semantics as {@link RedisStore}: expiry,
 * atomic increments, conditional updates. Bounded in sessions and in bytes (least recently used
 * sessions go first), and it never starts a timer, so it never keeps a process alive. Data is lost
 * when the process ends and is not shared between processes: for development, tests and
 * single-process apps that can afford to log everyone out on restart.
 */
export class MemoryStore implements UserIndexStore {
  readonly #sessions = new Map<string, Entry>();
  /** Each user's session ids: kept exact, as sessions are stored, moved, ended, expire and are evicted. */
  readonly #users = new Map<string, Set<string>>();
  readonly #max: number;
  readonly #maxBytes: number;
  /** The sum of every entry's `bytes`, kept as they change. */
  #bytes = 0;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when `maxSessions` or `maxBytes` is not a
   * positive integer
   */
  constructor(options: MemoryStoreOptions = {}) {
    const max = options.maxSessions ?? DEFAULT_MEMORY_STORE_OPTIONS.maxSessions;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new SessionError('INVALID_OPTIONS', `maxSessions must be a whole number above 0, got ${String(max)}`);
    }
    const maxBytes = options.maxBytes ?? DEFAULT_MEMORY_STORE_OPTIONS.maxBytes;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new SessionError(
        'INVALID_OPTIONS',
        `maxBytes must be a whole number of bytes above 0, such as 33554432 (32 MiB), got ${String(maxBytes)}; ` +
          'keep it well above limits.maxSessionBytes, for a session larger than maxBytes evicts every other one',
      );
    }
    this.#max = max;
    this.#maxBytes = maxBytes;
  }

  /** How many sessions the store holds now, expired and ended ones not counted. */
  get size(): number {
    return this.ids().length;
  }

  /**
   * The bytes the store holds now, as {@link MemoryStoreOptions.maxBytes} counts them, expired
   * sessions not counted; never more than `maxBytes` unless one session alone is larger.
   */
  get bytes(): number {
    this.#sweep(Infinity);
    return this.#bytes;
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
      this.#delete(id);
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
      if (entry.expiresAt <= now) this.#delete(id);
    }
  }

  /** Adds an empty session, counting its id and overhead. */
  #insert(id: string, expiresAt: number): Entry {
    const entry: Entry = { fields: new Map(), expiresAt, bytes: SESSION_OVERHEAD + bytesOf(id), dataBytes: 0 };
    this.#sessions.set(id, entry);
    this.#bytes += entry.bytes;
    return entry;
  }

  /** Removes a session and what it counted, and its entry in its user's index. */
  #delete(id: string): void {
    const entry = this.#sessions.get(id);
    if (entry === undefined) return;
    this.#sessions.delete(id);
    this.#bytes -= entry.bytes;
    const user = entry.fields.get(USER_FIELD);
    if (user === undefined) return;
    const ids = this.#users.get(user);
    ids?.delete(id);
    if (ids?.size === 0) this.#users.delete(user);
  }

  /** Puts `id` in the index of the user its fields name, if any. */
  #index(id: string, fields: ReadonlyMap<string, string>): void {
    const user = fields.get(USER_FIELD);
    if (user === undefined) return;
    let ids = this.#users.get(user);
    if (ids === undefined) this.#users.set(user, (ids = new Set()));
    ids.add(id);
  }

  /** Sets `field` of `entry` to `value`, or deletes it when `value` is `undefined`, keeping the counts. */
  #set(entry: Entry, field: string, value: string | undefined): void {
    const old = entry.fields.get(field);
    let change = 0;
    if (old !== undefined) {
      change -= FIELD_OVERHEAD + bytesOf(field) + bytesOf(old);
      entry.dataBytes -= sizeOf(field, old);
    }
    if (value === undefined) {
      entry.fields.delete(field);
    } else {
      entry.fields.set(field, value);
      change += FIELD_OVERHEAD + bytesOf(field) + bytesOf(value);
      entry.dataBytes += sizeOf(field, value);
    }
    entry.bytes += change;
    this.#bytes += change;
  }

  /** Evicts the least recently used sessions, never `keep`, until the store is within `maxBytes`. */
  #fit(keep: string): void {
    if (this.#bytes <= this.#maxBytes) return;
    this.#sweep(SWEEP_LIMIT);
    for (const id of this.#sessions.keys()) {
      if (this.#bytes <= this.#maxBytes) return;
      if (id !== keep) this.#delete(id);
    }
  }

  /**
   * The time to live `entry` may get under `expiry`, or `undefined` when it has outlived its
   * absolute lifetime (and is deleted).
   */
  #ttl(id: string, entry: Entry, expiry: StoreExpiry): number | undefined {
    if (expiry.maxAgeMs === null) return expiry.ttlMs;
    const created = parseStoredTime(entry.fields.get(CREATED_AT_FIELD));
    const left = created === undefined ? 0 : created + expiry.maxAgeMs - expiry.now;
    if (left > 0) return Math.min(expiry.ttlMs, left);
    this.#delete(id);
    return undefined;
  }

  /**
   * The live session `id` for a write: `undefined` when there is none, a rejection with
   * `SESSION_GONE` when it was ended recently.
   */
  #writable(id: string, expiry: StoreExpiry): Entry | undefined {
    const entry = this.#live(id, true);
    if (entry?.revokedAt !== undefined && (expiry.since ?? expiry.now) >= entry.revokedAt) return undefined;
    if (entry?.ended) throw sessionEnded();
    return entry;
  }

  /**
   * Replaces `id` with the mark that it ended, kept for {@link ENDED_GRACE_MS}. Marks hold no
   * data: they count against `maxSessions` only.
   */
  #end(id: string, movedTo?: string, revokedAt?: number): void {
    this.#delete(id);
    const entry: Entry = { fields: new Map(), expiresAt: Date.now() + ENDED_GRACE_MS, bytes: 0, dataBytes: 0, ended: true };
    if (movedTo !== undefined) entry.movedTo = movedTo;
    if (revokedAt !== undefined) entry.revokedAt = revokedAt;
    this.#sessions.set(id, entry);
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
      this.#delete(oldest);
    }
    const entry = this.#insert(id, Date.now() + ttlMs);
    for (const [field, value] of fields) this.#set(entry, field, value);
    this.#index(id, entry.fields);
    this.#fit(id);
    return true;
  }

  /** {@inheritDoc Store.update} */
  async update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean> {
    const entry = this.#writable(id, expiry);
    if (entry === undefined) return false;
    const ttl = this.#ttl(id, entry, expiry);
    if (ttl === undefined) return false;
    if (!within(entry, set, remove, limits)) throw limitExceeded();
    entry.expiresAt = Date.now() + ttl;
    for (const [field, value] of set) this.#set(entry, field, value);
    for (const field of remove) this.#set(entry, field, undefined);
    // Like Redis, which deletes a hash when its last field goes.
    if (entry.fields.size === 0) this.#delete(id);
    this.#fit(id);
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
    const entry = this.#writable(id, expiry);
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
    if (!within(entry, [[field, String(next)], ...set], [], limits)) throw limitExceeded();
    entry.expiresAt = Date.now() + ttl;
    this.#set(entry, field, String(next));
    for (const [name, value] of set) this.#set(entry, name, value);
    this.#fit(id);
    return next;
  }

  /** {@inheritDoc Store.move} */
  async move(from: string, to: string, change: StoreChange, expiry: StoreExpiry): Promise<Map<string, string> | null> {
    const entry = this.#writable(from, expiry);
    if (entry === undefined) return null;
    const ttl = this.#ttl(from, entry, expiry);
    if (ttl === undefined) return null;
    // Ids are random: only a revocation that ran first (following an earlier move's mark) holds the new one.
    if (this.#live(to, false)) throw sessionEnded();
    const fields = new Map(entry.fields);
    for (const field of change.remove) fields.delete(field);
    for (const [field, value] of change.set) fields.set(field, value);
    if (parseStoredTime(fields.get(CREATED_AT_FIELD)) === undefined) fields.set(CREATED_AT_FIELD, String(expiry.now));
    this.#end(from, to);
    const moved = this.#insert(to, Date.now() + ttl);
    for (const [field, value] of fields) this.#set(moved, field, value);
    this.#index(to, moved.fields);
    this.#fit(to);
    return fields;
  }

  /** {@inheritDoc Store.destroy} */
  async destroy(id: string): Promise<void> {
    if (this.#live(id, false)) this.#end(id);
  }

  /** {@inheritDoc UserIndexStore.userSessions} */
  async userSessions(userId: string): Promise<IndexedSession[]> {
    const found: IndexedSession[] = [];
    for (const id of [...(this.#users.get(userId) ?? [])]) {
      // Reading an expired entry deletes it, and its index entry with it.
      const entry = this.#live(id, false);
      if (entry !== undefined && !entry.ended && entry.fields.get(USER_FIELD) === userId) found.push({ id, fields: metadataOf(entry.fields) });
    }
    return found;
  }

  /** {@inheritDoc UserIndexStore.endSessions} */
  async endSessions(userId: string, ids: readonly string[]): Promise<number> {
    const now = Date.now();
    let ended = 0;
    const pending = [...ids];
    const seen = new Set<string>();
    while (pending.length > 0 && seen.size < ids.length + MAX_MOVES_FOLLOWED) {
      const id = pending.pop() as string;
      if (seen.has(id)) continue;
      seen.add(id);
      const entry = this.#live(id, false);
      const user = entry?.fields.get(USER_FIELD);
      if (user !== undefined && user !== userId) continue;
      if (entry?.movedTo !== undefined) pending.push(entry.movedTo);
      // An id that ended already stays as it ended (see UserIndexStore.endSessions).
      if (entry?.ended) continue;
      if (entry !== undefined) ended++;
      this.#end(id, undefined, now);
    }
    return ended;
  }

  /** {@inheritDoc UserIndexStore.endUserSessions} */
  async endUserSessions(userId: string, except: readonly string[]): Promise<number> {
    const kept = new Set(except);
    return this.endSessions(userId, [...(this.#users.get(userId) ?? [])].filter((id) => !kept.has(id)));
  }

  /** {@inheritDoc UserIndexStore.scanSessions} */
  async *scanSessions(): AsyncIterable<readonly IndexedSession[]> {
    this.#sweep(Infinity);
    const batch: IndexedSession[] = [];
    for (const [id, entry] of this.#sessions) if (!entry.ended) batch.push({ id, fields: metadataOf(entry.fields) });
    if (batch.length > 0) yield batch;
  }

  /** Drops every session. */
  async close(): Promise<void> {
    this.#sessions.clear();
    this.#users.clear();
    this.#bytes = 0;
  }
}
