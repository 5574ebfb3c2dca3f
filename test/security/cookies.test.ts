// What every adapter puts on the wire, against a real Redis: the attributes and size of every
// session Set-Cookie, Vary and Cache-Control, the onInvalidCookie hook, and secret rotation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Context } from 'hono';
import { createSessionId, isSessionError, type InvalidCookieReason, type SessionOptions } from '../../src/index.js';
import { ADAPTERS, Browser, handleOf, parseSetCookie, TEST_TLS, tlsGet, type App, type Route } from '../conformance/harness.js';
import { adapterFixture, idOf, linesOf, param, signed } from './support.js';

const CURRENT = 'current-secret-current-secret-0123456789';
const PREVIOUS = 'previous-secret-previous-secret-0123456789';
const FOREIGN = 'foreign-secret-foreign-secret-0123456789';
const REASONS: readonly InvalidCookieReason[] = ['malformed', 'bad-signature', 'duplicate', 'unknown-id', 'expired'];
const MAX_COOKIE_BYTES = 4096;

function routes(): Record<string, Route> {
  return {
    plain: async () => 'plain',
    get: async (s, q) => ({ value: (await s.get(param(q, 'key'))) ?? null, id: s.id ?? null }),
    set: async (s, q) => {
      await s.set(param(q, 'key'), JSON.parse(param(q, 'value')));
      return { id: s.id ?? null };
    },
    destroy: async (s) => {
      await s.destroy();
      return 'destroyed';
    },
    regenerate: async (s) => {
      await s.load();
      await s.regenerate();
      return { id: s.id ?? null };
    },
    // Everything a handler can do with a session, in one request.
    busy: async (s) => {
      await s.get('a');
      await s.regenerate();
      await s.set('b', 1);
      await s.get('b');
      await s.destroy();
      await s.set('c', 1);
      return 'busy';
    },
    // Sets the app's own Vary / Cache-Control before or after using the session.
    headers: async (s, q, response) => {
      const apply = (): void => {
        const vary = q.get('vary');
        const cacheControl = q.get('cc');
        if (vary !== null) response.header('Vary', vary);
        if (cacheControl !== null) response.header('Cache-Control', cacheControl);
      };
      if (q.get('when') !== 'after') apply();
      switch (q.get('op')) {
        case 'read':
          await s.get('a');
          break;
        case 'write':
          await s.set('a', 1);
          break;
        case 'destroy':
          await s.destroy();
          break;
      }
      if (q.get('when') === 'after') apply();
      return 'ok';
    },
  };
}

/** What a session Set-Cookie line must say under some options. */
interface Expected {
  readonly name: string;
  readonly secure: boolean;
  readonly sameSite: 'Lax' | 'Strict' | 'None';
  readonly path: string;
  readonly domain?: string;
}

/** Checks one session Set-Cookie line: HttpOnly, SameSite, Path, Secure as configured, at most 4096 bytes. */
function checkLine(line: string, expected: Expected, what: string): void {
  const cookie = parseSetCookie(line);
  assert.equal(cookie.name, expected.name, what);
  assert.ok(Buffer.byteLength(line) <= MAX_COOKIE_BYTES, `${what}: ${Buffer.byteLength(line)} bytes`);
  assert.equal(cookie.attributes.get('httponly'), true, `${what}: HttpOnly in ${line.slice(0, 200)}`);
  assert.equal(cookie.attributes.get('samesite'), expected.sameSite, `${what}: SameSite in ${line.slice(0, 200)}`);
  assert.equal(cookie.attributes.get('path'), expected.path, `${what}: Path`);
  assert.equal(cookie.attributes.get('secure') === true, expected.secure, `${what}: Secure in ${line.slice(0, 200)}`);
  assert.equal(cookie.attributes.get('domain'), expected.domain, `${what}: Domain`);
  const names = line.split(';').slice(1).map((part) => (part.split('=')[0] ?? '').trim().toLowerCase());
  assert.equal(new Set(names).size, names.length, `${what}: no attribute twice`);
}

/** Vary's header names, lower-cased. */
function varyNames(headers: Headers): string[] {
  const vary = headers.get('vary');
  return vary === null ? [] : vary.split(',').map((name) => name.trim().toLowerCase());
}

/** How each framework's request object looks, and the probe header read through it. */
function probeOf(adapter: string, request: unknown): string | undefined {
  if (adapter === 'hono') {
    assert.ok(request instanceof Context, 'Hono gives its Context');
    return request.req.header('x-probe');
  }
  assert.ok(typeof request === 'object' && request !== null);
  if (adapter.startsWith('express')) {
    const req = request as IncomingMessage & { app?: unknown; get?: (name: string) => string | undefined };
    assert.ok(req instanceof IncomingMessage, 'Express gives its request');
    assert.equal(typeof req.app, 'function', 'the Express request knows its app');
    return req.get?.('x-probe');
  }
  if (adapter === 'fastify') {
    const req = request as { raw?: unknown; id?: unknown; headers: Record<string, string | undefined> };
    assert.ok(!(request instanceof IncomingMessage), "Fastify's own request, not the raw one");
    assert.ok(req.raw instanceof IncomingMessage);
    assert.equal(typeof req.id, 'string');
    return req.headers['x-probe'];
  }
  if (adapter.startsWith('koa')) {
    const ctx = request as { req?: unknown; request?: unknown; response?: unknown; throw?: unknown; get(name: string): string };
    assert.ok(ctx.req instanceof IncomingMessage, 'Koa gives its ctx');
    assert.ok(ctx.request && ctx.response);
    assert.equal(typeof ctx.throw, 'function');
    return ctx.get('x-probe');
  }
  assert.equal(adapter, 'node');
  assert.ok(request instanceof IncomingMessage, 'node:http gives its IncomingMessage');
  assert.ok(!('app' in request), 'a plain request');
  return request.headers['x-probe'] as string | undefined;
}

describe('cookies and headers', () => {
  for (const adapter of ADAPTERS) {
    describe(adapter.name, () => {
      const fixture = adapterFixture(adapter);

      async function start(options: SessionOptions = {}): Promise<App> {
        return fixture.start(options, routes());
      }

      /**
       * Makes the app send every kind of session Set-Cookie over plain HTTP and returns them by
       * kind: creation, regenerate, destroy, the clearing of a cookie the store does not know, and
       * the clearing of a cookie sent twice. Reads and writes of an existing session (with a
       * refresh due on every one) and a cookie signed with a previous secret must send none.
       */
      async function everyCookie(options: SessionOptions): Promise<Map<string, string[]>> {
        const { url } = await start({ touchInterval: 0, ...options });
        const name = options.cookieName ?? 'session';
        const browser = new Browser(url, name);
        const seen = new Map<string, string[]>();
        const step = async (kind: string, path: string, cookie?: string, header?: string): Promise<void> => {
          if (cookie !== undefined) browser.cookie = cookie;
          const response = await browser.get(path, header === undefined ? {} : { headers: { cookie: header } });
          assert.equal(response.status, 200, `${kind}: ${response.body}`);
          seen.set(kind, [...(seen.get(kind) ?? []), ...linesOf(response.setCookie, name)]);
        };
        await step('create', '/set?key=a&value=1');
        await step('refresh', '/get?key=a');
        await step('write', '/set?key=b&value=2');
        await step('regenerate', '/regenerate');
        const secrets = options.secrets;
        if (Array.isArray(secrets) && secrets.length > 1) {
          const current = browser.cookie as string;
          await step('previous secret', '/get?key=a', signed(idOf(current), secrets[1] as string));
          browser.cookie = current;
        }
        for (const kind of ['refresh', 'write', 'previous secret']) assert.deepEqual(seen.get(kind) ?? [], [], `${kind}: the browser keeps the cookie it has`);
        const session = browser.cookie as string;
        await step('duplicate', '/get?key=a', undefined, `${name}=${session}; ${name}=${session}`);
        await step('destroy', '/destroy', session);
        const stale = createSessionId();
        await step('clear', '/destroy', typeof secrets === 'string' ? signed(stale, secrets) : Array.isArray(secrets) ? signed(stale, secrets[0] as string) : stale);
        await step('busy', '/busy');
        return seen;
      }

      function checkAll(seen: Map<string, string[]>, expected: Expected, kinds: readonly string[]): void {
        for (const kind of kinds) assert.ok((seen.get(kind) ?? []).length > 0, `a ${kind} Set-Cookie was seen`);
        for (const [kind, lines] of seen) {
          // The copies of a duplicated cookie are cleared at every Path and Domain they may have.
          const own = kind === 'duplicate' ? lines.filter((line) => parseSetCookie(line).attributes.get('path') === expected.path && parseSetCookie(line).attributes.get('domain') === expected.domain) : lines;
          if (kind === 'duplicate') assert.equal(own.length, 1, `the duplicated cookie is cleared at the app's own Path and Domain: ${lines.join(' | ').slice(0, 400)}`);
          for (const line of own) checkLine(line, expected, kind);
          for (const line of lines) assert.ok(Buffer.byteLength(line) <= MAX_COOKIE_BYTES, `${kind}: ${Buffer.byteLength(line)} bytes`);
        }
      }

      const KINDS = ['create', 'regenerate', 'duplicate', 'destroy', 'clear', 'busy'];

      describe('every session Set-Cookie', () => {
        it('has HttpOnly, SameSite=Lax and Path=/ by default, and no Secure over plain HTTP', async () => {
          checkAll(await everyCookie({}), { name: 'session', secure: false, sameSite: 'Lax', path: '/' }, KINDS);
        });

        it('follows secure: true, sameSite, path and domain', async () => {
          const seen = await everyCookie({ cookieName: 'sid', secure: true, sameSite: 'strict', path: '/app', domain: 'example.test' });
          checkAll(seen, { name: 'sid', secure: true, sameSite: 'Strict', path: '/app', domain: 'example.test' }, KINDS);
        });

        it('has Secure and SameSite=None with a __Host- name', async () => {
          const seen = await everyCookie({ cookieName: '__Host-sid', secure: true, sameSite: 'none' });
          checkAll(seen, { name: '__Host-sid', secure: true, sameSite: 'None', path: '/' }, KINDS);
        });

        it('has the same attributes when signed', async () => {
          const seen = await everyCookie({ secrets: [CURRENT, PREVIOUS] });
          checkAll(seen, { name: 'session', secure: false, sameSite: 'Lax', path: '/' }, KINDS);
          for (const line of seen.get('create') ?? []) assert.match(parseSetCookie(line).value, /^[\w-]{43}\.[\w-]{43}$/);
        });

        it('is a browser-session cookie without Max-Age or Expires for cookieLifetime: null, clears included', async () => {
          const seen = await everyCookie({ cookieLifetime: null, absoluteLifetime: null });
          checkAll(seen, { name: 'session', secure: false, sameSite: 'Lax', path: '/' }, ['create', 'regenerate', 'destroy', 'clear']);
          for (const line of [...(seen.get('create') ?? []), ...(seen.get('regenerate') ?? [])]) {
            const { attributes } = parseSetCookie(line);
            assert.ok(!attributes.has('max-age') && !attributes.has('expires'), line);
          }
        });

        it("has Secure on every kind over HTTPS with secure: 'auto'", async () => {
          const app = await fixture.start({ touchInterval: 0, secrets: [CURRENT, PREVIOUS] }, routes(), TEST_TLS);
          const base = app.url;
          assert.match(base, /^https:/);
          let cookie: string | undefined;
          const seen: string[] = [];
          const step = async (path: string, sent = cookie): Promise<string[]> => {
            const response = await tlsGet(`${base}${path}`, sent === undefined ? {} : { cookie: `session=${sent}` });
            assert.equal(response.status, 200, path);
            const lines = linesOf(response.setCookie);
            seen.push(...lines);
            for (const line of lines) {
              const parsed = parseSetCookie(line);
              cookie = parsed.value === '' ? undefined : parsed.value;
            }
            return lines;
          };
          assert.equal((await step('/set?key=a&value=1')).length, 1, 'create');
          assert.equal((await step('/get?key=a')).length, 0, 'refresh');
          assert.equal((await step('/regenerate')).length, 1, 'regenerate');
          assert.equal((await step('/get?key=a', signed(idOf(cookie as string), PREVIOUS))).length, 0, 'previous secret');
          assert.equal((await step('/destroy', signed(idOf(cookie as string), CURRENT))).length, 1, 'destroy');
          assert.equal((await step('/destroy', signed(createSessionId(), CURRENT))).length, 1, 'clear');
          assert.equal(seen.length, 4);
          for (const line of seen) checkLine(line, { name: 'session', secure: true, sameSite: 'Lax', path: '/' }, line.slice(0, 60));
        });
      });

      describe('cookie size', () => {
        // session=<43>; Max-Age=86400; Path=<path>; HttpOnly; Secure; SameSite=Lax is 105 bytes + the path.
        const longest = `/${'p'.repeat(3990)}`;

        it('accepts options up to a 4096-byte cookie, and every line then stays within 4096 bytes', async () => {
          const seen = await everyCookie({ path: longest });
          checkAll(seen, { name: 'session', secure: false, sameSite: 'Lax', path: longest }, KINDS);
          const lengths = [...seen.values()].flat().map((line) => Buffer.byteLength(line));
          // Over plain HTTP the Secure attribute (8 bytes) is left out.
          assert.equal(Math.max(...lengths), MAX_COOKIE_BYTES - '; Secure'.length);
          const secure = await everyCookie({ path: longest, secure: true });
          assert.equal(Math.max(...[...secure.values()].flat().map((line) => Buffer.byteLength(line))), MAX_COOKIE_BYTES);
          const signedSeen = await everyCookie({ path: `/${'p'.repeat(3990 - 44)}`, secure: true, secrets: [CURRENT, PREVIOUS] });
          checkAll(signedSeen, { name: 'session', secure: true, sameSite: 'Lax', path: `/${'p'.repeat(3990 - 44)}` }, KINDS);
        });

        it('rejects at start-up, with INVALID_OPTIONS, options that would make the cookie longer', async () => {
          const label = 'd'.repeat(63);
          const longDomain = Array.from({ length: 64 }, () => label).join('.').slice(0, 4000);
          const cases: Array<[string, SessionOptions]> = [
            ['a path one byte too long', { path: `${longest}p` }],
            ['a signed cookie one byte too long', { path: `/${'p'.repeat(3990 - 43)}`, secrets: CURRENT }],
            ['a 4000-character domain of one label', { domain: 'd'.repeat(4000) }],
            ['a 4000-character domain of valid labels', { domain: longDomain.replace(/\.$/, '') }],
            ['a 4000-character path', { path: `/${'p'.repeat(3999)}` }],
            ['a 4100-character cookie name', { cookieName: 'n'.repeat(4100) }],
            ['a path with a semicolon', { path: '/a; Domain=evil.test' }],
            ['a domain with a semicolon', { domain: 'example.test; Secure' }],
          ];
          for (const [what, options] of cases) {
            await assert.rejects(
              fixture.start(options, routes()),
              (error: unknown) => isSessionError(error, 'INVALID_OPTIONS'),
              what,
            );
          }
        });

        /** Starts an app with `options` and asserts it is refused with INVALID_OPTIONS whose message matches `message`. */
        async function refusedWith(options: SessionOptions, message: RegExp, what: string): Promise<void> {
          await assert.rejects(
            fixture.start(options, routes()),
            (error: unknown) => {
              assert.ok(isSessionError(error, 'INVALID_OPTIONS'), `${what}: ${String(error)}`);
              assert.match(error.message, message, what);
              return true;
            },
            what,
          );
        }

        it('keeps the clearing Set-Cookie within 4096 bytes with cookieLifetime: null, and names the line that is too long', async () => {
          // Without Max-Age the clearing line is the longer one:
          //   session=; Max-Age=0; Path=<path>; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax
          // is 97 bytes + the path, where the session line (session=<43>; Path=<path>; HttpOnly; Secure; SameSite=Lax)
          // is 90 + the path. A 3999-byte path makes the clearing line exactly 4096 bytes.
          const options = { secure: true, cookieLifetime: null, absoluteLifetime: null } as const;
          const path = `/${'p'.repeat(3998)}`;
          const seen = await everyCookie({ ...options, path });
          checkAll(seen, { name: 'session', secure: true, sameSite: 'Lax', path }, ['create', 'regenerate', 'destroy', 'clear']);
          const lengths = (kinds: readonly string[]): number[] => kinds.flatMap((kind) => (seen.get(kind) ?? []).map((line) => Buffer.byteLength(line)));
          assert.deepEqual([...new Set(lengths(['destroy', 'clear']))], [MAX_COOKIE_BYTES], 'every clearing line is exactly 4096 bytes');
          assert.deepEqual([...new Set(lengths(['create', 'regenerate']))], [MAX_COOKIE_BYTES - 7], 'every session line is 4089 bytes');

          // One byte more, and it is the clearing line that is too long.
          await refusedWith(
            { ...options, path: `${path}p` },
            /the Set-Cookie line that clears the session cookie .*would be 4097 bytes, 1 over the 4096 browsers keep.*shorten cookieName, path or domain by at least 1 byte$/,
            'a clearing line one byte too long',
          );
        });

        it('names the session line when that is the one too long', async () => {
          // With Max-Age=1800 the session line (104 bytes + the path) is longer than the clearing line (97 + the path).
          await refusedWith(
            { secure: true, path: `${longest}p` },
            /the Set-Cookie line that sets the session cookie would be 4097 bytes, 1 over the 4096 browsers keep.*shorten cookieName, path or domain by at least 1 byte$/,
            'a session line one byte too long',
          );
          // A signed session line carries 44 more bytes (".<signature>"), all of them counted.
          await refusedWith(
            { path: longest, secrets: CURRENT },
            /the Set-Cookie line that sets the session cookie would be 4140 bytes, 44 over the 4096 browsers keep.*by at least 44 bytes$/,
            'a signed session line 44 bytes too long',
          );
        });
      });

      describe('Vary and Cache-Control', () => {
        it('adds neither, nor a cookie, when the handler does not use the session', async () => {
          const { url } = await start();
          const browser = new Browser(url);
          await browser.json('/set?key=a&value=1');
          for (const cookie of [browser.cookie, 'garbage', undefined]) {
            const response = await browser.get('/plain', { headers: cookie === undefined ? {} : { cookie: `session=${cookie}` } });
            assert.equal(response.status, 200);
            assert.equal(response.headers.get('vary'), null);
            assert.equal(response.headers.get('cache-control'), null);
            assert.deepEqual(response.setCookie, []);
          }
          const own = await browser.get('/headers?vary=Accept-Encoding&cc=public,%20max-age=60');
          assert.equal(own.headers.get('vary'), 'Accept-Encoding');
          assert.equal(own.headers.get('cache-control'), 'public, max-age=60');
        });

        it('says Vary: Cookie whenever the session was read or written; no-store only with the session cookie', async () => {
          const { url } = await start();
          const browser = new Browser(url);
          const anonymous = await browser.get('/get?key=a');
          assert.deepEqual(varyNames(anonymous.headers), ['cookie'], 'a read without a cookie depends on the Cookie header too');
          assert.equal(anonymous.headers.get('cache-control'), null);
          assert.deepEqual(anonymous.setCookie, []);

          const created = await browser.get('/set?key=a&value=1');
          assert.deepEqual(varyNames(created.headers), ['cookie']);
          assert.equal(created.headers.get('cache-control'), 'no-store');
          assert.equal(linesOf(created.setCookie).length, 1);

          const read = await browser.get('/get?key=a');
          assert.deepEqual(varyNames(read.headers), ['cookie']);
          assert.deepEqual(read.setCookie, [], 'refreshed within touchInterval: no cookie');
          assert.equal(read.headers.get('cache-control'), null, 'nothing to hide without a Set-Cookie');

          const write = await browser.get('/set?key=b&value=2');
          assert.deepEqual(varyNames(write.headers), ['cookie']);

          for (const path of ['/regenerate', '/destroy']) {
            const response = await browser.get(path);
            assert.deepEqual(varyNames(response.headers), ['cookie'], path);
            assert.equal(linesOf(response.setCookie).length, 1, path);
            assert.equal(response.headers.get('cache-control'), 'no-store', path);
          }
        });

        it("merges Cookie into the app's Vary once, whether the app set it before or after using the session", async () => {
          const { url } = await start();
          const browser = new Browser(url);
          const cases: Array<[string, string, string[]]> = [
            ['Accept-Encoding', 'read', ['accept-encoding', 'cookie']],
            ['Accept-Encoding', 'write', ['accept-encoding', 'cookie']],
            ['Accept-Encoding, Accept-Language', 'read', ['accept-encoding', 'accept-language', 'cookie']],
            ['Accept-Encoding, Cookie', 'read', ['accept-encoding', 'cookie']],
            ['cookie', 'write', ['cookie']],
            ['Cookie, Accept-Encoding', 'destroy', ['cookie', 'accept-encoding']],
            ['*', 'read', ['*']],
          ];
          for (const [vary, op, expected] of cases) {
            for (const when of ['before', 'after']) {
              const what = `Vary: ${vary}, ${op}, set ${when}`;
              const response = await browser.get(`/headers?vary=${encodeURIComponent(vary)}&op=${op}&when=${when}`);
              assert.equal(response.status, 200, what);
              assert.deepEqual(varyNames(response.headers), expected, what);
              assert.equal(varyNames(response.headers).filter((name) => name === 'cookie').length, expected.includes('cookie') ? 1 : 0, what);
            }
          }
        });

        it("keeps the app's own Cache-Control on a response that sets the session cookie", async () => {
          const { url } = await start();
          const browser = new Browser(url);
          for (const when of ['before', 'after']) {
            browser.cookie = undefined;
            const created = await browser.get(`/headers?cc=${encodeURIComponent('private, max-age=60')}&op=write&when=${when}`);
            assert.equal(linesOf(created.setCookie).length, 1, when);
            assert.equal(created.headers.get('cache-control'), 'private, max-age=60', when);
            assert.deepEqual(varyNames(created.headers), ['cookie'], when);
            const cleared = await browser.get(`/headers?cc=no-cache&op=destroy&when=${when}`);
            assert.equal(linesOf(cleared.setCookie).length, 1, when);
            assert.equal(cleared.headers.get('cache-control'), 'no-cache', when);
          }
        });
      });

      describe('onInvalidCookie', () => {
        interface Call {
          readonly args: unknown[];
          readonly probe: string | undefined;
        }

        async function startWatched(options: SessionOptions = {}): Promise<{ calls: Call[]; send(probe: string, path: string, cookie?: string): Promise<Response> }> {
          const calls: Call[] = [];
          const { url } = await start({
            ...options,
            onInvalidCookie: (...args: unknown[]) => void calls.push({ args, probe: probeOf(adapter.name, args[1]) }),
          });
          return {
            calls,
            send: async (probe, path, cookie) => {
              const headers: Record<string, string> = { 'x-probe': probe };
              if (cookie !== undefined) headers.cookie = cookie;
              const response = await fetch(url + path, { headers });
              await response.arrayBuffer();
              assert.equal(response.status, 200, `${probe}: ${path}`);
              return response;
            },
          };
        }

        /** The hook ran exactly once for `probe`, with `reason` and the request, and no cookie value. */
        function calledOnce(calls: readonly Call[], probe: string, reason: InvalidCookieReason, secret: string): void {
          const mine = calls.filter((call) => call.probe === probe);
          assert.equal(mine.length, 1, `${probe}: called once, got ${mine.map((call) => call.args[0]).join()}`);
          const { args } = mine[0] as Call;
          assert.equal(args.length, 2, `${probe}: (reason, request)`);
          assert.equal(args[0], reason, probe);
          assert.ok(REASONS.includes(args[0] as InvalidCookieReason));
          for (const arg of args) {
            assert.ok(typeof arg !== 'string' || !arg.includes(secret), `${probe}: the cookie's value is not handed to the hook`);
          }
        }

        it('reports malformed, duplicate and unknown-id cookies once per request with the framework request, and nothing else', async () => {
          const { url } = await start();
          const owner = new Browser(url);
          await owner.json('/set?key=a&value=1');
          const valid = owner.cookie as string;
          const unknown = createSessionId();
          const { calls, send } = await startWatched();

          await send('garbage', '/busy', 'session=garbage');
          calledOnce(calls, 'garbage', 'malformed', 'garbage');
          await send('percent', '/get?key=a', `session=%${valid.slice(1)}`);
          calledOnce(calls, 'percent', 'malformed', valid.slice(1));
          await send('twice', '/get?key=a', `session=${valid}; session=${unknown}`);
          calledOnce(calls, 'twice', 'duplicate', valid);
          await send('look-alike', '/get?key=a', `session =${valid}`);
          calledOnce(calls, 'look-alike', 'malformed', valid);
          await send('unknown', '/busy', `session=${unknown}`);
          calledOnce(calls, 'unknown', 'unknown-id', unknown);
          const blind = createSessionId();
          await send('unknown-write', '/set?key=x&value=1', `session=${blind}`);
          calledOnce(calls, 'unknown-write', 'unknown-id', blind);

          const before = calls.length;
          await send('valid', '/get?key=a', `session=${valid}`);
          await send('none', '/busy');
          await send('untouched', '/plain', 'session=garbage');
          assert.equal(calls.length, before, 'a valid cookie, no cookie, or a session left alone: not called');
          assert.equal(
            calls.filter((call) => call.probe === undefined).length,
            0,
            'every call got the request it is about',
          );
        });

        it('reports bad-signature before any Redis command, and expired for a signed id the store no longer holds', async () => {
          const { calls, send } = await startWatched({ secrets: [CURRENT] });
          const browser = new Browser(fixture.app?.url as string);
          await browser.json('/set?key=a&value=1');
          const cookie = browser.cookie as string;
          const id = idOf(cookie);
          const signature = cookie.slice(id.length + 1);
          const flipped = `${id}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;

          const forged: Array<[string, string]> = [
            ['tampered', flipped],
            ['unsigned', id],
            ['foreign', signed(id, FOREIGN)],
            ['empty-signature', `${id}.`],
          ];
          for (const [probe, value] of forged) {
            await fixture.sut.redis?.resetStats();
            const response = await send(probe, '/get?key=a', `session=${value}`);
            assert.equal(await fixture.sut.redis?.commandTotal(), 0, `${probe}: no Redis command`);
            assert.deepEqual(response.headers.getSetCookie(), [], probe);
            calledOnce(calls, probe, 'bad-signature', id);
          }
          await send('malformed', '/busy', 'session=garbage.garbage');
          calledOnce(calls, 'malformed', 'malformed', 'garbage');

          assert.equal((await browser.get('/destroy')).status, 200);
          await send('expired', '/busy', `session=${cookie}`);
          calledOnce(calls, 'expired', 'expired', id);
          const never = createSessionId();
          await send('signed-unknown', '/get?key=a', `session=${signed(never, CURRENT)}`);
          calledOnce(calls, 'signed-unknown', 'expired', never);
        });

        it("fails the request through the framework's error path when the hook throws", async () => {
          class HookError extends Error {
            // Hono's default error handler answers with this instead of logging the error.
            getResponse(): Response {
              return new Response('hook failed', { status: 500 });
            }
          }
          const { url } = await start({
            onInvalidCookie: () => {
              throw new HookError('logged');
            },
          });
          const response = await new Browser(url).get('/get?key=a', { headers: { cookie: 'session=garbage' } });
          assert.equal(response.status, 500);
          assert.ok(fixture.app?.errors.some((error) => error instanceof HookError), String(fixture.app?.errors));
        });
      });

      describe('secret rotation', () => {
        it('accepts a cookie signed with a previous secret as it is: same session, no Set-Cookie', async () => {
          const reasons: string[] = [];
          const { url } = await start({ secrets: [CURRENT, PREVIOUS], onInvalidCookie: (reason) => void reasons.push(reason) });
          const browser = new Browser(url);
          await browser.json('/set?key=a&value=1');
          const id = idOf(browser.cookie as string);
          assert.equal(browser.cookie, signed(id, CURRENT));

          browser.cookie = signed(id, PREVIOUS);
          const read = await browser.get('/get?key=a');
          assert.deepEqual(JSON.parse(read.body), { value: 1, id: handleOf(id) });
          assert.deepEqual(read.setCookie, [], 'never re-sent: a late response must not put an id back over a newer cookie');
          const write = await browser.get('/set?key=b&value=2');
          assert.deepEqual(write.setCookie, []);
          assert.equal((await fixture.sut.hash(id))?.get('b'), '2');
          assert.deepEqual(reasons, []);

          // A login hands out a new id signed with the current secret.
          const login = await browser.get('/regenerate');
          assert.equal(linesOf(login.setCookie).length, 1);
          const renewed = browser.cookie as string;
          assert.notEqual(idOf(renewed), id);
          assert.equal(renewed, signed(idOf(renewed), CURRENT));

          // An id signed with the previous secret that the store does not hold.
          const stale = new Browser(url);
          stale.cookie = signed(createSessionId(), PREVIOUS);
          const gone = await stale.get('/get?key=a');
          assert.deepEqual(gone.setCookie, []);
          assert.deepEqual(reasons, ['expired']);
        });

        it('refuses a cookie signed with a secret that was retired, before any Redis command', async () => {
          const reasons: string[] = [];
          const { url } = await start({ secrets: [PREVIOUS] });
          const browser = new Browser(url);
          await browser.json('/set?key=a&value=1');
          const id = idOf(browser.cookie as string);
          await start({ secrets: [CURRENT], onInvalidCookie: (reason) => void reasons.push(reason) });
          const later = new Browser(fixture.app?.url as string);
          later.cookie = signed(id, PREVIOUS);
          await fixture.sut.redis?.resetStats();
          const response = await later.get('/get?key=a');
          assert.deepEqual(JSON.parse(response.body), { value: null, id: null });
          assert.equal(await fixture.sut.redis?.commandTotal(), 0);
          assert.deepEqual(reasons, ['bad-signature']);
          assert.equal((await fixture.sut.hash(id))?.get('a'), '1', 'the session itself is left alone');
        });
      });
    });
  }
});
