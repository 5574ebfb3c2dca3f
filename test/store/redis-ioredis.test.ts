import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis.js';
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
});
