// latchkey/express-session over HTTP with real Express, Passport (passport-local) and connect-flash,
// on MemoryStore and on a real redis-server through node-redis: what a browser sees (status, body,
// Set-Cookie) and what the store holds.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import session, { Store, type ExpressSessionOptions } from '../../src/adapters/express-session.js';
import { SessionError } from '../../src/core/errors.js';
import { useRedisWithClient } from '../redis/client.js';
import { Browser, Gate, startApp, USER, type SessionApp } from './express-session-app.js';

const SECRET = 'a-test-secret-of-more-than-32-characters';

/** The Redis key of the session a cookie value names (signed: `id.signature`). */
function redisKey(cookie: string): string {
  return `session:${storageId(cookie.split('.')[0] ?? '')}`;
}

/** The behaviour every store gives. `options()` is called per app. */
function behaviour(options: () => ExpressSessionOptions, stored?: () => { fields(cookie: string): Promise<Record<string, string>> }): void {
  let app: SessionApp;
  const apps: SessionApp[] = [];
  const start = async (extra: ExpressSessionOptions = {}, version: 4 | 5 = 5): Promise<SessionApp> => {
    app = await startApp({ secret: SECRET, resave: false, saveUninitialized: false, ...options(), ...extra }, version);
    apps.push(app);
    return app;
  };
  afterEach(async () => {
    for (const started of apps.splice(0)) await started.close();
  });

  it('logs in with Passport: a flash message survives the redirect, the id changes at login, req.user follows, logout ends it', async () => {
    await start();
    const browser = new Browser(app.url);
    assert.equal((await browser.fetch('/me')).status, 401);
    assert.equal(browser.cookie(), undefined, 'no session, no cookie');

    const failed = await browser.post('/login', { username: USER.name, password: 'wrong' });
    assert.equal(failed.status, 302);
    assert.equal(failed.headers.get('location'), '/login');
    const anonymous = browser.cookie();
    assert.ok(anonymous, 'the flash message started a session');
    assert.deepEqual(await (await browser.fetch('/login')).json(), { errors: ['Wrong name or password'] });
    assert.deepEqual(await (await browser.fetch('/login')).json(), { errors: [] }, 'a flash message is read once');

    const before = (await (await browser.fetch('/id')).json()) as { sessionID: string; id: string };
    const login = await browser.post('/login', { username: USER.name, password: USER.password });
    assert.equal(login.status, 302);
    assert.equal(login.headers.get('location'), '/me');
    assert.notEqual(browser.cookie(), anonymous, 'a new session id at login');
    assert.deepEqual(await (await browser.fetch('/me')).json(), { id: USER.id, name: USER.name });
    const after = (await (await browser.fetch('/id')).json()) as { sessionID: string; id: string };
    assert.notEqual(after.sessionID, before.sessionID);
    assert.equal(after.id, after.sessionID);

    const listed = await app.middleware.manager.admin.listUserSessions(USER.id);
    assert.deepEqual(listed.map((info) => info.handle), [after.sessionID], "the Passport user's session is listed under that user");

    const logout = await browser.post('/logout', {});
    assert.equal(logout.status, 302);
    assert.equal((await browser.fetch('/me')).status, 401, 'logged out');
    assert.deepEqual(await app.middleware.manager.admin.listUserSessions(USER.id), []);
    // The old cookie is dead too.
    const old = new Browser(app.url);
    await old.fetch('/me', { headers: { cookie: `connect.sid=${anonymous}` } });
    assert.equal((await old.fetch('/me', { headers: { cookie: `connect.sid=${anonymous}` } })).status, 401);
  });

  it("revoking the Passport user's sessions through manager.admin logs the browser out at its next request", async () => {
    await start();
    const browser = new Browser(app.url);
    await browser.post('/login', { username: USER.name, password: USER.password });
    assert.equal((await browser.fetch('/me')).status, 200);
    assert.equal(await app.middleware.manager.admin.revokeUserSessions(USER.id), 1);
    assert.equal((await browser.fetch('/me')).status, 401);
  });

  it('writes each changed key before the response, with res.send, res.json, a redirect and a streamed body', async () => {
    await start();
    const browser = new Browser(app.url);
    assert.equal(await (await browser.fetch('/set/a/1')).text(), 'ok');
    assert.deepEqual(await (await browser.fetch('/json/b/2')).json(), { ok: true });
    const redirect = await browser.fetch('/redirect/c/3');
    assert.equal(redirect.status, 302);
    assert.equal(await (await browser.fetch('/stream/d/4')).text(), 'one,two,three');
    assert.deepEqual(await (await browser.fetch('/get')).json(), { a: '1', b: '2', c: '3', d: '4' });
    if (stored) assert.deepEqual(await stored().fields(browser.cookie() ?? ''), { a: '"1"', b: '"2"', c: '"3"', d: '"4"' });
  });

  it('adds the session cookie to a response whose handler calls res.writeHead itself, after the save, and keeps its Cache-Control', async () => {
    await start();
    const browser = new Browser(app.url);
    const response = await browser.fetch('/writehead/e/5');
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'written');
    assert.equal(response.headers.get('cache-control'), 'private, max-age=5');
    assert.equal(browser.lastSetCookie.length, 1, 'the new session sends its cookie');
    assert.match(browser.lastSetCookie[0] ?? '', /^connect\.sid=.*; HttpOnly/);
    assert.deepEqual(await (await browser.fetch('/get')).json(), { e: '5' });
    if (stored) assert.deepEqual(await stored().fields(browser.cookie() ?? ''), { e: '"5"' });
  });

  it('works on a plain node:http server without Express: the cookie, the save and req.sessionID', async () => {
    const middleware = session({ secret: SECRET, ...options() });
    const server = createServer((req, res) => {
      middleware(req, res, (error?: unknown) => {
        const current = (req as unknown as { session: Record<string, unknown> }).session;
        if (error !== undefined) {
          res.statusCode = 500;
          res.end();
          return;
        }
        if (req.url === '/set') current['k'] = 'v';
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ k: current['k'] ?? null, id: (req as unknown as { sessionID: string }).sessionID }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const browser = new Browser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const first = (await (await browser.fetch('/set')).json()) as { k: string; id: string };
      assert.equal(first.k, 'v');
      assert.notEqual(browser.cookie(), undefined, 'the new session sends its cookie');
      const second = (await (await browser.fetch('/get')).json()) as { k: string; id: string };
      assert.deepEqual(second, first, 'the same session, under the id named before it was saved');
      if (stored) assert.deepEqual(await stored().fields(browser.cookie() ?? ''), { k: '"v"' });
    } finally {
      server.close();
      await middleware.close();
    }
  });

  it('detects a nested object changed in place, and removes deleted keys', async () => {
    await start();
    const browser = new Browser(app.url);
    await browser.fetch('/push/x');
    await browser.fetch('/push/y');
    await browser.fetch('/set/gone/1');
    await browser.fetch('/delete/gone');
    assert.deepEqual(await (await browser.fetch('/get')).json(), { cart: { items: ['x', 'y'] } });
    if (stored) assert.deepEqual(await stored().fields(browser.cookie() ?? ''), { cart: '{"items":["x","y"]}' });
  });

  it('keeps 50 of 50 keys set by 50 concurrent requests of one session', async () => {
    await start();
    const browser = new Browser(app.url);
    await browser.fetch('/set/start/1');
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => browser.fetch(`/set/k${i}/${i}`)));
    assert.deepEqual(responses.map((response) => response.status), Array(50).fill(200));
    const all = (await (await browser.fetch('/get')).json()) as Record<string, string>;
    assert.equal(Object.keys(all).filter((key) => key.startsWith('k')).length, 50);
  });

  it('sends a remember-me cookie with the Max-Age set in req.session.cookie.maxAge (capped by absoluteLifetime)', async () => {
    await start({ absoluteLifetime: 30 * 86_400 });
    const browser = new Browser(app.url);
    await browser.post('/remember', { username: USER.name, password: USER.password });
    const line = browser.lastSetCookie.find((cookie) => cookie.startsWith('connect.sid='));
    assert.match(line ?? '', /Max-Age=604800\b/);
    assert.match(line ?? '', /HttpOnly/);
    // Without it, the cookie of a session under cookie.maxAge unset is a browser-session cookie.
    const plain = new Browser(app.url);
    await plain.fetch('/set/a/1');
    assert.doesNotMatch(plain.lastSetCookie.join('\n'), /Max-Age/);
  });

  it('destroy() leaves req.session undefined, clears the cookie, and a request under way cannot bring the session back (409)', async () => {
    await start();
    const browser = new Browser(app.url);
    await browser.fetch('/set/a/1');
    const cookie = browser.cookie();
    const gate = new Gate();
    app.gates.set('slow', gate);
    const slow = browser.fetch('/gate/slow/b/2');
    await gate.arrived;
    assert.deepEqual(await (await browser.fetch('/destroy')).json(), { session: 'gone' });
    assert.match(browser.lastSetCookie.join('\n'), /connect\.sid=;/);
    gate.release();
    const late = await slow;
    assert.equal(late.status, 409, 'SESSION_GONE: the write of a request under way is not applied');
    const again = new Browser(app.url);
    assert.deepEqual(await (await again.fetch('/get', { headers: { cookie: `connect.sid=${cookie}` } })).json(), {});
  });

  it('unsetting req.session destroys the session', async () => {
    await start();
    const browser = new Browser(app.url);
    await browser.fetch('/set/a/1');
    await browser.fetch('/unset');
    assert.equal(browser.cookie(), undefined);
    assert.deepEqual(await (await browser.fetch('/get')).json(), {});
  });

  it('req.session.save(cb) saves then, and the id named before the save is the session id', async () => {
    await start();
    const browser = new Browser(app.url);
    assert.equal(await (await browser.fetch('/save-now/a/1')).text(), 'saved');
    const ids = (await (await browser.fetch('/id')).json()) as { sessionID: string };
    assert.deepEqual((await app.middleware.manager.admin.inspectSession(ids.sessionID))?.handle, ids.sessionID);
  });

  it('works on Express 4: login, a key, logout', async () => {
    await start({}, 4);
    const browser = new Browser(app.url);
    assert.equal((await browser.post('/login', { username: USER.name, password: USER.password })).status, 302);
    assert.equal((await browser.fetch('/me')).status, 200);
    await browser.fetch('/push/x');
    assert.deepEqual(await (await browser.fetch('/get')).json(), { passport: { user: USER.id }, cart: { items: ['x'] } });
    await browser.post('/logout', {});
    assert.equal((await browser.fetch('/me')).status, 401);
  });

  after(async () => {
    for (const started of apps.splice(0)) await started.close();
  });
}

describe('latchkey/express-session on MemoryStore', () => {
  behaviour(() => ({ store: new MemoryStore() }));
});

describe('latchkey/express-session on Redis (node-redis)', () => {
  const ctx = useRedisWithClient();
  const { redis } = ctx;
  behaviour(
    () => ({ redis: ctx.client }),
    () => ({
      async fields(cookie) {
        const all = await ctx.client.hGetAll(redisKey(cookie));
        return Object.fromEntries(Object.entries(all).filter(([field]) => !field.startsWith(':')));
      },
    }),
  );

  describe('Redis commands and outages', () => {
    let app: SessionApp;
    before(async () => {
      app = await startApp({ secret: SECRET, redis: ctx.client, resave: false, saveUninitialized: false });
    });
    after(async () => app.close());

    it('costs 0 Redis commands without a cookie, and 1 round trip to load with one', async () => {
      const browser = new Browser(app.url);
      await redis.resetStats();
      assert.deepEqual(await (await browser.fetch('/get')).json(), {});
      assert.equal(await redis.commandTotal(), 0);
      await browser.fetch('/set/a/1');
      const monitor = await redis.monitor();
      assert.deepEqual(await (await browser.fetch('/get')).json(), { a: '1' });
      assert.equal(await monitor.stop(), 1);
    });

    it('answers 503 when Redis is down, for the load and for a save after it, then recovers', async () => {
      const browser = new Browser(app.url);
      await browser.fetch('/set/a/1');
      const gate = new Gate();
      app.gates.set('outage', gate);
      const held = browser.fetch('/gate/outage/b/2');
      await gate.arrived;
      await redis.kill();
      gate.release();
      const failedSave = await held;
      assert.equal(failedSave.status, 503, "the handler's response is replaced by the error's");
      assert.equal(failedSave.headers.get('retry-after'), '1');
      assert.notEqual(await failedSave.text(), 'after the gate');
      const failedLoad = await browser.fetch('/get');
      assert.equal(failedLoad.status, 503);
      await redis.restart();
      // The app's client reconnects by itself; its PING waits for that.
      await ctx.client.ping();
      const fresh = new Browser(app.url);
      assert.equal((await fresh.fetch('/set/c/3')).status, 200);
      assert.deepEqual(await (await fresh.fetch('/get')).json(), { c: '3' });
    });
  });
});

describe('latchkey/express-session options', () => {
  const refused = (options: unknown, message: RegExp): void => {
    assert.throws(
      () => session(options as ExpressSessionOptions),
      (error: unknown) => error instanceof SessionError && error.code === 'INVALID_OPTIONS' && message.test(error.message),
    );
  };

  it('refuses what latchkey does differently, saying what to use instead', () => {
    refused({ secret: 'short' }, /at least 32 characters.*openssl rand -base64 32/);
    refused({ genid: () => 'x' }, /genid.*req\.sessionID/);
    refused({ unset: 'keep' }, /unset: "keep"/);
    refused({ store: { get() {}, set() {}, destroy() {}, on() {} } }, /pass your Redis client as `redis: client`/);
    refused({ cookie: { expires: new Date() } }, /cookie\.maxAge/);
    refused({ cookie: { sameSite: 'auto' } }, /'lax', 'strict' or 'none'/);
    refused({ cookie: { partitioned: true } }, /cookie\.partitioned/);
    refused({ cookie: { maxAge: -1 } }, /cookie\.maxAge must be/);
    refused({ cookieName: 'x' }, /use name/);
    refused({ secrets: [SECRET] }, /use secret/);
    assert.throws(() => new Store(), /pass your Redis client as `redis: client`/);
  });

  it("accepts express-session's options and latchkey's own", async () => {
    const middleware = session({
      secret: [SECRET, `${SECRET}-old`],
      name: 'sid',
      resave: true,
      rolling: true,
      saveUninitialized: true,
      proxy: true,
      unset: 'destroy',
      cookie: { maxAge: 90_000, httpOnly: false, secure: 'auto', sameSite: true, path: '/', domain: 'example.com' },
      store: new MemoryStore(),
      absoluteLifetime: 3600,
      maxSessionsPerUser: 3,
    });
    const { options } = middleware.manager;
    assert.equal(options.cookieName, 'sid');
    assert.equal(options.cookieLifetime, 90);
    assert.equal(options.httpOnly, false);
    assert.equal(options.sameSite, 'strict');
    assert.equal(options.domain, 'example.com');
    assert.equal(options.absoluteLifetime, 3600);
    assert.deepEqual(options.secrets, [SECRET, `${SECRET}-old`]);
    assert.equal(session({ store: new MemoryStore() }).manager.options.cookieName, 'connect.sid');
    assert.equal(session({ store: new MemoryStore(), cookie: { maxAge: 7 * 86_400_000 } }).manager.options.absoluteLifetime, 7 * 86_400, 'a session lives at least one idle period');
    await middleware.close();
  });
});
