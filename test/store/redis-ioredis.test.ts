import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis.js';
import { isSessionError } from '../../src/core/errors.js';
import type { IoRedisLike } from '../../src/stores/redis-client.js';
import type { RedisServer } from '../redis/server.js';
import { ioredisReady } from '../redis/client.js';
import { redisStoreContract } from './redis-contract.js';

async function connect(url: string): Promise<Redis> {
  const client = new Redis(url);
  client.on('error', () => {});
  await ioredisReady(client);
  return client;
}

const redisServer = redisStoreContract('RedisStore (ioredis client)', async (url) => {
  const client = await connect(url);
  return { client, close: async () => void client.disconnect() };
});

describe('RedisStore (ioredis) outside the contract', () => {
  let redis: RedisServer;
  const clients: Redis[] = [];

  before(async () => {
    redis = await redisServer();
  });

  after(() => {
    for (const client of clients) client.disconnect();
  });

  it('leaves a client that was passed in open after close()', async () => {
    const client = await connect(redis.url);
    clients.push(client);
    const store = new RedisStore({ redis: client });
    assert.equal(await store.create('passed-in', [['a', '1']], 60_000), true);
    await store.close();
    assert.equal(client.status, 'ready');
    assert.equal(await client.ping(), 'PONG');
    const again = new RedisStore({ redis: client });
    assert.deepEqual(await again.load('passed-in'), new Map([['a', '1']]));
  });

  for (const cached of [false, true]) {
    it(`a write answered STORE_UNAVAILABLE on its timeout does nothing when ioredis sends it later (as after a failover), the script ${cached ? 'cached' : 'not cached'} there`, async () => {
      const io = await connect(redis.url);
      clients.push(io);
      const stamp = (): [string, string] => [':s', String(Date.now())];
      const setup = new RedisStore({ redis: io });
      const id = `late-${String(cached)}`;
      assert.equal(await setup.create(id, [[':c', String(Date.now())], stamp(), ['a', '1']], 60_000), true);
      // The store loads its scripts once (a create, an update); then, unless cached, they go:
      // a promoted replica has none, and a store that then loaded the script with EVAL would
      // apply the write after all.
      assert.equal(await setup.update(id, [stamp()], [], { ttlMs: 60_000, maxAgeMs: null, now: Date.now() }, { maxFields: 100, maxBytes: 100_000 }), true);
      if (!cached) await io.call('SCRIPT', 'FLUSH');
      const sent: Array<Promise<unknown>> = [];
      // A client that sends each script only after the store has given up on it, as ioredis sends
      // a command again once the Cluster has failed over.
      const late: IoRedisLike = {
        get status() {
          return io.status;
        },
        call(command, ...args) {
          if (command !== 'EVALSHA' && command !== 'EVAL') return io.call(command, ...args);
          const send = new Promise((resolve) => setTimeout(resolve, 300)).then(() => io.call(command, ...args));
          sent.push(send.catch(() => undefined));
          return send;
        },
      };
      const store = new RedisStore({ redis: late, commandTimeout: 100 });
      const expiry = { ttlMs: 60_000, maxAgeMs: null, now: Date.now() };
      await assert.rejects(
        store.update(id, [['a', '2'], stamp()], [], expiry, { maxFields: 100, maxBytes: 100_000 }),
        (error: unknown) => isSessionError(error, 'STORE_UNAVAILABLE'),
      );
      await Promise.all(sent);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(sent.length, 1, 'the script was sent once, late, and not loaded again with EVAL');
      assert.equal(await io.call('HGET', `session:${id}`, 'a'), '1', 'the write the app was told had failed was not applied');
    });
  }
});
