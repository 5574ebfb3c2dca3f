// The README's examples of "Sessions per user", run as an app runs them: an Express app with
// recordClient, served over HTTP with its sessions in a redis-server of the test's own, driven by
// browsers that sign in, list their devices and sign each other out through CSRF-protected forms.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { checkCsrf, csrfToken, SessionAdmin } from '../../src/index.js';
import { session, type ExpressSessionMiddleware } from '../../src/adapters/express.js';
import { Browser, handleOf, storageIdOfCookie } from '../conformance/harness.js';
import { useRedisWithClient } from '../redis/client.js';

/** The middleware, made in before() once Redis is up; the app's routes reach it as the README's do. */
let sessions: ExpressSessionMiddleware;

const app = express();
app.use((req, res, next) => sessions(req, res, next));

// The test's own sign-in (the README's login form is in examples/express.ts) and a look at the session.
app.post('/login/:user', async (req, res) => {
  await req.session.login(req.params.user);
  await req.session.set('since', 'login');
  res.send('signed in');
});
app.get('/login', async (req, res) => {
  res.send(`<form method="post"><input type="hidden" name="_csrf" value="${await csrfToken(req.session)}"></form>`);
});
app.get('/whoami', async (req, res) => {
  res.json({ userId: (await req.session.userId()) ?? null, all: await req.session.all() });
});
// The README's other way to end every session, this one included: revoke all, then log out and in.
app.post('/password-everywhere', express.urlencoded({ extended: false }), async (req, res) => {
  await checkCsrf(req.session, req.method, req.body?._csrf);
  const userId = (await req.session.userId()) as string;
  await sessions.manager.admin.revokeUserSessions(userId);
  if (req.query.logout === '1') await req.session.logout();
  await req.session.login(userId);
  res.redirect('/devices');
});

// "Your devices": the user's sessions, a button to sign out each of the others, and one for all of them.
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

app.get('/devices', async (req, res) => {
  const userId = await req.session.userId();
  if (userId === undefined) return res.redirect('/login');
  const devices = await sessions.manager.admin.listUserSessions(userId, { current: req.session });
  const csrf = `<input type="hidden" name="_csrf" value="${await csrfToken(req.session)}">`;
  const rows = devices.map((device) => {
    const client = `${escapeHtml(device.userAgent ?? 'Unknown browser')} at ${escapeHtml(device.ip ?? 'an unknown address')}`;
    const action = device.current
      ? 'this device'
      : `<form method="post" action="/devices/${device.handle}/sign-out">${csrf}<button>Sign out</button></form>`;
    return `<li>${client}, last seen ${device.lastSeenAt.toISOString()}: ${action}</li>`;
  });
  const others = `<form method="post" action="/devices/sign-out-others">${csrf}<button>Sign out everywhere else</button></form>`;
  res.send(`<ul>${rows.join('')}</ul>${others}`);
});

app.post('/devices/:handle/sign-out', express.urlencoded({ extended: false }), async (req, res) => {
  await checkCsrf(req.session, req.method, req.body?._csrf);
  const userId = await req.session.userId();
  // A handle of another user's session ends nothing.
  if (userId !== undefined) await sessions.manager.admin.revokeSession(userId, req.params.handle);
  res.redirect('/devices');
});

app.post('/devices/sign-out-others', express.urlencoded({ extended: false }), async (req, res) => {
  await checkCsrf(req.session, req.method, req.body?._csrf);
  const userId = await req.session.userId();
  if (userId !== undefined) await sessions.manager.admin.revokeUserSessions(userId, { except: req.session });
  res.redirect('/devices');
});

// A password change signs the user out everywhere else, and gives this session a new id.
app.post('/password', express.urlencoded({ extended: false }), async (req, res) => {
  await checkCsrf(req.session, req.method, req.body?._csrf);
  const userId = await req.session.userId();
  if (userId === undefined) return res.redirect('/login');
  // ... check the current password and store the new one here ...
  await sessions.manager.admin.revokeUserSessions(userId, { except: req.session });
  await req.session.login(userId);
  res.redirect('/devices');
});

// Disabling an account from an admin tool or a script: every session of the user ends.
async function disableAccount(userId: string) {
  const admin = new SessionAdmin({ redis: process.env.REDIS_URL, prefix: 'session:' });
  try {
    await admin.revokeUserSessions(userId);
  } finally {
    await admin.close();
  }
}

/** The CSRF token in a page's forms. */
function tokenIn(html: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(token, `a form with a CSRF token in ${html}`);
  return token;
}

describe("the README's examples of sessions per user", () => {
  const services = useRedisWithClient();
  let server: Server;
  let base: string;

  before(async () => {
    sessions = session({ redis: services.client, recordClient: true });
    process.env.REDIS_URL = services.redis.url;
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sessions.close();
  });

  /** A new browser signed in as `user`, saying it is `agent`. */
  async function signIn(user: string, agent = 'Browser/1.0'): Promise<Browser> {
    const browser = new Browser(base);
    const response = await browser.get(`/login/${user}`, { method: 'POST', headers: { 'user-agent': agent } });
    assert.equal(response.status, 200, response.body);
    return browser;
  }

  /** Submits a form of the page `from` to `action`, with `token` (none: no token). */
  function submit(browser: Browser, action: string, token?: string): ReturnType<Browser['get']> {
    return browser.get(action, { method: 'POST', body: new URLSearchParams(token === undefined ? {} : { _csrf: token }), redirect: 'manual' });
  }

  async function whoami(browser: Browser): Promise<{ userId: string | null; all: object }> {
    return (await browser.json('/whoami')) as { userId: string | null; all: object };
  }

  it('"Your devices" lists the user\'s sessions with what the browser said, and a Sign out button for each other one', async () => {
    const phone = await signIn('ada', 'Phone <script>alert(1)</script>');
    const laptop = await signIn('ada', 'Laptop/2.0');
    await signIn('grace');
    const page = await phone.get('/devices');
    assert.equal(page.status, 200);
    const items = page.body.match(/<li>.*?<\/li>/g) ?? [];
    assert.equal(items.length, 2, "ada's two sessions, not grace's");
    assert.match(items[0] ?? '', /^<li>Phone &#60;script&#62;alert\(1\)&#60;\/script&#62; at 127\.0\.0\.1, last seen [\d-]+T[\d:.]+Z: this device<\/li>$/);
    assert.ok(items[1]?.startsWith('<li>Laptop/2.0 at 127.0.0.1'), items[1]);
    assert.ok(items[1]?.includes(`action="/devices/${handleOf(laptop.cookie as string)}/sign-out"`), 'a Sign out button for the laptop, by handle');
    assert.ok(!page.body.includes('<script>'), 'what the browser said is escaped');
    for (const cookie of [phone.cookie as string, laptop.cookie as string]) assert.ok(!page.body.includes(cookie), 'no token on the page');
    assert.ok(page.body.includes('Sign out everywhere else'));
  });

  it('"Sign out" ends that session only with the CSRF token, and the list follows', async () => {
    const phone = await signIn('alan');
    const laptop = await signIn('alan');
    const token = tokenIn((await phone.get('/devices')).body);
    const action = `/devices/${handleOf(laptop.cookie as string)}/sign-out`;

    const forged = await submit(phone, action);
    assert.equal(forged.status, 403, 'no token: CSRF_MISMATCH');
    assert.equal((await whoami(laptop)).userId, 'alan', 'the laptop is still signed in');

    const signedOut = await submit(phone, action, token);
    assert.equal(signedOut.status, 302);
    assert.equal(signedOut.headers.get('location'), '/devices');
    assert.deepEqual(await whoami(laptop), { userId: null, all: {} }, 'the laptop is anonymous, its data gone');
    const gone = await laptop.get('/devices', { redirect: 'manual' });
    assert.equal(gone.headers.get('location'), '/login');
    assert.equal(((await phone.get('/devices')).body.match(/<li>/g) ?? []).length, 1);
    assert.deepEqual(await services.client.hKeys('session:user:alan'), [storageIdOfCookie(phone.cookie as string)]);

    const revoked = laptop.cookie;
    // The revoked browser was given no newer cookie: its next write starts a new session at once
    // (here the CSRF token of the login page), and so does a login.
    const loginPage = await laptop.get('/login');
    assert.equal(loginPage.status, 200, 'a write with the revoked cookie starts a new session');
    assert.notEqual(laptop.cookie, revoked, 'under a new id');
    assert.equal((await laptop.get('/login/alan', { method: 'POST' })).status, 200, 'login() works at once');
    assert.equal((await whoami(laptop)).userId, 'alan');
  });

  it('"Sign out everywhere else" ends every other session of the user and keeps this one', async () => {
    const phone = await signIn('barbara');
    const others = [await signIn('barbara'), await signIn('barbara')];
    const bystander = await signIn('edsger');
    const cookie = phone.cookie;
    const response = await submit(phone, '/devices/sign-out-others', tokenIn((await phone.get('/devices')).body));
    assert.equal(response.status, 302);
    assert.equal(phone.cookie, cookie, 'this session keeps its id');
    assert.equal((await whoami(phone)).userId, 'barbara');
    for (const other of others) assert.equal((await whoami(other)).userId, null);
    assert.equal((await whoami(bystander)).userId, 'edsger');
  });

  it('a password change signs the user out everywhere else and renews this session, which keeps its data', async () => {
    const phone = await signIn('grace');
    const laptop = await signIn('grace');
    const before = phone.cookie as string;
    const response = await submit(phone, '/password', tokenIn((await phone.get('/devices')).body));
    assert.equal(response.status, 302);
    assert.notEqual(phone.cookie, before, 'a new id');
    assert.deepEqual(await whoami(phone), { userId: 'grace', all: { since: 'login' } });
    assert.equal((await whoami(laptop)).userId, null);
    const old = new Browser(base);
    old.cookie = before;
    assert.equal((await whoami(old)).userId, null, 'the id from before the change is dead');
    assert.deepEqual(await services.client.hKeys('session:user:grace'), [storageIdOfCookie(phone.cookie as string)]);
  });

  it('revoking every session, this one included, then login() fails with SESSION_GONE unless the session logs out first', async () => {
    const phone = await signIn('kathleen');
    const laptop = await signIn('kathleen');
    const failed = await submit(phone, '/password-everywhere', tokenIn((await phone.get('/devices')).body));
    assert.equal(failed.status, 409, 'the session login() would move has ended');
    assert.equal((await whoami(phone)).userId, null);
    assert.equal((await whoami(laptop)).userId, null);

    const again = await signIn('kathleen');
    const other = await signIn('kathleen');
    const before = again.cookie;
    const response = await submit(again, '/password-everywhere?logout=1', tokenIn((await again.get('/devices')).body));
    assert.equal(response.status, 302);
    assert.notEqual(again.cookie, before);
    assert.deepEqual(await whoami(again), { userId: 'kathleen', all: {} }, 'signed in, in a new, empty session');
    assert.equal((await whoami(other)).userId, null);
  });

  it('disabling an account from a script ends every session of the user', async () => {
    const browsers = [await signIn('dennis'), await signIn('dennis')];
    const bystander = await signIn('ken');
    await disableAccount('dennis');
    for (const browser of browsers) assert.deepEqual(await whoami(browser), { userId: null, all: {} });
    assert.equal((await whoami(bystander)).userId, 'ken');
    assert.deepEqual(await services.client.hKeys('session:user:dennis'), []);
  });
});
