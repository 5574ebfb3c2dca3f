// A redis-server of the test's own with the app's node-redis client connected to it, for suites
// that need both: started before the calling describe block's tests, stopped after them.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, Redis } from 'ioredis';
import { createClient } from 'redis';
import { useRedis, type RedisServer } from './server.js';

/** A node-redis client as an app creates it. */
export type NodeRedisClient = ReturnType<typeof createClient>;

/** The server and client of {@link useRedisWithClient}, available from the first test on. */
export interface RedisWithClient {
  readonly redis: RedisServer;
  readonly client: NodeRedisClient;
}

/**
 * Registers, in the calling describe block, hooks that start a redis-server and connect a
 * node-redis client (with an 'error' listener, as apps must have) before its tests, and close
 * both after them.
 */
export function useRedisWithClient(): RedisWithClient {
  const redis = useRedis();
  let client: NodeRedisClient | undefined;
  before(async () => {
    client = createClient({ url: redis.url });
    client.on('error', () => {});
    await client.connect();
  });
  after(() => {
    // After hooks run in the order they were registered: the server is gone by now, so the
    // client is dropped rather than asked to QUIT.
    if (client?.isOpen) client.destroy();
  });
  return {
    redis,
    get client() {
      assert.ok(client, 'the client connects in before()');
      return client;
    },
  };
}

/** Waits for an ioredis client's first connection; rejects if it ends before it is ready. */
export async function ioredisReady(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('end', () => reject(new Error('the ioredis client ended before it was ready')));
  });
}
