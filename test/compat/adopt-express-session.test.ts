// `adopt: { from: 'express-session' }`: sessions made by the real express-session + connect-redis
// (signed in with passport + passport-local), then served from the same Redis and cookie jar by
// latchkey, natively (latchkey/express, /fastify, /koa) and through latchkey/express-session.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import express from 'express';
import expressSession from 'express-session';
import { RedisStore as ConnectRedis } from 'connect-redis';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { Redis } from 'ioredis';
import dropIn from '../../src/adapters/express-session.js';
import { session } from '../../src/adapters/express.js';
import { isSessionError, MemoryStore, SessionAdmin, SessionError, type SessionOptions } from '../../src/index.js';
import { resolveOptions } from '../../src/core/options.js';
import { useRedisWithClient, ioredisReady } from '../redis/client.js';
import {
  assertAdopted,
  Browser,
  clears,
  DATA,
  listen,
  NEW_SECRET,
  OLD_SECRET,
  sessionKeys,
  setCookiesOf,
  startNative,
  WRONG_SECRET,
  type NativeFramework,
  type Running,
  type Whoami,
} from './adopt-support.js';

let server: ReturnType<typeof useRedisWithClient>;
let redis: ReturnType<typeof useRedisWithClient>['redis'];

/** The old app: express-session + connect-redis, Passport signing in 'alice'. */
async function startOld(secret: string | string[] = OLD_SECRET): Promise<Running> {
  const app = express();
  app.use(expressSession({ store: new ConnectRedis({ client: server.client }), secret, resave: false, saveUninitialized: false, cookie: { maxAge: 3_600_000 } }));
  app.use(express.urlencoded({ extended: false }));
  const authenticator = new passport.Passport();
  authenticator.use(new LocalStrategy((username, password, done) => done(null, username === 'alice' && password === 'pw' ? { id: 'alice' } : false)));
  authenticator.serializeUser((user, done) => done(null, (user as { id: string }).id));
  authenticator.deserializeUser((id: string, done) => done(null, { id }));
  app.use(authenticator.session());
  app.post('/login', authenticator.authenticate('local'), (_req, res) => void res.send('in'));
  app.get('/seed', (req, res) => {
    Object.assign(req.session, DATA);
    res.send('seeded');
  });
  return listen(app);
}

/** A browser signed in to the old app, with `DATA` in its session; and the old session's Redis key. */
async function oldSession(secret: string | string[] = OLD_SECRET): Promise<{ browser: Browser; key: string }> {
  const old = await startOld(secret);
  try {
    const browser = new Browser(old.url);
    assert.equal((await browser.post('/login', { username: 'alice', password: 'pw' })).status, 200);
    assert.equal((await browser.fetch('/seed')).status, 200);
    const cookie = browser.cookie('connect.sid');
    assert.ok(cookie?.startsWith('s%3A'), 'express-session signs its cookie, URL-encoded');
    const id = decodeURIComponent(cookie as string).slice(2).split('.')[0] as string;
    const key = `sess:${id}`;
    const stored = JSON.parse((await redis.command('GET', key)) as string) as Record<string, unknown>;
    assert.deepEqual(stored['passport'], { user: 'alice' });
    return { browser, key };
  } finally {
    await old.close();
  }
}

const ADOPT = { from: 'express-session', secrets: [OLD_SECRET] } as const;

describe('adopt from express-session (connect-redis, Passport)', () => {
  server = useRedisWithClient();
  redis = server.redis;
  const running: Running[] = [];
  const start = async (framework: NativeFramework, options: SessionOptions = {}): Promise<Running> => {
    const app = await startNative(framework, { redis: server.client, adopt: ADOPT, ...options });
    running.push(app);
    return app;
  };
  afterEach(async () => {
    for (const app of running.splice(0)) await app.close();
    await redis.command('FLUSHALL');
  });

  for (const framework of ['express', 'fastify', 'koa'] as const) {
    it(`latchkey/${framework}: the user stays signed in, the data is intact, the old key and cookie go, the TTL is carried`, async () => {
      const { browser, key } = await oldSession();
      const oldTtl = (await redis.command('PTTL', key)) as number;
      assert.ok(oldTtl > 3_500_000 && oldTtl <= 3_600_000);
      const app = await start(framework, { cookieLifetime: 7200 });
      const events: unknown[] = [];
      const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
      const listener = (message: unknown): void => void events.push(message);
      subscribe('latchkey:session', listener);
      const jar = browser.at(app.url);
      const first = await jar.fetch('/whoami');
      unsubscribe('latchkey:session', listener);
      assert.equal(first.status, 200);
      const whoami = (await first.json()) as Whoami;
      assertAdopted(whoami, 'alice', { passport: { user: 'alice' } });
      assert.equal(whoami.isNew, false, 'the session existed before this request');
      assert.deepEqual(events, [{ event: 'adopted', from: 'express-session' }]);
      // The old cookie is cleared, latchkey's is set.
      const [cleared] = setCookiesOf(first, 'connect.sid');
      assert.ok(cleared && clears(cleared) && /path=\//i.test(cleared));
      const [set] = setCookiesOf(first, 'session');
      assert.ok(set && !clears(set));
      assert.equal(jar.cookie('connect.sid'), undefined);
      assert.equal(await redis.command('EXISTS', key), 0, 'the old record is gone');
      const keys = await sessionKeys(redis);
      assert.equal(keys.length, 1);
      const ttl = (await redis.command('PTTL', keys[0] as string)) as number;
      assert.ok(ttl > 0 && ttl <= oldTtl, `the store TTL (${ttl}) is at most what the old record had left (${oldTtl})`);
      // The next request carries latchkey's cookie only: same session, nothing adopted again.
      const second = (await (await jar.fetch('/whoami')).json()) as Whoami;
      assertAdopted(second, 'alice', { passport: { user: 'alice' } });
      assert.deepEqual(await sessionKeys(redis), keys);
      assert.equal(((await redis.command('HKEYS', 'session:user:alice')) as string[]).length, 1, "the user's index holds the adopted session");
    });
  }

  it('latchkey/express-session (same cookie name connect.sid): Passport still sees the user, no re-login, the data intact', async () => {
    const { browser, key } = await oldSession();
    const app = express();
    const middleware = dropIn({ redis: server.client, secret: NEW_SECRET.padEnd(32, '!'), adopt: ADOPT, cookie: { maxAge: 3_600_000 } });
    const authenticator = new passport.Passport();
    authenticator.serializeUser((user, done) => done(null, (user as { id: string }).id));
    authenticator.deserializeUser((id: string, done) => done(null, { id }));
    app.use(middleware);
    app.use(authenticator.session());
    app.get('/me', (req, res) => void res.json({ user: req.user, data: { ...(req.session as unknown as Record<string, unknown>) } }));
    const served = await listen(app);
    running.push({ url: served.url, close: async () => (await served.close(), await middleware.close()) });
    const events: string[] = [];
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    const listener = (message: unknown): void => void events.push((message as { event: string }).event);
    subscribe('latchkey:session', listener);
    const jar = browser.at(served.url);
    const response = await jar.fetch('/me');
    unsubscribe('latchkey:session', listener);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { user: unknown; data: Record<string, unknown> };
    assert.deepEqual(body.user, { id: 'alice' });
    for (const [name, value] of Object.entries(DATA)) assert.deepEqual(body.data[name], value, name);
    assert.deepEqual(events, ['adopted'], 'adopted; no cookie-refused, no logged-in (no re-login)');
    // One Set-Cookie for connect.sid: latchkey's, not a clearing line fighting it.
    const lines = setCookiesOf(response, 'connect.sid');
    assert.equal(lines.length, 1);
    assert.ok(!clears(lines[0] as string));
    assert.equal(await redis.command('EXISTS', key), 0);
    const again = await jar.fetch('/me');
    assert.deepEqual(((await again.json()) as { user: unknown }).user, { id: 'alice' });
    assert.deepEqual(setCookiesOf(again, 'connect.sid'), []);
    assert.deepEqual(await middleware.manager.admin.listUserSessions('alice').then((list) => list.length), 1);
  });

  it("the README's example: express-session's cookie and connect-redis records, on the same Redis", async () => {
    const { browser, key } = await oldSession();
    const client = server.client;
    const oldSecret = OLD_SECRET;
    const middleware = session({ redis: client, adopt: { from: 'express-session', secrets: [oldSecret] } });
    const app = express();
    app.use(middleware);
    app.get('/user', async (req, res) => void res.json({ user: await req.session.userId() }));
    const served = await listen(app);
    running.push({ url: served.url, close: async () => (await served.close(), await middleware.close()) });
    assert.deepEqual(await (await browser.at(served.url).fetch('/user')).json(), { user: 'alice' });
    assert.equal(await redis.command('EXISTS', key), 0);
  });

  it('an old cookie signed with the second of the old secrets (rotation) is adopted', async () => {
    const { browser } = await oldSession(OLD_SECRET);
    const app = await start('express', { adopt: { from: 'express-session', secrets: [NEW_SECRET, OLD_SECRET] } });
    assertAdopted((await (await browser.at(app.url).fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' } });
  });

  it('a forged, unsigned or wrongly signed old cookie adopts nothing and sends no store command', async () => {
    const { browser, key } = await oldSession();
    const app = await start('express');
    const value = decodeURIComponent(browser.cookie('connect.sid') as string);
    const id = value.slice(2).split('.')[0] as string;
    const wrong = `s:${id}.${createHmac('sha256', WRONG_SECRET).update(id).digest('base64').replace(/=+$/, '')}`;
    for (const cookie of [`s:${id}`, id, wrong, `s:${id}.AAAA`, `${value}x`, encodeURIComponent(wrong)]) {
      await redis.resetStats();
      const response = await new Browser(app.url).fetch('/whoami', { headers: { cookie: `connect.sid=${encodeURIComponent(cookie)}` } });
      assert.deepEqual(((await response.json()) as Whoami).data, {});
      assert.equal(await redis.commandTotal(), 0, `no store command for ${cookie}`);
      assert.deepEqual(response.headers.getSetCookie(), []);
    }
    assert.equal(await redis.command('EXISTS', key), 1, 'the old record is untouched');
  });

  it('N = 20 concurrent first requests with the same old cookie end in one latchkey session, all with the same cookie', async () => {
    const { browser, key } = await oldSession();
    // Two apps with a connection each, as two processes would have.
    const apps = [await start('express'), await start('fastify', { redis: redis.url })];
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => browser.at((apps[i % 2] as Running).url).fetch(i % 3 === 0 ? '/write' : '/whoami')));
    const cookies = new Set(responses.map((response) => setCookiesOf(response, 'session')[0]?.split(';')[0]));
    assert.deepEqual(responses.map((response) => response.status), Array(20).fill(200));
    assert.equal(cookies.size, 1, 'every response sets the same latchkey cookie');
    assert.ok([...cookies][0]);
    assert.equal((await sessionKeys(redis)).length, 1, 'one latchkey session');
    assert.equal(await redis.command('EXISTS', key), 0);
    const jar = browser.at((apps[0] as Running).url);
    await jar.fetch('/whoami');
    const whoami = (await (await jar.fetch('/whoami')).json()) as Whoami;
    assertAdopted(whoami, 'alice', { passport: { user: 'alice' }, written: 1 });
  });

  it('a write-only first request keeps the old data', async () => {
    const { browser } = await oldSession();
    const app = await start('koa');
    const jar = browser.at(app.url);
    assert.equal((await jar.fetch('/write')).status, 200);
    assertAdopted((await (await jar.fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' }, written: 1 });
    assert.equal((await sessionKeys(redis)).length, 1);
  });

  it('no old cookie: no extra Redis command; with a latchkey cookie the old one is ignored', async () => {
    const { browser, key } = await oldSession();
    const app = await start('express');
    await redis.resetStats();
    const plain = new Browser(app.url);
    assert.deepEqual(((await (await plain.fetch('/whoami')).json()) as Whoami).data, {});
    assert.equal(await redis.commandTotal(), 0, 'a request without any cookie sends nothing');
    await plain.fetch('/write');
    await redis.resetStats();
    const both = await plain.fetch('/whoami', { headers: { cookie: `session=${plain.cookie('session') as string}; connect.sid=${browser.cookie('connect.sid') as string}` } });
    assert.deepEqual(((await both.json()) as Whoami).data, { written: 1 });
    assert.deepEqual([...(await redis.commandCounts()).keys()], ['hgetall'], 'one read of the latchkey session, nothing of the old one');
    assert.equal(await redis.command('EXISTS', key), 1);
  });

  it('Redis down during the adoption: 503 and the old record intact; once Redis is back the adoption succeeds', async () => {
    const { browser, key } = await oldSession();
    const app = await start('express', { redis: redis.url });
    const saved = (await redis.command('GET', key)) as string;
    const ttl = (await redis.command('PTTL', key)) as number;
    await redis.kill();
    const jar = browser.at(app.url);
    const failed = await jar.fetch('/whoami');
    assert.equal(failed.status, 503);
    assert.deepEqual(await failed.json(), { code: 'STORE_UNAVAILABLE' });
    assert.ok(jar.cookie('connect.sid'), 'the old cookie is kept');
    await redis.restart();
    // The test's redis-server keeps nothing on disk: put the old record back as it was.
    await redis.command('SET', key, saved, 'PX', String(ttl));
    await clientReconnected();
    let whoami: Whoami | undefined;
    for (let attempt = 0; attempt < 50 && whoami === undefined; attempt++) {
      const response = await jar.fetch('/whoami');
      if (response.status === 200) whoami = (await response.json()) as Whoami;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(whoami);
    assertAdopted(whoami, 'alice', { passport: { user: 'alice' } });
    assert.equal(await redis.command('EXISTS', key), 0);
  });

  it('a store that fails to create the adopted session leaves the old record as it was (503); the next request adopts it', async () => {
    const { browser, key } = await oldSession();
    const saved = await redis.command('GET', key);
    let failing = true;
    class FlakyStore extends MemoryStore {
      override create(...args: Parameters<MemoryStore['create']>): Promise<boolean> {
        if (failing) return Promise.reject(new SessionError('STORE_UNAVAILABLE', 'the store is down'));
        return super.create(...args);
      }
    }
    const app = await start('express', { redis: undefined, store: new FlakyStore(), adopt: { ...ADOPT, redis: server.client } });
    const jar = browser.at(app.url);
    const failed = await jar.fetch('/write');
    assert.equal(failed.status, 503);
    assert.equal(await redis.command('GET', key), saved, 'the old record is intact');
    failing = false;
    assert.equal((await jar.fetch('/write')).status, 200);
    assertAdopted((await (await jar.fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' }, written: 1 });
    assert.equal(await redis.command('EXISTS', key), 0);
  });

  it('a create that stored the session and then failed (its id ended for a while) fails the next requests too, rather than lose the old data', async () => {
    const { browser, key } = await oldSession();
    const saved = await redis.command('GET', key);
    class HalfwayStore extends MemoryStore {
      override async create(...args: Parameters<MemoryStore['create']>): Promise<boolean> {
        // As RedisStore does when it cannot index the new session: it ends the id it just stored.
        await super.create(...args);
        await this.destroy(args[0]);
        throw new SessionError('STORE_UNAVAILABLE', 'the index could not be written');
      }
    }
    const app = await start('express', { redis: undefined, store: new HalfwayStore(), adopt: { ...ADOPT, redis: server.client } });
    const jar = browser.at(app.url);
    assert.equal((await jar.fetch('/write')).status, 503);
    const again = await jar.fetch('/write');
    assert.equal(again.status, 503, 'no empty session that the old data could never reach');
    assert.deepEqual(again.headers.getSetCookie(), []);
    assert.equal(await redis.command('GET', key), saved);
  });

  it('maxSessionsPerUser applies to the adopted user as at a login', async () => {
    const { browser } = await oldSession();
    const app = await start('express', { maxSessionsPerUser: 1 });
    const other = new Browser(app.url);
    assert.equal((await other.fetch('/login/alice')).status, 200);
    const admin = new SessionAdmin({ redis: server.client });
    assert.equal((await admin.listUserSessions('alice')).length, 1);
    assertAdopted((await (await browser.at(app.url).fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' } });
    assert.equal((await admin.listUserSessions('alice')).length, 1, 'the older session was revoked');
    assert.equal(((await (await other.fetch('/whoami')).json()) as Whoami).user, undefined);
  });

  it('works with an ioredis client too', async () => {
    const { browser, key } = await oldSession();
    const ioredis = new Redis(redis.url, { lazyConnect: false });
    await ioredisReady(ioredis);
    try {
      const app = await start('express', { redis: ioredis });
      assertAdopted((await (await browser.at(app.url).fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' } });
      assert.equal(await redis.command('EXISTS', key), 0);
    } finally {
      ioredis.disconnect();
    }
  });

  it('reads the old records from their own Redis with adopt.redis, and needs it with a store that cannot reach Redis', async () => {
    const { browser } = await oldSession();
    const app = await start('express', { redis: undefined, store: new MemoryStore(), adopt: { ...ADOPT, redis: server.client } });
    assertAdopted((await (await browser.at(app.url).fetch('/whoami')).json()) as Whoami, 'alice', { passport: { user: 'alice' } });
    assert.throws(
      () => resolveOptions({ store: new MemoryStore(), adopt: ADOPT }),
      (error: unknown) => isSessionError(error, 'INVALID_OPTIONS') && /adopt\.redis/.test(error.message),
    );
  });

  async function clientReconnected(): Promise<void> {
    for (let attempt = 0; attempt < 100 && !server.client.isReady; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

describe('adopt options', () => {
  const refuses = (adopt: unknown, pattern: RegExp): void => {
    assert.throws(
      () => resolveOptions({ adopt: adopt as SessionOptions['adopt'] }),
      (error: unknown) => error instanceof SessionError && error.code === 'INVALID_OPTIONS' && pattern.test(error.message),
    );
  };
  it('refuses what cannot work, saying how to fix it', () => {
    refuses({ from: 'connect-redis', secrets: ['x'] }, /adopt\.from must be 'express-session', '@fastify\/session', 'koa-session'/);
    refuses({ from: 'express-session' }, /adopt\.secrets must be the non-empty secret\(s\).*express-session's secret option/);
    refuses({ from: 'koa-session', secrets: [] }, /app\.keys/);
    refuses({ from: 'express-session', secrets: ['x'], cookieName: 'a b' }, /adopt\.cookieName/);
    refuses({ from: 'express-session', secrets: ['x'], prefix: 1 }, /adopt\.prefix/);
    refuses({ from: 'express-session', secrets: ['x'], secret: 'x' }, /unknown option adopt\.secret/);
    refuses([], /at least one library/);
    refuses([{ from: 'express-session', secrets: ['x'] }, 'koa'], /adopt\[1\] must be an object/);
    refuses({ from: 'express-session', secrets: ['x'], cookiePath: 'x' }, /adopt\.cookiePath/);
  });
  it("applies each library's defaults", () => {
    const [express, fastify, koa] = resolveOptions({
      adopt: [{ from: 'express-session', secrets: 'a' }, { from: '@fastify/session', secrets: ['b'] }, { from: 'koa-session', secrets: ['c'] }],
    }).adopt;
    assert.deepEqual([express?.cookieName, express?.prefix, express?.cookiePath], ['connect.sid', 'sess:', '/']);
    assert.deepEqual([fastify?.cookieName, fastify?.prefix], ['sessionId', 'sess:']);
    assert.deepEqual([koa?.cookieName, koa?.prefix], ['koa.sess', '']);
    assert.deepEqual(resolveOptions({}).adopt, []);
  });
});
