// What a client is shown when a handler fails with a SessionError, through every adapter left
// with its framework's default error handler: the error's status and none of its message, which
// is for logs (it quotes Redis' reply and the hash of the script that got it, or the start of a
// session key).
//
// Express' default handler depends on NODE_ENV, so every case runs with NODE_ENV unset (what a new
// user has) and with NODE_ENV=production. The runner sets NODE_ENV=test; each test sets its own
// value for the app's start and its requests, and puts the old one back. Express and Koa read it
// when the app is created (finalhandler gets it from Express), the others per error or never, so
// this is what a process started with that value sees. The tests of this file run one after
// another, so no other test sees the change.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STATUS_CODES } from 'node:http';
import { checkCsrf, isSessionError, RedisStore, type SessionErrorCode, type SessionOptions } from '../../src/index.js';
import { sessionHandle } from '../../src/core/id.js';
import { ADAPTERS, Browser, type AdapterHarness, type App, type Route, type StoreUnderTest } from '../conformance/harness.js';
import { freePort } from '../redis/server.js';
import { adapterFixture, idOf, param, redisKey } from './support.js';

/** A key a user's data could be under: the LIMIT_EXCEEDED message quotes its first characters. */
const LONG_KEY = `diary-of-alice-${'x'.repeat(300)}`;

function routes(sut: StoreUnderTest): Record<string, Route> {
  return {
    get: async (s) => ({ value: (await s.get('a')) ?? null }),
    set: async (s, q) => {
      await s.set(param(q, 'key'), 1);
      return { id: s.id ?? null };
    },
    csrf: async (s) => {
      await checkCsrf(s, 'POST', 'not-the-token');
      return 'passed';
    },
    // Another request's logout, between this request's read and its write.
    gone: async (s) => {
      await s.load();
      const key = (await sut.keys()).find((each) => sessionHandle(each.slice('session:'.length)) === s.id);
      assert.ok(key, 'the session is in Redis');
      await sut.redis?.command('DEL', key);
      await s.set('b', 2);
      return 'written';
    },
  };
}

/** One way for a handler to fail, and what the client must get. */
interface Case {
  readonly name: string;
  readonly code: SessionErrorCode;
  readonly status: number;
  /** Words of the message that must not reach the client besides the message itself. */
  readonly hidden: readonly string[];
  /** Options besides the fixture's store. */
  options?(): Promise<SessionOptions & { close?(): Promise<void> }>;
  /** Makes the request that fails. */
  request(app: App, sut: StoreUnderTest): Promise<Awaited<ReturnType<Browser['get']>>>;
}

/** A browser whose session hash Redis holds as a string, so every script and HGETALL fails. */
async function wrongType(app: App, sut: StoreUnderTest): Promise<Browser> {
  const browser = new Browser(app.url);
  assert.equal((await browser.get('/set?key=a')).status, 200);
  const key = redisKey(idOf(browser.cookie as string));
  await sut.redis?.command('DEL', key);
  await sut.redis?.command('SET', key, 'not a hash');
  return browser;
}

const CASES: readonly Case[] = [
  {
    name: 'STORE_ERROR on a read (a string where the session hash should be)',
    code: 'STORE_ERROR',
    status: 500,
    hidden: ['WRONGTYPE', 'wrong kind of value'],
    request: async (app, sut) => (await wrongType(app, sut)).get('/get'),
  },
  {
    name: 'STORE_ERROR on a write, from inside a Lua script',
    code: 'STORE_ERROR',
    status: 500,
    hidden: ['WRONGTYPE', 'script', 'user_script'],
    request: async (app, sut) => (await wrongType(app, sut)).get('/set?key=b'),
  },
  {
    name: 'LIMIT_EXCEEDED for a key too long, which the message quotes',
    code: 'LIMIT_EXCEEDED',
    status: 413,
    hidden: ['diary', 'alice', 'maxKeyLength'],
    request: async (app) => new Browser(app.url).get(`/set?key=${LONG_KEY}`),
  },
  {
    name: 'SESSION_GONE',
    code: 'SESSION_GONE',
    status: 409,
    hidden: ['another request'],
    request: async (app) => {
      const browser = new Browser(app.url);
      assert.equal((await browser.get('/set?key=a')).status, 200);
      return browser.get('/gone');
    },
  },
  {
    name: 'CSRF_MISMATCH',
    code: 'CSRF_MISMATCH',
    status: 403,
    hidden: ['check failed', 'token'],
    request: async (app) => new Browser(app.url).get('/csrf', { method: 'POST' }),
  },
  {
    name: 'STORE_UNAVAILABLE (nothing listens where Redis should be)',
    code: 'STORE_UNAVAILABLE',
    status: 503,
    hidden: ['is unavailable'],
    async options() {
      const store = new RedisStore({ redis: `redis://127.0.0.1:${await freePort()}`, commandTimeout: 300 });
      return { store, close: () => store.close() };
    },
    // A write: without a cookie a read has nothing to look up.
    request: async (app) => new Browser(app.url).get('/set?key=a'),
  },
];

/** Runs `body` with `NODE_ENV` as given (unset for `undefined`), then restores it. */
async function withNodeEnv<T>(value: string | undefined, body: () => Promise<T>): Promise<T> {
  const saved = process.env.NODE_ENV;
  const set = (to: string | undefined): void => {
    if (to === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = to;
  };
  // Express prints every error it answers on stderr outside NODE_ENV=test: expected here, and noise.
  const consoleError = console.error;
  console.error = () => {};
  set(value);
  try {
    return await body();
  } finally {
    set(saved);
    // Express prints from a setImmediate scheduled as it answered.
    await new Promise((resolve) => setImmediate(resolve));
    console.error = consoleError;
  }
}

/**
 * Express' default handler (finalhandler) ignores `expose`: outside production it shows every
 * error's stack, as Express documents; README says so. Everywhere else the message stays hidden.
 */
function showsStack(adapter: AdapterHarness, env: string | undefined): boolean {
  return adapter.name.startsWith('express') && env !== 'production';
}

/** `text` as finalhandler writes it into its HTML page. */
function asHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

/** The body each framework's default handler gives an error without details. */
function assertPlainBody(adapter: AdapterHarness, body: string, status: number, code: SessionErrorCode): void {
  const reason = STATUS_CODES[status] as string;
  if (adapter.name === 'fastify') {
    assert.deepEqual(JSON.parse(body), { statusCode: status, code, error: reason, message: reason });
  } else if (adapter.name.startsWith('express')) {
    assert.match(body, new RegExp(`<pre>${reason}</pre>`));
  } else {
    assert.equal(body, reason);
  }
}

describe('error bodies with the default error handlers', () => {
  for (const adapter of ADAPTERS) {
    describe(adapter.name, () => {
      const fixture = adapterFixture(adapter);

      for (const env of [undefined, 'production']) {
        for (const c of CASES) {
          it(`${c.name}: ${c.status}, ${showsStack(adapter, env) ? 'the stack, as for every error' : 'no details'}, with NODE_ENV ${env ?? 'unset'}`, async () => {
            await withNodeEnv(env, async () => {
              const { close, ...options } = (await c.options?.()) ?? {};
              try {
                const app = await fixture.start(options, routes(fixture.sut));
                const response = await c.request(app, fixture.sut);
                assert.equal(app.errors.length, 1, 'one error reached the framework');
                const error = app.errors[0];
                assert.ok(isSessionError(error, c.code), `the framework got ${String(error)}`);
                for (const word of c.hidden) {
                  assert.ok(error.message.toLowerCase().includes(word.toLowerCase()), `the message says '${word}': ${error.message}`);
                }

                assert.equal(response.status, c.status);
                assert.equal(response.headers.get('retry-after'), c.status === 503 ? '1' : null);
                const body = response.body.toLowerCase();
                if (showsStack(adapter, env)) {
                  assert.ok(response.body.includes(asHtml(`SessionError: ${error.message}`)), response.body);
                  return;
                }
                const details = error.message.slice('latchkey: '.length);
                for (const word of [error.message, details, 'latchkey', 'redis', 'SessionError', ...c.hidden]) {
                  assert.ok(!body.includes(word.toLowerCase()), `the body shows '${word}': ${response.body}`);
                }
                assertPlainBody(adapter, response.body, c.status, c.code);
              } finally {
                await close?.();
              }
            });
          });
        }
      }
    });
  }
});
