import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { SessionError } from '../../src/core/errors.js';
import {
  createOwnedClient,
  toRedisUrl,
  toSessionError,
  type OwnedClient,
  type RedisConnectionOptions,
  type RedisLibrary,
} from '../../src/stores/redis-client.js';
import { freePort, startRedis, type RedisServer } from '../redis/server.js';

const PENDING = Symbol('pending');

/** What `promise` settled with within `ms`, or PENDING. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof PENDING>((resolve) => {
    timer = setTimeout(() => resolve(PENDING), ms);
  });
  try {
    return await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function assertSessionError(error: unknown, code: SessionError['code']): true {
  assert.ok(error instanceof SessionError, `expected a SessionError, got ${String(error)}`);
  assert.equal(error.code, code);
  return true;
}

const LIBRARIES: readonly RedisLibrary[] = ['redis', 'ioredis'];

for (const library of LIBRARIES) {
  describe(`createOwnedClient('${library}')`, () => {
    let server: RedisServer;
    const clients: OwnedClient[] = [];

    /** A client closed in after(), even when a test fails half way. */
    const own = (url: string, timeoutMs: number): OwnedClient => {
      const client = createOwnedClient(url, library, timeoutMs);
      clients.push(client);
      return client;
    };

    before(async () => {
      server = await startRedis();
    });

    after(async () => {
      for (const client of clients) {
        await settledWithin(client.close(), 2000);
      }
      await server.stop();
    });

    it('runs a command once ready', async () => {
      const client = own(server.url, 2000);
      await client.ready;
      assert.equal(await client.send('k', ['PING']), 'PONG');
      assert.equal(await client.send('k', ['SET', 'owned:k', 'v']), 'OK');
      assert.equal(await client.send('k', ['GET', 'owned:k']), 'v');
      assert.equal(await server.command('GET', 'owned:k'), 'v');
      const closed = await settledWithin(client.close(), 2000);
      assert.notEqual(closed, PENDING, 'close() should not hang');
      assert.ok(!(typeof closed === 'object' && 'error' in closed), `close() should not throw: ${JSON.stringify(closed)}`);
    });

    it('with nothing listening: ready does not resolve, send rejects quickly, close does not hang or throw', async () => {
      const port = await freePort();
      const client = own(`redis://127.0.0.1:${port}`, 500);
      const ready = await settledWithin(client.ready, 700);
      assert.ok(ready === PENDING || 'error' in ready, 'ready must not resolve while nothing listens');

      const started = Date.now();
      const sent = await settledWithin(client.send('k', ['PING']), 1500);
      const took = Date.now() - started;
      assert.notEqual(sent, PENDING, 'send should not hang');
      assert.ok(typeof sent === 'object' && 'error' in sent, `send should reject, got ${JSON.stringify(sent)}`);
      assert.ok(took < 1000, `send should reject within ~1 s, took ${took} ms`);

      const closed = await settledWithin(client.close(), 2000);
      assert.notEqual(closed, PENDING, 'close() should not hang');
      assert.ok(typeof closed === 'object' && !('error' in closed), `close() should not throw: ${String((closed as { error?: unknown }).error)}`);
    });

    it('answers again after the server is killed and restarted, without being recreated', async () => {
      const client = own(server.url, 1000);
      await client.ready;
      assert.equal(await client.send('k', ['PING']), 'PONG');
      await server.kill();
      // While the server is down, commands fail (and do not hang).
      const down = await settledWithin(client.send('k', ['PING']), 1500);
      assert.ok(typeof down === 'object' && 'error' in down, `send while down should reject, got ${String(down === PENDING ? 'pending' : JSON.stringify(down))}`);
      await server.restart();

      const deadline = Date.now() + 5000;
      let answer: unknown;
      let attempts = 0;
      while (Date.now() < deadline && attempts < 500) {
        attempts++;
        const result = await settledWithin(client.send('k', ['PING']), 500);
        if (typeof result === 'object' && 'value' in result) {
          answer = result.value;
          break;
        }
        await sleep(50);
      }
      assert.equal(answer, 'PONG', `no answer within 5 s of the restart (${attempts} attempts)`);
    });
  });
}

describe('toRedisUrl', () => {
  it('passes redis:// and rediss:// URL strings through', () => {
    for (const url of ['redis://localhost:6379/0', 'redis://127.0.0.1:1234', 'rediss://user:pw@example.com:6380/3', 'redis://h']) {
      assert.equal(toRedisUrl(url), url);
    }
  });

  it('rejects strings that are not redis URLs with INVALID_OPTIONS', () => {
    for (const url of ['http://x', 'not a url', '', 'localhost:6379', 'https://redis.example.com']) {
      assert.throws(() => toRedisUrl(url), (error: unknown) => assertSessionError(error, 'INVALID_OPTIONS'), url);
    }
  });

  it('rejects unusable options with INVALID_OPTIONS', () => {
    const bad: unknown[] = [
      { port: 99999 },
      { port: -1 },
      { port: 1.5 },
      { port: '6379' },
      { host: '' },
      { host: 5 },
      { bogus: 1 },
      { db: -1 },
      { password: 5 },
      { username: {} },
    ];
    for (const options of bad) {
      assert.throws(
        () => toRedisUrl(options as RedisConnectionOptions),
        (error: unknown) => assertSessionError(error, 'INVALID_OPTIONS'),
        JSON.stringify(options),
      );
    }
  });

  it('builds a redis:// URL from host, port, db and a percent-encoded password', () => {
    const built = toRedisUrl({ host: 'h', port: 1, db: 2, password: 'p@ss' });
    const url = new URL(built);
    assert.equal(url.protocol, 'redis:');
    assert.equal(url.hostname, 'h');
    assert.equal(url.port, '1');
    assert.equal(url.pathname, '/2');
    assert.equal(url.username, '');
    assert.equal(url.password, 'p%40ss');
    assert.equal(decodeURIComponent(url.password), 'p@ss');
    assert.ok(!built.includes('p@ss'), `the password must be percent-encoded in ${built}`);
    assert.equal(built, 'redis://:p%40ss@h:1/2');
  });

  it('uses localhost:6379/0 by default and encodes the user name too', () => {
    assert.equal(toRedisUrl({}), 'redis://localhost:6379/0');
    const url = new URL(toRedisUrl({ username: 'a b', password: 'x:y/z%' }));
    assert.equal(decodeURIComponent(url.username), 'a b');
    assert.equal(decodeURIComponent(url.password), 'x:y/z%');
  });
});

describe('toSessionError', () => {
  it('turns a plain Error into STORE_UNAVAILABLE with the error as cause', () => {
    const cause = new Error('connect ECONNREFUSED');
    const error = toSessionError(cause, 'load');
    assert.ok(error instanceof SessionError);
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.equal(error.status, 503);
    assert.equal(error.cause, cause);
    assert.match(error.message, /load/);
  });

  it('turns a non-Error into STORE_UNAVAILABLE', () => {
    const error = toSessionError('socket hang up', 'update');
    assert.equal(error.code, 'STORE_UNAVAILABLE');
  });

  it('returns a SessionError unchanged', () => {
    const original = new SessionError('INVALID_ARGUMENT', 'x');
    assert.equal(toSessionError(original, 'load'), original);
  });

  describe('with real error replies', () => {
    let server: RedisServer;
    let client: Redis;

    before(async () => {
      server = await startRedis();
      client = new Redis(server.url);
      client.on('error', () => {});
    });

    after(async () => {
      client.disconnect();
      await server.stop();
    });

    it('turns an ERR reply into STORE_ERROR', async () => {
      await client.call('SET', 'str', 'v');
      const reply = await client.call('HGETALL', 'str').then(
        () => undefined,
        (error: unknown) => error,
      );
      assert.ok(reply instanceof Error, 'HGETALL on a string should fail');
      const error = toSessionError(reply, 'load');
      assert.equal(error.code, 'STORE_ERROR');
      assert.equal(error.cause, reply);
    });
  });
});
