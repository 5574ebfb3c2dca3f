// Runs the Store contract (latchkey/testing) against RedisStore with a given client library, on a
// redis-server of its own.
import { after } from 'node:test';
import { RedisStore } from '../../src/stores/redis.js';
import type { RedisClientLike } from '../../src/stores/redis-client.js';
import { storeContract } from 'latchkey/testing';
import { startRedis, type RedisServer } from '../redis/server.js';

/** A connected client of some library, and how to close it. */
export interface ConnectedClient<Client> {
  readonly client: Client;
  close(): Promise<void>;
}

/**
 * Runs {@link storeContract} against `new RedisStore({ redis: client })` on a redis-server of its
 * own, with the client `connect` makes; reads TTLs with PTTL. Resolves the server for more tests.
 */
export function redisStoreContract<Client extends RedisClientLike>(
  name: string,
  connect: (url: string) => Promise<ConnectedClient<Client>>,
): () => Promise<RedisServer> {
  let server: Promise<RedisServer> | undefined;
  const redisServer = (): Promise<RedisServer> => (server ??= startRedis());
  after(async () => {
    if (server) await (await server).stop();
  });
  storeContract(name, async () => {
    const redis = await redisServer();
    const { client, close } = await connect(redis.url);
    const store = new RedisStore({ redis: client });
    return {
      store,
      ttlOf: async (id) => Number(await redis.command('PTTL', `session:${id}`)),
      close: async () => {
        await store.close();
        await close();
      },
    };
  });
  return redisServer;
}
