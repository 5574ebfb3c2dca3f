// latchkey/koa-session as a drop-in for koa-session 7: the same app code (ctx.session as a plain
// object, koa-passport 6 + passport 0.7 + passport-local unchanged), over HTTP with real Koa,
// @koa/router and @koa/bodyparser, on MemoryStore and on a redis-server of the test's own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import Koa2 from 'koa2';
import { Router } from '@koa/router';
import koaPassport from 'koa-passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { Redis } from 'ioredis';
import { MemoryStore, RedisStore, isSessionError, type Store } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import session, { createSession, type KoaSessionData, type KoaSessionMiddleware, type KoaSessionOptions } from '../../src/adapters/koa-session.js';
import { useRedisWithClient, ioredisReady } from '../redis/client.js';

// @koa/bodyparser's types give every http.IncomingMessage a `body: unknown`, which would retype
// Express' req.body everywhere in this project's single TypeScript program: loaded untyped.
const BODY_PARSER = '@koa/bodyparser';
const { bodyParser } = (await import(BODY_PARSER)) as { bodyParser: () => Koa.Middleware };

/**
 * `ctx.session = value`. This project's TypeScript program also holds latchkey/koa, whose
 * `ctx.session` is a latchkey Session: the two declarations meet, and only a Session could be
 * assigned. An app imports one of the two, and writes `ctx.session = null` as it is.
 */
function setSession(ctx: Koa.Context, value: KoaSessionData | null): void {
  (ctx as { session: unknown }).session = value;
}

const KEY = 'k'.repeat(16) + 'e'.repeat(16) + 'y';
const USERS: Record<string, { id: string; name: string; password: string }> = {
  '7': { id: '7', name: 'ann', password: 'secret-ann' },
  '8': { id: '8', name: 'bob', password: 'secret-bob' },
};

/** A browser of sorts: keeps the cookies a server sets, sends them back. */
class Browser {
  readonly cookies = new Map<string, string>();
  /** The Set-Cookie lines of the last response. */
  lastSetCookie: string[] = [];

  constructor(readonly base: string) {}

  get header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async fetch(path: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ status: number; text: string; json: () => unknown; headers: Headers }> {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers['cookie'] = this.header;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(this.base + path, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.lastSetCookie = response.headers.getSetCookie();
    for (const line of this.lastSetCookie) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    return { status: response.status, text, json: () => JSON.parse(text) as unknown, headers: response.headers };
  }
}

interface App {
  readonly url: string;
  readonly middleware: KoaSessionMiddleware;
  readonly errors: unknown[];
  browser(): Browser;
  close(): Promise<void>;
}

/** The app a koa-session user would write, with latchkey/koa-session in place of koa-session. */
async function startApp(options: KoaSessionOptions, KoaClass: typeof Koa = Koa): Promise<App> {
  const app = new KoaClass();
  app.keys = [KEY];
  const errors: unknown[] = [];
  app.on('error', (error: unknown) => void errors.push(error));
  const middleware = session(options, app);
  app.use(middleware);
  app.use(bodyParser());

  const passport = new koaPassport.KoaPassport();
  passport.use(
    new LocalStrategy((username, password, done) => {
      const user = Object.values(USERS).find((candidate) => candidate.name === username && candidate.password === password);
      done(null, user ?? false);
    }),
  );
  passport.serializeUser((user, done) => done(null, (user as { id: string }).id));
  passport.deserializeUser((id: string, done) => done(null, USERS[id] ?? false));
  app.use(passport.initialize());
  app.use(passport.session());

  const router = new Router();
  router.post('/login', passport.authenticate('local', { failureRedirect: '/login?failed=1' }), (ctx) => {
    const body = (ctx.request as { body?: { remember?: string } }).body ?? {};
    // "Remember me": a 30-day cookie instead of one that ends with the browser.
    if (body.remember === 'yes') ctx.session.maxAge = 30 * 86_400_000;
    ctx.redirect('/me');
  });
  router.get('/me', (ctx) => {
    if (!ctx.isAuthenticated()) ctx.throw(401);
    ctx.body = { name: (ctx.state.user as { name: string }).name, id: ctx.session.externalKey };
  });
  router.post('/logout', async (ctx) => {
    await ctx.logout();
    ctx.redirect('/');
  });
  router.get('/hello', (ctx) => {
    ctx.body = 'hello';
  });
  router.get('/set/:key/:value', (ctx) => {
    ctx.session[ctx.params['key'] as string] = ctx.params['value'];
    ctx.body = 'ok';
  });
  router.get('/slow-set/:key', async (ctx) => {
    // Every request has loaded the session before any of them writes.
    await sleep(50);
    ctx.session[ctx.params['key'] as string] = true;
    ctx.body = 'ok';
  });
  router.get('/delete-gone', (ctx) => {
    delete ctx.session.gone;
    ctx.body = 'ok';
  });
  router.get('/cart/:item', (ctx) => {
    const cart = (ctx.session['cart'] ??= { items: [] }) as { items: string[] };
    cart.items.push(ctx.params['item'] as string);
    ctx.body = cart;
  });
  router.get('/data', (ctx) => {
    ctx.body = { data: ctx.session.toJSON(), isNew: ctx.session.isNew, length: ctx.session.length, populated: ctx.session.populated };
  });
  router.get('/destroy', (ctx) => {
    setSession(ctx, null);
    ctx.body = 'gone';
  });
  router.get('/replace', (ctx) => {
    setSession(ctx, { fresh: true });
    ctx.body = 'replaced';
  });
  router.get('/redirect-after-set', (ctx) => {
    ctx.session['flash'] = 'saved before the redirect';
    ctx.redirect('/data');
  });
  app.use(router.routes());

  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    middleware,
    errors,
    browser: () => new Browser(url),
    async close() {
      server.closeAllConnections();
      server.close();
      await middleware.close();
    },
  };
}

/** The user keys of a stored session, from the store itself. */
async function storedData(store: Store, browser: Browser, key = 'koa.sess'): Promise<Record<string, string> | null> {
  const token = browser.cookies.get(key);
  if (token === undefined) return null;
  const fields = await store.load(storageId(token.split('.')[0] as string));
  if (fields === null) return null;
  return Object.fromEntries([...fields].filter(([field]) => !field.startsWith(':')));
}

/** Logs `browser` in as ann; returns the session cookie before and after. */
async function logIn(browser: Browser, form: Record<string, string> = {}): Promise<{ before: string | undefined; after: string }> {
  const before = browser.cookies.get('koa.sess');
  const response = await browser.fetch('/login', { form: { username: 'ann', password: 'secret-ann', ...form } });
  assert.equal(response.status, 302);
  assert.equal(response.headers.get('location'), '/me');
  const after = browser.cookies.get('koa.sess');
  assert.ok(after, 'the login sets the session cookie');
  return { before, after };
}

/** Where sessions live for {@link behaviour}: the middleware's options, and a store to look into. */
interface Backing {
  options(): KoaSessionOptions;
  store(): Store;
}

/** The behaviour every store must give, through the same app. */
function behaviour(name: string, environment: () => Backing): void {
  describe(`latchkey/koa-session on ${name}`, () => {
    const env = environment();
    const backing = (): Store => env.store();
    let app: App;
    before(async () => {
      app = await startApp(env.options());
    });
    after(async () => {
      await app.close();
    });

    it('logs in with koa-passport and passport-local: a new session id at login, ctx.state.user after, ctx.logout() signs out', async () => {
      const browser = app.browser();
      await browser.fetch('/set/theme/dark');
      const planted = browser.cookies.get('koa.sess');
      assert.ok(planted);
      const { after: loggedIn } = await logIn(browser);
      assert.notEqual(loggedIn, planted, 'the id changes at login (session fixation)');

      const me = await browser.fetch('/me');
      assert.equal(me.status, 200);
      assert.equal((me.json() as { name: string }).name, 'ann');
      assert.deepEqual((await browser.fetch('/data')).json(), {
        data: { theme: 'dark', passport: { user: '7' } },
        isNew: false,
        length: 2,
        populated: true,
      });

      // The planted id is worth nothing.
      const attacker = app.browser();
      attacker.cookies.set('koa.sess', planted);
      assert.equal((await attacker.fetch('/me')).status, 401);

      const out = await browser.fetch('/logout', { method: 'POST' });
      assert.equal(out.status, 302);
      assert.notEqual(browser.cookies.get('koa.sess'), loggedIn, 'the id changes at logout');
      assert.equal((await browser.fetch('/me')).status, 401);
      const old = app.browser();
      old.cookies.set('koa.sess', loggedIn);
      assert.equal((await old.fetch('/me')).status, 401, 'the logged-in id is dead');
      assert.deepEqual(((await browser.fetch('/data')).json() as { data: unknown }).data, { theme: 'dark', passport: {} });
    });

    it('refuses a wrong password, and sets no session for it', async () => {
      const browser = app.browser();
      const response = await browser.fetch('/login', { form: { username: 'ann', password: 'wrong' } });
      assert.equal(response.status, 302);
      assert.equal(response.headers.get('location'), '/login?failed=1');
      assert.equal((await browser.fetch('/me')).status, 401);
    });

    it('lists the Passport user through manager.admin and revokes it: the next request is signed out', async () => {
      const browser = app.browser();
      await logIn(browser);
      const other = app.browser();
      await logIn(other);
      const sessions = await app.middleware.manager.admin.listUserSessions('7');
      const mine = ((await browser.fetch('/me')).json() as { id: string }).id;
      assert.ok(sessions.some((entry) => entry.handle === mine), 'the session is listed under its user');
      assert.ok(sessions.length >= 2);
      await app.middleware.manager.admin.revokeUserSessions('7');
      assert.equal((await browser.fetch('/me')).status, 401);
      assert.equal((await other.fetch('/me')).status, 401);
      assert.deepEqual(await app.middleware.manager.admin.listUserSessions('7'), []);
    });

    it('writes a nested object changed in place, deletes a removed key, and writes before a redirect', async () => {
      const browser = app.browser();
      await browser.fetch('/cart/apple');
      await browser.fetch('/cart/pear');
      await browser.fetch('/set/gone/soon');
      assert.deepEqual(await storedData(backing(), browser), { cart: '{"items":["apple","pear"]}', gone: '"soon"' });
      await browser.fetch('/delete-gone');
      assert.deepEqual(await storedData(backing(), browser), { cart: '{"items":["apple","pear"]}' });
      const redirect = await browser.fetch('/redirect-after-set');
      assert.equal(redirect.status, 302);
      assert.equal(((await browser.fetch('/data')).json() as { data: { flash: string } }).data.flash, 'saved before the redirect');
    });

    it('destroys the session on ctx.session = null, and replaces its data on ctx.session = {...}', async () => {
      const browser = app.browser();
      await browser.fetch('/set/a/1');
      await browser.fetch('/set/b/2');
      const id = browser.cookies.get('koa.sess') as string;
      await browser.fetch('/replace');
      assert.equal(browser.cookies.get('koa.sess'), id, 'replacing keeps the id, as koa-session does');
      assert.deepEqual(await storedData(backing(), browser), { fresh: 'true' });
      const gone = await browser.fetch('/destroy');
      assert.equal(gone.status, 200);
      assert.ok(gone.headers.getSetCookie().some((line) => line.startsWith('koa.sess=;')), 'the cookie is cleared');
      assert.equal(browser.cookies.get('koa.sess'), undefined);
      assert.equal(await backing().load(storageId(id.split('.')[0] as string)), null, 'the store no longer holds it');
      const fresh = (await browser.fetch('/data')).json() as { isNew: boolean; data: object };
      assert.deepEqual(fresh, { data: {}, isNew: true, length: 0, populated: false });
    });

    it('keeps 50 of 50 keys set by 50 concurrent requests of one session', async () => {
      const browser = app.browser();
      await browser.fetch('/set/start/1');
      const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => browser.fetch(`/slow-set/k${i}`)));
      assert.ok(responses.every((response) => response.status === 200));
      const data = await storedData(backing(), browser);
      assert.ok(data);
      const keys = Object.keys(data).filter((key) => key.startsWith('k'));
      assert.equal(keys.length, 50, `kept ${keys.length} of 50`);
    });

    it('sends a 30-day cookie for "remember me", a browser-session cookie otherwise', async () => {
      const remembering = await startApp({ ...env.options(), maxAge: 'session', absoluteLifetime: 30 * 86_400 });
      try {
        const remembered = remembering.browser();
        await logIn(remembered, { remember: 'yes' });
        const line = remembered.lastSetCookie.find((l) => l.startsWith('koa.sess='));
        assert.match(line ?? '', /; Max-Age=2592000;/);
        assert.equal(((await remembered.fetch('/me')).json() as { name: string }).name, 'ann');
        const forgetful = remembering.browser();
        await logIn(forgetful);
        const other = forgetful.lastSetCookie.find((l) => l.startsWith('koa.sess='));
        assert.ok(other);
        assert.doesNotMatch(other, /Max-Age/i, 'a cookie that ends with the browser');
      } finally {
        await remembering.close();
      }
    });
  });
}

behaviour('MemoryStore', () => {
  const store = new MemoryStore();
  return { options: () => ({ store }), store: () => store };
});

behaviour('Redis (node-redis, redis: client)', () => {
  const server = useRedisWithClient();
  return { options: () => ({ redis: server.client }), store: () => new RedisStore({ redis: server.client }) };
});

describe('latchkey/koa-session on Redis: commands, writes, outage', () => {
  const server = useRedisWithClient();
  const redis = server.redis;
  let app: App;
  before(async () => {
    app = await startApp({ redis: server.client, absoluteLifetime: 30 * 86_400 });
  });
  after(async () => {
    await app.close();
  });

  it('costs 0 commands without a cookie, and one round trip to load with one', async () => {
    const browser = app.browser();
    await redis.resetStats();
    assert.equal((await browser.fetch('/hello')).text, 'hello');
    assert.equal(await redis.commandTotal(), 0);
    await browser.fetch('/set/a/1');
    const monitor = await redis.monitor();
    assert.equal((await browser.fetch('/hello')).status, 200);
    assert.equal(await monitor.stop(), 1, 'one round trip: the load');
  });

  it('writes only the keys that changed, in one round trip', async () => {
    const browser = app.browser();
    await browser.fetch('/set/a/1');
    await browser.fetch('/set/b/2');
    const token = browser.cookies.get('koa.sess') as string;
    const key = `session:${storageId(token.split('.')[0] as string)}`;
    await redis.command('HSET', key, 'b', '"changed elsewhere"');
    const monitor = await redis.monitor();
    await browser.fetch('/set/a/3');
    assert.equal(await monitor.stop(), 2, 'the load, then one write');
    const fields = (await redis.command('HGETALL', key)) as string[];
    const data = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
    assert.equal(data['a'], '"3"');
    assert.equal(data['b'], '"changed elsewhere"', 'a key this request did not change is left as it is');
    const ttl = Number(await redis.command('PTTL', key));
    assert.ok(ttl > 86_000_000 && ttl <= 86_400_000, `the idle timeout is maxAge (one day): ${ttl}`);
  });

  it('answers 503 while Redis is down, and serves again once it is back', async () => {
    const browser = app.browser();
    await browser.fetch('/set/a/1');
    const before = app.errors.length;
    await redis.kill();
    try {
      const started = Date.now();
      const down = await browser.fetch('/data');
      assert.equal(down.status, 503);
      assert.equal(down.headers.get('retry-after'), '1');
      assert.ok(Date.now() - started < 10_000, 'no hang');
      const error = app.errors[before];
      assert.ok(isSessionError(error, 'STORE_UNAVAILABLE'), `the app saw ${String(error)}`);
      assert.equal((await app.browser().fetch('/hello')).status, 200, 'a request without a cookie needs no Redis');
    } finally {
      await redis.restart();
    }
    // The restarted Redis is empty: the old session is gone, a new one starts.
    for (let attempt = 0; attempt < 50; attempt++) {
      const response = await browser.fetch('/set/b/2');
      if (response.status === 200) break;
      await sleep(100);
    }
    assert.deepEqual(((await browser.fetch('/data')).json() as { data: object }).data, { b: '2' });
  });
});

describe('latchkey/koa-session on Redis (ioredis)', () => {
  const { redis } = useRedisWithClient();
  let app: App;
  let client: Redis;
  before(async () => {
    client = new Redis(redis.url);
    client.on('error', () => {});
    await ioredisReady(client);
    app = await startApp({ redis: client });
  });
  after(async () => {
    await app.close();
    client.disconnect();
  });

  it('logs in with Passport and keeps 50 of 50 concurrent keys', async () => {
    const browser = app.browser();
    await logIn(browser);
    assert.equal((await browser.fetch('/me')).status, 200);
    await Promise.all(Array.from({ length: 50 }, (_, i) => browser.fetch(`/slow-set/k${i}`)));
    const data = ((await browser.fetch('/data')).json() as { data: Record<string, unknown> }).data;
    assert.equal(Object.keys(data).filter((key) => key.startsWith('k')).length, 50);
  });
});

describe('latchkey/koa-session on Koa 2', () => {
  it('logs in with Passport, keeps the data, and destroys on null', async () => {
    const app = await startApp({ store: new MemoryStore() }, Koa2);
    try {
      const browser = app.browser();
      await browser.fetch('/set/theme/light');
      await logIn(browser);
      assert.equal(((await browser.fetch('/me')).json() as { name: string }).name, 'ann');
      await browser.fetch('/destroy');
      assert.equal((await browser.fetch('/me')).status, 401);
    } finally {
      await app.close();
    }
  });
});

describe('latchkey/koa-session options', () => {
  const store = new MemoryStore();
  const app = (keys?: unknown): Koa => Object.assign(new Koa(), keys === undefined ? {} : { keys });

  function refuses(options: Record<string, unknown>, pattern: RegExp, target = app([KEY])): void {
    assert.throws(() => session(options as KoaSessionOptions, target), (error: unknown) => {
      assert.ok(isSessionError(error, 'INVALID_OPTIONS'), String(error));
      assert.match(error.message, pattern);
      return true;
    });
  }

  it('accepts session(app, options) as well as session(options, app), and requires the app', () => {
    assert.equal(typeof createSession(app([KEY]), { store }), 'function');
    assert.equal(typeof session({ store }, app([KEY])), 'function');
    assert.throws(() => session({ store }, undefined as unknown as Koa), { code: 'INVALID_OPTIONS', message: /the Koa app is required/ });
  });

  it('refuses a koa-redis store, naming the redis option', () => {
    const koaRedisLike = { get: async () => null, set: async () => {}, destroy: async () => {} };
    refuses({ store: koaRedisLike }, /Pass your node-redis or ioredis client as `redis: client`/);
  });

  it('refuses what latchkey does differently, saying what to use instead', () => {
    refuses({ store, genid: () => 'x' }, /'genid'.*256-bit random ids/);
    refuses({ store, encode: String }, /'encode'/);
    refuses({ store, decode: String }, /'decode'/);
    refuses({ store, externalKey: { get: () => 'x', set: () => {} } }, /'externalKey'.*cookie named by `key`/);
    refuses({ store, ContextStore: class ContextStore { get(): void {} } }, /'ContextStore'.*`redis: client`/);
    refuses({ store, valid: () => true }, /'valid'.*ctx\.session = null/);
    refuses({ store, beforeSave: () => {} }, /'beforeSave'.*after its `await next\(\)`/);
    refuses({ store, cookieName: 'x' }, /`key` names the cookie/);
    refuses({ store, cookieLifetime: 60 }, /`maxAge`/);
    refuses({ store, colour: 'blue' }, /unknown option 'colour'/);
    refuses({ store, maxAge: 0 }, /maxAge must be a number of milliseconds/);
  });

  it('signs with app.keys: refuses none, short ones, and takes signed: false', () => {
    refuses({ store }, /need app\.keys.*openssl rand -base64 32.*signed: false/, app());
    refuses({ store }, /app\.keys\[0\] has 9 characters.*openssl rand -base64 32/, app(['too-short']));
    assert.equal(typeof session({ store, signed: false }, app()), 'function');
    assert.equal(typeof session({ store, secrets: [KEY] }, app()), 'function');
  });

  it('accepts overwrite, rolling, renew and autoCommit', () => {
    assert.equal(typeof session({ store, overwrite: true, rolling: true, renew: true, autoCommit: true }, app([KEY])), 'function');
  });

  it("maps key, maxAge: 'session', sameSite and signed: false onto the cookie", async () => {
    const started = await startApp({ store: new MemoryStore(), key: 'sid', maxAge: 'session', sameSite: 'strict', signed: false });
    try {
      const browser = started.browser();
      await browser.fetch('/set/a/1');
      const [line] = browser.lastSetCookie;
      assert.match(line ?? '', /^sid=[A-Za-z0-9_-]+;/);
      assert.doesNotMatch(line ?? '', /Max-Age/i, 'a browser-session cookie');
      assert.match(line ?? '', /SameSite=Strict/);
      assert.doesNotMatch(line ?? '', /^sid=[^;]*\./, 'unsigned: the bare id, no signature after a dot');
    } finally {
      await started.close();
    }
  });

  it('saves nothing with autoCommit: false until manuallyCommit()', async () => {
    const koa = app([KEY]);
    const middleware = session({ store: new MemoryStore(), autoCommit: false }, koa);
    koa.use(middleware);
    koa.use(async (ctx) => {
      ctx.session['a'] = 1;
      if (ctx.path === '/commit') await ctx.session.manuallyCommit();
      ctx.body = 'ok';
    });
    const server = koa.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.deepEqual((await fetch(`${base}/no`)).headers.getSetCookie(), []);
      assert.equal((await fetch(`${base}/commit`)).headers.getSetCookie().length, 1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
