import { SessionError } from '../core/errors.js';
import { MAX_COUNTER, sessionEnded, type Store, type StoreChange, type StoreExpiry, type StoreField, type StoreLimits } from './store.js';
import type { RedisClientLike, RedisConnectionOptions } from './redis-client.js';
import { Script, toFieldMap, type RedisRunner } from './redis-runner.js';
import { chunked, CREATE, flatten, openRedisStore, scriptError } from './redis.js';

/** Options of {@link BottleRedisStore}. */
export interface BottleRedisStoreOptions {
  /** As RedisStore's `redis` option: a node-redis or ioredis client (never closed by the store), a `redis://` URL, or `{ host, port, db, password }`. */
  redis?: RedisClientLike | string | RedisConnectionOptions;
  /**
   * Prefix of every key; bottle-session's is `session:`, hard-coded in the plugin.
   * @default 'session:'
   */
  prefix?: string;
  /**
   * Milliseconds to wait for Redis before an operation fails with `STORE_UNAVAILABLE`.
   * @default 2000
   */
  commandTimeout?: number;
}

/**
 * Fields the session counts in {@link StoreLimits.maxFields} that this store never writes:
 * latchkey's created-at and last-seen (see `SessionManager.storeLimits`).
 */
const STAMP_FIELDS = 2;

/** Times a move copies a session that kept changing under it before it gives up. */
const MOVE_ATTEMPTS = 4;

// Each script touches one key, so it runs unchanged on Redis Cluster. ARGV[1] is the TTL (ms),
// ARGV[2] the most fields the session may hold.

/**
 * For an existing key only: sets the ARGV[3] pairs from ARGV[4..], then deletes the fields after
 * them, and resets the TTL. The field count is checked only when the write could pass the limit,
 * with HEXISTS on the fields it names, so a write costs what it touches. Redis deletes a hash
 * left without fields.
 */
const UPDATE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[3]) * 2
local max = tonumber(ARGV[2])
local fields = redis.call('HLEN', KEYS[1])
if fields + n / 2 > max then
  for i = 4, 3 + n, 2 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then fields = fields + 1 end
  end
  for i = 4 + n, #ARGV do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then fields = fields - 1 end
  end
  if fields > max then return redis.error_reply('LIMIT the session would pass its limits') end
end
${chunked('HSET', '4', '3 + n')}
${chunked('HDEL', '4 + n', '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`);

/**
 * For an existing key only: HINCRBY ARGV[3] by ARGV[4] (a field holding no integer fails before
 * anything changed; a result past MAX_COUNTER is undone), sets the pairs in ARGV[5..], resets the TTL.
 */
const INCREMENT = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local existed = redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1
if not existed and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then return redis.error_reply('LIMIT the session would pass its limits') end
local v = redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[4])
if v > ${MAX_COUNTER} or v < -${MAX_COUNTER} then
  -- 0 - by, not -by: Lua writes -0 as '-0', which HINCRBY refuses.
  if existed then redis.call('HINCRBY', KEYS[1], ARGV[3], 0 - tonumber(ARGV[4])) else redis.call('HDEL', KEYS[1], ARGV[3]) end
  return redis.error_reply('ERR increment would overflow ${MAX_COUNTER}')
end
${chunked('HSET', '5', '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return v`);

/**
 * Replaces the whole hash with the pairs in ARGV[2..] and sets the TTL ARGV[1]: a move's new id,
 * copied again because the old one changed meanwhile. Nobody but the mover knows the new id.
 */
const REPLACE = new Script(`
redis.call('DEL', KEYS[1])
${chunked('HSET', '2', '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`);

/**
 * The last step of a move: deletes the old session if it still holds exactly the pairs in ARGV
 * (what the move copied), and returns 1; otherwise returns what it holds now (empty when it is
 * gone), so that the move copies that again, or gives up.
 */
const END_UNCHANGED = new Script(`
if redis.call('HLEN', KEYS[1]) * 2 ~= #ARGV then return {redis.call('HGETALL', KEYS[1])} end
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return {redis.call('HGETALL', KEYS[1])} end
end
redis.call('DEL', KEYS[1])
return 1`);

/**
 * The session's fields, its TTL reset to ARGV[1] if it exists: a read that extends the expiry, as
 * the plugin's EXISTS and EXPIRE do on every request, in one round trip.
 */
const LOAD_TOUCHED = new Script(`
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return h`);

/**
 * latchkey's name for a field, to the layout's: the session escapes an app's key starting with
 * `:` as `::key`, and keeps its own metadata in other `:` fields, which the layout has no place
 * for (`undefined`).
 */
function toLayout(field: string): string | undefined {
  if (field.charCodeAt(0) !== 0x3a) return field;
  return field.charCodeAt(1) === 0x3a ? field.slice(1) : undefined;
}

/** The layout's field name as latchkey's session reads it: a key starting with `:` escaped as `::key`. */
function fromLayout(field: string): string {
  return field.charCodeAt(0) === 0x3a ? `:${field}` : field;
}

/** The layout's pairs of `fields`, latchkey's metadata left out. */
function layoutPairs(fields: Iterable<StoreField>): string[] {
  const out: string[] = [];
  for (const [field, value] of fields) {
    const name = toLayout(field);
    if (name !== undefined) out.push(name, value);
  }
  return out;
}

/** A stored hash, as the session reads it. */
function toSessionView(stored: Map<string, string>): Map<string, string> {
  for (const field of stored.keys()) {
    if (field.charCodeAt(0) === 0x3a) return new Map([...stored].map(([name, value]) => [fromLayout(name), value]));
  }
  return stored;
}

/** The fields to write under a move's new id: the old ones with `change` applied, in the layout. */
function movedPairs(stored: Map<string, string>, change: StoreChange): Map<string, string> {
  const fields = new Map(stored);
  for (const field of change.remove) {
    const name = toLayout(field);
    if (name !== undefined) fields.delete(name);
  }
  for (const [field, value] of change.set) {
    const name = toLayout(field);
    if (name !== undefined) fields.set(name, value);
  }
  return fields;
}

/**
 * Sessions in bottle-session 1.0's Redis layout, shared live with a Python Bottle app: one hash
 * per session under `prefix` + the dashed UUID (the id latchkey's bottle-session format gives it,
 * unhashed), one field per key of the app holding its plain UTF-8 value, the key's TTL as the
 * idle timeout. Nothing else is written: latchkey's metadata fields are left out on the way in,
 * and a field of the app whose name starts with `:` is stored under that very name.
 *
 * What this layout cannot keep of the Store contract, because it has no field to keep it in:
 * - No "ended" marks: an id ended by {@link BottleRedisStore.destroy} or a move is simply gone,
 *   so a request that was under way during a logout finds no session (its writes fail with
 *   `SESSION_GONE` if it had seen the session, and otherwise it starts a new one) rather than
 *   getting the {@link ENDED_GRACE_MS} guarantee.
 * - `limits.maxSessionBytes` is not checked against what the session holds (that needs a tally
 *   field); each write's own keys and values are still checked by the session, and `maxKeys`
 *   is checked here with HLEN.
 * - A move is three round trips, each on one key: read the old hash, create the new one (never
 *   over an existing key), delete the old one only if it is unchanged since it was read, else
 *   copy it again (so a write the Python app made meanwhile is not lost).
 *
 * Every other operation is one round trip, one key, on standalone Redis, Sentinel and Cluster.
 */
export class BottleRedisStore implements Store {
  readonly #redis: RedisRunner;
  readonly #prefix: string;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when an option is not usable
   */
  constructor(options: BottleRedisStoreOptions = {}) {
    const { prefix, redis } = openRedisStore(options);
    this.#prefix = prefix;
    this.#redis = redis;
  }

  #key(id: string): string {
    return this.#prefix + id;
  }

  async #read(what: string, key: string): Promise<Map<string, string> | null> {
    return toFieldMap(await this.#redis.command(what, key, ['HGETALL', key]));
  }

  /** {@inheritDoc Store.load} */
  async load(id: string): Promise<Map<string, string> | null> {
    const stored = await this.#read('load', this.#key(id));
    return stored === null ? null : toSessionView(stored);
  }

  /** {@inheritDoc Store.loadTouched} */
  async loadTouched(id: string, expiry: StoreExpiry): Promise<Map<string, string> | null> {
    const stored = toFieldMap(await this.#redis.script('load', LOAD_TOUCHED, this.#key(id), [String(expiry.ttlMs)]));
    return stored === null ? null : toSessionView(stored);
  }

  /**
   * {@inheritDoc Store.create}
   *
   * Fields of latchkey's own are not stored; a session with nothing else is not stored at all
   * (as in bottle-session, a key exists only once something was written to it).
   */
  async create(id: string, fields: readonly StoreField[], ttlMs: number): Promise<boolean> {
    const pairs = layoutPairs(fields);
    if (pairs.length === 0) return true;
    const key = this.#key(id);
    return (await this.#redis.script('create', CREATE, key, [String(ttlMs), ...pairs])) === 1;
  }

  /** {@inheritDoc Store.update} */
  async update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean> {
    const key = this.#key(id);
    const pairs = layoutPairs(set);
    const removed: string[] = [];
    for (const field of remove) {
      const name = toLayout(field);
      if (name !== undefined) removed.push(name);
    }
    const ttl = String(expiry.ttlMs);
    // A read that only extends the expiry: one plain command.
    if (pairs.length === 0 && removed.length === 0) return Number(await this.#redis.command('update', key, ['PEXPIRE', key, ttl])) === 1;
    const args = [ttl, String(limits.maxFields - STAMP_FIELDS), String(pairs.length / 2), ...pairs, ...removed];
    try {
      return (await this.#redis.script('update', UPDATE, key, args)) === 1;
    } catch (error) {
      throw scriptError(error);
    }
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
    const name = toLayout(field);
    if (name === undefined) throw new SessionError('INVALID_ARGUMENT', `cannot increment latchkey's own field '${field}' in bottle-session's layout`);
    const key = this.#key(id);
    const args = [String(expiry.ttlMs), String(limits.maxFields - STAMP_FIELDS), name, String(by), ...layoutPairs(set)];
    try {
      const reply = await this.#redis.script('increment', INCREMENT, key, args);
      return reply === null || reply === undefined ? null : Number(reply);
    } catch (error) {
      throw scriptError(error, field);
    }
  }

  /**
   * {@inheritDoc Store.move}
   *
   * Resolves `null` when `from` holds nothing; rejects with `SESSION_GONE` when `from` was deleted
   * while the move ran (a logout in either app), leaving no session under `to`.
   */
  async move(from: string, to: string, change: StoreChange, expiry: StoreExpiry): Promise<Map<string, string> | null> {
    const fromKey = this.#key(from);
    const toKey = this.#key(to);
    let read = await this.#read('move', fromKey);
    if (read === null) return null;
    const ttl = String(expiry.ttlMs);
    let copied = movedPairs(read, change);
    try {
      if ((await this.#redis.script('move', CREATE, toKey, [ttl, ...flatten(copied)])) !== 1) {
        throw new SessionError('STORE_ERROR', 'a fresh session id was already taken in Redis; nothing was moved');
      }
      for (let attempt = 1; ; attempt++) {
        const reply = await this.#redis.script('move', END_UNCHANGED, fromKey, flatten(read));
        if (reply === 1 || reply === '1') return toSessionView(copied);
        const now = toFieldMap(Array.isArray(reply) ? reply[0] : reply);
        // Deleted meanwhile (a logout, in this app or the Python one): so is the copy.
        if (now === null) throw sessionEnded();
        if (attempt >= MOVE_ATTEMPTS) {
          throw new SessionError('STORE_ERROR', `the session kept changing while it was regenerated (${MOVE_ATTEMPTS} copies); it was left under its old id`);
        }
        read = now;
        copied = movedPairs(read, change);
        await this.#redis.script('move', REPLACE, toKey, [ttl, ...flatten(copied)]);
      }
    } catch (error) {
      // The old id keeps the session; the copy, which nobody has the id of, goes.
      await this.#redis.command('move', toKey, ['DEL', toKey]).catch(() => undefined);
      throw error;
    }
  }

  /** {@inheritDoc Store.destroy} */
  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    await this.#redis.command('destroy', key, ['DEL', key]);
  }

  /** Closes the client if this store created it; a client that was passed in is left open. */
  async close(): Promise<void> {
    await this.#redis.close();
  }
}
