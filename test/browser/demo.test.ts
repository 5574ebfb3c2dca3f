// The demo (`npm start`, examples/demo.ts) in Chromium: the greeting, sign-in, "Your devices",
// CSRF, expiry and a Redis outage, as a person sees them. The demo runs as its own process, as
// `npm start` runs it, on a redis-server of the test's own; screenshots of the main pages go to
// test-results/screenshots/ (git-ignored).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort, useRedis } from '../redis/server.js';
import { runProgram, waitForOutput, type Program } from '../process.js';
import { describeInChromium } from './browser.js';

const SCREENSHOTS = 'test-results/screenshots';

/** A phone's browser, for the second device: the devices page names it "Safari on iOS". */
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

interface Demo extends Program {
  readonly origin: string;
}

/** Starts examples/demo.ts on a free port with `env`, and resolves once it says where it listens. */
async function startDemo(redisUrl: string, env: Record<string, string> = {}): Promise<Demo> {
  const port = await freePort();
  const program = runProgram('examples/demo.ts', { REDIS_URL: redisUrl, PORT: String(port), ...env });
  const [, url] = await waitForOutput(program, / demo on (http:\/\/\S+)\/ /, 'the demo');
  assert.equal(url, `http://127.0.0.1:${port}`);
  return Object.assign(program, { origin: url as string });
}

describeInChromium('the demo (npm start) in Chromium', {}, (chromium) => {
  const redis = useRedis();
  let demo: Demo;

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    demo = await startDemo(redis.url);
  });
  after(async () => {
    await demo?.stop();
  });

  async function screenshot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
  }

  /** Opens `path` and checks what every page has: a 200, one h1, one main landmark, a viewport. */
  async function open(page: Page, path: string, origin = demo.origin): Promise<void> {
    const response = await page.goto(origin + path);
    assert.equal(response?.status(), 200, `GET ${path}: ${await page.content()}`);
    assert.equal(await page.locator('h1').count(), 1, `one h1 on ${path}`);
    assert.equal(await page.getByRole('main').count(), 1, `one main landmark on ${path}`);
    assert.match((await page.locator('meta[name=viewport]').getAttribute('content')) ?? '', /width=device-width/);
  }

  /** Signs in under `user` with the form, and lands on the account page. */
  async function signIn(page: Page, user: string, origin = demo.origin): Promise<void> {
    await open(page, '/login', origin);
    await page.getByLabel('User name').fill(user);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${origin}/account`);
    assert.equal(await page.locator('#who').innerText(), `Signed in as ${user}.`);
  }

  /** Who the account page says the browser is signed in as: "Signed in as X." or "You are not signed in.". */
  async function who(page: Page, origin = demo.origin): Promise<string> {
    await open(page, '/account', origin);
    return page.locator('#who').innerText();
  }

  async function sessionCookie(context: BrowserContext) {
    const cookies = (await context.cookies()).filter((cookie) => cookie.name === 'session');
    assert.equal(cookies.length, 1, JSON.stringify(cookies));
    return cookies[0] as (typeof cookies)[number];
  }

  /** A second device: a context of its own with a phone's user agent and screen. */
  async function phone(browser: Browser): Promise<BrowserContext> {
    const context = await browser.newContext({ userAgent: IPHONE, viewport: { width: 390, height: 844 } });
    context.setDefaultTimeout(20_000);
    return context;
  }

  chromium.test('1. /set/Chris, then / says "Hello, Chris"; the cookie is HttpOnly, SameSite=Lax, Path=/ and hidden from scripts', async ({ context, page }) => {
    await open(page, '/');
    assert.equal(await page.locator('#greeting').innerText(), "I don't recognize you.");
    await open(page, '/set/Chris');
    await open(page, '/');
    assert.equal(await page.locator('#greeting').innerText(), 'Hello, Chris');
    await screenshot(page, 'home');
    const cookie = await sessionCookie(context);
    assert.deepEqual([cookie.httpOnly, cookie.sameSite, cookie.path, cookie.domain], [true, 'Lax', '/', '127.0.0.1']);
    assert.equal(await page.evaluate(() => document.cookie), '', 'page scripts cannot read the session cookie');
    await open(page, '/visit');
    assert.match(await page.locator('#visits').innerText(), /^You are visitor \d+, your last visit was on never$/);
    await open(page, '/login');
    await screenshot(page, 'sign-in');
  });

  chromium.test('2. signing in changes the session cookie, and the old value has no data any more', async ({ browser, context, page }) => {
    await open(page, '/set/Chris');
    const before = (await sessionCookie(context)).value;
    await signIn(page, 'alice');
    await screenshot(page, 'account');
    const afterLogin = (await sessionCookie(context)).value;
    assert.notEqual(afterLogin, before, 'a login gets a new session id');
    await open(page, '/');
    assert.equal(await page.locator('#greeting').innerText(), 'Hello, alice');

    const attacker = await browser.newContext();
    try {
      await attacker.addCookies([{ name: 'session', value: before, domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Lax' }]);
      const stale = await attacker.newPage();
      assert.equal(await who(stale), 'You are not signed in.', 'the id from before the login is not signed in');
      await open(stale, '/');
      assert.equal(await stale.locator('#greeting').innerText(), "I don't recognize you.", "and holds none of the session's data");
    } finally {
      await attacker.close();
    }
    assert.equal(await who(page), 'Signed in as alice.');
  });

  chromium.test('3. "Sign out everywhere else" signs the other device out, and keeps this one', async ({ browser, page }) => {
    const other = await phone(browser);
    try {
      const otherPage = await other.newPage();
      await signIn(page, 'bob');
      await signIn(otherPage, 'bob');
      await open(page, '/devices');
      const rows = page.locator('tbody tr');
      assert.equal(await rows.count(), 2);
      assert.match(await rows.nth(0).innerText(), /Headless Chrome on Linux[\s\S]*This device/);
      assert.match(await rows.nth(1).innerText(), /Safari on iOS/);
      await page.setViewportSize({ width: 900, height: 560 });
      await screenshot(page, 'devices');
      await open(otherPage, '/devices');
      await screenshot(otherPage, 'devices-phone');

      await page.getByRole('button', { name: 'Sign out everywhere else' }).click();
      await page.waitForURL(`${demo.origin}/devices`);
      assert.equal(await page.getByRole('status').innerText(), 'Signed out everywhere else (1 device).');
      assert.equal(await rows.count(), 1);
      assert.equal(await who(otherPage), 'You are not signed in.');
      assert.equal(await who(page), 'Signed in as bob.');
    } finally {
      await other.close();
    }
  });

  chromium.test('4. signing out one device from the list signs that device out', async ({ browser, page }) => {
    const other = await phone(browser);
    try {
      const otherPage = await other.newPage();
      await signIn(page, 'carol');
      await signIn(otherPage, 'carol');
      await open(page, '/devices');
      await page.getByRole('button', { name: 'Sign out Safari on iOS' }).click();
      await page.waitForURL(`${demo.origin}/devices`);
      assert.equal(await page.getByRole('status').innerText(), 'That device is signed out.');
      assert.equal(await page.locator('tbody tr').count(), 1);
      assert.equal(await who(otherPage), 'You are not signed in.');
      assert.equal(await who(page), 'Signed in as carol.');
    } finally {
      await other.close();
    }
  });

  chromium.test('5. a form posted without its CSRF token is refused with 403 and changes nothing', async ({ browser, page }) => {
    const other = await phone(browser);
    try {
      const otherPage = await other.newPage();
      await signIn(page, 'dave');
      await signIn(otherPage, 'dave');
      await open(page, '/devices');
      await page.locator('form[action="/devices/sign-out-others"] input[name=_csrf]').evaluate((input) => input.remove());
      const [response] = await Promise.all([
        page.waitForResponse((candidate) => candidate.request().method() === 'POST'),
        page.getByRole('button', { name: 'Sign out everywhere else' }).click(),
      ]);
      assert.equal(response.status(), 403);
      assert.equal(await page.locator('h1').innerText(), 'Form refused');
      await screenshot(page, 'csrf-refused');
      assert.equal(await who(otherPage), 'Signed in as dave.', 'the other device is still signed in');
      await open(page, '/devices');
      assert.equal(await page.locator('tbody tr').count(), 2);
    } finally {
      await other.close();
    }
  });

  chromium.test('6. with DEMO_SESSION_LIFETIME=2, a browser left idle is signed out after 2 s', async ({ page }) => {
    const shortLived = await startDemo(redis.url, { DEMO_SESSION_LIFETIME: '2' });
    try {
      await signIn(page, 'erin', shortLived.origin);
      assert.equal(await who(page, shortLived.origin), 'Signed in as erin.');
      const idleSince = Date.now();
      await sleep(3000);
      assert.equal(await who(page, shortLived.origin), 'You are not signed in.', `after ${Date.now() - idleSince} ms idle`);
    } finally {
      await shortLived.stop();
    }
  });

  chromium.test('7. a Redis outage while a page is open: a 503 page, then signed in again when Redis is back', async ({ page }) => {
    await signIn(page, 'frank');
    const pid = Number(/^process_id:(\d+)/m.exec(String(await redis.command('INFO', 'server')))?.[1]);
    assert.ok(pid > 0);
    // A stopped Redis keeps its connections and its data: commands time out (2 s), a clean outage.
    process.kill(pid, 'SIGSTOP');
    try {
      const response = await page.goto(`${demo.origin}/account`);
      assert.equal(response?.status(), 503);
      assert.equal(response?.headers()['retry-after'], '1');
      assert.equal(await page.locator('h1').innerText(), 'Sessions are unavailable');
      const text = await page.getByRole('main').innerText();
      assert.match(text, /Sessions are unavailable right now, try again in a moment\./);
      assert.doesNotMatch(await page.content(), /Error|STORE_UNAVAILABLE|\bat \S+:\d+/, 'no stack, no error message');
      await screenshot(page, 'unavailable');
      // The visitor counter shares that Redis: the same page, not a 500.
      assert.equal((await page.goto(`${demo.origin}/visit`))?.status(), 503);
      assert.equal(await page.locator('h1').innerText(), 'Sessions are unavailable');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal(await who(page), 'Signed in as frank.', 'the session survived the outage');
  });
});
