// Redis CPU per session operation: what each operation costs the one thread a Redis shard runs
// commands on, which decides how many shards a busy site needs. Measured from Redis's own
// accounting (INFO commandstats, CONFIG RESETSTAT before each phase), so a noisy machine barely
// moves it. latchkey's RedisStore against connect-redis (express-session's Redis store) doing the
// same work on the same data, on a small session and on one near latchkey's default limits.
//
// Part of `npm run bench`; alone: `node --import tsx bench/redis-cost.ts [--quick]`.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { RedisStore as ConnectRedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { RedisStore } from '../src/stores/redis.js';
import { NO_LIMITS, type StoreField } from '../src/stores/store.js';
import { DEFAULT_OPTIONS } from '../src/core/options.js';
import { startRedis, type RedisServer } from '../test/redis/server.js';
import {
  OPERATIONS,
  REDIS_COST_SETTINGS,
  SIZES,
  redisCostChecks,
  renderRedisCost,
  type MeasureRedisCost,
  type Operation,
  type OperationCost,
  type RedisCostResult,
  type Size,
} from './redis-cost-report.js';

/** What one system does for each operation; `prepare` runs before the stats are reset, `run` is measured. */
interface System {
  /** The commands the client sends for `operation`: their time is the operation's (scripts' inner calls are inside it). */
  sent(operation: Operation): readonly string[];
  /** Makes `count` sessions ready for `operation`; resolves the ids to run it on, one per iteration. */
  prepare(operation: Operation, size: Size, count: number): Promise<string[]>;
  run(operation: Operation, size: Size, id: string, i: number): Promise<unknown>;
}

/** `count` results of `make`, one after the other. */
async function inTurn<T>(count: number, make: () => Promise<T>): Promise<T[]> {
  const made: T[] = [];
  for (let i = 0; i < count; i++) made.push(await make());
  return made;
}

function value(bytes: number): string {
  return 'v'.repeat(bytes);
}

/** The user fields of a session of `size`: names and values as an app would keep them. */
function userFields(size: Size): Array<[string, string]> {
  const { fields, valueBytes } = SIZES[size];
  return Array.from({ length: fields }, (_, i) => [`field${String(i).padStart(3, '0')}`, value(valueBytes)]);
}

const TTL_MS = DEFAULT_OPTIONS.cookieLifetime * 1000;
const MAX_AGE_MS = DEFAULT_OPTIONS.absoluteLifetime * 1000;
const LIMITS = { maxFields: DEFAULT_OPTIONS.limits.maxKeys, maxBytes: DEFAULT_OPTIONS.limits.maxSessionBytes };

function latchkey(store: RedisStore): System {
  let next = 0;
  // latchkey's defaults: an idle timeout and an absolute lifetime, which each write checks.
  const expiry = () => ({ ttlMs: TTL_MS, maxAgeMs: MAX_AGE_MS, now: Date.now() });
  // As latchkey stores them: values JSON-encoded, metadata fields beside them.
  const stored = (size: Size): StoreField[] => {
    const now = String(Date.now());
    return [[':c', now], [':s', now], ...userFields(size).map(([field, text]): StoreField => [field, JSON.stringify(text)]), ['count', '0']];
  };
  const fresh = async (size: Size): Promise<string> => {
    const id = `lk${next++}`;
    if (!(await store.create(id, stored(size), TTL_MS))) throw new Error(`latchkey: could not create ${id}`);
    return id;
  };
  return {
    sent: (operation) => (operation === 'load' ? ['hgetall'] : operation === 'refreshing load' ? ['hgetall', 'evalsha'] : ['evalsha']),
    async prepare(operation, size, count) {
      if (operation === 'create') return Array.from({ length: count }, () => `lk${next++}`);
      if (operation === 'regenerate' || operation === 'destroy') return inTurn(count, () => fresh(size));
      // One session, written once so that the measured writes replace a field rather than add one.
      const id = await fresh(size);
      await store.update(id, [['note', '"n"']], [], expiry(), LIMITS);
      return Array.from({ length: count }, () => id);
    },
    async run(operation, size, id, i) {
      const lastSeen: StoreField = [':s', String(Date.now())];
      switch (operation) {
        case 'load':
          return store.load(id);
        case 'refreshing load':
          await store.load(id);
          return store.update(id, [lastSeen], [], expiry(), NO_LIMITS);
        case 'write':
          return store.update(id, [['note', JSON.stringify(`n${i}`)], lastSeen], [], expiry(), LIMITS);
        case 'incr':
          return store.increment(id, 'count', 1, [lastSeen], expiry(), LIMITS);
        case 'create':
          return store.create(id, stored(size), TTL_MS);
        case 'regenerate':
          return store.move(id, `lk${next++}`, { set: [lastSeen], remove: [] }, expiry());
        case 'destroy':
          return store.destroy(id);
      }
    },
  };
}

function connectRedis(store: ConnectRedisStore): System {
  let next = 0;
  // As express-session saves them: the user's values and the cookie, in one JSON string.
  const session = (size: Size): SessionData => {
    const data: Record<string, unknown> = Object.fromEntries(userFields(size));
    data.count = 0;
    data.cookie = { originalMaxAge: TTL_MS, expires: new Date(Date.now() + TTL_MS).toISOString(), httpOnly: true, path: '/', sameSite: 'lax' };
    return data as unknown as SessionData;
  };
  const fresh = async (size: Size): Promise<string> => {
    const id = `cr${next++}`;
    await store.set(id, session(size));
    return id;
  };
  const read = async (id: string): Promise<Record<string, unknown>> => {
    const data = (await store.get(id)) as Record<string, unknown> | null;
    if (!data) throw new Error(`connect-redis: no session ${id}`);
    return data;
  };
  return {
    sent: () => ['get', 'set', 'expire', 'del'],
    async prepare(operation, size, count) {
      if (operation === 'create') return Array.from({ length: count }, () => `cr${next++}`);
      if (operation === 'regenerate' || operation === 'destroy') return inTurn(count, () => fresh(size));
      const id = await fresh(size);
      return Array.from({ length: count }, () => id);
    },
    async run(operation, size, id, i) {
      switch (operation) {
        case 'load':
          return store.get(id);
        // express-session touches the store on every request that has a session and changed nothing.
        case 'refreshing load': {
          const data = await read(id);
          return store.touch(id, data as unknown as SessionData);
        }
        // A request that changes the session loads it first and saves it whole.
        case 'write': {
          const data = await read(id);
          data.note = `n${i}`;
          return store.set(id, data as unknown as SessionData);
        }
        case 'incr': {
          const data = await read(id);
          data.count = Number(data.count) + 1;
          return store.set(id, data as unknown as SessionData);
        }
        case 'create':
          return store.set(id, session(size));
        // express-session's regenerate(): the loaded session is destroyed and a new one saved.
        case 'regenerate': {
          const data = await read(id);
          await store.destroy(id);
          return store.set(`cr${next++}`, data as unknown as SessionData);
        }
        case 'destroy':
          return store.destroy(id);
      }
    },
  };
}

/**
 * The floor of a conditional one-field write, as issue 12 measured it: one small script doing
 * EXISTS, HLEN, HGET, HSTRLEN, HSET and PEXPIRE on an existing session, checking nothing else.
 */
const FLOOR_WRITE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fields = redis.call('HLEN', KEYS[1])
local created = redis.call('HGET', KEYS[1], ':c')
local size = redis.call('HSTRLEN', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3], ':s', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

function floorWrite(client: { scriptLoad(script: string): Promise<string>; sendCommand(args: string[]): Promise<unknown> }, sessions: System): System {
  let sha = '';
  return {
    sent: () => ['evalsha'],
    async prepare(operation, size, count) {
      sha ||= await client.scriptLoad(FLOOR_WRITE);
      return sessions.prepare(operation, size, count);
    },
    run: (_operation, _size, id, i) => client.sendCommand(['EVALSHA', sha, '1', `session:${id}`, String(TTL_MS), 'note', JSON.stringify(`n${i}`), String(Date.now())]),
  };
}

/** Sum of `usec` and `calls` over the commands in INFO commandstats. */
async function commandStats(redis: RedisServer): Promise<Map<string, { calls: number; usec: number }>> {
  const info = String(await redis.command('INFO', 'commandstats'));
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    const name = match[1] as string;
    if (/^(info|config)(\||$)/.test(name)) continue;
    stats.set(name, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

/** CPU seconds Redis's main thread has used (user + sys). */
async function mainThreadCpu(redis: RedisServer): Promise<number> {
  const info = String(await redis.command('INFO', 'cpu'));
  const seconds = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return seconds('used_cpu_user_main_thread') + seconds('used_cpu_sys_main_thread');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The cost of `operation` in one phase of `iterations`, from a fresh database. */
async function measureOnce(system: System, redis: RedisServer, operation: Operation, size: Size, iterations: number): Promise<OperationCost> {
  await redis.command('FLUSHALL');
  // Once unmeasured, so that scripts are loaded and the client is warm.
  for (const [i, id] of (await system.prepare(operation, size, 3)).entries()) await system.run(operation, size, id, i);
  const ids = await system.prepare(operation, size, iterations);
  await redis.resetStats();
  const cpuBefore = await mainThreadCpu(redis);
  for (const [i, id] of ids.entries()) await system.run(operation, size, id, i);
  const cpu = ((await mainThreadCpu(redis)) - cpuBefore) * 1e6;
  const stats = await commandStats(redis);
  // A command sent that the figures would not count (a NOSCRIPT retry's EVAL, say): refuse them.
  const unexpected = [...stats.keys()].filter((name) => name === 'eval' || name.startsWith('script'));
  if (unexpected.length > 0) throw new Error(`${operation}: unexpected commands ${unexpected.join(', ')}`);
  const sentNames = system.sent(operation);
  let usec = 0;
  let sent = 0;
  let commands = 0;
  for (const [name, stat] of stats) {
    commands += stat.calls;
    if (!sentNames.includes(name)) continue;
    usec += stat.usec;
    sent += stat.calls;
  }
  return { usec: usec / iterations, cpu: cpu / iterations, commands: commands / iterations, sent: sent / iterations };
}

/** Measures every operation on both sizes for latchkey and connect-redis, on `redis`. */
export const measureRedisCost: MeasureRedisCost = async (redis, settings) => {
  const client = createClient({ url: redis.url });
  client.on('error', () => {});
  await client.connect();
  try {
    // A long timeout: preparing hundreds of 200 KB sessions on a busy machine takes a while.
    const store = latchkey(new RedisStore({ redis: client as never, commandTimeout: 30_000 }));
    const systems = { latchkey: store, 'connect-redis': connectRedis(new ConnectRedisStore({ client, ttl: TTL_MS / 1000 })), floor: floorWrite(client, store) };
    type Name = keyof typeof systems;
    const result: RedisCostResult = { latchkey: { small: {}, large: {} }, 'connect-redis': { small: {}, large: {} }, floorWrite: { small: {}, large: {} } } as unknown as RedisCostResult;
    for (const size of Object.keys(SIZES) as Size[]) {
      for (const operation of OPERATIONS) {
        // The floor script only writes; it runs in the write phases, on latchkey's sessions.
        const names: Name[] = operation === 'write' ? ['latchkey', 'connect-redis', 'floor'] : ['latchkey', 'connect-redis'];
        // Repeats interleaved, so that a busy moment on the machine hits every one alike.
        const runs = new Map<Name, OperationCost[]>(names.map((name) => [name, []]));
        for (let repeat = 0; repeat < settings.repeats; repeat++) {
          for (const name of names) runs.get(name)?.push(await measureOnce(systems[name], redis, operation, size, settings.iterations[size]));
        }
        for (const name of names) {
          const costs = runs.get(name) ?? [];
          const middle = (pick: (cost: OperationCost) => number): number => median(costs.map(pick));
          const cost = { usec: middle((r) => r.usec), cpu: middle((r) => r.cpu), commands: middle((r) => r.commands), sent: middle((r) => r.sent) };
          if (name === 'floor') (result.floorWrite as Record<Size, OperationCost>)[size] = cost;
          else result[name][size][operation] = cost;
        }
      }
    }
    return result;
  } finally {
    client.destroy();
  }
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const redis = await startRedis();
  try {
    const result = await measureRedisCost(redis, values.quick ? REDIS_COST_SETTINGS.quick : REDIS_COST_SETTINGS.full);
    console.log(renderRedisCost(result, false));
    for (const check of redisCostChecks(result)) console.log(`${check.met ? 'met ' : 'MISS'}  ${check.target}: ${check.measured}`);
  } finally {
    await redis.stop();
  }
}
