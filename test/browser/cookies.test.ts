// The session cookie as a real browser keeps and sends it: Chromium's own cookie jar, not a parser
// of Set-Cookie lines, decides what HttpOnly, SameSite, Path and Domain mean.
import { after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { RedisStore } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { useRedisWithClient } from '../redis/client.js';
import { startGreetingApp, type GreetingApp } from './apps.js';
import { describeInChromium } from './browser.js';

describeInChromium('the session cookie in Chromium (Hono, RedisStore)', { hosts: ['*.latchkey.test'] }, (chromium) => {
  const server = useRedisWithClient();
  let hostOnly: GreetingApp;
  let shared: GreetingApp;

  before(async () => {
    const store = new RedisStore({ redis: server.client as never });
    hostOnly = await startGreetingApp({ store });
    shared = await startGreetingApp({ store, domain: 'latchkey.test' });
  });
  after(async () => {
    await hostOnly?.close();
    await shared?.close();
  });
  beforeEach(async () => {
    await server.redis.command('FLUSHALL');
  });

  /** The greeting at `url`, as the page shows it. */
  async function visit(page: Page, url: string): Promise<string> {
    const response = await page.goto(url);
    assert.equal(response?.status(), 200, `GET ${url}`);
    return (await page.locator('body').innerText()).trim();
  }

  chromium.test('keeps the session in an HttpOnly, SameSite=Lax cookie that scripts cannot read, and Redis holds one hash', async ({ context, page }) => {
    const origin = `http://127.0.0.1:${hostOnly.port}`;
    assert.deepEqual(await context.cookies(), [], 'a fresh context has an empty jar');
    assert.equal(await visit(page, `${origin}/`), "I don't recognize you.");
    assert.deepEqual(await context.cookies(), [], 'reading an empty session sets no cookie');

    assert.equal(await visit(page, `${origin}/set/Chris`), 'Stored Chris');
    assert.equal(await visit(page, `${origin}/`), 'Hello, Chris');
    assert.equal(await page.evaluate(() => document.cookie), '', 'document.cookie cannot see an HttpOnly cookie');

    const jar = await context.cookies();
    assert.equal(jar.length, 1, JSON.stringify(jar));
    const cookie = jar[0]!;
    assert.equal(cookie.name, 'session');
    assert.match(cookie.value, /^[\w-]{43}$/);
    assert.equal(cookie.domain, '127.0.0.1', 'host-only: no Domain attribute');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.secure, false, 'over plain http the default secure: auto leaves Secure off');
    // expires is in seconds: the cookie lasts until the absolute deadline (24 hours by default);
    // the idle timeout (30 minutes) is Redis' TTL.
    assert.ok(Math.abs(cookie.expires - (Date.now() / 1000 + 86400)) < 60, `expires ${cookie.expires}`);

    const key = `session:${storageId(cookie.value)}`;
    assert.deepEqual(await server.redis.command('KEYS', '*'), [key]);
    const ttl = Number(await server.redis.command('PTTL', key));
    assert.ok(ttl > 1_790_000 && ttl <= 1_800_000, `the idle timeout lives in Redis: ${ttl}`);
    assert.equal(await server.redis.command('TYPE', key), 'hash');
    assert.equal(JSON.parse(String(await server.redis.command('HGET', key, 'name'))), 'Chris');
  });

  chromium.test("with domain: 'latchkey.test' the cookie set at www.latchkey.test is sent to app.latchkey.test", async ({ context, page }) => {
    assert.equal(await visit(page, `http://www.latchkey.test:${shared.port}/set/Chris`), 'Stored Chris');
    // No upgrade to https on the way: the page is where it was sent.
    assert.equal(page.url(), `http://www.latchkey.test:${shared.port}/set/Chris`);

    const jar = await context.cookies();
    assert.equal(jar.length, 1, JSON.stringify(jar));
    assert.equal(jar[0]!.domain, '.latchkey.test');
    assert.equal(jar[0]!.httpOnly, true);
    assert.equal(jar[0]!.sameSite, 'Lax');

    assert.equal(await visit(page, `http://app.latchkey.test:${shared.port}/`), 'Hello, Chris');
    assert.equal(await visit(page, `http://localhost:${shared.port}/`), "I don't recognize you.", 'not sent outside the domain');
    assert.deepEqual(await server.redis.command('KEYS', '*'), [`session:${storageId(jar[0]!.value)}`]);
  });

  chromium.test('without domain the cookie set at www.latchkey.test stays there: app.latchkey.test does not get it', async ({ context, page }) => {
    assert.equal(await visit(page, `http://www.latchkey.test:${hostOnly.port}/set/Chris`), 'Stored Chris');
    const jar = await context.cookies();
    assert.equal(jar.length, 1, JSON.stringify(jar));
    assert.equal(jar[0]!.domain, 'www.latchkey.test');
    assert.equal(await visit(page, `http://www.latchkey.test:${hostOnly.port}/`), 'Hello, Chris');
    assert.equal(await visit(page, `http://app.latchkey.test:${hostOnly.port}/`), "I don't recognize you.");
  });
});
