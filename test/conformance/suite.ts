import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSessionId } from '../../src/index.js';
import type { AppSpec } from './app.js';
import {
  ADAPTERS,
  Browser,
  handleOf,
  inProcess,
  parseSetCookie,
  storageIdOfCookie,
  STORES,
  tlsGet,
  watchUnhandled,
  type AppHost,
  type HostedApp,
  type StoreUnderTest,
} from './harness.js';

/** A session as `/devices` lists it: `listUserSessions` through JSON. */
interface Device {
  readonly handle: string;
  readonly userId: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  readonly userAgent?: string;
  readonly ip?: string;
  readonly current: boolean;
}

/** What `/devices` answers. */
interface Devices {
  readonly userId: string | null;
  readonly devices: readonly Device[];
}

const POST: RequestInit = { method: 'POST' };

/** The fields of a listed session without `recordClient`: nothing that could name a token or the app's data. */
const DEVICE_FIELDS = ['createdAt', 'current', 'handle', 'lastSeenAt', 'userId'];

/** The addresses a client on this machine has, as the frameworks report a loopback peer. */
const LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

/**
 * The behaviour every adapter must show with the store `storeName`: one suite, run unchanged
 * against each host: by default each adapter in {@link ADAPTERS}, in this process.
 */
export function conformance(storeName: string, hosts: readonly AppHost[] = ADAPTERS.map(inProcess)): void {
  const makeStore = STORES[storeName];
  if (!makeStore) throw new Error(`unknown store ${storeName}`);

  for (const host of hosts) {
    describe(`${host.name} × ${storeName}`, () => {
      let sut: StoreUnderTest;
      let app: HostedApp | undefined;
      let unhandled: ReturnType<typeof watchUnhandled>;

      before(async () => {
        sut = await makeStore();
        unhandled = watchUnhandled();
      });
      after(async () => {
        unhandled.stop();
        await host.close();
        await sut.close();
      });
      beforeEach(async () => {
        await sut.reset();
      });
      afterEach(async () => {
        const inApp = (await app?.observed())?.unhandled ?? [];
        await app?.close();
        app = undefined;
        assert.deepEqual(unhandled.rejections.splice(0), [], 'no unhandled rejections');
        assert.deepEqual(inApp, [], "no unhandled rejections in the app's process");
      });

      async function start(spec: AppSpec = {}, tls = false): Promise<Browser> {
        app = await host.start(sut, spec, tls);
        return new Browser(app.url, spec.cookieName ?? 'session');
      }

      /** The app started last; fails when none is running. */
      function running(): HostedApp {
        if (!app) throw new Error('no app is running');
        return app;
      }

      /** The store operations the running app made since it started or the last reset. */
      async function storeOps(): Promise<readonly string[]> {
        return (await running().observed()).storeOps;
      }

      /** Forgets the store operations and Redis commands counted so far. */
      async function resetCounts(): Promise<void> {
        await sut.redis?.resetStats();
        await running().resetStoreOps();
      }

      /** A browser with a stored session holding `a: 1`, and the counters reset after. */
      async function withSession(spec: AppSpec = {}): Promise<{ browser: Browser; id: string }> {
        const browser = await start(spec);
        await browser.json('/set?key=a&value=1');
        assert.ok(browser.cookie, 'the first write sets a cookie');
        await resetCounts();
        return { browser, id: browser.cookie };
      }

      async function commands(): Promise<number> {
        return sut.redis ? sut.redis.commandTotal() : (await storeOps()).length;
      }

      describe('lazy', () => {
        it('sends no store command and no cookie when the handler does not use the session', async () => {
          const { browser } = await withSession();
          const response = await browser.get('/plain');
          assert.equal(response.status, 200);
          assert.equal(response.body, 'plain');
          assert.deepEqual(response.setCookie, []);
          assert.deepEqual(await storeOps(), []);
          assert.equal(await commands(), 0);

          const anonymous = await new Browser(browser.base).get('/plain');
          assert.deepEqual(anonymous.setCookie, []);
          assert.deepEqual(await storeOps(), []);
        });
      });

      describe('strict ids', () => {
        it('never adopts a well-formed id it did not issue', async () => {
          const browser = await start();
          const planted = createSessionId();
          browser.cookie = planted;
          const read = await browser.get('/get?key=a');
          assert.equal(read.status, 200);
          assert.deepEqual(JSON.parse(read.body), { value: null, id: null, isNew: true });
          assert.deepEqual(read.setCookie, []);
          assert.deepEqual(await sut.keys(), []);

          await browser.json('/set?key=a&value=1');
          assert.notEqual(browser.cookie, planted);
          assert.equal(await sut.hash(planted), null);
          assert.equal((await sut.hash(browser.cookie as string))?.get('a'), '1');
          assert.equal((await sut.keys()).length, 1);
        });

        const malformed = [
          'abc',
          '',
          `${'A'.repeat(42)}B`,
          'A'.repeat(44),
          `${'A'.repeat(41)}+A`,
          '%41'.repeat(15),
          `"${'A'.repeat(43)}"`,
          'x'.repeat(8 * 1024),
          '../../etc/passwd',
          '*',
        ];
        it('reads a malformed cookie as no session, without touching the store, and never stores it', async () => {
          const browser = await start();
          for (const value of malformed) {
            await resetCounts();
            const response = await browser.get('/get?key=a', { headers: { cookie: `session=${value}` } });
            assert.equal(response.status, 200, `cookie ${value.slice(0, 40)}`);
            assert.equal(JSON.parse(response.body).value, null);
            assert.deepEqual(response.setCookie, []);
            assert.deepEqual(await storeOps(), []);
            assert.equal(await commands(), 0);

            const write = await browser.get('/set?key=a&value=2', { headers: { cookie: `session=${value}` } });
            assert.equal(write.status, 200);
            const created = parseSetCookie(write.setCookie[0] as string).value;
            assert.notEqual(created, value);
            assert.equal(created.length, 43);
          }
          const keys = await sut.keys();
          assert.equal(keys.length, malformed.length);
          for (const key of keys) assert.match(key, /^session:[A-Za-z0-9_-]{43}$/);
        });

        it('uses neither copy of a cookie sent twice, never asks the store, and clears every copy so the browser recovers', async () => {
          const { browser: owner, id } = await withSession({ recordInvalidCookies: true });
          const browser = new Browser(owner.base);
          const both = `session=${id}; session=${createSessionId()}`;
          await running().resetStoreOps();
          const read = await browser.get('/get?key=a', { headers: { cookie: both } });
          assert.equal(read.status, 200);
          assert.deepEqual(JSON.parse(read.body), { value: null, id: null, isNew: true });
          assert.deepEqual(await storeOps(), [], 'neither id reaches the store');
          // The request was for /get on 127.0.0.1: copies can only have Path / or /get, and no Domain.
          assert.deepEqual(
            read.setCookie.map((line) => {
              const cookie = parseSetCookie(line);
              return [cookie.name, cookie.value, cookie.attributes.get('path'), cookie.attributes.get('max-age'), cookie.attributes.has('domain')];
            }).sort(),
            [['session', '', '/', '0', false], ['session', '', '/get', '0', false]],
          );
          assert.deepEqual((await running().observed()).invalidCookies, ['duplicate']);

          const write = await browser.get('/set?key=b&value=2', { headers: { cookie: both } });
          assert.equal(write.status, 200);
          const lines = write.setCookie.map(parseSetCookie);
          const last = lines.at(-1);
          assert.ok(last && last.value.length === 43 && last.attributes.get('path') === '/', 'the new session cookie comes last, after the clearing lines');
          assert.deepEqual(lines.slice(0, -1).map((cookie) => [cookie.value, cookie.attributes.get('path')]), [['', '/set']], 'its own Path is not cleared before it');
          assert.notEqual(last.value, id);
          assert.equal((await sut.hash(last.value))?.get('b'), '2');
          assert.equal((await sut.hash(id))?.get('a'), '1', "the copies' sessions are left alone");
          assert.equal(owner.cookie, id);
        });

        it('keeps no session and sends no cookie for a visitor who only reads', async () => {
          const browser = await start();
          for (const path of ['/get?key=a', '/view']) {
            const response = await browser.get(path);
            assert.equal(response.status, 200);
            assert.deepEqual(response.setCookie, []);
          }
          assert.deepEqual(await sut.keys(), []);
          assert.deepEqual(await storeOps(), []);
        });
      });

      describe('cookie', () => {
        it('has HttpOnly, SameSite=Lax, Path=/ and a Max-Age of the absolute lifetime (86400) by default, and no Secure over http', async () => {
          const browser = await start();
          const response = await browser.get('/set?key=a&value=1');
          assert.equal(response.setCookie.length, 1);
          const cookie = parseSetCookie(response.setCookie[0] as string);
          assert.equal(cookie.name, 'session');
          assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/);
          assert.equal(cookie.attributes.get('httponly'), true);
          assert.equal(cookie.attributes.get('samesite'), 'Lax');
          assert.equal(cookie.attributes.get('path'), '/');
          assert.equal(cookie.attributes.get('max-age'), '86400');
          assert.equal(cookie.attributes.has('secure'), false);
          assert.equal(cookie.attributes.has('domain'), false);
          const ttl = await sut.ttlMs(cookie.value);
          assert.ok(ttl > 1_790_000 && ttl <= 1_800_000, `the idle timeout (1800 s) lives in the store: ttl ${ttl}`);
        });

        it('follows the cookie options', async () => {
          const browser = await start({
            cookieName: 'sid',
            cookieLifetime: 600,
            secure: true,
            httpOnly: false,
            sameSite: 'strict',
            path: '/app',
            domain: 'example.test',
          });
          const response = await browser.get('/set?key=a&value=1');
          const cookie = parseSetCookie(response.setCookie[0] as string);
          assert.equal(cookie.name, 'sid');
          assert.equal(cookie.attributes.get('max-age'), '86400');
          assert.equal(cookie.attributes.get('secure'), true);
          assert.equal(cookie.attributes.has('httponly'), false);
          assert.equal(cookie.attributes.get('samesite'), 'Strict');
          assert.equal(cookie.attributes.get('path'), '/app');
          assert.equal(cookie.attributes.get('domain'), 'example.test');
          const ttl = await sut.ttlMs(cookie.value);
          assert.ok(ttl > 590_000 && ttl <= 600_000, `ttl ${ttl}`);
          assert.deepEqual(JSON.parse((await browser.get('/get?key=a')).body).value, 1);
        });

        it("secure: 'auto' marks the cookie Secure on HTTPS requests, and trusts no X-Forwarded-Proto by default", async () => {
          const browser = await start();
          const forged = await browser.get('/set?key=a&value=1', { headers: { 'x-forwarded-proto': 'https' } });
          assert.equal(forged.setCookie.length, 1);
          assert.equal(parseSetCookie(forged.setCookie[0] as string).attributes.has('secure'), false);
          await app?.close();

          await start({}, true);
          assert.match(running().url, /^https:/);
          const response = await tlsGet(`${running().url}/set?key=a&value=1`);
          assert.equal(response.status, 200);
          assert.equal(response.setCookie.length, 1);
          const cookie = parseSetCookie(response.setCookie[0] as string);
          assert.equal(cookie.attributes.get('secure'), true);
          assert.equal((await sut.hash(cookie.value))?.get('a'), '1');
        });

        it('takes secure as a function of the framework request, for every cookie it writes', async () => {
          // A function that trusts X-Forwarded-Proto, read through each framework's request object.
          const browser = await start({ secure: 'forwarded' });
          const proxied = { headers: { 'x-forwarded-proto': 'https' } };
          const set = await browser.get('/set?key=a&value=1', proxied);
          assert.equal(parseSetCookie(set.setCookie[0] as string).attributes.get('secure'), true, 'https at the proxy');
          const cleared = await browser.get('/destroy', proxied);
          assert.equal(parseSetCookie(cleared.setCookie[0] as string).attributes.get('secure'), true, 'the clearing line too');
          const direct = await browser.get('/set?key=a&value=1');
          assert.equal(parseSetCookie(direct.setCookie[0] as string).attributes.has('secure'), false, 'plain http');
          assert.deepEqual((await running().observed()).secureCalls, ['object', 'object', 'object'], 'asked once per cookie written, with the framework request');
          await app?.close();
          await sut.reset();

          const failing = await start({ secure: 'throws' });
          const response = await failing.get('/set?key=a&value=1');
          assert.equal(response.status, 500);
          assert.deepEqual(response.setCookie, []);
          assert.deepEqual(await sut.keys(), [], 'it failed before anything was stored');
          assert.ok((await running().observed()).errors.some((error) => error.route), "the error took the framework's error path");
        });

        it("keeps the app's own Set-Cookie headers next to the session cookie", async () => {
          const browser = await start();
          const response = await browser.get('/theme');
          assert.equal(response.body, 'themed');
          const names = response.setCookie.map((line) => parseSetCookie(line).name).sort();
          assert.deepEqual(names, ['lang', 'session', 'theme']);
        });

        it('makes a browser-session cookie with cookieLifetime: null while the store keeps 7 days', async () => {
          const browser = await start({ cookieLifetime: null, absoluteLifetime: null });
          const response = await browser.get('/set?key=a&value=1');
          const cookie = parseSetCookie(response.setCookie[0] as string);
          assert.equal(cookie.attributes.has('max-age'), false);
          assert.equal(cookie.attributes.has('expires'), false);
          const ttl = await sut.ttlMs(cookie.value);
          assert.ok(ttl > 7 * 86_400_000 - 10_000 && ttl <= 7 * 86_400_000, `ttl ${ttl}`);
          const again = await browser.get('/set?key=b&value=2');
          assert.deepEqual(again.setCookie, [], 'no need to re-send a cookie without Max-Age');
        });

        it('puts the session under the configured keyword', async () => {
          const browser = await start({ keyword: 'visit' });
          await browser.json('/set?key=a&value=5');
          assert.deepEqual(await browser.json('/get?key=a'), { value: 5, id: handleOf(browser.cookie as string), isNew: false });
        });
      });

      describe('public handle', () => {
        it('session.id is a handle, not the token: stable across requests, new after regenerate, useless as a cookie', async () => {
          const { browser, id } = await withSession();
          const first = ((await browser.json('/get?key=a')) as { id: string }).id;
          assert.match(first, /^[\w-]{22}$/);
          assert.ok(!id.includes(first) && first !== id, 'no part of the token');
          assert.equal(((await browser.json('/get?key=a')) as { id: string }).id, first, 'the same on every request');
          const thief = new Browser(browser.base);
          thief.cookie = first;
          assert.deepEqual(await thief.json('/get?key=a'), { value: null, id: null, isNew: true }, 'as a cookie it finds nothing');
          assert.deepEqual((await sut.keys()).filter((key) => key.includes(first)), [], 'nor does it name a key');
          await browser.get('/regenerate');
          const renewed = ((await browser.json('/get?key=a')) as { id: string }).id;
          assert.notEqual(renewed, first, 'a new handle with the new id');
          assert.equal(renewed, handleOf(browser.cookie as string));
        });
      });

      describe('sliding expiry', () => {
        it('a read extends the TTL with one more command when the session was last seen touchInterval ago, and sends no cookie', async () => {
          const { browser, id } = await withSession({ touchInterval: 1 });
          await sut.setTtlMs(id, 5000);
          const before = Number((await sut.hash(id))?.get(':s'));
          await sleep(1050);
          await resetCounts();
          const response = await browser.get('/get?key=a');
          assert.equal(JSON.parse(response.body).value, 1);
          assert.equal((await storeOps()).length, 2, 'the load, then the refresh');
          if (sut.redis) {
            const counts = await sut.redis.commandCounts();
            assert.equal((counts.get('evalsha') ?? 0) + (counts.get('eval') ?? 0), 1, 'one script besides the HGETALL');
          }
          const ttl = await sut.ttlMs(id);
          assert.ok(ttl > 1_790_000, `ttl ${ttl}`);
          assert.ok(Number((await sut.hash(id))?.get(':s')) >= before + 1000, 'last-seen moves');
          assert.deepEqual(response.setCookie, [], 'the browser keeps the cookie it has');

          await running().resetStoreOps();
          await browser.get('/get?key=a');
          assert.equal((await storeOps()).length, 1, 'and not again within touchInterval');
        });

        it('sends a single read command when the session was seen within touchInterval, by any process', async () => {
          const { browser } = await withSession();
          const before = (await storeOps()).length;
          const response = await browser.get('/get?key=a');
          assert.equal(JSON.parse(response.body).value, 1);
          assert.deepEqual((await storeOps()).slice(before), ['load'], 'one plain read, without refreshing the expiry');
          // On Redis that read is one HGETALL.
          if (sut.redis) assert.deepEqual([...(await sut.redis.commandCounts())], [['hgetall', 1]]);
          assert.deepEqual(response.setCookie, []);
        });

        it('extends the TTL on every write, and never re-sends the cookie of an existing session', async () => {
          const { browser, id } = await withSession({ touchInterval: 0 });
          for (const path of ['/set?key=b&value=1', '/incr?key=n', '/del?key=b', '/get?key=a']) {
            await sut.setTtlMs(id, 5000);
            const response = await browser.get(path);
            assert.equal(response.status, 200, path);
            assert.deepEqual(response.setCookie, [], `${path}: no Set-Cookie`);
            assert.ok((await sut.ttlMs(id)) > 1_790_000, `${path}: the store's expiry was extended`);
          }
        });

        it("gives the cookie the absolute lifetime as Max-Age, or 400 days without one, whatever the idle timeout", async () => {
          for (const [options, maxAge] of [
            [{ cookieLifetime: 60, absoluteLifetime: 3600 }, '3600'],
            [{ cookieLifetime: 60, absoluteLifetime: null }, String(400 * 86400)],
            [{ cookieLifetime: 60, absoluteLifetime: 1000 * 86400 }, String(400 * 86400)],
          ] as const) {
            const browser = await start(options);
            const response = await browser.get('/set?key=a&value=1');
            assert.equal(parseSetCookie(response.setCookie[0] as string).attributes.get('max-age'), maxAge, JSON.stringify(options));
            const ttl = await sut.ttlMs(browser.cookie as string);
            assert.ok(ttl > 50_000 && ttl <= 60_000, `the store keeps the idle timeout: ${ttl}`);
            await app?.close();
            app = undefined;
          }
        });

        it('loads once per request however many reads', async () => {
          const { browser } = await withSession();
          const view = (await browser.json('/view')) as Record<string, unknown>;
          assert.deepEqual(view.all, { a: 1 });
          assert.deepEqual(view.keys, ['a']);
          assert.deepEqual(view.values, [1]);
          assert.deepEqual(view.entries, [['a', 1]]);
          assert.equal(view.size, 1);
          assert.equal(view.isNew, false);
          assert.equal((await storeOps()).length, 1);
        });

        it('lets an idle session expire', async () => {
          const { browser, id } = await withSession({ cookieLifetime: 1 });
          await sleep(1100);
          assert.deepEqual(await browser.json('/get?key=a'), { value: null, id: null, isNew: true });
          assert.equal(await sut.hash(id), null);
        });
      });

      describe('writes', () => {
        it('is in the store when set() resolves, one round trip per call however many fields', async () => {
          const { browser, id } = await withSession();
          const peek = (await browser.json('/setpeek?key=b&value=now')) as { stored: Record<string, string> };
          assert.equal(peek.stored.b, '"now"');
          const before = (await storeOps()).length;
          await sut.redis?.resetStats();
          await browser.json(`/setmany?values=${encodeURIComponent(JSON.stringify({ c: 1, d: 2, e: 3, f: 4, g: 5 }))}`);
          assert.deepEqual((await storeOps()).slice(before), ['update'], 'one update for all five fields');
          // On Redis that update is one script call.
          if (sut.redis) {
            const counts = await sut.redis.commandCounts();
            assert.equal((counts.get('evalsha') ?? 0) + (counts.get('eval') ?? 0), 1);
          }
          const hash = await sut.hash(id);
          for (const key of ['c', 'd', 'e', 'f', 'g']) assert.ok(hash?.has(key), key);
        });

        it('gives values back with their JSON type', async () => {
          const browser = await start();
          const values = { n: 42, f: 1.5, s: 'x', b: true, z: null, arr: [1, 'a'], obj: { a: { b: [null] } }, empty: '' };
          await browser.json(`/setmany?values=${encodeURIComponent(JSON.stringify(values))}`);
          const view = (await browser.json('/view')) as { all: Record<string, unknown> };
          assert.deepEqual(view.all, values);
        });

        it('deletes keys', async () => {
          const { browser, id } = await withSession();
          assert.deepEqual(await browser.json('/del?key=a'), { has: false });
          assert.equal((await sut.hash(id))?.has('a'), false);
          assert.ok(await sut.hash(id), 'the session itself stays');
        });

        it('increments atomically and returns the new value', async () => {
          const browser = await start();
          assert.deepEqual(await browser.json('/incr?key=n'), { value: 1 });
          assert.deepEqual(await browser.json('/incr?key=n&by=5'), { value: 6 });
          assert.deepEqual(await browser.json('/incr?key=n&by=-2'), { value: 4 });
          assert.deepEqual(await browser.json('/get?key=n'), { value: 4, id: handleOf(browser.cookie as string), isNew: false });
          await browser.json('/set?key=s&value="text"');
          const bad = await browser.get('/incr?key=s');
          assert.equal(bad.status, 500);
          assert.equal((await sut.hash(browser.cookie as string))?.get('s'), '"text"');
        });

        it('rejects values JSON cannot hold with a 500 and stores nothing', async () => {
          const browser = await start();
          assert.equal((await browser.get('/setundefined')).status, 500);
          assert.equal((await browser.get('/setbigint')).status, 500);
          assert.deepEqual(await sut.keys(), []);
        });
      });

      describe('no lost updates', () => {
        it('keeps every field when 50 requests write different fields at once', async () => {
          const { browser, id } = await withSession();
          await Promise.all(Array.from({ length: 50 }, (_, i) => browser.json(`/set?key=f${i}&value=${i}`)));
          const hash = await sut.hash(id);
          for (let i = 0; i < 50; i++) assert.equal(hash?.get(`f${i}`), String(i), `f${i}`);
          assert.equal(hash?.get('a'), '1');
        });

        it('counts all of 100 concurrent increments', async () => {
          const { browser, id } = await withSession();
          await Promise.all(Array.from({ length: 100 }, () => browser.json('/incr?key=n')));
          assert.equal((await sut.hash(id))?.get('n'), '100');
        });
      });

      describe('errors', () => {
        it("a handler's error takes the framework's error path, and the session it wrote keeps its cookie", async () => {
          const browser = await start();
          const response = await browser.get('/setThenThrow');
          assert.equal(response.status, 500);
          const { errors } = await running().observed();
          assert.equal(errors.length, 1);
          assert.ok(errors[0]?.route, `the error handler got ${errors[0]?.message}`);
          assert.equal(response.setCookie.length, 1, 'the session exists, so the browser must get its id');
          assert.ok(browser.cookie);
          assert.equal((await sut.hash(browser.cookie))?.get('a'), '1');
          assert.deepEqual(await browser.json('/get?key=a'), { value: 1, id: handleOf(browser.cookie), isNew: false });
        });

        it('refuses to start a session once the response has gone out: HEADERS_SENT, nothing stored', async () => {
          const browser = await start();
          const response = await browser.get('/late');
          assert.equal(response.body, 'answered');
          assert.deepEqual(response.setCookie, []);
          const { late } = await running().observed();
          assert.equal(late.length, 1);
          const [outcome] = late;
          assert.ok(outcome && !outcome.ok, 'the late write was refused');
          assert.equal(outcome.code, 'HEADERS_SENT', `rejected with ${outcome.message}`);
          assert.deepEqual(await sut.keys(), [], 'a session whose id no browser can know was not stored');
        });
      });

      describe('destroy and regenerate', () => {
        it('destroy() deletes the session and expires the cookie', async () => {
          const { browser, id } = await withSession();
          const response = await browser.get('/destroy');
          assert.equal(response.status, 200);
          assert.equal(await sut.hash(id), null);
          assert.equal(response.setCookie.length, 1);
          const cookie = parseSetCookie(response.setCookie[0] as string);
          assert.equal(cookie.value, '');
          assert.equal(cookie.attributes.get('max-age'), '0');
          assert.equal(cookie.attributes.get('path'), '/');
          assert.equal(browser.cookie, undefined);
        });

        it('starts a new session when used after destroy() in the same request', async () => {
          const { browser, id } = await withSession();
          const response = await browser.get('/destroyThenSet');
          const body = JSON.parse(response.body) as { before: string; after: string; all: object; isNew: boolean };
          assert.equal(body.before, handleOf(id));
          assert.deepEqual(body.all, { after: true });
          assert.equal(body.isNew, true);
          assert.equal(response.setCookie.length, 1, 'one Set-Cookie for the session');
          const after = parseSetCookie(response.setCookie[0] as string).value;
          assert.notEqual(after, id);
          assert.equal(body.after, handleOf(after));
          assert.equal(await sut.hash(id), null);
          assert.deepEqual([...((await sut.hash(after)) ?? [])].filter(([k]) => !k.startsWith(':')), [['after', 'true']]);
        });

        it('regenerate() moves the data to a new id and kills the old one at once', async () => {
          const { browser, id } = await withSession();
          const created = (await sut.hash(id))?.get(':c');
          const response = await browser.get('/regenerate');
          assert.equal(await sut.hash(id), null, 'old id is dead before the response is read');
          const body = JSON.parse(response.body) as { before: string; after: string; all: object; isNew: boolean };
          assert.equal(body.before, handleOf(id));
          assert.notEqual(browser.cookie, id);
          assert.equal(body.after, handleOf(browser.cookie as string));
          assert.notEqual(body.after, body.before, 'a new handle too');
          assert.deepEqual(body.all, { a: 1 });
          assert.equal(body.isNew, false);
          assert.equal((await sut.hash(browser.cookie as string))?.get(':c'), created, 'creation time is kept');
          const cookie = parseSetCookie(response.setCookie[0] as string);
          const left = Math.round((Number(created) + 86_400_000 - Date.now()) / 1000);
          assert.ok(Math.abs(Number(cookie.attributes.get('max-age')) - left) <= 2, `Max-Age ${cookie.attributes.get('max-age')} reaches the same deadline (${left} s left)`);
          assert.deepEqual(await browser.json('/get?key=a'), { value: 1, id: body.after, isNew: false });
          const old = new Browser(browser.base);
          old.cookie = id;
          assert.deepEqual(await old.json('/get?key=a'), { value: null, id: null, isNew: true });
        });

        it('fails a write with SESSION_GONE (409) when another request destroyed the session it had read', async () => {
          const { browser, id } = await withSession();
          const gate = running().gate('race');
          const held = browser.get('/hold?gate=race');
          await gate.reached;
          const other = new Browser(browser.base);
          other.cookie = id;
          await other.get('/destroy');
          assert.equal(await sut.hash(id), null);
          await gate.release();
          const response = await held;
          assert.equal(response.status, 409);
          assert.deepEqual(response.setCookie, [], "the logout's cleared cookie is not overwritten");
          assert.equal(await sut.hash(id), null, 'the destroyed id stays dead');
          assert.deepEqual(await sut.keys(), [], 'nothing was written anywhere');
          assert.ok((await running().observed()).errors.some((error) => error.code === 'SESSION_GONE'), 'the error took the framework path');
        });

        it('fails a blind write with SESSION_GONE when another request destroyed the session meanwhile, and sets no cookie', async () => {
          const { browser, id } = await withSession();
          const gate = running().gate('blind');
          const held = browser.get('/holdBlind?gate=blind');
          await gate.reached;
          const other = new Browser(browser.base);
          other.cookie = id;
          await other.get('/destroy');
          await gate.release();
          const response = await held;
          assert.equal(response.status, 409);
          assert.deepEqual(response.setCookie, [], "the logout's cleared cookie is not overwritten by a new session's");
          assert.equal(await sut.hash(id), null, 'the destroyed id stays dead');
          assert.deepEqual(await sut.keys(), [], 'no new session was started');
          assert.ok((await running().observed()).errors.some((error) => error.code === 'SESSION_GONE'), 'the error took the framework path');
        });

        it('starts a fresh session, without the old data, for a blind write whose session expired', async () => {
          const { browser, id } = await withSession();
          await sut.setTtlMs(id, 1);
          await sleep(20);
          const response = await browser.get('/set?key=late&value=1');
          assert.equal(response.status, 200);
          assert.equal(response.setCookie.length, 1);
          const fresh = parseSetCookie(response.setCookie[0] as string).value;
          assert.notEqual(fresh, id);
          assert.equal(await sut.hash(id), null, 'the expired id stays dead');
          const hash = await sut.hash(fresh);
          assert.equal(hash?.get('late'), '1');
          assert.equal(hash?.has('a'), false, 'the old data is not carried over');
        });
      });

      describe('field names', () => {
        it('stores __proto__ and constructor as plain fields without polluting objects', async () => {
          const browser = await start();
          const values = '{"__proto__":{"polluted":true},"constructor":"x","toString":"y"}';
          await browser.json(`/setmany?values=${encodeURIComponent(values)}`);
          const hash = await sut.hash(browser.cookie as string);
          assert.equal(hash?.get('__proto__'), '{"polluted":true}');
          assert.equal(hash?.get('constructor'), '"x"');
          assert.deepEqual(await browser.json('/proto'), { proto: { polluted: true }, ctor: 'x', ownProto: true, polluted: null });
          assert.equal(({} as Record<string, unknown>).polluted, undefined);
        });

        it('keeps metadata in reserved fields that user keys cannot collide with', async () => {
          const browser = await start();
          const before = Date.now();
          await browser.json(`/setmany?values=${encodeURIComponent('{":c":"mine","::x":1,"plain":2}')}`);
          const hash = (await sut.hash(browser.cookie as string)) as Map<string, string>;
          assert.ok(Number(hash.get(':c')) >= before - 1000, 'created-at');
          assert.ok(Number(hash.get(':s')) >= before - 1000, 'last-seen');
          assert.equal(hash.get('::c'), '"mine"');
          assert.equal(hash.get(':::x'), '1');
          const view = (await browser.json('/view')) as { all: object; size: number };
          assert.deepEqual(view.all, { ':c': 'mine', '::x': 1, plain: 2 });
          assert.equal(view.size, 3);
        });
      });

      describe('sessions per user', () => {
        /** A new browser of the running app, signed in as `user`. */
        async function signedIn(user: string): Promise<Browser> {
          const browser = new Browser(running().url);
          await browser.json(`/login?user=${encodeURIComponent(user)}`, POST);
          assert.ok(browser.cookie, `${user} got a cookie`);
          return browser;
        }

        async function devices(browser: Browser): Promise<Devices> {
          return (await browser.json('/devices')) as Devices;
        }

        const anonymous = { userId: null, id: null, all: {} };

        it('login() moves the session to a new id, keeps its data and binds the user; a visitor gets a session holding only the user', async () => {
          const { browser, id } = await withSession();
          const response = await browser.get('/login?user=alice', POST);
          assert.equal(response.status, 200);
          assert.equal(response.setCookie.length, 1, 'the new id goes to the browser');
          const cookie = browser.cookie as string;
          assert.notEqual(cookie, id, 'a new id');
          assert.deepEqual(JSON.parse(response.body), { id: handleOf(cookie), userId: 'alice' });
          assert.equal(await sut.hash(id), null, 'the id from before the login is dead');
          const hash = await sut.hash(cookie);
          assert.equal(hash?.get(':u'), 'alice');
          assert.equal(hash?.get('a'), '1');
          assert.deepEqual(await browser.json('/whoami'), { userId: 'alice', id: handleOf(cookie), all: { a: 1 } });
          assert.deepEqual(await sut.userIndex('alice'), [storageIdOfCookie(cookie)], "the user's index holds the new id");
          const old = new Browser(browser.base);
          old.cookie = id;
          assert.deepEqual(await old.json('/whoami'), anonymous, 'the old cookie finds nothing');

          const visitor = await signedIn('42');
          assert.deepEqual(await visitor.json('/whoami'), { userId: '42', id: handleOf(visitor.cookie as string), all: {} });
          assert.deepEqual(await sut.userIndex('42'), [storageIdOfCookie(visitor.cookie as string)]);
        });

        it("ends a session revoked by handle: its request under way fails its write, and its next request is anonymous, without its data", async () => {
          await start();
          const a = await signedIn('alice');
          const b = await signedIn('alice');
          await b.json('/set?key=cart&value=3');
          const bCookie = b.cookie as string;
          const listed = (await devices(a)).devices.find((device) => !device.current);
          assert.equal(listed?.handle, handleOf(bCookie), "A finds B's session in its list");

          const gate = running().gate('revoked');
          const held = b.get('/hold?gate=revoked');
          await gate.reached;
          assert.deepEqual(await a.json(`/revoke?handle=${listed.handle}`, POST), { revoked: true });
          await gate.release();
          const late = await held;
          assert.equal(late.status, 409, 'the write B had under way fails with SESSION_GONE');
          assert.deepEqual(late.setCookie, []);

          const next = await b.get('/whoami');
          assert.deepEqual(JSON.parse(next.body), anonymous, 'B is anonymous, and has no session data');
          assert.deepEqual(next.setCookie, []);
          assert.equal(await sut.hash(bCookie), null, "B's session is gone from the store");
          assert.deepEqual(await a.json('/whoami'), { userId: 'alice', id: handleOf(a.cookie as string), all: {} }, 'A is still signed in');
          assert.deepEqual((await devices(a)).devices.map((device) => device.handle), [handleOf(a.cookie as string)]);
          assert.deepEqual(await sut.userIndex('alice'), [storageIdOfCookie(a.cookie as string)]);
          assert.deepEqual(await a.json(`/revoke?handle=${listed.handle}`, POST), { revoked: false }, 'a second revocation ends nothing');
        });

        it("cannot revoke another user's session by its handle", async () => {
          await start();
          const alice = await signedIn('alice');
          const bob = await signedIn('bob');
          assert.deepEqual(await alice.json(`/revoke?handle=${handleOf(bob.cookie as string)}`, POST), { revoked: false });
          assert.deepEqual(await bob.json('/whoami'), { userId: 'bob', id: handleOf(bob.cookie as string), all: {} });
          assert.deepEqual(await sut.userIndex('bob'), [storageIdOfCookie(bob.cookie as string)]);
        });

        it('revokeUserSessions with except: the session ends every other session of the user and keeps the current one', async () => {
          await start();
          const a = await signedIn('alice');
          const others = [await signedIn('alice'), await signedIn('alice')];
          const bob = await signedIn('bob');
          const aCookie = a.cookie as string;
          const response = await a.get('/revokeOthers', POST);
          assert.deepEqual(JSON.parse(response.body), { revoked: 2 });
          assert.deepEqual(response.setCookie, [], 'the current session keeps its id');
          assert.equal(a.cookie, aCookie);
          assert.deepEqual(await a.json('/whoami'), { userId: 'alice', id: handleOf(aCookie), all: {} });
          for (const other of others) assert.deepEqual(await other.json('/whoami'), anonymous);
          assert.deepEqual(await bob.json('/whoami'), { userId: 'bob', id: handleOf(bob.cookie as string), all: {} }, 'other users are left alone');
          const listed = (await devices(a)).devices;
          assert.deepEqual(listed.map((device) => [device.handle, device.current]), [[handleOf(aCookie), true]]);
          assert.deepEqual(await sut.userIndex('alice'), [storageIdOfCookie(aCookie)]);
        });

        it('logout() ends the session, clears the cookie and takes the session off the list', async () => {
          await start();
          const a = await signedIn('alice');
          const b = await signedIn('alice');
          const bCookie = b.cookie as string;
          assert.equal((await devices(a)).devices.length, 2);
          const response = await b.get('/logout', POST);
          assert.equal(response.status, 200);
          const cleared = parseSetCookie(response.setCookie[0] as string);
          assert.deepEqual([cleared.value, cleared.attributes.get('max-age')], ['', '0']);
          assert.equal(b.cookie, undefined);
          assert.equal(await sut.hash(bCookie), null);
          assert.deepEqual((await devices(a)).devices.map((device) => device.handle), [handleOf(a.cookie as string)]);
          assert.deepEqual(await sut.userIndex('alice'), [storageIdOfCookie(a.cookie as string)], 'the index entry went with it');
          b.cookie = bCookie;
          assert.deepEqual(await b.json('/whoami'), anonymous, 'the old cookie finds nothing');
        });

        it('lists the sessions oldest first, flags the current one, and gives their creation and last-seen times', async () => {
          const started = Date.now();
          await start();
          const a = await signedIn('alice');
          // Two logins in one millisecond would be ordered by handle instead.
          await sleep(5);
          const b = await signedIn('alice');
          const ended = Date.now();
          const expected = [handleOf(a.cookie as string), handleOf(b.cookie as string)];
          const fromA = (await devices(a)).devices;
          const fromB = (await devices(b)).devices;
          assert.deepEqual(fromA.map((device) => device.handle), expected);
          assert.deepEqual(fromB.map((device) => device.handle), expected);
          assert.deepEqual(fromA.map((device) => device.current), [true, false]);
          assert.deepEqual(fromB.map((device) => device.current), [false, true]);
          for (const device of fromA) {
            assert.deepEqual(Object.keys(device).sort(), DEVICE_FIELDS, 'no client details without recordClient');
            assert.equal(device.userId, 'alice');
            const createdAt = Date.parse(device.createdAt);
            const lastSeenAt = Date.parse(device.lastSeenAt);
            assert.ok(createdAt >= started && createdAt <= ended, `created ${device.createdAt}`);
            assert.ok(lastSeenAt >= createdAt && lastSeenAt <= Date.now(), `last seen ${device.lastSeenAt}`);
          }
          assert.ok(Date.parse(fromA[0]?.createdAt ?? '') < Date.parse(fromA[1]?.createdAt ?? ''), 'A started first');
          assert.deepEqual(await new Browser(a.base).json('/devices'), { userId: null, devices: [] }, 'a visitor has none');
        });

        it('shows handles, never a token: no cookie value, signature, storage id or session data in the list', async () => {
          const browser = await start({ secrets: ['a secret of at least thirty-two characters'] });
          await browser.json('/set?key=note&value="private note"');
          await browser.json('/login?user=alice', POST);
          const other = await signedIn('alice');
          const response = await browser.get('/devices');
          const listed = (JSON.parse(response.body) as Devices).devices;
          assert.equal(listed.length, 2);
          for (const cookie of [browser.cookie as string, other.cookie as string]) {
            const [id = '', signature = ''] = cookie.split('.');
            assert.ok(signature !== '', 'signed cookies');
            for (const secret of [cookie, id, signature, storageIdOfCookie(cookie)]) {
              assert.ok(!response.body.includes(secret), `the list holds no part of a token or key: ${secret}`);
            }
            assert.ok(listed.some((device) => device.handle === handleOf(cookie)), 'each session is listed by its handle');
          }
          for (const device of listed) {
            assert.match(device.handle, /^[\w-]{22}$/);
            assert.deepEqual(Object.keys(device).sort(), DEVICE_FIELDS);
          }
          assert.ok(!response.body.includes('private note'), "nor the session's data");
          const thief = new Browser(browser.base);
          thief.cookie = listed[0]?.handle;
          assert.deepEqual(await thief.json('/whoami'), anonymous, 'a handle used as a cookie finds nothing');
        });

        it('lists every one of ten sessions that logged in at once', async () => {
          await start();
          const browsers = Array.from({ length: 10 }, () => new Browser(running().url));
          await Promise.all(browsers.map((browser) => browser.json('/login?user=alice', POST)));
          const cookies = browsers.map((browser) => browser.cookie as string);
          assert.equal(new Set(cookies).size, 10);
          const listed = (await devices(browsers[0] as Browser)).devices;
          assert.deepEqual(listed.map((device) => device.handle).sort(), cookies.map(handleOf).sort());
          assert.deepEqual(await sut.userIndex('alice'), cookies.map(storageIdOfCookie).sort());
        });

        it('maxSessionsPerUser: a login past it revokes the oldest sessions, never the one logging in', async () => {
          await start({ maxSessionsPerUser: 2 });
          const first = await signedIn('alice');
          await sleep(5);
          const second = await signedIn('alice');
          await sleep(5);
          const third = await signedIn('alice');
          assert.deepEqual(await first.json('/whoami'), anonymous, 'the oldest was signed out');
          for (const browser of [second, third]) {
            assert.equal(((await browser.json('/whoami')) as { userId: string }).userId, 'alice');
          }
          assert.deepEqual((await devices(third)).devices.map((device) => device.handle), [second, third].map((browser) => handleOf(browser.cookie as string)));
          assert.deepEqual(await sut.userIndex('alice'), [second, third].map((browser) => storageIdOfCookie(browser.cookie as string)).sort());
        });

        it('recordClient: the list shows the user agent and the address the request came from', async () => {
          await start({ recordClient: true });
          const browser = new Browser(running().url);
          await browser.json('/login?user=alice', { method: 'POST', headers: { 'user-agent': 'ConformanceBrowser/1.0', 'x-forwarded-for': '203.0.113.9' } });
          const [device] = (await devices(browser)).devices;
          assert.equal(device?.userAgent, 'ConformanceBrowser/1.0');
          // Where the adapter knows the peer (every one on Node; see test/adapters/client-ip.test.ts),
          // it is this machine; never an address the request made up.
          if (device?.ip !== undefined) assert.ok(LOOPBACK.includes(device.ip), `ip ${device.ip}`);
          const hash = await sut.hash(browser.cookie as string);
          assert.equal(hash?.get(':a'), 'ConformanceBrowser/1.0');
          assert.equal(hash?.get(':i'), device?.ip);
        });
      });

      describe('store outage', () => {
        it('answers 503 within the command timeout while Redis is down, and recovers without a restart', async (t) => {
          if (!sut.redis) return t.skip('no Redis behind this store');
          const { browser } = await withSession();
          await sut.redis.kill();
          const started = Date.now();
          const down = await browser.get('/get?key=a');
          assert.equal(down.status, 503);
          assert.ok(Date.now() - started < 1800, `took ${Date.now() - started} ms`);
          assert.equal((await browser.get('/plain')).status, 200, 'requests that do not use the session still work');
          assert.equal((await browser.get('/set?key=b&value=1')).status, 503);
          const { errors } = await running().observed();
          assert.equal(errors.length, 2);
          for (const error of errors) assert.equal(error.code, 'STORE_UNAVAILABLE', `the error handler got ${error.message}`);
          await sut.redis.restart();
          const deadline = Date.now() + 5000;
          let status = 0;
          while (Date.now() < deadline) {
            status = (await browser.get('/set?key=b&value=1')).status;
            if (status === 200) break;
            await sleep(100);
          }
          assert.equal(status, 200, 'service comes back by itself');
          assert.deepEqual(await browser.json('/get?key=b'), { value: 1, id: handleOf(browser.cookie as string), isNew: false });
        });
      });
    });
  }
}
