// `adopt: { from: '@fastify/session' }`: sessions made by the real @fastify/session (+ @fastify/cookie,
// connect-redis as its store, @fastify/passport signing in with passport-local), then served from
// the same Redis and cookie jar by latchkey/fastify, latchkey/express and latchkey/fastify-session.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import { Authenticator } from '@fastify/passport';
import realFastifySession from '@fastify/session';
import { RedisStore as ConnectRedis } from 'connect-redis';
import { Strategy as LocalStrategy } from 'passport-local';
import dropIn from '../../src/adapters/fastify-session.js';
import { useRedisWithClient } from '../redis/client.js';
import { assertAdopted, Browser, clears, DATA, sessionKeys, setCookiesOf, startNative, type Running, type Whoami } from './adopt-support.js';

/** @fastify/session wants secrets of at least 32 characters. */
const OLD = 'the-old-fastify-session-secret-of-32-characters';
const NEWER = 'a-newer-fastify-session-secret-of-32-characters';
const ADOPT = { from: '@fastify/session', secrets: [OLD] } as const;

describe('adopt from @fastify/session (connect-redis, @fastify/passport)', () => {
  const server = useRedisWithClient();
  const { redis } = server;
  const running: Running[] = [];
  afterEach(async () => {
    for (const app of running.splice(0)) await app.close();
    await redis.command('FLUSHALL');
  });

  /** A browser signed in to the old app as 'alice', with `DATA` in its session; and the old key. */
  async function oldSession(secret: string | string[] = OLD): Promise<{ browser: Browser; key: string }> {
    const old = Fastify();
    await old.register(fastifyCookie);
    await old.register(fastifyFormbody);
    await old.register(realFastifySession, {
      secret,
      store: new ConnectRedis({ client: server.client }) as never,
      saveUninitialized: false,
      cookie: { secure: false, maxAge: 3_600_000 },
    });
    const passport = new Authenticator();
    passport.use('local', new LocalStrategy((username, password, done) => done(null, username === 'alice' && password === 'pw' ? { id: 'alice' } : false)));
    passport.registerUserSerializer(async (user: { id: string }) => user.id);
    passport.registerUserDeserializer(async (id: string) => ({ id }));
    await old.register(passport.initialize());
    await old.register(passport.secureSession());
    old.post('/login', { preValidation: passport.authenticate('local') }, async () => 'in');
    old.get('/seed', async (request) => {
      for (const [name, value] of Object.entries(DATA)) request.session.set(name as never, value as never);
      return 'seeded';
    });
    await old.listen({ port: 0, host: '127.0.0.1' });
    try {
      const browser = new Browser(`http://127.0.0.1:${(old.server.address() as AddressInfo).port}`);
      assert.equal((await browser.post('/login', { username: 'alice', password: 'pw' })).status, 200);
      assert.equal((await browser.fetch('/seed')).status, 200);
      const cookie = decodeURIComponent(browser.cookie('sessionId') as string);
      const key = `sess:${cookie.slice(0, cookie.lastIndexOf('.'))}`;
      const stored = JSON.parse((await redis.command('GET', key)) as string) as Record<string, unknown>;
      assert.equal(stored['passport'], 'alice', '@fastify/passport keeps the serialized user in `passport`');
      return { browser, key };
    } finally {
      await old.close();
    }
  }

  for (const framework of ['fastify', 'express'] as const) {
    it(`latchkey/${framework}: signed in, data intact, old key and cookie gone, TTL carried`, async () => {
      const { browser, key } = await oldSession();
      const oldTtl = (await redis.command('PTTL', key)) as number;
      const app = await startNative(framework, { redis: server.client, adopt: ADOPT, cookieLifetime: 7200 });
      running.push(app);
      const jar = browser.at(app.url);
      const response = await jar.fetch('/whoami');
      assertAdopted((await response.json()) as Whoami, 'alice', { passport: 'alice' });
      const [cleared] = setCookiesOf(response, 'sessionId');
      assert.ok(cleared && clears(cleared));
      assert.ok(setCookiesOf(response, 'session')[0]);
      assert.equal(await redis.command('EXISTS', key), 0);
      const keys = await sessionKeys(redis);
      assert.equal(keys.length, 1);
      const ttl = (await redis.command('PTTL', keys[0] as string)) as number;
      assert.ok(ttl > 0 && ttl <= oldTtl);
      assertAdopted((await (await jar.fetch('/whoami')).json()) as Whoami, 'alice', { passport: 'alice' });
      assert.equal(((await redis.command('HKEYS', 'session:user:alice')) as string[]).length, 1);
    });
  }

  it('latchkey/fastify-session (same cookie name sessionId): the session and its user carry over, one Set-Cookie', async () => {
    const { browser, key } = await oldSession();
    const app = Fastify();
    await app.register(dropIn, { secret: NEWER, redis: server.client, adopt: ADOPT, cookie: { secure: false } });
    app.get('/data', async (request) => ({ ...(request.session as unknown as Record<string, unknown>) }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    running.push({ url: '', close: () => app.close() });
    const jar = browser.at(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    const response = await jar.fetch('/data');
    const data = (await response.json()) as Record<string, unknown>;
    for (const [name, value] of Object.entries({ ...DATA, passport: 'alice' })) assert.deepEqual(data[name], value, name);
    const lines = setCookiesOf(response, 'sessionId');
    assert.equal(lines.length, 1);
    assert.ok(!clears(lines[0] as string));
    assert.equal(await redis.command('EXISTS', key), 0);
    await jar.fetch('/data');
    assert.equal((await app.sessionAdmin.listUserSessions('alice')).length, 1, 'no re-login: one session of alice');
    assert.equal((await sessionKeys(redis)).length, 1);
  });

  it('rotation: a cookie signed with the second old secret is adopted; a wrong signature adopts nothing, with no store command', async () => {
    const { browser, key } = await oldSession();
    const app = await startNative('fastify', { redis: server.client, adopt: { from: '@fastify/session', secrets: [NEWER, OLD] } });
    running.push(app);
    const value = decodeURIComponent(browser.cookie('sessionId') as string);
    const id = value.slice(0, value.lastIndexOf('.'));
    const forged = `${id}.${createHmac('sha256', NEWER.replace('newer', 'wrong')).update(id).digest('base64').replace(/=+$/, '')}`;
    for (const cookie of [id, forged, `${id}.`]) {
      await redis.resetStats();
      const response = await new Browser(app.url).fetch('/whoami', { headers: { cookie: `sessionId=${encodeURIComponent(cookie)}` } });
      assert.deepEqual(((await response.json()) as Whoami).data, {});
      assert.equal(await redis.commandTotal(), 0);
    }
    assert.equal(await redis.command('EXISTS', key), 1);
    assertAdopted((await (await browser.at(app.url).fetch('/whoami')).json()) as Whoami, 'alice', { passport: 'alice' });
  });
});
