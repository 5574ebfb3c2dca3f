// The CSRF and flash helpers through every adapter, with the MemoryStore and with a real Redis.
//
// The routes take the request method and the token from the query string (`/guarded?method=POST&token=...`)
// rather than from the framework's request: reading `req.method` or a header is one line of glue in each
// framework, while what must hold in every adapter is the session round trip (the token and the flashes
// written in one request and read in the next) and the way a CSRF_MISMATCH thrown by a handler comes out of
// each framework's own error path: as a 403.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSessionError } from '../../src/index.js';
import { checkCsrf, csrfToken, CSRF_KEY } from '../../src/core/csrf.js';
import { addFlash, FLASH_PREFIX, takeFlashes } from '../../src/core/flash.js';
import { ADAPTERS, Browser, STORES, type App, type Route, type StoreUnderTest } from './harness.js';

const ROUTES: Record<string, Route> = {
  token: (s) => csrfToken(s),
  guarded: async (s, q) => {
    await checkCsrf(s, q.get('method') ?? 'POST', q.get('token') ?? undefined);
    return { done: await s.incr('done') };
  },
  done: async (s) => ({ done: (await s.get('done')) ?? 0 }),
  flash: async (s, q) => {
    await addFlash(s, q.get('message'), q.get('category') ?? undefined);
    return { added: true };
  },
  flashes: (s, q) => takeFlashes(s, q.get('category') ?? undefined),
};

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

for (const storeName of ['memory', 'redis (node-redis)']) {
  describe(`csrf and flash × ${storeName}`, () => {
    let sut: StoreUnderTest;
    before(async () => {
      sut = await (STORES[storeName] as () => Promise<StoreUnderTest>)();
    });
    after(async () => {
      await sut.close();
    });

    for (const adapter of ADAPTERS) {
      describe(adapter.name, () => {
        let app: App | undefined;
        beforeEach(async () => {
          await sut.reset();
        });
        afterEach(async () => {
          await app?.close();
          app = undefined;
        });

        async function start(): Promise<Browser> {
          app = await adapter.start(sut.options, ROUTES);
          return new Browser(app.url);
        }

        async function commands(): Promise<number> {
          return sut.redis ? sut.redis.commandTotal() : sut.store.calls;
        }

        it('answers an unsafe request 200 with the session token, 403 without it or with another', async () => {
          const browser = await start();
          const first = await browser.get('/token');
          assert.equal(first.status, 200);
          const token = first.body;
          assert.match(token, TOKEN);
          assert.ok(browser.cookie, 'the token started a session');
          assert.equal((await sut.hash(browser.cookie))?.get(CSRF_KEY), JSON.stringify(token));
          assert.equal((await browser.get('/token')).body, token, 'the same token for the whole session');

          const other = await new Browser(browser.base).get('/token');
          assert.notEqual(other.body, token);

          const refused = [
            '/guarded?method=POST',
            '/guarded?method=POST&token=',
            `/guarded?method=POST&token=${other.body}`,
            `/guarded?method=DELETE&token=${token.slice(0, -1)}`,
            `/guarded?method=PUT&token=${token}x`,
          ];
          for (const path of refused) assert.equal((await browser.get(path)).status, 403, path);
          assert.equal(app?.errors.length, refused.length);
          for (const error of app?.errors ?? []) assert.ok(isSessionError(error, 'CSRF_MISMATCH'), `the error path got ${String(error)}`);

          assert.equal((await browser.get(`/guarded?method=POST&token=${token}`)).status, 200);
          assert.equal((await browser.get('/guarded?method=GET')).status, 200, 'a safe method needs no token');
          assert.deepEqual(await browser.json('/done'), { done: 2 }, 'only the accepted requests ran');
        });

        it('refuses an unsafe request from a visitor without a session, storing nothing', async () => {
          const browser = await start();
          const token = (await new Browser(browser.base).get('/token')).body;
          const keys = await sut.keys();
          await sut.redis?.resetStats();
          sut.store.calls = 0;
          const response = await browser.get(`/guarded?method=POST&token=${token}`);
          assert.equal(response.status, 403);
          assert.deepEqual(response.setCookie, []);
          assert.equal(await commands(), 0, 'no cookie: nothing to look up');
          assert.deepEqual(await sut.keys(), keys);
        });

        it('shows a flash once: added in one request, shown in the next, gone in the third', async () => {
          const browser = await start();
          assert.equal((await browser.get('/flash?message=saved')).status, 200);
          assert.equal((await browser.get('/flash?message=check%20the%20form&category=error')).status, 200);
          assert.deepEqual(await browser.json('/flashes'), [
            { category: 'info', message: 'saved' },
            { category: 'error', message: 'check the form' },
          ]);
          assert.deepEqual(await browser.json('/flashes'), []);

          await browser.json('/flash?message=a&category=error');
          await browser.json('/flash?message=b');
          assert.deepEqual(await browser.json('/flashes?category=error'), [{ category: 'error', message: 'a' }]);
          assert.deepEqual(await browser.json('/flashes'), [{ category: 'info', message: 'b' }]);
          const stored = await sut.hash(browser.cookie as string);
          assert.ok(stored, 'the session outlives its flashes');
          assert.deepEqual([...stored.keys()].filter((key) => key.startsWith(FLASH_PREFIX)), [], 'no flash is left in the store');
        });

        it('keeps every flash added by 20 concurrent requests', async () => {
          const browser = await start();
          await browser.json('/flash?message=first');
          await Promise.all(Array.from({ length: 20 }, (_, i) => browser.json(`/flash?message=m${i}`)));
          const messages = ((await browser.json('/flashes')) as Array<{ message: string }>).map((flash) => flash.message);
          assert.equal(messages[0], 'first');
          assert.deepEqual(messages.slice(1).sort(), Array.from({ length: 20 }, (_, i) => `m${i}`).sort());
        });

        it('takes no flashes from a visitor without a session: no cookie, no store command', async () => {
          const browser = await start();
          await sut.redis?.resetStats();
          sut.store.calls = 0;
          const response = await browser.get('/flashes');
          assert.equal(response.status, 200);
          assert.deepEqual(JSON.parse(response.body), []);
          assert.deepEqual(response.setCookie, []);
          assert.equal(await commands(), 0);
          assert.deepEqual(await sut.keys(), []);
        });
      });
    }
  });
}
