import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSessionError, MemoryStore, resolveOptions, SessionError, SessionManager, type SessionOptions } from '../../src/index.js';
import { session as honoSession } from '../../src/adapters/hono.js';
import { session as expressSession } from '../../src/adapters/express.js';
import { session as fastifySession } from '../../src/adapters/fastify.js';
import { session as koaSession } from '../../src/adapters/koa.js';
import { withSession } from '../../src/adapters/node.js';
import Fastify from 'fastify';

const store = new MemoryStore();

function rejects(options: unknown, message: RegExp): void {
  assert.throws(
    () => resolveOptions(options as SessionOptions),
    (error: unknown) => {
      assert.ok(error instanceof SessionError);
      assert.equal(error.code, 'INVALID_OPTIONS');
      assert.match(error.message, /^latchkey: /);
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('options', () => {
  it('applies the documented defaults', () => {
    const resolved = resolveOptions({ store });
    assert.equal(resolved.cookieName, 'session');
    assert.equal(resolved.cookieLifetime, 1800);
    assert.equal(resolved.keyword, 'session');
    assert.equal(resolved.secure, 'auto');
    assert.equal(resolved.httpOnly, true);
    assert.equal(resolved.sameSite, 'lax');
    assert.equal(resolved.path, '/');
    assert.equal(resolved.domain, undefined);
    assert.equal(resolved.touchInterval, 60);
    assert.equal(resolved.storeLifetimeMs, 1_800_000);
    assert.equal(resolved.absoluteLifetime, 86_400);
    assert.equal(resolved.maxAgeMs, 86_400_000);
    assert.deepEqual(resolved.secrets, []);
    assert.deepEqual(resolved.limits, { maxKeys: 256, maxKeyLength: 256, maxValueBytes: 65_536, maxSessionBytes: 262_144 });
    assert.equal(resolved.onInvalidCookie, undefined);
    assert.equal(resolveOptions().redis, 'redis://localhost:6379/0');
    assert.equal(resolveOptions().prefix, 'session:');
  });

  it('keeps a 0 or false the user gave instead of the default', () => {
    const resolved = resolveOptions({ store, touchInterval: 0, httpOnly: false, secure: false });
    assert.equal(resolved.touchInterval, 0);
    assert.equal(resolved.httpOnly, false);
    assert.equal(resolved.secure, false);
  });

  it('keeps the store for 7 days behind a browser-session cookie', () => {
    const resolved = resolveOptions({ store, cookieLifetime: null });
    assert.equal(resolved.cookieLifetime, null);
    assert.equal(resolved.storeLifetimeMs, 7 * 86_400_000);
  });

  it('shrinks the default touchInterval for short lifetimes but rejects an explicit one that is too long', () => {
    assert.equal(resolveOptions({ store, cookieLifetime: 10 }).touchInterval, 1);
    rejects({ store, cookieLifetime: 10, touchInterval: 10 }, /touchInterval \(10s\) must be shorter/);
  });

  it('rejects wrong values with a message that says how to fix them', () => {
    rejects('session', /options must be an object/);
    rejects({ cookie_name: 'x' }, /unknown option 'cookie_name' \(bottle-session's 'cookie_name' is 'cookieName' here\)/);
    rejects({ cookieNmae: 'x' }, /unknown option 'cookieNmae'; known options are/);
    rejects({ cookieName: 'a b' }, /cookieName must be a cookie-name token/);
    rejects({ cookieName: 'a;Domain=evil' }, /cookieName must be a cookie-name token/);
    rejects({ cookieName: '' }, /cookieName/);
    rejects({ cookieLifetime: 0 }, /cookieLifetime must be a number of seconds above 0, or null/);
    rejects({ cookieLifetime: '1800' }, /cookieLifetime/);
    rejects({ cookieLifetime: Infinity }, /cookieLifetime/);
    rejects({ keyword: '' }, /keyword must be a non-empty string/);
    rejects({ secure: 'yes' }, /secure must be true, false, 'auto' or a function \(request\) => boolean/);
    rejects({ httpOnly: 1 }, /httpOnly must be true or false/);
    rejects({ sameSite: 'Lax' }, /sameSite must be 'lax', 'strict' or 'none' \(lower case\)/);
    rejects({ sameSite: 'none' }, /sameSite: 'none' requires secure: true/);
    rejects({ path: 'app' }, /path must start with '\/'/);
    rejects({ path: '/a;Domain=evil' }, /path must start with '\/'/);
    rejects({ path: '/a\nb' }, /path/);
    rejects({ domain: 'evil.com; Secure' }, /domain must be a host name/);
    rejects({ domain: '' }, /domain/);
    rejects({ cookieName: '__Host-s' }, /'__Host-' cookie name requires secure: true, path: '\/' and no domain/);
    rejects({ cookieName: '__Host-s', secure: true, path: '/app' }, /__Host-/);
    rejects({ cookieName: '__Secure-s' }, /'__Secure-' cookie name requires secure: true/);
    rejects({ touchInterval: -1 }, /touchInterval must be a number of seconds, 0 or more/);
    rejects({ store: {} }, /store must be a RedisStore, a MemoryStore or an object implementing the Store interface/);
    rejects({ store, redis: 'redis://x' }, /either store or redis, not both/);
    rejects({ store, prefix: 'x:' }, /set it on your store instead/);
    rejects({ redis: 42 }, /redis must be a node-redis or ioredis client, a redis:\/\/ URL/);
    rejects({ prefix: 5 }, /prefix must be a string/);
    rejects({ cookieName: '__host-s' }, /'__Host-' cookie name requires/);
    rejects({ cookieName: '__SECURE-s' }, /'__Secure-' cookie name requires/);
    rejects({ absoluteLifetime: 0 }, /absoluteLifetime must be a number of seconds above 0, or null/);
    rejects({ absoluteLifetime: '1d' }, /absoluteLifetime/);
    rejects({ secrets: 'short' }, /each of secrets must be a string of at least 32 characters .*got one of 5/);
    rejects({ secrets: ['x'.repeat(32), 42] }, /each of secrets .*got 42/);
    rejects({ secrets: [] }, /secrets must hold at least one secret/);
    rejects({ limits: 5 }, /limits must be an object/);
    rejects({ limits: { maxKeys: 0 } }, /limits.maxKeys must be a whole number above 0/);
    rejects({ limits: { maxValueBytes: 1.5 } }, /limits.maxValueBytes/);
    rejects({ limits: { maxFields: 5 } }, /unknown limit 'maxFields'; known limits are maxKeys, maxKeyLength, maxValueBytes, maxSessionBytes/);
    rejects({ onInvalidCookie: 'log' }, /onInvalidCookie must be a function/);
  });

  it('takes secrets as one string or a list, current first, and limits one by one', () => {
    const one = 'a'.repeat(32);
    const two = 'b'.repeat(40);
    assert.deepEqual(resolveOptions({ store, secrets: one }).secrets, [one]);
    assert.deepEqual(resolveOptions({ store, secrets: [two, one] }).secrets, [two, one]);
    assert.deepEqual(resolveOptions({ store, limits: { maxKeys: 10 } }).limits, { maxKeys: 10, maxKeyLength: 256, maxValueBytes: 65_536, maxSessionBytes: 262_144 });
    assert.equal(resolveOptions({ store, absoluteLifetime: null }).maxAgeMs, null);
  });

  it('refuses, when the manager is made, a cookie that would pass the 4096 bytes browsers keep', () => {
    const domain = Array.from({ length: 70 }, () => 'a'.repeat(60)).join('.');
    assert.equal(resolveOptions({ store, domain }).domain, domain, 'each label is a valid host name label');
    assert.throws(() => new SessionManager({ store, domain }), (error: unknown) => {
      assert.ok(isSessionError(error, 'INVALID_OPTIONS'));
      assert.match(error.message, /the Set-Cookie line that sets the session cookie would be \d+ bytes, \d+ over the 4096 browsers keep, so browsers would ignore it; shorten cookieName, path or domain by at least \d+ bytes$/);
      return true;
    });
    const path = `/${'p'.repeat(3990)}`;
    assert.throws(() => new SessionManager({ store, path, secrets: 'x'.repeat(32) }), /over the 4096/);
    assert.ok(new SessionManager({ store, path: `/${'p'.repeat(3800)}` }));
  });

  it('accepts the cookie prefixes when their rules are met', () => {
    assert.equal(resolveOptions({ store, cookieName: '__Host-s', secure: true }).cookieName, '__Host-s');
    assert.equal(resolveOptions({ store, sameSite: 'none', secure: true }).sameSite, 'none');
    assert.equal(resolveOptions({ store, domain: '.example.com' }).domain, '.example.com');
  });

  it('fails when the middleware is created, in every adapter, including an unusable Redis URL', async () => {
    const handler = (): void => {};
    const adapters: Array<(options: SessionOptions) => unknown> = [
      honoSession,
      expressSession,
      koaSession,
      (options) => withSession(options, handler),
    ];
    const wrong: Array<[SessionOptions, RegExp]> = [
      [{ store, sameSite: 'none' }, /sameSite/],
      [{ redis: 'http://localhost:6379' }, /redis URL must start with redis:\/\/ or rediss:\/\//],
      [{ redis: { host: 'localhost', port: 70000 } }, /redis\.port/],
    ];
    for (const [options, message] of wrong) {
      for (const create of adapters) assert.throws(() => create(options), { code: 'INVALID_OPTIONS', message });
      // Fastify: registering rejects, so app.ready() (or listen) fails before serving anything.
      const app = Fastify();
      await assert.rejects(async () => void (await app.register(fastifySession, options)), { code: 'INVALID_OPTIONS', message });
      await app.close();
    }
  });

  it('checks what withSession() is given besides the session options', () => {
    assert.throws(() => withSession({ store }, undefined as never), { code: 'INVALID_OPTIONS', message: /request handler as its second argument/ });
    assert.throws(() => withSession((() => {}) as never, undefined as never), { code: 'INVALID_OPTIONS', message: /second argument/ });
    assert.throws(() => withSession({ store, onError: 'log' as never }, () => {}), { code: 'INVALID_OPTIONS', message: /onError must be a function/ });
  });
});
