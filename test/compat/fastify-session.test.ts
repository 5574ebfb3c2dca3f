// latchkey/fastify-session as @fastify/session apps use it, over HTTP with the real packages:
// Fastify 5, @fastify/passport with passport-local, @fastify/formbody, with and without
// @fastify/cookie, on a MemoryStore and on a real Redis (node-redis and ioredis clients).
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifyPassport from '@fastify/passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { MemoryStore as FastifySessionMemoryStore } from '@fastify/session';
import { Redis } from 'ioredis';
import fastifySession, { MemoryStore, type FastifySessionObject, type FastifySessionOptions } from '../../src/adapters/fastify-session.js';
import { isSessionError } from '../../src/index.js';
import { ioredisReady, useRedisWithClient } from '../redis/client.js';

const SECRET = 'a secret with minimum length of 32 characters';
const USERS: Record<string, { id: string; password: string }> = { alice: { id: 'alice', password: 'wonderland' } };

/** `request.session` as this plugin makes it (latchkey's own program loads both Fastify plugins' types). */
function sessionOf(request: FastifyRequest): FastifySessionObject & Record<string, unknown> {
  return request.session as unknown as FastifySessionObject & Record<string, unknown>;
}

/**
 * An app as a @fastify/session + @fastify/passport app is written, with latchkey's import:
 * `/login` (form post), `/me` (protected), `/logout`, and routes that use the session directly.
 */
async function passportApp(t: TestContext, options: Omit<FastifySessionOptions, 'secret'>, withCookiePlugin: boolean): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  t.after(() => app.close());
  const passport = new fastifyPassport.Authenticator();
  passport.use('local', new LocalStrategy((username, password, done) => {
    const user = USERS[username];
    done(null, user !== undefined && user.password === password ? user : false);
  }));
  passport.registerUserSerializer(async (user: { id: string }) => user.id);
  passport.registerUserDeserializer(async (id: string) => USERS[id] ?? null);
  if (withCookiePlugin) await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  await app.register(fastifySession, { secret: SECRET, cookie: { secure: false }, ...options });
  await app.register(passport.initialize());
  await app.register(passport.secureSession());
  app.post('/login', { preValidation: passport.authenticate('local', { authInfo: false }) }, async (request, reply) => {
    // "Remember me": the cookie outlives the browser.
    if ((request.body as { remember?: string }).remember === 'on') sessionOf(request).cookie.maxAge = 30 * 24 * 3600 * 1000;
    return reply.redirect('/me');
  });
  app.get('/me', async (request, reply) => {
    if (!request.isAuthenticated()) return reply.code(401).send('who are you?');
    return `hello ${(request.user as { id: string }).id}`;
  });
  app.post('/logout', async (request, reply) => {
    await request.logOut();
    return reply.redirect('/');
  });
  app.get('/set/:key', async (request) => {
    const { key } = request.params as { key: string };
    sessionOf(request).set(key, (request.query as { value?: string }).value ?? true);
    return 'ok';
  });
  app.get('/data', async (request) => ({ ...sessionOf(request) }));
  app.get('/cart/:item', async (request) => {
    const session = sessionOf(request);
    session['cart'] ??= { items: [] };
    // In place, as Passport changes its key.
    (session['cart'] as { items: string[] }).items.push((request.params as { item: string }).item);
    return 'added';
  });
  app.get('/destroy', async (request) => {
    await sessionOf(request).destroy();
    return 'gone';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

/** A browser's cookie jar for the session cookie, and fetch without following redirects. */
function browser(url: string, name = 'sessionId'): { cookie: string | undefined; fetch(path: string, init?: RequestInit): Promise<Response> } {
  const jar = {
    cookie: undefined as string | undefined,
    async fetch(path: string, init: RequestInit = {}): Promise<Response> {
      const headers = new Headers(init.headers);
      if (jar.cookie !== undefined) headers.set('cookie', jar.cookie);
      const response = await fetch(url + path, { ...init, headers, redirect: 'manual' });
      for (const line of response.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        if (!pair.startsWith(`${name}=`)) continue;
        jar.cookie = /max-age=0\b|expires=thu, 01 jan 1970/i.test(line) ? undefined : pair;
      }
      return response;
    },
  };
  return jar;
}

function form(fields: Record<string, string>): RequestInit {
  return { method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
}

describe('latchkey/fastify-session over HTTP', () => {
  /** The stores the suite runs on; `redis` when there is a server to look into. */
  const redisServer = useRedisWithClient();
  let ioredis: Redis | undefined;
  before(async () => {
    ioredis = new Redis(redisServer.redis.url, { lazyConnect: false });
    ioredis.on('error', () => {});
    await ioredisReady(ioredis);
  });
  after(() => ioredis?.disconnect());

  const MODES: Record<string, { options: () => Omit<FastifySessionOptions, 'secret'>; redis: boolean }> = {
    MemoryStore: { options: () => ({ store: new MemoryStore() }), redis: false },
    'Redis (node-redis)': { options: () => ({ redis: redisServer.client }), redis: true },
    'Redis (ioredis)': { options: () => ({ redis: ioredis as Redis }), redis: true },
  };

  for (const [mode, { options, redis }] of Object.entries(MODES)) {
    describe(`latchkey/fastify-session on ${mode}`, () => {
      for (const withCookiePlugin of [true, false]) {
        it(`signs in with @fastify/passport and passport-local, ${withCookiePlugin ? 'with' : 'without'} @fastify/cookie`, async (t) => {
          const { app, url } = await passportApp(t, options(), withCookiePlugin);
          const user = browser(url);
          assert.equal((await user.fetch('/me')).status, 401);
          assert.equal(user.cookie, undefined, 'a visitor who stores nothing gets no cookie');
          await user.fetch('/set/theme?value=dark');
          const before = user.cookie;
          assert.ok(before);

          const login = await user.fetch('/login', form({ username: 'alice', password: 'wonderland' }));
          assert.equal(login.status, 302, await login.text());
          assert.equal(login.headers.get('location'), '/me');
          const [line = ''] = login.headers.getSetCookie();
          assert.match(line, /^sessionId=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/, 'a browser-session cookie: no maxAge in the options');
          assert.notEqual(user.cookie, before, 'the id changes at login');

          assert.equal(await (await user.fetch('/me')).text(), 'hello alice');
          const data = (await (await user.fetch('/data')).json()) as Record<string, unknown>;
          assert.deepEqual(data, { passport: 'alice' }, "@fastify/passport's login keeps only its own key");
          const listed = await app.sessionAdmin.listUserSessions('alice');
          assert.equal(listed.length, 1, 'the user @fastify/passport signed in is bound to the session');

          const stale = browser(url);
          stale.cookie = before;
          assert.equal((await stale.fetch('/me')).status, 401, 'the id before login is dead');

          const logout = await user.fetch('/logout', { method: 'POST' });
          assert.equal(logout.status, 302);
          assert.equal(user.cookie, undefined, 'the cookie is cleared at logout');
          assert.equal((await user.fetch('/me')).status, 401);
          assert.equal((await app.sessionAdmin.listUserSessions('alice')).length, 0);
        });
      }

      it('lists the Passport user through sessionAdmin and revokes it: the next request is signed out', async (t) => {
        const { app, url } = await passportApp(t, options(), false);
        const phone = browser(url);
        const laptop = browser(url);
        for (const device of [phone, laptop]) {
          assert.equal((await device.fetch('/login', form({ username: 'alice', password: 'wonderland' }))).status, 302);
          assert.equal(await (await device.fetch('/me')).text(), 'hello alice');
        }
        assert.equal((await app.sessionAdmin.listUserSessions('alice')).length, 2);
        assert.equal(await app.sessionAdmin.revokeUserSessions('alice'), 2);
        assert.equal((await phone.fetch('/me')).status, 401);
        assert.equal((await laptop.fetch('/me')).status, 401);
      });

      it('sends a Max-Age for "remember me" set through request.session.cookie.maxAge', async (t) => {
        const { url } = await passportApp(t, { ...options(), absoluteLifetime: 60 * 24 * 3600 }, false);
        const user = browser(url);
        const login = await user.fetch('/login', form({ username: 'alice', password: 'wonderland', remember: 'on' }));
        assert.equal(login.status, 302);
        assert.match(login.headers.getSetCookie()[0] ?? '', /; Max-Age=2592000;/);
        assert.equal(await (await user.fetch('/me')).text(), 'hello alice');
      });

      it('saves a nested change in place, and keeps 50 of 50 keys set by concurrent requests', async (t) => {
        const { url } = await passportApp(t, options(), false);
        const user = browser(url);
        await user.fetch('/cart/socks');
        await user.fetch('/cart/shoes');
        assert.deepEqual(await (await user.fetch('/data')).json(), { cart: { items: ['socks', 'shoes'] } });
        const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => user.fetch(`/set/k${i}`)));
        assert.deepEqual(responses.map((response) => response.status), Array(50).fill(200));
        const data = (await (await user.fetch('/data')).json()) as Record<string, unknown>;
        assert.equal(Object.keys(data).filter((key) => key.startsWith('k')).length, 50);
      });

      it('does not bring a destroyed session back', async (t) => {
        const { url } = await passportApp(t, options(), false);
        const user = browser(url);
        await user.fetch('/set/a');
        const old = user.cookie;
        const gone = await user.fetch('/destroy');
        assert.match(gone.headers.getSetCookie()[0] ?? '', /Max-Age=0|Expires=Thu, 01 Jan 1970/);
        const replay = browser(url);
        replay.cookie = old;
        assert.deepEqual(await (await replay.fetch('/data')).json(), {}, 'the old cookie reads nothing');
        // A write under the old id just after it ended (a tab still open): refused, never revived.
        const write = await replay.fetch('/set/b');
        assert.equal(write.status, 409, await write.text());
        assert.deepEqual(write.headers.getSetCookie(), []);
        assert.deepEqual(await (await replay.fetch('/data')).json(), {});
      });

      if (!redis) return;

      it('costs 0 Redis commands without a cookie, 1 round trip to load with one, and writes only the keys that changed', async (t) => {
        const { url } = await passportApp(t, { ...options(), prefix: 'fs:' }, false);
        const user = browser(url);
        await redisServer.redis.resetStats();
        assert.equal((await user.fetch('/me')).status, 401);
        assert.equal(await redisServer.redis.commandTotal(), 0);
        await user.fetch('/set/a?value=1');
        await user.fetch('/set/b?value=2');
        const [key] = (await redisServer.redis.command('KEYS', 'fs:*')) as string[];
        assert.ok(key);
        // Another writer changes b behind this request's back; a request that changes only a keeps it.
        await redisServer.redis.command('HSET', key, 'b', '"other"');
        const monitor = await redisServer.redis.monitor();
        await user.fetch('/set/a?value=3');
        assert.equal(await monitor.stop(), 2, 'one round trip to load, one to write');
        const fields = (await redisServer.redis.command('HGETALL', key)) as string[];
        const stored = Object.fromEntries(fields.flatMap((value, i) => (i % 2 === 0 ? [[value, fields[i + 1]]] : [])).filter(([field]) => !String(field).startsWith(':')));
        assert.deepEqual(stored, { a: '"3"', b: '"other"' });
        const read = await redisServer.redis.monitor();
        await user.fetch('/data');
        assert.equal(await read.stop(), 1, 'a request that changes nothing: one round trip');
      });

      if (mode !== 'Redis (node-redis)') return;

      it('answers 503 while Redis is down, and recovers', async (t) => {
        const { url } = await passportApp(t, options(), false);
        const user = browser(url);
        await user.fetch('/set/a');
        await redisServer.redis.kill();
        try {
          const started = Date.now();
          const down = await user.fetch('/data');
          assert.equal(down.status, 503);
          assert.equal(down.headers.get('retry-after'), '1');
          assert.doesNotMatch(await down.text(), /latchkey:/, 'the message is for logs');
          assert.ok(Date.now() - started < 10_000);
          const fresh = browser(url);
          assert.equal((await fresh.fetch('/me')).status, 401, 'a visitor without a cookie needs no Redis');
        } finally {
          await redisServer.redis.restart();
        }
        for (let attempt = 0; attempt < 50 && !redisServer.client.isReady; attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
        // The data went with the server (it keeps nothing on disk): a new session starts.
        assert.equal((await user.fetch('/set/b')).status, 200);
        assert.deepEqual(await (await user.fetch('/data')).json(), { b: true });
      });
    });
  }
});

describe('latchkey/fastify-session options', () => {
  /** The message registering the plugin with `options` rejects with (INVALID_OPTIONS). */
  async function refusal(options: Record<string, unknown>): Promise<string> {
    const app = Fastify();
    try {
      await app.register(fastifySession, { secret: SECRET, store: new MemoryStore(), ...options } as FastifySessionOptions);
      await app.ready();
    } catch (error) {
      assert.ok(isSessionError(error, 'INVALID_OPTIONS'), String(error));
      return error.message;
    } finally {
      await app.close();
    }
    assert.fail('the options were accepted');
  }

  it("refuses what latchkey does differently, saying what to use instead", async () => {
    assert.match(await refusal({ store: new FastifySessionMemoryStore() }), /pass your client as `redis: client`/);
    assert.match(await refusal({ idGenerator: () => 'x' }), /idGenerator is not supported/);
    assert.match(await refusal({ secret: 'short' }), /at least 32 characters.*openssl rand -base64 32/);
    assert.match(await refusal({ secret: [SECRET, 'short'] }), /at least 32 characters/);
    assert.match(await refusal({ secret: { sign: () => '', unsign: () => ({}) } }), /signer object is not supported/);
    assert.match(await refusal({ secret: undefined }), /secret is required/);
    assert.match(await refusal({ algorithm: 'sha512' }), /HMAC-SHA256/);
    assert.match(await refusal({ cookiePrefix: 's:' }), /cookiePrefix is not supported/);
    assert.match(await refusal({ cookie: { expires: new Date() } }), /use cookie.maxAge/);
    assert.match(await refusal({ cookie: { partitioned: true } }), /cookie.partitioned is not supported/);
    assert.match(await refusal({ cookie: { maxAge: 10 } }), /milliseconds/);
    assert.match(await refusal({ cookieName: 'bad name' }), /cookieName/);
  });

  it("keeps @fastify/session's defaults: cookie sessionId, Secure, HttpOnly; accepts saveUninitialized and rolling", async (t) => {
    const app = Fastify();
    t.after(() => app.close());
    await app.register(fastifySession, { secret: [SECRET], store: new MemoryStore(), saveUninitialized: false, rolling: false, cookie: { maxAge: 3_600_000, sameSite: 'strict' } });
    app.get('/', async (request) => {
      const session = sessionOf(request);
      session.set('a', 1);
      return { maxAge: session.cookie.originalMaxAge, modified: session.isModified(), id: session.sessionId === session.encryptedSessionId };
    });
    const response = await app.inject('/');
    assert.deepEqual(response.json(), { maxAge: 3_600_000, modified: true, id: true });
    const [line = ''] = [response.headers['set-cookie'] ?? []].flat();
    // Max-Age reaches the absolute deadline (24 hours by default); the hour is the idle timeout, kept by the store.
    assert.match(line, /^sessionId=[^;]+; Max-Age=86400; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
  });

  it('offers regenerate, reload, save and destroy with promises and callbacks', async (t) => {
    const app = Fastify();
    t.after(() => app.close());
    await app.register(fastifySession, { secret: SECRET, store: new MemoryStore(), cookie: { secure: false } });
    app.get('/', async (request) => {
      const session = sessionOf(request);
      session.set('keep', 1);
      session.set('drop', 2);
      await session.save();
      const first = session.sessionId;
      assert.equal(session.isSaved(), true);
      await new Promise<void>((resolve, reject) => session.regenerate(['keep'], (error) => (error ? reject(error) : resolve())));
      assert.notEqual(session.sessionId, first);
      assert.deepEqual({ ...session }, { keep: 1 });
      session.set('later', 3);
      await session.save();
      session.set('unsaved', 4);
      await new Promise<void>((resolve, reject) => session.reload((error) => (error ? reject(error) : resolve())));
      return { ...session };
    });
    const response = await app.inject('/');
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { keep: 1, later: 3 });
  });
});
