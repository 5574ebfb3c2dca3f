import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { SessionError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/stores/redis.js';
import type { RedisServer } from '../redis/server.js';
import { redisStoreContract } from './redis-contract.js';

function newClient(url: string) {
  const client = createClient({ url });
  client.on('error', () => {});
  return client;
}

async function connect(url: string): Promise<ReturnType<typeof newClient>> {
  const client = newClient(url);
  await client.connect();
  return client;
}

/** Clients connected to the server now (INFO clients), the connection asking included. */
async function connectedClients(redis: RedisServer): Promise<number> {
  const info = String(await redis.command('INFO', 'clients'));
  const match = /^connected_clients:(\d+)/m.exec(info);
  if (match === null) throw new Error(`no connected_clients in ${info}`);
  return Number(match[1]);
}

const redisServer = redisStoreContract('RedisStore (node-redis client)', async (url) => {
  const client = await connect(url);
  return { client, close: () => client.close() };
});

describe('RedisStore (node-redis) outside the contract', () => {
  let redis: RedisServer;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    redis = await redisServer();
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it('with a URL string creates its own client, works, and close() closes that client', async () => {
    const before = await connectedClients(redis);
    const store = new RedisStore({ redis: redis.url });
    cleanups.push(() => store.close());
    assert.equal(await store.create('owned-url', [['a', '1']], 60_000), true);
    assert.deepEqual(await store.load('owned-url'), new Map([['a', '1']]));
    assert.equal(await redis.command('HGET', 'session:owned-url', 'a'), '1');
    assert.equal(await connectedClients(redis), before + 1, 'the store should hold one connection');

    await store.close();
    // The server sees the connection go (bounded wait).
    let now = await connectedClients(redis);
    for (let i = 0; i < 50 && now !== before; i++) {
      await sleep(20);
      now = await connectedClients(redis);
    }
    assert.equal(now, before, 'close() should close the connection the store opened');
    await assert.rejects(store.load('owned-url'), (error: unknown) => {
      assert.ok(error instanceof SessionError);
      assert.equal(error.code, 'STORE_UNAVAILABLE');
      return true;
    });
    // The session itself is still in Redis: close() only drops the connection.
    assert.equal(await redis.command('HGET', 'session:owned-url', 'a'), '1');
  });

  it('leaves a client that was passed in open after close()', async () => {
    const client = await connect(redis.url);
    cleanups.push(() => client.close());
    const store = new RedisStore({ redis: client });
    assert.equal(await store.create('passed-in', [['a', '1']], 60_000), true);
    await store.close();
    assert.equal(client.isOpen, true);
    assert.equal(await client.sendCommand(['PING']), 'PONG');
    assert.equal(await client.ping(), 'PONG');
    // And a store on it still works after another store on the same client was closed.
    const again = new RedisStore({ redis: client });
    assert.deepEqual(await again.load('passed-in'), new Map([['a', '1']]));
  });

  it("asks node-redis for no command timer of its own, unless the app chose a command timeout for its client", async () => {
    // node-redis times each command with an AbortSignal.timeout() (5 s by default), which costs the
    // app more CPU than a session read; the store's commandTimeout bounds latchkey's commands already.
    for (const [commandOptions, expected] of [
      [undefined, 0],
      [{ timeout: 1234 }, undefined],
    ] as const) {
      const client = createClient({ url: redis.url, commandOptions });
      client.on('error', () => {});
      await client.connect();
      cleanups.push(() => client.close());
      const timeouts: unknown[] = [];
      const send = client.sendCommand.bind(client);
      client.sendCommand = ((args, options) => {
        timeouts.push(options?.timeout);
        return send(args, options);
      }) as typeof client.sendCommand;
      const store = new RedisStore({ redis: client });
      const id = `own-timer-${String(expected)}`;
      assert.equal(await store.create(id, [['a', '1']], 60_000), true);
      assert.deepEqual(await store.load(id), new Map([['a', '1']]));
      assert.ok(timeouts.length >= 2);
      assert.deepEqual(new Set(timeouts), new Set([expected]), `commandOptions ${JSON.stringify(commandOptions)}`);
    }
  });

  it('sends hundreds of commands at once without Node warning of an abort-listener leak', async () => {
    // Commands share an abort signal, in groups told to expect as many listeners as they have commands.
    const client = await connect(redis.url);
    cleanups.push(() => client.close());
    const store = new RedisStore({ redis: client });
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const created = await Promise.all(Array.from({ length: 300 }, (_, i) => store.create(`many-${i}`, [['a', '1']], 60_000)));
      assert.ok(created.every(Boolean));
      const loaded = await Promise.all(Array.from({ length: 300 }, (_, i) => store.load(`many-${i}`)));
      assert.ok(loaded.every((fields) => fields?.get('a') === '1'));
      // Warnings are emitted on a later tick.
      await sleep(10);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning').map((warning) => warning.message), []);
  });

  it('with a custom prefix writes under that prefix only', async () => {
    const client = await connect(redis.url);
    cleanups.push(() => client.close());
    const store = new RedisStore({ redis: client, prefix: 'other:' });
    assert.equal(await store.create('pfx', [['a', '1']], 60_000), true);
    assert.equal(await redis.command('HGET', 'other:pfx', 'a'), '1');
    assert.equal(await redis.command('EXISTS', 'session:pfx'), 0);
  });
});
