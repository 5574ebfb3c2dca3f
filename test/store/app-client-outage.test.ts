// The app's own client keeps its offline queue; latchkey must still fail at once during an outage,
// and nothing it was told had failed may run when Redis comes back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import { isSessionError, RedisStore } from '../../src/index.js';
import type { RedisClientLike } from '../../src/stores/redis-client.js';
import { startRedis, type RedisServer } from '../redis/server.js';

const EXPIRY = { ttlMs: 60_000, maxAgeMs: null, now: 0 };

const CLIENTS: Record<string, (url: string) => Promise<{ client: RedisClientLike; ready(): boolean; close(): void }>> = {
  'node-redis': async (url) => {
    const client = createClient({ url, socket: { reconnectStrategy: () => 100 } });
    client.on('error', () => {});
    await client.connect();
    return { client, ready: () => client.isReady, close: () => client.destroy() };
  },
  ioredis: async (url) => {
    const client = new Redis(url, { retryStrategy: () => 100 });
    client.on('error', () => {});
    await new Promise((resolve) => client.once('ready', resolve));
    return { client, ready: () => client.status === 'ready', close: () => client.disconnect() };
  },
};

for (const [library, connect] of Object.entries(CLIENTS)) {
  describe(`RedisStore on the app's own ${library} client (offline queue on) during an outage`, () => {
    let redis: RedisServer;
    before(async () => {
      // Persistent, so that the session the update below was about is still there after the restart
      // and an update replayed by the client's offline queue would show.
      redis = await startRedis({ persist: true });
    });
    after(async () => {
      await redis.stop();
    });

    it('fails each operation at once while the client reconnects, and runs none of them once Redis is back', async () => {
      const { client, ready, close } = await connect(redis.url);
      try {
        const store = new RedisStore({ redis: client, commandTimeout: 5000 });
        assert.equal(await store.create('before', [['a', '1']], 60_000), true);
        await redis.kill();
        const noticed = Date.now() + 5000;
        while (ready() && Date.now() < noticed) await sleep(10);
        assert.equal(ready(), false, 'the client noticed the outage');

        for (const operation of [
          () => store.create('during', [['a', '1']], 60_000),
          () => store.load('before'),
          () => store.update('before', [['b', '2']], [], { ...EXPIRY, now: Date.now() }, { maxFields: 10, maxBytes: 1000 }),
        ]) {
          const started = Date.now();
          await assert.rejects(operation(), (error: unknown) => isSessionError(error, 'STORE_UNAVAILABLE'));
          assert.ok(Date.now() - started < 200, `failed after ${Date.now() - started} ms, not at once`);
        }

        await redis.restart();
        const back = Date.now() + 5000;
        while (!ready() && Date.now() < back) await sleep(20);
        assert.equal(ready(), true, 'the client reconnected by itself');
        await sleep(200);
        assert.deepEqual(await redis.command('KEYS', '*'), ['session:before'], 'the session written before the outage is back, and no create that failed ran later');
        assert.deepEqual(await redis.command('HGETALL', 'session:before'), ['a', '1'], 'no update that failed ran later');
        assert.equal(await store.create('after', [['a', '1']], 60_000), true);
      } finally {
        close();
      }
    });
  });
}
