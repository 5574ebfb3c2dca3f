import { createHash } from 'node:crypto';
import { SessionError } from '../core/errors.js';
import { MAX_COUNTER, type Store, type StoreField, type StoreRefresh } from './store.js';
import {
  createOwnedClient,
  checkRedisOption,
  isRedisClient,
  pickRedisLibrary,
  replyErrorCode,
  toRedisUrl,
  toSendCommand,
  toSessionError,
  withTimeout,
  type OwnedClient,
  type RedisClientLike,
  type RedisConnectionOptions,
  type SendCommand,
} from './redis-client.js';

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

class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

// Each script touches exactly one key, so it runs unchanged on Redis Cluster.
// ARGV[1] is always the time to live in milliseconds.

/** HGETALL, and for an existing session: new TTL and the fields in ARGV[2..]. */
const LOAD_AND_REFRESH = new Script(`
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
end
return h`);

/** Creates the hash from the pairs in ARGV[2..] unless the key exists. */
const CREATE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`);

/** For an existing key only: ARGV[2] pairs to set from ARGV[3..], then fields to delete. */
const UPDATE = new Script(`
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
local n = tonumber(ARGV[2]) * 2
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + n)) end
if #ARGV > 2 + n then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + n)) end
return 1`);

/**
 * For an existing key only: HINCRBY ARGV[2] by ARGV[3], then new TTL and the pairs in ARGV[4..].
 * HINCRBY goes first so that a field holding no integer fails before anything has changed; a
 * result past MAX_COUNTER is undone and fails too.
 */
const INCREMENT = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local v = redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
if v > ${MAX_COUNTER} or v < -${MAX_COUNTER} then
  redis.call('HINCRBY', KEYS[1], ARGV[2], -tonumber(ARGV[3]))
  return redis.error_reply('ERR increment would overflow ${MAX_COUNTER}')
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
return v`);

/** HGETALL then DEL, atomically. */
const TAKE = new Script(`
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then redis.call('DEL', KEYS[1]) end
return h`);

function flatten(fields: readonly StoreField[]): string[] {
  const out: string[] = [];
  for (const [field, value] of fields) out.push(field, value);
  return out;
}

/** Reads a hash reply in any shape the clients give: a flat array (RESP2), a Map or an object (RESP3). */
function toFieldMap(reply: unknown): Map<string, string> | null {
  const fields = new Map<string, string>();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]));
  } else if (reply instanceof Map) {
    for (const [field, value] of reply) fields.set(String(field), String(value));
  } else if (reply !== null && typeof reply === 'object') {
    for (const [field, value] of Object.entries(reply)) fields.set(field, String(value));
  }
  return fields.size === 0 ? null : fields;
}

/**
 * Sessions in Redis: one hash per session (`prefix` + storage id), one field per attribute, the
 * key's TTL as the idle timeout. Every operation is a single command or a single-key Lua script,
 * so each is one round trip and works on standalone Redis, Sentinel and Cluster alike. Works with
 * node-redis and ioredis clients.
 */
export class RedisStore implements Store {
  readonly #send: SendCommand;
  readonly #owned: OwnedClient | undefined;
  readonly #prefix: string;
  readonly #timeout: number;
  #firstConnection: Promise<void> | undefined;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when an option is not usable
   */
  constructor(options: RedisStoreOptions = {}) {
    const { redis = DEFAULT_REDIS_STORE_OPTIONS.redis, prefix = DEFAULT_REDIS_STORE_OPTIONS.prefix } = options;
    const timeout = options.commandTimeout ?? DEFAULT_REDIS_STORE_OPTIONS.commandTimeout;
    if (typeof prefix !== 'string') {
      throw new SessionError('INVALID_OPTIONS', `prefix must be a string such as 'session:', got ${typeof prefix}`);
    }
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw new SessionError('INVALID_OPTIONS', `commandTimeout must be a number of milliseconds above 0, got ${String(timeout)}`);
    }
    this.#prefix = prefix;
    this.#timeout = timeout;
    checkRedisOption(redis);
    if (isRedisClient(redis)) {
      this.#send = toSendCommand(redis);
    } else {
      const url = toRedisUrl(redis);
      this.#owned = createOwnedClient(url, pickRedisLibrary(), timeout);
      this.#send = this.#owned.send;
      // Commands wait for the first connection, but never longer than one timeout: if Redis is
      // down at start-up, later commands fail at once instead of each waiting in turn.
      const settled = (): void => {
        this.#firstConnection = undefined;
      };
      this.#firstConnection = withTimeout(this.#owned.ready, timeout, 'connect').then(settled, settled);
    }
  }

  /**
   * Runs `operation` once the first connection (if any) is settled, within the command timeout;
   * whatever it fails with becomes a {@link SessionError}.
   */
  #run(what: string, operation: () => Promise<unknown>): Promise<unknown> {
    let pending: Promise<unknown>;
    try {
      const first = this.#firstConnection;
      pending = first ? first.then(operation) : operation();
    } catch (error) {
      pending = Promise.reject(error);
    }
    return withTimeout(pending, this.#timeout, what).catch((error: unknown) => Promise.reject(toSessionError(error, what)));
  }

  #command(what: string, key: string, args: readonly string[]): Promise<unknown> {
    return this.#run(what, () => this.#send(key, args));
  }

  /** Runs a cached script, loading it into Redis the first time (or after a restart or failover). */
  #script(what: string, script: Script, key: string, args: readonly string[]): Promise<unknown> {
    return this.#run(what, () =>
      this.#send(key, ['EVALSHA', script.sha, '1', key, ...args]).catch((error: unknown) => {
        if (replyErrorCode(error) !== 'NOSCRIPT') throw error;
        return this.#send(key, ['EVAL', script.source, '1', key, ...args]);
      }),
    );
  }

  #key(id: string): string {
    return this.#prefix + id;
  }

  /** {@inheritDoc Store.load} */
  async load(id: string, refresh?: StoreRefresh): Promise<Map<string, string> | null> {
    const key = this.#key(id);
    const reply = refresh
      ? await this.#script('load', LOAD_AND_REFRESH, key, [String(refresh.ttlMs), ...flatten(refresh.set)])
      : await this.#command('load', key, ['HGETALL', key]);
    return toFieldMap(reply);
  }

  /** {@inheritDoc Store.create} */
  async create(id: string, fields: readonly StoreField[], ttlMs: number): Promise<boolean> {
    const key = this.#key(id);
    return (await this.#script('create', CREATE, key, [String(ttlMs), ...flatten(fields)])) === 1;
  }

  /** {@inheritDoc Store.update} */
  async update(id: string, set: readonly StoreField[], remove: readonly string[], ttlMs: number): Promise<boolean> {
    const key = this.#key(id);
    const args = [String(ttlMs), String(set.length), ...flatten(set), ...remove];
    return (await this.#script('update', UPDATE, key, args)) === 1;
  }

  /** {@inheritDoc Store.increment} */
  async increment(id: string, field: string, by: number, set: readonly StoreField[], ttlMs: number): Promise<number | null> {
    const key = this.#key(id);
    try {
      const reply = await this.#script('increment', INCREMENT, key, [String(ttlMs), field, String(by), ...flatten(set)]);
      return reply === null || reply === undefined ? null : Number(reply);
    } catch (error) {
      const cause = error instanceof SessionError ? error.cause : undefined;
      if (replyErrorCode(cause) === 'ERR' && /not an integer|overflow/.test((cause as Error).message)) {
        const reason = (cause as Error).message.replace(/^ERR /, '').replace(/ script: .*$/s, '');
        throw new SessionError('INVALID_ARGUMENT', `cannot increment '${field}': ${reason}`, { cause });
      }
      throw error;
    }
  }

  /** {@inheritDoc Store.take} */
  async take(id: string): Promise<Map<string, string> | null> {
    const key = this.#key(id);
    return toFieldMap(await this.#script('take', TAKE, key, []));
  }

  /** {@inheritDoc Store.destroy} */
  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    await this.#command('destroy', key, ['UNLINK', key]);
  }

  /** Closes the client if this store created it; a client that was passed in is left open. */
  async close(): Promise<void> {
    await this.#owned?.close();
  }
}
