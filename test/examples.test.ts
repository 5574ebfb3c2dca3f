import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Browser, parseSetCookie } from './conformance/harness.js';
import { freePort, useRedis } from './redis/server.js';
import { runProgram, waitForOutput, type Program } from './process.js';

/** A running example app, its output so far, and its address. */
interface Running extends Program {
  readonly url: string;
}

/**
 * Starts `file` as its npm script does (tsx) on a free port, and resolves once it says where it
 * listens, with that address: it must be 127.0.0.1 and the port it was given.
 */
async function startExample(file: string, env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const program = runProgram(file, { ...env, PORT: String(port) });
  const [, url] = await waitForOutput(program, / (?:example|demo) on (http:\/\/\S+)\/ /, file);
  assert.equal(url, `http://127.0.0.1:${port}`, program.output());
  await assertLoopbackOnly(port);
  return Object.assign(program, { url: url as string });
}

/**
 * Fails unless the app at `port` answers on 127.0.0.1 only: bound to all interfaces, it would
 * also accept on ::1 (or, without IPv6, on 127.0.0.2, which is loopback too but not 127.0.0.1).
 */
async function assertLoopbackOnly(port: number): Promise<void> {
  assert.equal(await accepts('127.0.0.1', port), true, 'the app should accept on 127.0.0.1');
  assert.equal(await accepts('::1', port), false, 'the app should not listen on ::1: it prints 127.0.0.1');
  assert.equal(await accepts('127.0.0.2', port), false, 'the app should not listen on every interface: it prints 127.0.0.1');
}

/** Whether something accepts TCP connections at `host`:`port`. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** The README's walk through the demo: greeting, name, visitor counter. */
async function walkThrough(url: string): Promise<void> {
  const browser = new Browser(url);
  assert.equal((await browser.get('/')).body, "I don't recognize you.");
  assert.equal((await browser.get('/set/Chris')).body, 'I recognize you now.');
  assert.equal((await browser.get('/')).body, 'Hello, Chris');
  assert.match((await browser.get('/visit')).body, /^You are visitor 1, your last visit was on never$/);
  assert.match((await browser.get('/visit')).body, /^You are visitor 2, your last visit was on \d{4}-\d\d-\d\dT/);
  assert.equal((await new Browser(url).get('/')).body, "I don't recognize you.");
}

/** The text of the demo page's element with `id`, tags removed and entities left as they are. */
function textOf(body: string, id: string): string | undefined {
  return new RegExp(`<p id="${id}">(.*?)</p>`, 's').exec(body)?.[1]?.replace(/<[^>]*>/g, '');
}

/** The README's walk through the demo, in its HTML pages: greeting, name, visitor counter. */
async function walkThroughDemo(url: string): Promise<void> {
  const browser = new Browser(url);
  const home = await browser.get('/');
  assert.equal(home.status, 200);
  assert.match(home.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(textOf(home.body, 'greeting'), 'I don&#39;t recognize you.');
  assert.match(home.body, /<h1>latchkey demo<\/h1>/);
  assert.equal(browser.cookie, undefined, 'a visitor who only reads gets no session');
  assert.match((await browser.get('/set/Chris')).body, /I recognize you now\./);
  assert.equal(textOf((await browser.get('/')).body, 'greeting'), 'Hello, Chris');
  assert.match(textOf((await browser.get('/visit')).body, 'visits') ?? '', /^You are visitor 1, your last visit was on never$/);
  assert.match(textOf((await browser.get('/visit')).body, 'visits') ?? '', /^You are visitor 2, your last visit was on \d{4}-\d\d-\d\dT/);
  assert.equal(textOf((await new Browser(url).get('/')).body, 'greeting'), 'I don&#39;t recognize you.');
  // What a visitor typed is escaped, never markup.
  const script = new Browser(url);
  await script.get('/set/%3Cscript%3Ealert(1)%3C%2Fscript%3E');
  assert.equal(textOf((await script.get('/')).body, 'greeting'), 'Hello, &#60;script&#62;alert(1)&#60;/script&#62;');
}

/** The demo's sign-in: a CSRF-protected form, a new session id, the account and devices pages, sign out. */
async function demoSignIn(url: string): Promise<void> {
  const browser = new Browser(url);
  const token = /name="_csrf" value="([\w-]{43})"/.exec((await browser.get('/login')).body)?.[1] as string;
  assert.ok(token);
  const before = browser.cookie;
  // The user agent is recorded at login, for the devices page.
  const firefox = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0' };
  const post = (path: string, fields: Record<string, string>) =>
    browser.get(path, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual', headers: firefox });
  const refused = await post('/login', { user: 'ada' });
  assert.equal(refused.status, 403);
  assert.match(refused.body, /<h1>Form refused<\/h1>/);
  assert.equal(browser.cookie, before, 'a refused login changes nothing');
  const login = await post('/login', { user: 'ada', _csrf: token });
  assert.deepEqual([login.status, login.headers.get('location')], [303, '/account']);
  assert.notEqual(browser.cookie, before, 'a login gets a new session id');
  const account = (await browser.get('/account')).body;
  assert.match(account, /<p class="flash info" role="status">Signed in as ada\.<\/p>/);
  assert.equal(textOf(account, 'who'), 'Signed in as ada.');
  const devices = (await browser.get('/devices')).body;
  assert.match(devices, /Firefox on Linux/);
  assert.match(devices, /This device/);
  const fresh = /name="_csrf" value="([\w-]{43})"/.exec(account)?.[1] as string;
  assert.equal((await post('/logout', { _csrf: fresh })).status, 303);
  assert.equal(textOf((await browser.get('/account')).body, 'who'), 'You are not signed in.');
}

/** The Express example's login form: CSRF token, a new id on login, destroy on logout. */
async function logInAndOut(url: string): Promise<void> {
  const browser = new Browser(url);
  await browser.get('/set/Guest');
  const before = browser.cookie;
  const form = await browser.get('/login');
  const token = /name="_csrf" value="([\w-]{43})"/.exec(form.body)?.[1];
  assert.ok(token, form.body);
  const post = (path: string, fields: Record<string, string>) =>
    browser.get(path, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
  assert.equal((await post('/login', { name: 'Mallory', _csrf: 'x'.repeat(43) })).status, 403);
  assert.equal((await post('/login', { name: 'Chris' })).status, 403);
  assert.equal(browser.cookie, before, 'a refused login changes nothing');
  const login = await post('/login', { name: 'Chris', _csrf: token });
  assert.equal(login.status, 302);
  assert.notEqual(browser.cookie, before, 'a login gets a new session id');
  assert.equal((await browser.get('/')).body, 'Hello, Chris');
  const stale = new Browser(url);
  stale.cookie = before;
  assert.equal((await stale.get('/')).body, "I don't recognize you.", 'the id from before the login is dead');
  assert.equal((await post('/logout', { _csrf: token })).status, 403, 'the login made a new token');
  const fresh = /name="_csrf" value="([\w-]{43})"/.exec((await browser.get('/login')).body)?.[1] as string;
  assert.equal((await post('/logout', { _csrf: fresh })).status, 302);
  assert.equal(browser.cookie, undefined, 'the cookie is cleared');
}

describe('npm start (the demo)', () => {
  const redis = useRedis();

  it('serves the seed examples with sessions and the counter in Redis', async () => {
    const demo = await startExample('examples/demo.ts', { REDIS_URL: redis.url });
    try {
      assert.match(demo.output(), /sessions in Redis at redis:\/\/127\.0\.0\.1/);
      await walkThroughDemo(demo.url);
      assert.equal(await redis.command('GET', 'latchkey-demo:visitors'), '2');
      const keys = (await redis.command('KEYS', 'session:*')) as string[];
      assert.equal(keys.length, 2, "Chris' session and the escaped name's: the visitor without a cookie only read");
      await demoSignIn(demo.url);
      assert.equal(await redis.command('EXISTS', 'session:user:ada'), 0, "signing out removed ada's only session from her index");
    } finally {
      await demo.stop();
    }
  });

  it('says in one line that no Redis answered and runs on MemoryStore', async () => {
    const demo = await startExample('examples/demo.ts', { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      const lines = demo.output().trim().split('\n');
      assert.equal(lines.length, 2, demo.output());
      assert.match(lines[0] as string, /^latchkey demo: no Redis at redis:\/\/127\.0\.0\.1:\d+ \(.+\); sessions are kept in memory/);
      await walkThroughDemo(demo.url);
      await demoSignIn(demo.url);
    } finally {
      await demo.stop();
    }
  });

  it('`npm start` is the server: killing its PID stops the demo', async () => {
    const port = await freePort();
    // Its own process group, so that whatever it leaves behind can be killed at the end.
    const npm = spawn('npm', ['start'], {
      env: { ...process.env, PORT: String(port), REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    npm.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    npm.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    try {
      await waitForOutput({ child: npm, output: () => output, stop: async () => {} }, / demo on http/, 'npm start');
      assert.equal(await accepts('127.0.0.1', port), true, output);
      const exited = once(npm, 'exit');
      npm.kill('SIGTERM');
      const timer = setTimeout(() => npm.kill('SIGKILL'), 10_000);
      const [code, signal] = (await exited) as [number | null, string | null];
      clearTimeout(timer);
      assert.notEqual(signal, 'SIGKILL', `npm start did not stop within 10 s of SIGTERM:\n${output}`);
      assert.ok(code !== null || signal === 'SIGTERM', `npm start ended with ${String(code)} ${String(signal)}`);
      assert.equal(await accepts('127.0.0.1', port), false, `the demo still listens after npm start was killed:\n${output}`);
    } finally {
      try {
        process.kill(-(npm.pid as number), 'SIGKILL');
      } catch {
        // The whole group is gone already.
      }
    }
  });
});

describe('the framework examples (npm run example:<framework>)', () => {
  const redis = useRedis();

  // Every example there is: the demo has its own tests above, the express-session one below;
  // redis.ts and address.ts are what they share.
  const frameworks = readdirSync('examples')
    .filter((file) => file.endsWith('.ts') && !['demo.ts', 'redis.ts', 'address.ts', 'express-session-passport.ts', 'bottle-session.ts'].includes(file))
    .map((file) => file.slice(0, -'.ts'.length));

  it('has one example per framework', () => {
    assert.deepEqual([...frameworks].sort(), ['express', 'fastify', 'hono', 'koa', 'node']);
  });

  it('express-session-passport: Passport signs in and out through latchkey/express-session, a flash message across the redirect', async () => {
    await redis.command('FLUSHALL');
    const example = await startExample('examples/express-session-passport.ts', { REDIS_URL: redis.url });
    try {
      assert.match(example.output(), /^latchkey express-session example on http:\/\/127\.0\.0\.1:\d+\/ \(sign in at \/login/);
      const browser = new Browser(example.url, 'connect.sid');
      const post = (path: string, fields: Record<string, string>) =>
        browser.get(path, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
      assert.equal((await browser.get('/me')).status, 401);
      assert.match((await browser.get('/')).body, /Not signed in.*Views in this session: 1/);
      assert.match((await browser.get('/')).body, /Views in this session: 2/);
      const before = browser.cookie;
      assert.ok(before !== undefined, 'the counter started a session');

      const wrong = await post('/login', { username: 'ada', password: 'wrong' });
      assert.equal(wrong.status, 302);
      assert.equal(wrong.headers.get('location'), '/login');
      assert.match((await browser.get('/login')).body, /<p role="alert">Wrong name or password<\/p>/, 'the flash message survived the redirect');
      assert.doesNotMatch((await browser.get('/login')).body, /role="alert"/, 'and is shown once');

      const login = await post('/login', { username: 'ada', password: 'correct horse' });
      assert.equal(login.status, 302);
      assert.equal(login.headers.get('location'), '/me');
      assert.notEqual(browser.cookie, before, 'the session id changes at login');
      assert.equal((await browser.get('/me')).body, 'Hello, ada');
      // Passport's login regenerates the session: what it held before is not carried (keepSessionInfo would).
      assert.match((await browser.get('/')).body, /Signed in as ada.*Views in this session: 1/);
      const passportFields: unknown[] = [];
      for (const key of (await redis.command('KEYS', 'session:*')) as string[]) {
        if ((await redis.command('TYPE', key)) === 'hash') passportFields.push(await redis.command('HGET', key, 'passport'));
      }
      assert.deepEqual(passportFields.filter((field) => field !== null), ['{"user":7}'], "Passport's key is one field of the one signed-in session's hash");
      const stale = new Browser(example.url, 'connect.sid');
      stale.cookie = before;
      assert.equal((await stale.get('/me')).status, 401, 'the id from before the login is dead');

      assert.equal((await post('/logout', {})).status, 302);
      assert.equal((await browser.get('/me')).status, 401, 'signed out');
    } finally {
      await example.stop();
    }
  });

  it("bottle-session: greets the user of a session the Python app wrote, and writes bottle-session's layout", async () => {
    await redis.command('FLUSHALL');
    const example = await startExample('examples/bottle-session.ts', { REDIS_URL: redis.url });
    try {
      assert.match(example.output(), /^latchkey bottle-session example on http:\/\/127\.0\.0\.1:\d+\/ \(try \/set\/Chris, then \/\)/);
      // What SessionPlugin(cookie_lifetime=600) leaves in Redis after `session['name'] = 'José'`.
      await redis.command('HSET', 'session:60b5066a-bae1-4d88-9052-b5468292c5b8', 'name', 'José');
      await redis.command('EXPIRE', 'session:60b5066a-bae1-4d88-9052-b5468292c5b8', '600');
      const python = new Browser(example.url, 'bottle.session');
      python.cookie = '60b5066abae14d889052b5468292c5b8';
      const greeting = await python.get('/');
      assert.equal(greeting.body, 'Hello, José');
      assert.deepEqual(greeting.setCookie, ['bottle.session=60b5066abae14d889052b5468292c5b8; Max-Age=600; Path=/']);

      const browser = new Browser(example.url, 'bottle.session');
      assert.equal((await browser.get('/')).body, "I don't recognize you.");
      const set = await browser.get('/set/Chris');
      assert.equal(set.body, 'I recognize you now.');
      assert.match(set.setCookie[0] as string, /^bottle\.session=[0-9a-f]{32}; Max-Age=600; Path=\/$/);
      const hex = browser.cookie as string;
      const key = `session:${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      assert.deepEqual(await redis.command('HGETALL', key), ['name', 'Chris'], 'what the Python app reads with session.get("name")');
      assert.equal(await redis.command('TTL', key), 600);
      assert.equal((await browser.get('/')).body, 'Hello, Chris');
      const bad = await browser.get('/set/%E0%A4%A');
      assert.deepEqual([bad.status, bad.body], [400, 'That name is not valid percent-encoded UTF-8.']);
      assert.deepEqual(await redis.command('HGETALL', key), ['name', 'Chris'], 'a name that does not decode changes nothing');
      assert.deepEqual((await browser.get('/set/Jos%C3%A9')).body, 'I recognize you now.');
      assert.equal((await browser.get('/')).body, 'Hello, José');
    } finally {
      await example.stop();
    }
  });

  for (const framework of frameworks) {
    it(`${framework}: the name greeting and the visitor counter on the app's shared Redis client`, async () => {
      await redis.command('FLUSHALL');
      const example = await startExample(`examples/${framework}.ts`, { REDIS_URL: redis.url });
      try {
        assert.match(example.output(), new RegExp(`^latchkey ${framework} example on http://127\\.0\\.0\\.1:\\d+/`));
        const browser = new Browser(example.url);
        const set = await browser.get('/set/Chris');
        assert.equal(set.body, 'I recognize you now.');
        assert.equal(set.setCookie.length, 1);
        const cookie = parseSetCookie(set.setCookie[0] as string);
        assert.equal(cookie.attributes.get('max-age'), '86400', 'the cookie lasts until the absolute deadline');
        const [key] = (await redis.command('KEYS', 'session:*')) as string[];
        const ttl = Number(await redis.command('PTTL', key as string));
        assert.ok(ttl > 590_000 && ttl <= 600_000, `cookieLifetime: 600, as in the seed, is the idle timeout in Redis: ${ttl}`);
        assert.equal(cookie.attributes.get('httponly'), true);
        assert.equal(cookie.attributes.get('samesite'), 'Lax');
        await walkThrough(example.url);
        assert.equal(await redis.command('GET', 'visitors'), '2', 'the counter lives in the Redis the sessions use');
        assert.equal(((await redis.command('KEYS', 'session:*')) as string[]).length, 2, "Chris' session and the walk's");
        if (framework === 'express') await logInAndOut(example.url);
      } finally {
        await example.stop();
      }
    });
  }

  it('says in one line how to fix a missing Redis, and exits', async () => {
    const port = await freePort();
    const { child, output } = runProgram('examples/koa.ts', { REDIS_URL: `redis://127.0.0.1:${port}`, PORT: String(await freePort()) });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    assert.equal(code, 1, output());
    assert.equal(output(), `latchkey example: no Redis at redis://127.0.0.1:${port} (ECONNREFUSED). Start redis-server, or set REDIS_URL.\n`);
  });
});
