import { SessionError } from '../core/errors.js';
import {
  CREATED_AT_FIELD,
  ENDED_GRACE_MS,
  LAST_SEEN_FIELD,
  limitExceeded,
  MAX_COUNTER,
  parseStoredTime,
  sessionEnded,
  STATE_FIELD,
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
import {
  replyErrorCode,
  type RedisClientLike,
  type RedisConnectionOptions,
} from './redis-client.js';
import { RedisRunner, Script, toFieldMap } from './redis-runner.js';
import type { ForeignRecord, ForeignRecords, ForeignRecordsStore } from './foreign.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /**
   * An existing node-redis or ioredis client (shared with the app and never closed by latchkey),
   * a `redis://` URL, or `{ host, port, db, password }` for a client the store creates and closes.
   * @default 'redis://localhost:6379/0'
   */
  redis?: RedisClientLike | string | RedisConnectionOptions;
  /**
   * Prefix of every key the store writes.
   * @default 'session:'
   */
  prefix?: string;
  /**
   * Milliseconds to wait for Redis before an operation fails with `STORE_UNAVAILABLE`.
   * @default 2000
   */
  commandTimeout?: number;
}

/** The defaults of {@link RedisStoreOptions}. */
export const DEFAULT_REDIS_STORE_OPTIONS = {
  redis: 'redis://localhost:6379/0',
  prefix: 'session:',
  commandTimeout: 2000,
} as const;

/** Round trips of a move; its mark outlives that many command timeouts. */
const MOVE_STEPS = 4;

/**
 * RedisStore's tally of a session's size, `<bytes>/<fields>/<last-seen>`: the bytes of every field
 * name and value and the number of fields, its own and {@link STATE_FIELD} left out, which the
 * limits count, and the {@link LAST_SEEN_FIELD} value written with it. Kept so that a write checks
 * the limits without reading the whole hash; never part of what {@link RedisStore.load} returns.
 *
 * Every latchkey write sets the last-seen field. A tally whose last-seen is not the session's was
 * left behind by a writer that does not keep it (a version of latchkey before it, during a
 * rolling upgrade), so the next write counts the hash again rather than trust it.
 */
export const BYTES_FIELD = ':b';

// Each script touches exactly one key, so it runs unchanged on Redis Cluster. Scripts that change a
// session take ARGV[1..3] = idle TTL (ms), absolute lifetime (ms, 0 for none), now (ms); those that
// check limits ARGV[4..5] = most fields, most bytes.

/**
 * Lua that runs `command` on KEYS[1] with ARGV[from..to] as arguments, in chunks of 1000 (an even
 * number, so field-value pairs stay together): Lua's `unpack` fails at a few thousand values, and
 * limits can be raised that far. A loop rather than a function, which each call would allocate.
 */
export function chunked(command: string, from: string, to: string): string {
  return `for i = ${from}, ${to}, 1000 do redis.call('${command}', KEYS[1], unpack(ARGV, i, math.min(i + 999, ${to}))) end`;
}

/**
 * Checks the session without reading it whole: one `HMGET` of the store's state field, the
 * created-at and last-seen fields and the byte tally, into `meta`. For a missing session, or one
 * past its absolute lifetime or without a valid created-at field while one applies (which it
 * deletes), or one revoked (see END_USER) before the request began (ARGV[3] is `now/since`,
 * or `now` for a request that began now), the script returns `gone`; for an ended session, one
 * revoked while the request was under way, or one another request is moving, a GONE error. A mark left by a move that failed and could not clean up is removed once its
 * deadline passed. Leaves the TTL to set in `ttl`.
 */
const head = (gone: string): string => `
local meta = redis.call('HMGET', KEYS[1], '${STATE_FIELD}', '${CREATED_AT_FIELD}', '${BYTES_FIELD}', '${LAST_SEEN_FIELD}')
local state, created = meta[1], meta[2]
if not (state or created or meta[3] or meta[4]) and redis.call('EXISTS', KEYS[1]) == 0 then return ${gone} end
local now, since = string.match(ARGV[3], '^(%d+)/?(%d*)$')
now = tonumber(now)
since = tonumber(since) or now
local revoked = state and string.match(state, '^r(%d+)$')
if revoked then
  if since < tonumber(revoked) then return redis.error_reply('GONE the session was revoked') end
  return ${gone}
end
if state then
  local deadline = string.match(state, '^m(%d+):')
  if not deadline or tonumber(deadline) > now then return redis.error_reply('GONE the session was ended') end
  redis.call('HDEL', KEYS[1], '${STATE_FIELD}')
end
local ttl = tonumber(ARGV[1])
local maxAge = tonumber(ARGV[2])
if maxAge > 0 then
  local left = nil
  if created and #created <= 15 and string.find(created, '^%d+$') then left = tonumber(created) + maxAge - now end
  if not left or left <= 0 then
    redis.call('DEL', KEYS[1])
    return ${gone}
  end
  if left < ttl then ttl = left end
end`;

/**
 * {@link head}, then the session's size, from the tally in {@link BYTES_FIELD}: `bytes`, `fields`,
 * and `stamp`, the last-seen value the tally goes with. A session without a tally, or whose tally
 * is damaged or stale (its last-seen is not the session's), is counted once from HGETALL. Writes
 * then follow the size field by field (see {@link STORED_SIZE}), so a write costs Redis the same
 * whatever else the session holds. The scripts define no functions and tables: Redis runs them
 * often, and what each call allocates, the Lua collector has to free.
 */
const tallied = (gone: string): string => `${head(gone)}
local last = meta[4]
local stamp = last or ''
local tallied, counted, stamped = string.match(meta[3] or '', '^(%d+)/(%d+)/(%d*)$')
local bytes, fields = tonumber(tallied), tonumber(counted)
if stamped ~= stamp or not bytes or not fields then
  bytes, fields = 0, 0
  local h = redis.call('HGETALL', KEYS[1])
  for i = 1, #h, 2 do
    if h[i] ~= '${BYTES_FIELD}' and h[i] ~= '${STATE_FIELD}' then
      bytes = bytes + #h[i] + #h[i + 1]
      if ${counted('h[i]')} then fields = fields + 1 end
    end
  end
end
local was`;

/**
 * Lua that sets `was` to what the field named `name` takes now (its name and value bytes), or
 * false when the session has no such field: the last-seen field's size is known from `head`, any
 * other's comes from HSTRLEN (and HEXISTS, for an empty value). Each field appears once in a write.
 */
const STORED_SIZE = `
  if name == '${LAST_SEEN_FIELD}' then
    was = last and ${LAST_SEEN_FIELD.length} + #last
  else
    was = redis.call('HSTRLEN', KEYS[1], name)
    if was > 0 or redis.call('HEXISTS', KEYS[1], name) == 1 then was = #name + was else was = false end
  end`;

/**
 * Lua that counts the pairs to set in ARGV[from..to] into the session's size: each replaces what
 * its field took (see {@link STORED_SIZE}), and a last-seen value becomes the tally's stamp.
 */
function countSetPairs(from: string, to: string): string {
  return `
for i = ${from}, ${to}, 2 do
  local name = ARGV[i]${STORED_SIZE}
  if was then bytes = bytes - was elseif ${counted('name')} then fields = fields + 1 end
  bytes = bytes + #name + #ARGV[i + 1]
  if name == '${LAST_SEEN_FIELD}' then stamp = ARGV[i + 1] end
end`;
}

/**
 * Lua that is true when the field `name` counts against the field limit: latchkey's metadata of a
 * signed-in session (user, client) does not, so that signing in leaves the app its `maxKeys`.
 */
function counted(name: string): string {
  return UNCOUNTED_FIELDS.map((field) => `${name} ~= '${field}'`).join(' and ');
}

/** Lua that is true when the session, as counted, passes the limits in ARGV[4..5]. */
const PAST_LIMITS = 'bytes > tonumber(ARGV[5]) or fields > tonumber(ARGV[4])';

const LIMIT_REPLY = "redis.error_reply('LIMIT the session would pass its limits')";

/**
 * Reads another library's record (see {@link ForeignRecords}): the string under KEYS[1] and its
 * PTTL together, or false when the key holds no string.
 */
const FOREIGN_READ = new Script(`
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return false end
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`);

/** What {@link FOREIGN_READ} answered, as a {@link ForeignRecord}. */
function toForeignRecord(reply: unknown): ForeignRecord | null {
  if (!Array.isArray(reply) || reply.length !== 2 || reply[0] === null || reply[0] === undefined) return null;
  const ttl = Number(reply[1]);
  return { value: String(reply[0]), ttlMs: ttl > 0 ? ttl : undefined };
}

/**
 * Creates the hash from the pairs in ARGV[2..] unless the key exists; ARGV[1] is the TTL. The
 * pairs include the byte tally (see {@link withTally}).
 */
export const CREATE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
${chunked('HSET', '2', '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`);

/**
 * For an existing key only: ARGV[6] pairs to set from ARGV[7..], the last of them the byte tally
 * with a value the script fills in, then fields to delete. A session left without fields is
 * deleted.
 */
const UPDATE = new Script(`${tallied('0')}
local n = tonumber(ARGV[6]) * 2${countSetPairs('7', '4 + n')}
for i = 7 + n, #ARGV do
  local name = ARGV[i]${STORED_SIZE}
  if was then
    bytes = bytes - was
    if ${counted('name')} then fields = fields - 1 end
  end
  if name == '${LAST_SEEN_FIELD}' then stamp = '' end
end
if ${PAST_LIMITS} then return ${LIMIT_REPLY} end
if fields == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
ARGV[6 + n] = bytes .. '/' .. fields .. '/' .. stamp
${chunked('HSET', '7', '6 + n')}
${chunked('HDEL', '7 + n', '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ttl)
return 1`);

/**
 * For an existing key only: HINCRBY ARGV[6] by ARGV[7], then new TTL and the pairs in ARGV[8..],
 * the last of them the byte tally with a value the script fills in. HINCRBY goes first so that a
 * field holding no integer fails before anything has changed; a result past MAX_COUNTER or the
 * limits is undone and fails too. Redis keeps the result as its decimal digits, so their count is
 * its new size.
 */
const INCREMENT = new Script(`${tallied('false')}
local name = ARGV[6]${STORED_SIZE}
local existed = was and true or false
local v = redis.call('HINCRBY', KEYS[1], name, ARGV[7])
local digits = string.format('%d', v)
if was then bytes = bytes - was elseif ${counted('name')} then fields = fields + 1 end
bytes = bytes + #name + #digits
if name == '${LAST_SEEN_FIELD}' then
  last = digits
  stamp = digits
end${countSetPairs('8', '#ARGV - 2')}
local failure = nil
if v > ${MAX_COUNTER} or v < -${MAX_COUNTER} then
  failure = redis.error_reply('ERR increment would overflow ${MAX_COUNTER}')
elseif ${PAST_LIMITS} then
  failure = ${LIMIT_REPLY}
end
if failure then
  -- 0 - by, not -by: Lua writes -0 as '-0', which HINCRBY refuses.
  if existed then redis.call('HINCRBY', KEYS[1], ARGV[6], 0 - tonumber(ARGV[7])) else redis.call('HDEL', KEYS[1], ARGV[6]) end
  return failure
end
ARGV[#ARGV] = bytes .. '/' .. fields .. '/' .. stamp
${chunked('HSET', '8', '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ttl)
return v`);

/**
 * The first step of a move: marks the session as being moved (ARGV[4], `m<deadline>:<new id>`),
 * so that no other request writes to it meanwhile, and returns its fields.
 */
const MARK = new Script(`${head('false')}
redis.call('HSET', KEYS[1], '${STATE_FIELD}', ARGV[4])
return redis.call('HGETALL', KEYS[1])`);

/**
 * The last step of a move: ends the session if it still carries this move's mark (ARGV[1]). For
 * a session signed in to a user, the mark that it ended names the new id (ARGV[3], else ''), so
 * that a revocation of the user that read the index before the new id was in it ends that too.
 */
const END_MOVED = new Script(`
if redis.call('HGET', KEYS[1], '${STATE_FIELD}') ~= ARGV[1] then return 0 end
redis.call('UNLINK', KEYS[1])
if ARGV[3] == '' then redis.call('HSET', KEYS[1], '${STATE_FIELD}', 'e') else redis.call('HSET', KEYS[1], '${STATE_FIELD}', 'e:' .. ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`);

/** Undoes the mark of a move that failed (ARGV[1]), so the session is usable again at once. */
const UNMARK = new Script(`
if redis.call('HGET', KEYS[1], '${STATE_FIELD}') == ARGV[1] then redis.call('HDEL', KEYS[1], '${STATE_FIELD}') end
return 1`);

/**
 * Ends an existing session: its data goes, a mark saying it ended stays for ARGV[1] ms. Returns
 * the user the session was signed in as, if any, so that the store can remove it from the index.
 */
const DESTROY = new Script(`
local user = redis.call('HGET', KEYS[1], '${USER_FIELD}')
if redis.call('UNLINK', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], '${STATE_FIELD}', 'e')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return user or 1`);

/**
 * Revokes a session of the user ARGV[1]: its data goes, and a mark stays for ARGV[2] ms, whether or
 * not it is stored (so that a move still under way cannot make it later), unless it holds a
 * session of another user. The mark is 'r' and the time of the revocation (ARGV[3]): unlike 'e',
 * writes of requests that began after it find no session rather than fail, so the revoked browser,
 * which was given no newer cookie, gets a new session at its next write; those of requests under
 * way fail (see head). An id that had already ended keeps its 'e'. Returns false for another user's session, else whether a
 * session was stored (1 or 0) and the id it was being moved, or was moved, to ('' for none).
 */
const END_USER = new Script(`
local meta = redis.call('HMGET', KEYS[1], '${USER_FIELD}', '${STATE_FIELD}')
local user, state = meta[1], meta[2]
if user and user ~= ARGV[1] then return false end
local moved = state and (string.match(state, '^m%d+:(.+)$') or string.match(state, '^e:(.+)$')) or ''
local live = 0
if (not state or string.sub(state, 1, 1) == 'm') and redis.call('EXISTS', KEYS[1]) == 1 then live = 1 end
local mark = 'r' .. ARGV[3]
if state and string.sub(state, 1, 1) == 'e' then mark = 'e' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '${STATE_FIELD}', mark)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {live, moved}`);

/**
 * Adds the session ARGV[1] to a user's index (KEYS[1], a hash of storage ids to the time they
 * were indexed, ARGV[2]). The index lives at least ARGV[3] ms, the longest a session may last, or
 * for ever when that is 0 (sessions without an absolute lifetime); expired entries are removed
 * when the index is read.
 */
const INDEX = new Script(`
local fresh = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl == 0 then
  redis.call('PERSIST', KEYS[1])
else
  local left = redis.call('PTTL', KEYS[1])
  if fresh or (left >= 0 and left < ttl) then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 1`);

/** The fields a listing reads of each session: the state, then latchkey's metadata. */
const LISTED_FIELDS = [STATE_FIELD, ...METADATA_FIELDS];

/** Ids an ended session was moved through, followed at most this far (a chain of regenerations within the grace time). */
const MAX_MOVES_FOLLOWED = 16;

/** Keys SCAN is asked for per call. */
const SCAN_COUNT = '1000';

/** `text` with the characters that are special in a Redis glob pattern escaped. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * A session's metadata from an HMGET of {@link LISTED_FIELDS}, or `null` when the session is not
 * live (not stored, or ended).
 */
function listedSession(id: string, reply: unknown): IndexedSession | null {
  if (!Array.isArray(reply)) return null;
  const [state, ...values] = reply as unknown[];
  if (typeof state === 'string' && !/^m[0-9]+:/.test(state)) return null;
  const fields = new Map<string, string>();
  METADATA_FIELDS.forEach((name, i) => {
    const value = values[i];
    if (value !== null && value !== undefined) fields.set(name, String(value));
  });
  return fields.size === 0 ? null : { id, fields };
}

/** The id a session ended by a move went to, from an HMGET of {@link LISTED_FIELDS}, if it was moved. */
function movedTo(reply: unknown): string | undefined {
  const state: unknown = Array.isArray(reply) ? reply[0] : undefined;
  return typeof state === 'string' ? /^e:(.+)$/.exec(state)?.[1] : undefined;
}

function expiryArgs(expiry: StoreExpiry): string[] {
  // `now/since`: when the request began travels with the time, for revoked ids (see head).
  const now = expiry.since === undefined ? String(expiry.now) : `${expiry.now}/${expiry.since}`;
  return [String(expiry.ttlMs), String(expiry.maxAgeMs ?? 0), now];
}

function limitArgs(limits: StoreLimits): string[] {
  return [String(limits.maxFields), String(limits.maxBytes)];
}

/** Turns a script's own error replies (LIMIT, GONE, overflow, not an integer) into the errors the Store interface names. */
export function scriptError(error: unknown, field?: string): unknown {
  const cause = error instanceof SessionError ? error.cause : undefined;
  const code = replyErrorCode(cause);
  if (code === 'LIMIT') return limitExceeded(cause);
  if (code === 'GONE') return sessionEnded(cause);
  if (field !== undefined && code === 'ERR' && /not an integer|overflow/.test((cause as Error).message)) {
    const reason = (cause as Error).message.replace(/^ERR /, '').replace(/ script: .*$/s, '');
    return new SessionError('INVALID_ARGUMENT', `cannot increment '${field}': ${reason}`, { cause });
  }
  return error;
}

/**
 * The fields of a write, each once, with the outcome the Store contract gives: of a field set
 * twice the last value, of a field both set and removed none. The scripts count each field's
 * size once, so they take them this way.
 */
function distinct(set: readonly StoreField[], remove: readonly string[]): [readonly StoreField[], readonly string[]] {
  // The usual write: a field or two and the last-seen time, nothing removed.
  if (remove.length === 0 && (set.length < 2 || (set.length === 2 && set[0]?.[0] !== set[1]?.[0]))) return [set, remove];
  const removed = new Set(remove);
  const values = new Map<string, string>();
  for (const [field, value] of set) if (!removed.has(field)) values.set(field, value);
  return [[...values], [...removed]];
}

/** Whether `field` is one the field limit does not count. */
function isUncounted(field: string): boolean {
  return (UNCOUNTED_FIELDS as readonly string[]).includes(field);
}

/** The pairs of a new session, with its byte tally (see {@link BYTES_FIELD}) last. */
function withTally(fields: Iterable<StoreField>): string[] {
  const out: string[] = [];
  let bytes = 0;
  let count = 0;
  let stamp = '';
  for (const [field, value] of fields) {
    out.push(field, value);
    bytes += Buffer.byteLength(field) + Buffer.byteLength(value);
    if (!isUncounted(field)) count++;
    if (field === LAST_SEEN_FIELD) stamp = value;
  }
  out.push(BYTES_FIELD, `${bytes}/${count}/${stamp}`);
  return out;
}

/** Field-value pairs as the flat list of arguments HSET and the scripts take. */
export function flatten(fields: Iterable<StoreField>): string[] {
  const out: string[] = [];
  for (const [field, value] of fields) out.push(field, value);
  return out;
}

/**
 * The prefix and the Redis connection of a store taking {@link RedisStoreOptions} (RedisStore, and
 * the store of bottle-session's layout), with the defaults applied and the options checked.
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is not usable
 */
export function openRedisStore(options: RedisStoreOptions): { readonly prefix: string; readonly redis: RedisRunner } {
  const { redis = DEFAULT_REDIS_STORE_OPTIONS.redis, prefix = DEFAULT_REDIS_STORE_OPTIONS.prefix } = options;
  const timeout = options.commandTimeout ?? DEFAULT_REDIS_STORE_OPTIONS.commandTimeout;
  if (typeof prefix !== 'string') {
    throw new SessionError('INVALID_OPTIONS', `prefix must be a string such as 'session:', got ${typeof prefix}`);
  }
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
    throw new SessionError('INVALID_OPTIONS', `commandTimeout must be a number of milliseconds above 0, got ${String(timeout)}`);
  }
  return { prefix, redis: new RedisRunner(redis, timeout) };
}

/**
 * Sessions in Redis: one hash per session (`prefix` + storage id), one field per attribute, the
 * key's TTL as the idle timeout. Every operation is a single command or a single-key Lua script,
 * so each is one round trip and works on standalone Redis, Sentinel and Cluster alike. Works with
 * node-redis and ioredis clients.
 */
export class RedisStore implements UserIndexStore, ForeignRecordsStore {
  readonly #redis: RedisRunner;
  readonly #prefix: string;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when an option is not usable
   */
  constructor(options: RedisStoreOptions = {}) {
    const { prefix, redis } = openRedisStore(options);
    this.#prefix = prefix;
    this.#redis = redis;
  }

  #command(what: string, key: string, args: readonly string[]): Promise<unknown> {
    return this.#redis.command(what, key, args);
  }

  #script(what: string, script: Script, key: string, args: readonly string[]): Promise<unknown> {
    return this.#redis.script(what, script, key, args);
  }

  #key(id: string): string {
    return this.#prefix + id;
  }

  /** The key of a user's index. Session keys hold no ':' after the prefix, so the two never meet. */
  #userKey(userId: string): string {
    return `${this.#prefix}user:${userId}`;
  }

  /** Adds the session `id` to the index of `user`, for sessions that may live `maxAgeMs`. */
  async #index(user: string, id: string, maxAgeMs: number | null | undefined): Promise<void> {
    await this.#script('index', INDEX, this.#userKey(user), [id, String(Date.now()), String(maxAgeMs ?? 0)]);
  }

  /** Removes ids from a user's index; a failure leaves entries that the next listing removes. */
  async #unindex(user: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const key = this.#userKey(user);
    await this.#command('unindex', key, ['HDEL', key, ...ids]).catch(() => undefined);
  }

  /** {@inheritDoc Store.load} */
  async load(id: string): Promise<Map<string, string> | null> {
    const key = this.#key(id);
    const fields = toFieldMap(await this.#command('load', key, ['HGETALL', key]));
    if (fields === null) return null;
    fields.delete(BYTES_FIELD);
    const state = fields.get(STATE_FIELD);
    if (state === undefined) return fields;
    // Ended, or being moved: no session. A mark whose deadline has passed belongs to a move that
    // failed without cleaning up; the session is usable again (the next write removes the mark).
    const deadline = /^m([0-9]+):/.exec(state)?.[1];
    if (deadline === undefined || Number(deadline) > Date.now()) return null;
    fields.delete(STATE_FIELD);
    return fields;
  }

  /** {@inheritDoc Store.create} */
  async create(id: string, fields: readonly StoreField[], ttlMs: number, maxAgeMs?: number | null): Promise<boolean> {
    const key = this.#key(id);
    if ((await this.#script('create', CREATE, key, [String(ttlMs), ...withTally(fields)])) !== 1) return false;
    const user = fields.find(([field]) => field === USER_FIELD)?.[1];
    if (user === undefined) return true;
    // Stored first, indexed second: an index entry whose session is not stored is one that ended,
    // and a listing may remove it. Nobody has the new id yet, so it is unusable until this resolves.
    try {
      await this.#index(user, id, maxAgeMs);
    } catch (error) {
      await this.#script('create', DESTROY, key, [String(ENDED_GRACE_MS)]).catch(() => undefined);
      throw error;
    }
    return true;
  }

  /** {@inheritDoc Store.update} */
  async update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean> {
    const key = this.#key(id);
    // The byte tally goes with the fields to set; the script fills in its value.
    const [fields, removed] = distinct(set, remove);
    const args = [...expiryArgs(expiry), ...limitArgs(limits), String(fields.length + 1), ...flatten(fields), BYTES_FIELD, '', ...removed];
    try {
      return (await this.#script('update', UPDATE, key, args)) === 1;
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
    const key = this.#key(id);
    const args = [...expiryArgs(expiry), ...limitArgs(limits), field, String(by), ...flatten(distinct(set, [])[0]), BYTES_FIELD, ''];
    try {
      const reply = await this.#script('increment', INCREMENT, key, args);
      return reply === null || reply === undefined ? null : Number(reply);
    } catch (error) {
      throw scriptError(error, field);
    }
  }

  /** {@inheritDoc Store.move} */
  async move(from: string, to: string, change: StoreChange, expiry: StoreExpiry): Promise<Map<string, string> | null> {
    const fromKey = this.#key(from);
    // Three round trips, possibly on two shards. The mark keeps other requests from writing to the
    // old session meanwhile; its deadline frees the session should this process fail to clean up.
    const token = `m${expiry.now + MOVE_STEPS * this.#redis.timeout}:${to}`;
    let reply: unknown;
    try {
      reply = await this.#script('move', MARK, fromKey, [...expiryArgs(expiry), token]);
    } catch (error) {
      throw scriptError(error);
    }
    const marked = toFieldMap(reply);
    if (marked === null) return null;
    marked.delete(STATE_FIELD);
    marked.delete(BYTES_FIELD);
    const fields = new Map(marked);
    for (const field of change.remove) fields.delete(field);
    for (const [field, value] of change.set) fields.set(field, value);
    const created = parseStoredTime(fields.get(CREATED_AT_FIELD));
    if (created === undefined) fields.set(CREATED_AT_FIELD, String(expiry.now));
    // MARK deleted a session past its absolute lifetime, so some of it is left.
    const left = expiry.maxAgeMs === null || created === undefined ? Infinity : created + expiry.maxAgeMs - expiry.now;
    const ttl = Math.max(1, Math.min(expiry.ttlMs, left));
    const toKey = this.#key(to);
    const user = fields.get(USER_FIELD);
    try {
      if ((await this.#script('move', CREATE, toKey, [String(ttl), ...withTally(fields)])) !== 1) {
        // Ids are random: only an END_USER that ran before the new session was stored marks it.
        throw sessionEnded();
      }
      if (user !== undefined) {
        try {
          await this.#index(user, to, expiry.maxAgeMs);
        } catch (error) {
          await this.#script('move', DESTROY, toKey, [String(ENDED_GRACE_MS)]).catch(() => undefined);
          throw error;
        }
      }
    } catch (error) {
      // The old session must stay usable; if Redis cannot be told now, the deadline frees it.
      await this.#script('move', UNMARK, fromKey, [token]).catch(() => undefined);
      throw error;
    }
    // The data is safe under the new id, so the move succeeded even if this step fails; the old
    // session then stays marked, and refuses writes, until the deadline.
    const formerUser = marked.get(USER_FIELD);
    let ended: unknown = 1;
    try {
      ended = await this.#script('move', END_MOVED, fromKey, [token, String(ENDED_GRACE_MS), formerUser === undefined ? '' : to]);
    } catch {
      // Left marked: see above.
    }
    if (ended !== 1) {
      // Another request ended the old session (a logout, a revocation) while this one moved it: the
      // move must not carry the session past that. Nobody has the new id; end it as well.
      await this.#script('move', DESTROY, toKey, [String(ENDED_GRACE_MS)]).catch(() => undefined);
      throw sessionEnded();
    }
    if (formerUser !== undefined) await this.#unindex(formerUser, [from]);
    return fields;
  }

  /** {@inheritDoc Store.destroy} */
  async destroy(id: string): Promise<void> {
    const user = await this.#script('destroy', DESTROY, this.#key(id), [String(ENDED_GRACE_MS)]);
    if (typeof user === 'string') await this.#unindex(user, [id]);
  }

  /** {@inheritDoc UserIndexStore.userSessions} */
  async userSessions(userId: string): Promise<IndexedSession[]> {
    const indexKey = this.#userKey(userId);
    const entries = toFieldMap(await this.#command('list', indexKey, ['HGETALL', indexKey]));
    if (entries === null) return [];
    const live: IndexedSession[] = [];
    const ended: string[] = [];
    const seen = new Set(entries.keys());
    let round = [...seen];
    // A session moved (regenerated, logged in again) between the HGETALL and the HMGETs is read
    // as ended, and its new id was indexed after the HGETALL: follow the move to it, or a
    // revocation that lists first would miss the session it was called to end.
    for (let depth = 0; round.length > 0 && depth <= MAX_MOVES_FOLLOWED; depth++) {
      // One command per session, each on its own slot; the client sends them together.
      const replies = await Promise.all(round.map((id) => this.#command('list', this.#key(id), ['HMGET', this.#key(id), ...LISTED_FIELDS])));
      const next: string[] = [];
      round.forEach((id, i) => {
        const session = listedSession(id, replies[i]);
        // Stored before it is indexed (see create): not stored means ended. A session of another
        // user is not this one's either.
        if (session !== null && session.fields.get(USER_FIELD) === userId) {
          live.push(session);
          return;
        }
        if (depth === 0) ended.push(id);
        const successor = movedTo(replies[i]);
        if (successor !== undefined && !seen.has(successor)) {
          seen.add(successor);
          next.push(successor);
        }
      });
      round = next;
    }
    await this.#unindex(userId, ended);
    return live;
  }

  /** {@inheritDoc UserIndexStore.endSessions} */
  async endSessions(userId: string, ids: readonly string[]): Promise<number> {
    const now = Date.now();
    let count = 0;
    const seen = new Set<string>();
    let round = [...new Set(ids)];
    for (let depth = 0; round.length > 0 && depth <= MAX_MOVES_FOLLOWED; depth++) {
      for (const id of round) seen.add(id);
      const replies = await Promise.all(
        round.map((id) => this.#script('revoke', END_USER, this.#key(id), [userId, String(ENDED_GRACE_MS), String(now)])),
      );
      const next: string[] = [];
      for (const reply of replies) {
        if (!Array.isArray(reply)) continue;
        const [live, moved] = reply as unknown[];
        if (Number(live) === 1) count++;
        if (typeof moved === 'string' && moved !== '' && !seen.has(moved)) next.push(moved);
      }
      await this.#unindex(userId, round);
      round = next;
    }
    return count;
  }

  /** {@inheritDoc UserIndexStore.endUserSessions} */
  async endUserSessions(userId: string, except: readonly string[]): Promise<number> {
    const indexKey = this.#userKey(userId);
    // Every entry, not only what a listing shows: an entry whose session was just moved away is
    // how the id it went to is found, if the index was read before that id was added to it.
    const entries = toFieldMap(await this.#command('revoke', indexKey, ['HGETALL', indexKey]));
    const kept = new Set(except);
    const ids = [...(entries?.keys() ?? [])].filter((id) => !kept.has(id));
    return ids.length === 0 ? 0 : this.endSessions(userId, ids);
  }

  /** {@inheritDoc UserIndexStore.scanSessions} */
  async *scanSessions(): AsyncIterable<readonly IndexedSession[]> {
    const pattern = `${escapeGlob(this.#prefix)}*`;
    for (const node of await this.#redis.primaries()) {
      let cursor = '0';
      do {
        const reply = (await this.#redis.run('scan', (signal) => node('', ['SCAN', cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT], signal))) as [
          unknown,
          unknown[],
        ];
        cursor = String(reply[0]);
        // Session keys have no ':' after the prefix; users' indexes do.
        const ids = reply[1].map(String).map((key) => key.slice(this.#prefix.length)).filter((id) => id !== '' && !id.includes(':'));
        const replies = await Promise.all(ids.map((id) => this.#command('scan', this.#key(id), ['HMGET', this.#key(id), ...LISTED_FIELDS])));
        const batch: IndexedSession[] = [];
        ids.forEach((id, i) => {
          const session = listedSession(id, replies[i]);
          if (session !== null) batch.push(session);
        });
        if (batch.length > 0) yield batch;
      } while (cursor !== '0');
    }
  }

  /** Closes the client if this store created it; a client that was passed in is left open. */
  async close(): Promise<void> {
    await this.#redis.close();
  }

  /**
   * Other session libraries' records in this Redis, by full key (no prefix added), with this
   * store's command timeout: for `adopt`.
   */
  foreignRecords(): ForeignRecords {
    return {
      read: async (key) => toForeignRecord(await this.#script('adopt', FOREIGN_READ, key, [])),
      remove: async (key) => {
        await this.#command('adopt', key, ['DEL', key]);
      },
    };
  }
}
