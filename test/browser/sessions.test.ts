// What a browser ends with when the same session cookie is held twice (a copy left by an earlier
// path or domain), and when a login races a page that was still loading: Chromium's own cookie
// jar decides, not a parser of Set-Cookie lines.
import { after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { RedisStore, type InvalidCookieReason, type SessionOptions } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { useRedisWithClient } from '../redis/client.js';
import { Gate } from '../conformance/harness.js';
import { greet, startGreetingApp, type GreetingApp } from './apps.js';
import { describeInChromium } from './browser.js';

interface TestApp extends GreetingApp {
  /** Why cookies were refused, in order. */
  readonly reasons: InvalidCookieReason[];
  /** Holds the next /slow request after it read its session, until released. */
  slow: Gate;
}

/** The greeting app with pages under /app, a login, and a page that answers late. */
async function startApp(options: SessionOptions): Promise<TestApp> {
  const reasons: InvalidCookieReason[] = [];
  const control = { slow: new Gate() };
  const app = await startGreetingApp({ ...options, onInvalidCookie: (reason) => void reasons.push(reason) }, (hono) => {
    hono.get('/app/*', greet);
    hono.get('/login/:name', async (c) => {
      await c.get('session').load();
      await c.get('session').regenerate();
      await c.get('session').set('name', c.req.param('name'));
      return c.text(`Signed in as ${c.req.param('name')}`);
    });
    hono.get('/slow', async (c) => {
      const name = await c.get('session').get('name');
      const gate = control.slow;
      gate.reach();
      await gate.released;
      return c.text(`Late page for ${String(name)}`);
    });
  });
  return {
    port: app.port,
    reasons,
    get slow() {
      return control.slow;
    },
    set slow(gate: Gate) {
      control.slow = gate;
    },
    async close() {
      control.slow.release();
      await app.close();
    },
  };
}

describeInChromium('sessions in Chromium: duplicated cookies and a login racing a slow page (Hono, RedisStore)', { hosts: ['*.latchkey.test'] }, (chromium) => {
  const server = useRedisWithClient();
  let app: TestApp;

  before(async () => {
    // touchInterval 0: every read refreshes the session's expiry, the case where a read's refresh
    // used to re-send the cookie.
    app = await startApp({ store: new RedisStore({ redis: server.client as never }), touchInterval: 0 });
  });
  after(async () => {
    await app?.close();
  });
  beforeEach(async () => {
    await server.redis.command('FLUSHALL');
    app.reasons.length = 0;
    app.slow = new Gate();
  });

  async function visit(page: Page, url: string): Promise<string> {
    const response = await page.goto(url);
    assert.equal(response?.status(), 200, `GET ${url}`);
    return (await page.locator('body').innerText()).trim();
  }

  /** The session cookies in the jar, as `path|domain=value`. */
  async function jar(context: BrowserContext): Promise<string[]> {
    return (await context.cookies()).filter((cookie) => cookie.name === 'session').map((cookie) => `${cookie.path}|${cookie.domain}=${cookie.value}`).sort();
  }

  /** A session another browser made: a real, live id to leave behind as a stale copy. */
  async function otherSession(context: BrowserContext, origin: string): Promise<string> {
    const page = await context.browser()!.newPage();
    try {
      await page.goto(`${origin}/set/Stale`);
      const [cookie] = await page.context().cookies();
      assert.ok(cookie);
      return cookie.value;
    } finally {
      await page.context().close();
    }
  }

  chromium.test('a copy left at another Path is cleared with the current one, and the browser recovers by itself', async ({ context, page }) => {
    const origin = `http://127.0.0.1:${app.port}`;
    const stale = await otherSession(context, origin);
    assert.equal(await visit(page, `${origin}/set/Chris`), 'Stored Chris');
    // As if the app had once run with path: '/app'.
    await context.addCookies([{ name: 'session', value: stale, domain: '127.0.0.1', path: '/app', httpOnly: true, sameSite: 'Lax' }]);
    assert.equal((await jar(context)).length, 2);

    assert.equal(await visit(page, `${origin}/app/orders`), "I don't recognize you.", 'neither copy is used');
    assert.deepEqual(app.reasons, ['duplicate']);
    assert.deepEqual(await jar(context), [], 'both copies are gone from the jar');

    assert.equal(await visit(page, `${origin}/set/Dana`), 'Stored Dana');
    assert.equal(await visit(page, `${origin}/app/orders`), 'Hello, Dana', 'signed in again, everywhere');
    assert.equal(await visit(page, `${origin}/`), 'Hello, Dana');
    assert.deepEqual(app.reasons, ['duplicate'], 'and no more duplicates');
    assert.equal(JSON.parse(String(await server.redis.command('HGET', `session:${storageId(stale)}`, 'name'))), 'Stale', "the copies' sessions are left alone");
  });

  chromium.test('a copy left with a Domain attribute is cleared too', async ({ context, page }) => {
    const origin = `http://www.latchkey.test:${app.port}`;
    const stale = await otherSession(context, `http://127.0.0.1:${app.port}`);
    assert.equal(await visit(page, `${origin}/set/Chris`), 'Stored Chris');
    // As if the app had once run with domain: 'latchkey.test'.
    await context.addCookies([{ name: 'session', value: stale, domain: '.latchkey.test', path: '/', httpOnly: true, sameSite: 'Lax' }]);
    assert.equal((await jar(context)).length, 2);

    assert.equal(await visit(page, `${origin}/`), "I don't recognize you.");
    assert.deepEqual(app.reasons, ['duplicate']);
    assert.deepEqual(await jar(context), [], 'the host-only cookie and the domain cookie are both gone');
    assert.equal(await visit(page, `${origin}/set/Dana`), 'Stored Dana');
    assert.equal(await visit(page, `${origin}/`), 'Hello, Dana');
  });

  chromium.test('a login while another tab still loads a page that read the session: the browser keeps the login', async ({ context, page }) => {
    const origin = `http://127.0.0.1:${app.port}`;
    assert.equal(await visit(page, `${origin}/set/guest`), 'Stored guest');
    const [before] = await jar(context);

    // Tab 1 asks for a page that reads the session and answers late.
    const other = await context.newPage();
    await other.goto(`${origin}/`);
    const late = other.evaluate(async () => (await fetch('/slow')).text());
    await app.slow.reached;
    // Tab 2 signs in meanwhile, and gets a new id.
    assert.equal(await visit(page, `${origin}/login/alice`), 'Signed in as alice');
    const [signedIn] = await jar(context);
    assert.notEqual(signedIn, before);
    // Tab 1's late answer arrives after the login's.
    app.slow.release();
    assert.equal(await late, 'Late page for guest');

    assert.deepEqual(await jar(context), [signedIn], "the jar holds the login's cookie");
    assert.equal(await visit(page, `${origin}/`), 'Hello, alice');
    assert.equal(await visit(other, `${origin}/`), 'Hello, alice');
  });
});
