// BottleRedisStore on a real redis-server: the Store operations in bottle-session's layout (no
// metadata fields, ':' keys stored as they are), their conditional semantics, one round trip each,
// and a move that does not lose what the Python app writes to the old id while it runs. The
// Store contract (latchkey/testing) needs ended-id marks and a stored creation time, which this
// layout has no field for, so these are its own tests.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { BottleRedisStore } from '../../src/stores/bottle-redis.js';
import { isSessionError, type IoRedisLike, type StoreExpiry, type StoreLimits } from '../../src/index.js';
import { useRedis } from '../redis/server.js';
import { ioredisReady } from '../redis/client.js';

const ROOMY: StoreLimits = { maxFields: 1000, maxBytes: 1_000_000 };
const OLD = '60b5066a-bae1-4d88-9052-b5468292c5b8';
const NEW = '00000000-0000-4000-8000-000000000002';

function expiry(ttlMs = 600_000): StoreExpiry {
  return { ttlMs, maxAgeMs: null, now: Date.now() };
}

describe('BottleRedisStore', () => {
  const redis = useRedis();
  let io: Redis;
  /** Runs before each command the store sends, with the command; set by a test. */
  let beforeCommand: ((command: string, args: string[]) => Promise<void>) | undefined;
  let store: BottleRedisStore;

  before(async () => {
    io = new Redis(redis.url);
    io.on('error', () => {});
    await ioredisReady(io);
    // The app's ioredis client, with a hook where a test plays the Python app between two commands.
    const client: IoRedisLike = {
      get status() {
        return io.status;
      },
      async call(command: string, ...args: string[]) {
        await beforeCommand?.(command, args);
        return io.call(command, ...args);
      },
    };
    store = new BottleRedisStore({ redis: client });
  });
  after(() => io.disconnect());
  beforeEach(async () => {
    beforeCommand = undefined;
    await redis.command('FLUSHALL');
  });

  const hgetall = async (id: string): Promise<Record<string, string>> => {
    const flat = (await redis.command('HGETALL', `session:${id}`)) as string[];
    const out: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
    return out;
  };

  it("creates only the app's fields: latchkey's metadata left out, an escaped ':' key stored as it is; never over an existing key", async () => {
    assert.equal(await store.create(OLD, [[':c', '1'], [':s', '1'], [':u', 'u'], ['name', 'Chris'], ['::x', 'colon']], 600_000), true);
    assert.deepEqual(await hgetall(OLD), { name: 'Chris', ':x': 'colon' });
    assert.ok(Number(await redis.command('PTTL', `session:${OLD}`)) > 599_000);
    assert.equal(await store.create(OLD, [['name', 'Mallory']], 600_000), false);
    assert.deepEqual(await hgetall(OLD), { name: 'Chris', ':x': 'colon' }, 'unchanged');
    assert.deepEqual(await store.load(OLD), new Map([['name', 'Chris'], ['::x', 'colon']]), "a ':' field reads back escaped, as the session expects");
    assert.equal(await store.load(NEW), null);
  });

  it('loadTouched reads the hash and resets its TTL in one script; a missing key stays missing', async () => {
    await redis.command('HSET', `session:${OLD}`, 'name', 'Chris', ':x', 'colon');
    await redis.command('EXPIRE', `session:${OLD}`, '5');
    assert.deepEqual(await store.loadTouched(OLD, expiry()), new Map([['name', 'Chris'], ['::x', 'colon']]));
    assert.equal(await redis.command('TTL', `session:${OLD}`), 600);
    assert.equal(await store.loadTouched(NEW, expiry()), null);
    assert.deepEqual(await redis.command('KEYS', '*'), [`session:${OLD}`], 'nothing created for a missing session');
  });

  it('update and increment never create a missing key; a refresh is one PEXPIRE', async () => {
    assert.equal(await store.update(NEW, [['name', 'x'], [':s', '1']], [], expiry(), ROOMY), false);
    assert.equal(await store.increment(NEW, 'n', 1, [[':s', '1']], expiry(), ROOMY), null);
    assert.deepEqual(await redis.command('KEYS', '*'), []);

    await redis.command('HSET', `session:${OLD}`, 'name', 'Chris');
    await redis.resetStats();
    assert.equal(await store.update(OLD, [[':s', '1']], [], expiry(), ROOMY), true);
    assert.deepEqual(Object.fromEntries(await redis.commandCounts()), { pexpire: 1 });
    assert.equal(await redis.command('TTL', `session:${OLD}`), 600);
    assert.equal(await store.update(NEW, [[':s', '1']], [], expiry(), ROOMY), false);
  });

  it('update sets and removes fields in one script, checks maxKeys (latchkey counts its two stamps in maxFields), and a hash left empty is gone', async () => {
    await store.create(OLD, [['a', '1']], 600_000);
    const limits: StoreLimits = { maxFields: 2 + 2, maxBytes: 1 };
    assert.equal(await store.update(OLD, [['b', '2'], [':s', 'now'], ['::y', 'why']], ['a'], expiry(), limits), true);
    assert.deepEqual(await hgetall(OLD), { b: '2', ':y': 'why' });
    await assert.rejects(store.update(OLD, [['c', '3']], [], expiry(), limits), (error: unknown) => isSessionError(error, 'LIMIT_EXCEEDED'));
    assert.deepEqual(await hgetall(OLD), { b: '2', ':y': 'why' }, 'a refused write changes nothing');
    assert.equal(await store.update(OLD, [['b', '3']], [], expiry(), limits), true, 'replacing a field adds none');
    assert.equal(await store.update(OLD, [], ['b', '::y'], expiry(), limits), true);
    assert.deepEqual(await redis.command('KEYS', '*'), []);
  });

  it('increment works on decimal text, refuses what is not an integer, and resets the TTL', async () => {
    await redis.command('HSET', `session:${OLD}`, 'n', '42', 'name', 'Chris');
    assert.equal(await store.increment(OLD, 'n', 5, [[':s', '1']], expiry(), ROOMY), 47);
    assert.equal(await redis.command('HGET', `session:${OLD}`, 'n'), '47');
    assert.equal(await redis.command('TTL', `session:${OLD}`), 600);
    await assert.rejects(store.increment(OLD, 'name', 1, [], expiry(), ROOMY), (error: unknown) => isSessionError(error, 'INVALID_ARGUMENT'));
    assert.deepEqual(await hgetall(OLD), { n: '47', name: 'Chris' });
  });

  it('destroy is one DEL', async () => {
    await redis.command('HSET', `session:${OLD}`, 'name', 'Chris');
    await redis.resetStats();
    await store.destroy(OLD);
    assert.deepEqual(Object.fromEntries(await redis.commandCounts()), { del: 1 });
    assert.deepEqual(await redis.command('KEYS', '*'), []);
  });

  it('move copies every field to the new id with the change applied, then deletes the old one', async () => {
    await redis.command('HSET', `session:${OLD}`, 'name', 'Alice', '_csrf', 'token', ':x', 'colon');
    const moved = await store.move(OLD, NEW, { set: [[':s', '1']], remove: ['_csrf'] }, expiry());
    assert.deepEqual(moved, new Map([['name', 'Alice'], ['::x', 'colon']]));
    assert.deepEqual(await redis.command('KEYS', '*'), [`session:${NEW}`]);
    assert.deepEqual(await hgetall(NEW), { name: 'Alice', ':x': 'colon' });
    assert.equal(await redis.command('TTL', `session:${NEW}`), 600);
    assert.equal(await store.move(OLD, NEW, { set: [], remove: [] }, expiry()), null, 'a missing session is not moved');
  });

  it('a write the Python app makes to the old id while the move runs is copied too, not lost', async () => {
    await redis.command('HSET', `session:${OLD}`, 'name', 'Alice');
    let writes = 0;
    beforeCommand = async (command, args) => {
      // Just before the move's last step on the old id: the Python app writes to it.
      if (command === 'EVALSHA' && args[2] === `session:${OLD}` && writes === 0) {
        writes++;
        await redis.command('HSET', `session:${OLD}`, 'cart', '3 items');
      }
    };
    const moved = await store.move(OLD, NEW, { set: [], remove: [] }, expiry());
    assert.equal(writes, 1, 'the race was provoked');
    assert.deepEqual(moved, new Map([['name', 'Alice'], ['cart', '3 items']]));
    assert.deepEqual(await redis.command('KEYS', '*'), [`session:${NEW}`]);
    assert.deepEqual(await hgetall(NEW), { name: 'Alice', cart: '3 items' });
  });

  it('a move whose old id is deleted meanwhile (a logout) fails with SESSION_GONE and leaves no copy', async () => {
    await redis.command('HSET', `session:${OLD}`, 'name', 'Alice');
    beforeCommand = async (command, args) => {
      if (command === 'EVALSHA' && args[2] === `session:${OLD}`) await redis.command('DEL', `session:${OLD}`);
    };
    await assert.rejects(store.move(OLD, NEW, { set: [], remove: [] }, expiry()), (error: unknown) => isSessionError(error, 'SESSION_GONE'));
    assert.deepEqual(await redis.command('KEYS', '*'), []);
  });

  it('a move whose old id keeps changing gives up after a few copies, leaving the session under its old id', async () => {
    await redis.command('HSET', `session:${OLD}`, 'n', '0');
    let writes = 0;
    beforeCommand = async (command, args) => {
      if (command === 'EVALSHA' && args[2] === `session:${OLD}`) await redis.command('HSET', `session:${OLD}`, 'n', String(++writes));
    };
    await assert.rejects(store.move(OLD, NEW, { set: [], remove: [] }, expiry()), (error: unknown) => isSessionError(error, 'STORE_ERROR'));
    assert.equal(writes, 4);
    assert.deepEqual(await redis.command('KEYS', '*'), [`session:${OLD}`]);
    assert.deepEqual(await hgetall(OLD), { n: '4' });
  });
});
