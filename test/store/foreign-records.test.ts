// RedisStore.foreignRecords(), the seam `adopt` reads other libraries' records through: a string
// and its PTTL in one round trip, deletion, and STORE_UNAVAILABLE when Redis is down, with both
// Redis clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { RedisStore } from '../../src/stores/redis.js';
import { hasForeignRecords } from '../../src/stores/foreign.js';
import { isSessionError, MemoryStore } from '../../src/index.js';
import { ioredisReady } from '../redis/client.js';
import { useRedis } from '../redis/server.js';

describe('RedisStore.foreignRecords()', () => {
  const redis = useRedis();
  const clients: Array<{ name: string; store: () => RedisStore; close(): Promise<void> }> = [];

  before(async () => {
    const node = createClient({ url: redis.url });
    node.on('error', () => {});
    await node.connect();
    const io = new Redis(redis.url);
    io.on('error', () => {});
    await ioredisReady(io);
    clients.push(
      { name: 'node-redis', store: () => new RedisStore({ redis: node, commandTimeout: 500 }), close: async () => void node.destroy() },
      { name: 'ioredis', store: () => new RedisStore({ redis: io, commandTimeout: 500 }), close: async () => void io.disconnect() },
    );
  });
  after(async () => {
    for (const client of clients) await client.close();
  });

  it('is offered by RedisStore only', async () => {
    const store = new RedisStore({ redis: redis.url });
    assert.equal(hasForeignRecords(store), true);
    await store.close();
    assert.equal(hasForeignRecords(new MemoryStore()), false);
  });

  it('reads a string with the time it has left, in one round trip; none for a missing key or one of another type; removes', async () => {
    for (const { name, store } of clients) {
      const records = store().foreignRecords();
      await redis.command('SET', 'sess:a', '{"x":1}', 'PX', '60000');
      await redis.command('SET', 'sess:b', 'plain');
      await redis.command('HSET', 'sess:h', 'f', 'v');
      // The script is loaded by its first use (EVALSHA, then EVAL); after that, one EVALSHA.
      await records.read('sess:missing');
      const monitor = await redis.monitor();
      const read = await records.read('sess:a');
      assert.equal(await monitor.stop(), 1, `${name}: one round trip`);
      assert.equal(read?.value, '{"x":1}');
      assert.ok(read?.ttlMs !== undefined && read.ttlMs > 59_000 && read.ttlMs <= 60_000, `${name}: ${String(read?.ttlMs)}`);
      assert.deepEqual(await records.read('sess:b'), { value: 'plain', ttlMs: undefined });
      assert.equal(await records.read('sess:missing'), null);
      assert.equal(await records.read('sess:h'), null, `${name}: a hash is no record`);
      await records.remove('sess:a');
      await records.remove('sess:a');
      assert.equal(await redis.command('EXISTS', 'sess:a'), 0);
      await redis.command('FLUSHALL');
    }
  });

  it('fails with STORE_UNAVAILABLE when Redis is down', async () => {
    await redis.kill();
    try {
      for (const { name, store } of clients) {
        const records = store().foreignRecords();
        await assert.rejects(records.read('sess:a'), (error: unknown) => isSessionError(error, 'STORE_UNAVAILABLE'), name);
        await assert.rejects(records.remove('sess:a'), (error: unknown) => isSessionError(error, 'STORE_UNAVAILABLE'), name);
      }
    } finally {
      await redis.restart();
    }
  });
});
