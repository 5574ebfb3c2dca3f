// `adopt: { from: 'koa-session' }`: sessions made by the real koa-session with koa-redis (signed
// `koa.sess` + `koa.sess.sig` cookies from app.keys, Passport's `passport.user` written as
// koa-passport does), then served from the same Redis and cookie jar by latchkey/koa,
// latchkey/express and latchkey/koa-session.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Koa from 'koa';
import koaSession from 'koa-session';
import redisStore from 'koa-redis';
import dropIn from '../../src/adapters/koa-session.js';
import { useRedisWithClient } from '../redis/client.js';
import { assertAdopted, Browser, clears, DATA, listen, sessionKeys, setCookiesOf, startNative, type Running, type Whoami } from './adopt-support.js';

const OLD_KEY = 'koa-app-key';
const NEW_KEY = 'a-koa-app-key-of-at-least-32-characters';
const ADOPT = { from: 'koa-session', secrets: [OLD_KEY] } as const;

describe('adopt from koa-session (koa-redis)', () => {
  const server = useRedisWithClient();
  const { redis } = server;
  const running: Running[] = [];
  afterEach(async () => {
    for (const app of running.splice(0)) await app.close();
    await redis.command('FLUSHALL');
  });

  /** A browser with a koa-session session holding `DATA` and Passport's user; and the old key. */
  async function oldSession(keys = [OLD_KEY]): Promise<{ browser: Browser; key: string }> {
    const app = new Koa();
    app.keys = keys;
    // koa-redis takes a URL (its typings say otherwise) and creates its own ioredis client.
    const store = redisStore({ url: redis.url } as Parameters<typeof redisStore>[0]);
    app.use(koaSession({ store: store as never, maxAge: 3_600_000 }, app));
    app.use((ctx) => {
      Object.assign(ctx.session as object, DATA, { passport: { user: 'alice' } });
      ctx.body = 'seeded';
    });
    const old = await listen(app.callback());
    try {
      const browser = new Browser(old.url);
      assert.equal((await browser.fetch('/')).status, 200);
      const key = browser.cookie('koa.sess') as string;
      assert.ok(browser.cookie('koa.sess.sig'), 'koa-session signs its cookie in koa.sess.sig');
      const stored = JSON.parse((await redis.command('GET', key)) as string) as Record<string, unknown>;
      assert.deepEqual(stored['passport'], { user: 'alice' }, 'koa-redis keeps the session under the cookie value');
      return { browser, key };
    } finally {
      await old.close();
      await store.client.quit();
    }
  }

  for (const framework of ['koa', 'express'] as const) {
    it(`latchkey/${framework}: signed in, data intact, old key and both cookies gone, TTL carried`, async () => {
      const { browser, key } = await oldSession();
      const oldTtl = (await redis.command('PTTL', key)) as number;
      const app = await startNative(framework, { redis: server.client, adopt: ADOPT, cookieLifetime: 7200 });
      running.push(app);
      const jar = browser.at(app.url);
      const response = await jar.fetch('/whoami');
      assertAdopted((await response.json()) as Whoami, 'alice', { passport: { user: 'alice' } });
      for (const name of ['koa.sess', 'koa.sess.sig']) {
        const [cleared] = setCookiesOf(response, name);
        assert.ok(cleared && clears(cleared), name);
      }
      assert.equal(await redis.command('EXISTS', key), 0);
      const keys = await sessionKeys(redis);
      assert.equal(keys.length, 1);
      const ttl = (await redis.command('PTTL', keys[0] as string)) as number;
      assert.ok(ttl > 0 && ttl <= oldTtl);
      assert.equal(((await redis.command('HKEYS', 'session:user:alice')) as string[]).length, 1);
    });
  }

  it('latchkey/koa-session (same cookie name koa.sess): the data and user carry over, koa.sess.sig is cleared, koa.sess is set once', async () => {
    const { browser, key } = await oldSession();
    const app = new Koa();
    app.keys = [NEW_KEY];
    const middleware = dropIn({ redis: server.client, adopt: ADOPT }, app);
    app.use(middleware);
    app.use((ctx) => {
      ctx.body = { ...(ctx.session as unknown as Record<string, unknown>) };
    });
    const served = await listen(app.callback());
    running.push({ url: served.url, close: async () => (await served.close(), await middleware.close()) });
    const jar = browser.at(served.url);
    const response = await jar.fetch('/');
    const data = (await response.json()) as Record<string, unknown>;
    for (const [name, value] of Object.entries({ ...DATA, passport: { user: 'alice' } })) assert.deepEqual(data[name], value, name);
    const own = setCookiesOf(response, 'koa.sess');
    assert.equal(own.length, 1);
    assert.ok(!clears(own[0] as string));
    assert.ok(clears(setCookiesOf(response, 'koa.sess.sig')[0] as string));
    assert.equal(await redis.command('EXISTS', key), 0);
    await jar.fetch('/');
    assert.equal((await middleware.manager.admin.listUserSessions('alice')).length, 1);
  });

  it("a record koa-session would refuse (its _expire passed), or none at all, adopts nothing; the dead old cookies are cleared", async () => {
    const { browser, key } = await oldSession();
    const stored = JSON.parse((await redis.command('GET', key)) as string) as Record<string, unknown>;
    await redis.command('SET', key, JSON.stringify({ ...stored, _expire: Date.now() - 1000 }), 'KEEPTTL');
    const app = await startNative('koa', { redis: server.client, adopt: ADOPT });
    running.push(app);
    const signature = browser.cookie('koa.sess.sig') as string;
    const jar = browser.at(app.url);
    const response = await jar.fetch('/whoami');
    assert.deepEqual(((await response.json()) as Whoami).data, {});
    assert.deepEqual(setCookiesOf(response, 'session'), [], 'no latchkey session was made');
    assert.ok(clears(setCookiesOf(response, 'koa.sess')[0] as string));
    assert.ok(clears(setCookiesOf(response, 'koa.sess.sig')[0] as string));
    assert.deepEqual(await sessionKeys(redis), []);
    // Without the record at all, the same.
    await redis.command('DEL', key);
    const again = await new Browser(app.url).fetch('/whoami', { headers: { cookie: `koa.sess=${key}; koa.sess.sig=${signature}` } });
    assert.deepEqual(((await again.json()) as Whoami).data, {});
    assert.ok(clears(setCookiesOf(again, 'koa.sess')[0] as string), 'a verified cookie that names no session is cleared');
    assert.deepEqual(await sessionKeys(redis), []);
  });

  it('rotation: a cookie signed with the second key is adopted; a wrong or missing .sig adopts nothing, with no store command', async () => {
    const { browser, key } = await oldSession();
    const app = await startNative('koa', { redis: server.client, adopt: { from: 'koa-session', secrets: [NEW_KEY, OLD_KEY] } });
    running.push(app);
    const value = browser.cookie('koa.sess') as string;
    for (const cookie of [`koa.sess=${value}`, `koa.sess=${value}; koa.sess.sig=AAAA`, `koa.sess=${value}x; koa.sess.sig=${browser.cookie('koa.sess.sig') as string}`]) {
      await redis.resetStats();
      const response = await new Browser(app.url).fetch('/whoami', { headers: { cookie } });
      assert.deepEqual(((await response.json()) as Whoami).data, {});
      assert.equal(await redis.commandTotal(), 0, cookie);
    }
    assert.equal(await redis.command('EXISTS', key), 1);
    assertAdopted((await (await browser.at(app.url).fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' } });
  });
});
