// What only Fastify has: plugin encapsulation and the app's lifecycle. Session behaviour itself is
// the conformance suite's job.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { MemoryStore } from '../../src/index.js';
import { session } from '../../src/adapters/fastify.js';
import { startRedis, type RedisServer } from '../redis/server.js';

/** The `name=value` pairs of a response's Set-Cookie headers. */
function cookiesOf(header: string | string[] | undefined): string[] {
  return [header ?? []].flat().map((line) => line.split(';')[0] as string);
}

describe('Fastify plugin', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it('gives sessions to the encapsulated context it is registered in, not to its siblings', async () => {
    const app = Fastify();
    await app.register(async (scoped) => {
      await scoped.register(session, { store: new MemoryStore() });
      scoped.get('/inside', async (request) => {
        await request.session.set('a', 1);
        return 'inside';
      });
    });
    await app.register(async (sibling) => {
      sibling.get('/outside', async (request) => String((request as unknown as Record<string, unknown>).session));
    });
    const inside = await app.inject('/inside');
    assert.equal(inside.statusCode, 200);
    assert.equal(cookiesOf(inside.headers['set-cookie']).length, 1);
    const outside = await app.inject('/outside');
    assert.equal(outside.body, 'undefined');
    assert.equal(outside.headers['set-cookie'], undefined);
    await app.close();
  });

  it('lets two registrations with their own cookie and keyword live side by side', async () => {
    const app = Fastify();
    await app.register(session, { store: new MemoryStore() });
    await app.register(session, { store: new MemoryStore(), cookieName: 'admin', keyword: 'admin' });
    app.get('/both', async (request) => {
      await request.session.set('who', 'visitor');
      await (request as unknown as { admin: typeof request.session }).admin.set('who', 'admin');
      return 'both';
    });
    const response = await app.inject('/both');
    const names = cookiesOf(response.headers['set-cookie']).map((pair) => pair.split('=')[0]);
    assert.deepEqual(names.sort(), ['admin', 'session']);
    await app.close();
  });

  it('refuses a second registration under the same keyword', async () => {
    const app = Fastify();
    await app.register(session, { store: new MemoryStore() });
    await assert.rejects(async () => void (await app.register(session, { store: new MemoryStore() })), {
      code: 'FST_ERR_DEC_ALREADY_PRESENT',
    });
    await app.close();
  });

  /** The connections Redis sees, without the one `redis.command` uses. */
  async function clientCount(): Promise<number> {
    const list = String(await redis.command('CLIENT', 'LIST'));
    return list.split('\n').filter((line) => line.includes('cmd=') && !line.includes('cmd=client')).length;
  }

  it('closes the Redis connection it created from a URL when the app closes', async () => {
    const baseline = await clientCount();
    const app = Fastify();
    await app.register(session, { redis: redis.url });
    app.get('/', async (request) => {
      await request.session.set('a', 1);
      return 'ok';
    });
    assert.equal((await app.inject('/')).statusCode, 200);
    assert.equal(await clientCount(), baseline + 1);
    await app.close();
    // The server notices a closed connection a moment later.
    for (let attempt = 0; attempt < 50 && (await clientCount()) > baseline; attempt++) await sleep(20);
    assert.equal(await clientCount(), baseline);
  });
});
