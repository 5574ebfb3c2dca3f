// The per-user parts of the core on a MemoryStore: the options, what login() stores and emits,
// the limits once latchkey's extra metadata is in the session, and stores without a user index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import {
  isSessionError,
  MemoryStore,
  resolveOptions,
  SESSION_CHANNEL,
  SessionAdmin,
  SessionManager,
  type RequestContext,
  type SessionEvent,
  type Store,
} from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { context, cookieOf } from '../manager.js';
import { withoutUserIndex } from '../store/store-views.js';

function storeWithoutIndex(): Store {
  return withoutUserIndex(new MemoryStore());
}

function client(userAgent: string, ip: string, cookie?: string): RequestContext {
  return { ...context(cookie), client: () => ({ userAgent, ip }) };
}

describe('per-user options', () => {
  const store = new MemoryStore();
  const rejects = (options: object, message: RegExp): void => {
    assert.throws(() => resolveOptions({ store, ...options }), (error: unknown) => {
      assert.ok(isSessionError(error, 'INVALID_OPTIONS'));
      assert.match(error.message, message);
      return true;
    });
  };

  it('defaults to no limit per user and no client details', () => {
    const resolved = resolveOptions({ store });
    assert.equal(resolved.maxSessionsPerUser, null);
    assert.equal(resolved.recordClient, false);
    assert.equal(resolved.clientIp, undefined);
  });

  it('refuses wrong values with a message that says what to give', () => {
    rejects({ maxSessionsPerUser: 0 }, /maxSessionsPerUser must be a whole number above 0, or null for no limit; got 0/);
    rejects({ maxSessionsPerUser: 2.5 }, /maxSessionsPerUser must be a whole number/);
    rejects({ maxSessionsPerUser: 3, store: storeWithoutIndex() }, /maxSessionsPerUser needs a store with a user index/);
    rejects({ recordClient: 'yes' }, /recordClient must be true or false, got "yes"/);
    rejects({ recordClient: true, clientIp: 'x-forwarded-for' }, /clientIp must be a function/);
    rejects({ clientIp: () => '10.0.0.1' }, /clientIp is used only with recordClient: true/);
  });
});

describe('login() on a MemoryStore', () => {
  it('moves the session to a new id that keeps its data and drops its CSRF token, and records the user', async () => {
    const store = new MemoryStore();
    const manager = new SessionManager({ store });
    const first = manager.open(context());
    await first.session.set({ cart: ['tea'], _csrf: 'planted' });
    const before = cookieOf(first);
    const login = manager.open(context(before));
    await login.session.login(42);
    const after = cookieOf(login);
    assert.notEqual(after, before, 'a login issues a new id');
    assert.equal(await manager.open(context(before)).session.get('cart'), undefined, 'the old id holds nothing');
    const next = manager.open(context(after));
    assert.equal(await next.session.userId(), '42', 'a number is kept as its digits');
    assert.deepEqual(await next.session.all(), { cart: ['tea'] });
    assert.equal(store.ids().length, 1);
  });

  it('gives a visitor without a session a new one that holds only the user', async () => {
    const manager = new SessionManager({ store: new MemoryStore() });
    const login = manager.open(context());
    await login.session.login('alice');
    const next = manager.open(context(cookieOf(login)));
    assert.equal(await next.session.userId(), 'alice');
    assert.equal(await next.session.size(), 0, 'the user is metadata, not one of the app keys');
  });

  it('refuses a user id that is empty, too long or not a string or whole number, before the store is asked', async () => {
    const manager = new SessionManager({ store: new MemoryStore() });
    for (const bad of ['', 'x'.repeat(513), 1.5, null, { id: 1 }]) {
      await assert.rejects(manager.open(context()).session.login(bad as string), (error: unknown) => {
        assert.ok(isSessionError(error, 'INVALID_ARGUMENT'));
        assert.match(error.message, /login\(\) takes a user id/);
        return true;
      });
    }
  });

  it('publishes logged-in, and revoked with the count, and nothing that names the user or a session', async () => {
    const heard: SessionEvent[] = [];
    const listener = (message: unknown): void => void heard.push(message as SessionEvent);
    diagnostics_channel.subscribe(SESSION_CHANNEL, listener);
    try {
      const manager = new SessionManager({ store: new MemoryStore(), maxSessionsPerUser: 1 });
      await manager.open(context()).session.login('user-k9');
      await manager.open(context()).session.login('user-k9');
      const third = manager.open(context());
      await third.session.login('user-k9');
      await manager.open(context()).session.login('user-k9');
      assert.equal(await manager.admin.revokeUserSessions('user-k9'), 1);
    } finally {
      diagnostics_channel.unsubscribe(SESSION_CHANNEL, listener);
    }
    assert.deepEqual(heard, [
      { event: 'created' },
      { event: 'logged-in' },
      { event: 'created' },
      { event: 'logged-in' },
      { event: 'revoked', count: 1 },
      { event: 'created' },
      { event: 'logged-in' },
      { event: 'revoked', count: 1 },
      { event: 'created' },
      { event: 'logged-in' },
      { event: 'revoked', count: 1 },
      { event: 'revoked', count: 1 },
    ]);
    assert.doesNotMatch(JSON.stringify(heard), /user-k9/);
  });

  it('keeps the user agent and IP with recordClient, updates them at a refresh, and leaves them out without it', async () => {
    const store = new MemoryStore();
    const manager = new SessionManager({ store, recordClient: true, touchInterval: 0 });
    const login = manager.open(client('Firefox/140', '192.0.2.1'));
    await login.session.login('bob');
    const cookie = cookieOf(login);
    let [shown] = await manager.admin.listUserSessions('bob');
    assert.equal(shown?.userAgent, 'Firefox/140');
    assert.equal(shown?.ip, '192.0.2.1');
    // A read from another network refreshes the expiry (touchInterval 0) and the address with it.
    await manager.open(client('Firefox/140', '198.51.100.7', cookie)).session.get('x');
    [shown] = await manager.admin.listUserSessions('bob');
    assert.equal(shown?.ip, '198.51.100.7');

    const plain = new SessionManager({ store: new MemoryStore() });
    const quiet = plain.open(client('Firefox/140', '192.0.2.1'));
    await quiet.session.login('bob');
    [shown] = await plain.admin.listUserSessions('bob');
    assert.equal(shown?.userAgent, undefined);
    assert.equal(shown?.ip, undefined);
  });

  it('cuts a long user agent to 512 characters, and takes the IP from clientIp when given', async () => {
    const manager = new SessionManager<object>({
      store: new MemoryStore(),
      recordClient: true,
      clientIp: (request) => (request as { forwarded: string }).forwarded,
    });
    const login = manager.open({ ...client('A'.repeat(2000), '127.0.0.1'), request: { forwarded: '203.0.113.9' } });
    await login.session.login('carol');
    const [shown] = await manager.admin.listUserSessions('carol');
    assert.equal(shown?.userAgent?.length, 512);
    assert.equal(shown?.ip, '203.0.113.9');
  });

  it('lets a signed-in session with client details hold as many app keys as limits.maxKeys, and no more', async () => {
    const manager = new SessionManager({ store: new MemoryStore(), recordClient: true, limits: { maxKeys: 3 } });
    const login = manager.open(client('UA', '192.0.2.1'));
    await login.session.login('dave');
    const cookie = cookieOf(login);
    // A write that has not read the session first, and one that has.
    await manager.open(context(cookie)).session.set({ a: 1, b: 2 });
    const reader = manager.open(context(cookie));
    assert.equal(await reader.session.size(), 2);
    await reader.session.set('c', 3);
    await assert.rejects(manager.open(context(cookie)).session.set('d', 4), { code: 'LIMIT_EXCEEDED' });
    assert.deepEqual(await manager.open(context(cookie)).session.keys(), ['a', 'b', 'c']);
  });

  it('logout() ends the session and takes it off the list; the cookie is cleared', async () => {
    const manager = new SessionManager({ store: new MemoryStore() });
    const login = manager.open(context());
    await login.session.login('erin');
    const cookie = cookieOf(login);
    const out = manager.open(context(cookie));
    await out.session.logout();
    assert.match(out.setCookies()[0] ?? '', /^session=; .*Max-Age=0/);
    assert.deepEqual(await manager.admin.listUserSessions('erin'), []);
    assert.equal(await manager.open(context(cookie)).session.userId(), undefined);
  });
});

describe('a store without a user index', () => {
  it('still signs sessions in, and says why listing and revoking by user cannot work', async () => {
    const store = storeWithoutIndex();
    const manager = new SessionManager({ store });
    const login = manager.open(context());
    await login.session.login('frank');
    assert.equal(await manager.open(context(cookieOf(login))).session.userId(), 'frank');
    await assert.rejects(manager.admin.listUserSessions('frank'), (error: unknown) => {
      assert.ok(isSessionError(error, 'INVALID_OPTIONS'));
      assert.match(error.message, /this store keeps no user index/);
      return true;
    });
    await assert.rejects(new SessionAdmin({ store }).countSessions(), { code: 'INVALID_OPTIONS' });
  });
});

describe('SessionAdmin', () => {
  it('refuses a store and a redis option together', () => {
    assert.throws(() => new SessionAdmin({ store: new MemoryStore(), prefix: 'x:' }), { code: 'INVALID_OPTIONS' });
  });

  it('inspects a session by handle: keys and sizes, values only when asked', async () => {
    const store = new MemoryStore();
    const manager = new SessionManager({ store });
    const login = manager.open(context());
    await login.session.set({ theme: 'dark', ':odd': 1 });
    await login.session.login('gina');
    const [shown] = await manager.admin.listUserSessions('gina');
    assert.ok(shown);
    const quiet = await manager.admin.inspectSession(shown.handle);
    assert.deepEqual(quiet?.fields, [
      { key: 'theme', bytes: 'theme'.length + '"dark"'.length },
      { key: ':odd', bytes: ':odd'.length + 1 },
    ]);
    const loud = await manager.admin.inspectSession(shown.handle, { userId: 'gina', values: true });
    assert.deepEqual(loud?.fields.map((field) => field.value), ['dark', 1]);
    assert.equal(loud?.userId, 'gina');
    assert.equal(await manager.admin.inspectSession(shown.handle, { userId: 'someone-else' }), undefined);
    assert.equal(await manager.admin.inspectSession('no-such-handle'), undefined);
    // The handle names the session without being its storage id or token.
    assert.ok(!store.ids().includes(shown.handle));
    assert.equal(storageId(shown.handle) === store.ids()[0], false);
  });
});
