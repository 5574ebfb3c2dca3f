// The app's own client keeps its offline queue; latchkey must still fail at once during an outage,
// and nothing it was told had failed may run when Redis comes back.
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import { isSessionError, RedisStore } from '../../src/index.js';
import type { RedisClientLike } from '../../src/stores/redis-client.js';
import { useRedis } from '../redis/server.js';

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
    // Persistent, so that the session the update below was about is still there after the restart
    // and an update replayed by the client's offline queue would show.
    const redis = useRedis({ persist: true });

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
        assert.deepEqual(await redis.command('HGETALL', 'session:before'), ['a', '1', ':b', '2/1/'], 'no update that failed ran later (the hash is as create wrote it, with its byte tally)');
        assert.equal(await store.create('after', [['a', '1']], 60_000), true);
      } finally {
        close();
      }
    });
  });
}

// Redis dies while the app is busy: the commands of the requests it handles next are queued while
// the client still reports itself connected (it has not yet seen the connection close), and must
// fail as fast as those sent once it has, not wait for the command timeout.

/** Blocks the whole process for `ms`, as a busy event loop does. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Blocks the whole process until nothing answers on `port` any more (redis-server is gone and the
 * kernel has closed its connections), and a moment longer for the close to reach the client's socket.
 */
function blockUntilGone(port: number): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ping = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], { encoding: 'utf8', timeout: 2000 });
    if ((ping.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error('redis-cli is not installed');
    if (ping.stdout.trim() !== 'PONG') break;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} still answers 10 s after SIGKILL`);
    blockFor(5);
  }
  blockFor(20);
}

const TIMEOUT_MS = 2000;
/** The commands RedisStore sends (INFO commandstats names). */
const LATCHKEY_COMMANDS = ['evalsha', 'eval', 'hgetall', 'unlink'];
const ROUNDS = 3;

/** The app's own clients, and latchkey's own from a URL (`ready()` undefined: the test cannot see it). */
const BUSY_CLIENTS: Record<string, (url: string) => Promise<{ redis: RedisClientLike | string; ready(): boolean | undefined; close(): void }>> = {
  // Everything at its default: offline queue, reconnection back-off, node-redis' own 5 s command timeout.
  'node-redis (defaults)': async (url) => {
    const client = createClient({ url });
    client.on('error', () => {});
    await client.connect();
    return { redis: client, ready: () => client.isReady, close: () => client.destroy() };
  },
  // As the README advises.
  ioredis: async (url) => {
    const client = new Redis(url, { retryStrategy: (times) => Math.min(50 * 2 ** times, 500), autoResendUnfulfilledCommands: false });
    client.on('error', () => {});
    await new Promise((resolve) => client.once('ready', resolve));
    return { redis: client, ready: () => client.status === 'ready', close: () => client.disconnect() };
  },
  "latchkey's own client": async (url) => ({ redis: url, ready: () => undefined, close: () => {} }),
};

for (const [name, connect] of Object.entries(BUSY_CLIENTS)) {
  describe(`RedisStore on ${name} when Redis dies while the app is busy`, () => {
    const redis = useRedis();

    it(`fails the operations of the requests handled next within 1 s (timeout ${TIMEOUT_MS} ms), and runs none of them later`, async () => {
      const { redis: client, ready, close } = await connect(redis.url);
      const store = new RedisStore({ redis: client, commandTimeout: TIMEOUT_MS });
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const back = Date.now() + 10_000;
          let created = false;
          while (!created && Date.now() < back) {
            created = await store.create('before', [['a', '1']], 60_000).catch(() => false);
            if (!created) await sleep(50);
          }
          assert.ok(created, `round ${round}: service came back after the restart`);

          // In one callback, as the app would: Redis dies, the app is busy meanwhile, then handles requests.
          const { killed, stillReady, outcomes } = await new Promise<{
            killed: Promise<void>;
            stillReady: boolean | undefined;
            outcomes: Promise<{ error: unknown; ms: number }>[];
          }>((resolve) =>
            setTimeout(() => {
              const killed = redis.kill();
              blockUntilGone(redis.port);
              const stillReady = ready();
              const started = performance.now();
              const settle = (operation: Promise<unknown>) =>
                operation.then(
                  () => ({ error: undefined, ms: performance.now() - started }),
                  (error: unknown) => ({ error, ms: performance.now() - started }),
                );
              const outcomes = [
                settle(store.create('during', [['a', '1']], 60_000)),
                settle(store.load('before')),
                settle(store.update('before', [['b', '2']], [], { ...EXPIRY, now: Date.now() }, { maxFields: 10, maxBytes: 1000 })),
              ];
              resolve({ killed, stillReady, outcomes });
            }, 0),
          );
          await killed;
          assert.notEqual(stillReady, false, `round ${round}: the client had not noticed the outage when the operations were sent`);
          const settled = await Promise.all(outcomes);

          await redis.restart();
          const connectedAgain = async (): Promise<boolean> =>
            ready() ?? String(await redis.command('CLIENT', 'LIST')).trim().split('\n').length > 1;
          const reconnected = Date.now() + 10_000;
          while (!(await connectedAgain()) && Date.now() < reconnected) await sleep(20);
          assert.ok(await connectedAgain(), `round ${round}: the client reconnected by itself`);
          await sleep(200);
          // The restarted server has no scripts and no keys: what a late command would do cannot be
          // seen in the data, but it would still be counted.
          const counts = await redis.commandCounts();
          const ranLater = [...counts].filter(([command]) => LATCHKEY_COMMANDS.includes(command));

          assert.deepEqual(
            {
              failures: settled.map(({ error }) => (isSessionError(error, 'STORE_UNAVAILABLE') ? 'STORE_UNAVAILABLE' : String(error))),
              slow: settled.filter(({ ms }) => ms >= 1000).map(({ ms }) => Math.round(ms)),
              ranLater,
            },
            { failures: ['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE', 'STORE_UNAVAILABLE'], slow: [], ranLater: [] },
            `round ${round}: every operation failed with STORE_UNAVAILABLE within 1 s, and none ran once Redis was back`,
          );
        }
      } finally {
        await store.close();
        close();
      }
    });
  });
}

describe("RedisStore on the app's own node-redis client before its first connection", () => {
  const redis = useRedis();

  it('lets operations wait for the connection up to the timeout, and runs none that timed out once Redis is up', async () => {
    await redis.kill();
    // The app serves while its client is still connecting (Redis is not up yet).
    const client = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
    client.on('error', () => {});
    const connected = client.connect().catch(() => {});
    try {
      const store = new RedisStore({ redis: client, commandTimeout: 500 });
      const started = Date.now();
      const outcomes = await Promise.allSettled([
        store.create('early', [['a', '1']], 60_000),
        store.load('early'),
        store.update('early', [['b', '2']], [], { ...EXPIRY, now: Date.now() }, { maxFields: 10, maxBytes: 1000 }),
      ]);
      for (const outcome of outcomes) {
        assert.ok(outcome.status === 'rejected' && isSessionError(outcome.reason, 'STORE_UNAVAILABLE'), 'each operation failed');
      }
      assert.ok(Date.now() - started >= 400, `they waited for the connection, not ${Date.now() - started} ms`);

      await redis.restart();
      await connected;
      assert.equal(client.isReady, true, 'the client connected');
      await sleep(200);
      const ranLater = [...(await redis.commandCounts())].filter(([command]) => LATCHKEY_COMMANDS.includes(command));
      assert.deepEqual(ranLater, [], 'none of the operations that timed out ran once Redis was up');
      assert.equal(await store.create('after', [['a', '1']], 60_000), true);
    } finally {
      client.destroy();
    }
  });
});
