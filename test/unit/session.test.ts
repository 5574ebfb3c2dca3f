import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, SessionError, SessionManager, type RequestContext } from '../../src/index.js';

function context(overrides: Partial<RequestContext> = {}): RequestContext {
  return { cookieHeader: () => undefined, isSecure: () => false, headersSent: () => false, ...overrides };
}

/** A manager on a fresh MemoryStore, plus a browser-side cookie jar of one cookie. */
function setup() {
  const store = new MemoryStore();
  const manager = new SessionManager({ store });
  return { store, manager };
}

async function existingSession(manager: SessionManager): Promise<string> {
  const handle = manager.open(context());
  await handle.session.set('a', 1);
  return `session=${handle.session.id}`;
}

describe('a session within one request', () => {
  it('settles id and isNew when it loads', async () => {
    const { manager } = setup();
    const cookie = await existingSession(manager);
    const { session } = manager.open(context({ cookieHeader: () => cookie }));
    assert.equal(session.id, undefined);
    assert.equal(session.isNew, true);
    await session.load();
    assert.equal(`session=${session.id}`, cookie);
    assert.equal(session.isNew, false);
  });

  it('reads the Cookie header only when the session is used, and reports activity once', async () => {
    const { manager } = setup();
    let reads = 0;
    let active = 0;
    const handle = manager.open(context({ cookieHeader: () => (reads++, undefined), onActive: () => active++ }));
    assert.equal(reads + active, 0);
    await handle.session.get('x');
    await handle.session.has('x');
    await handle.session.set('x', 1);
    assert.equal(reads, 1);
    assert.equal(active, 1);
  });

  it('creates one session for writes that were not awaited one by one', async () => {
    const { store, manager } = setup();
    const { session } = manager.open(context());
    await Promise.all([session.set('a', 1), session.set('b', 2), session.incr('n'), session.set({ c: 3 })]);
    assert.equal(store.size, 1);
    assert.deepEqual(await session.all(), { a: 1, b: 2, n: 1, c: 3 });
  });

  it('refuses to start a session once the adapter took the Set-Cookie value, and stores nothing', async () => {
    const { store, manager } = setup();
    const handle = manager.open(context());
    assert.equal(handle.setCookie(), undefined);
    await assert.rejects(handle.session.set('a', 1), (error: unknown) => error instanceof SessionError && error.code === 'HEADERS_SENT');
    assert.equal(store.size, 0);
  });

  it('refuses to start a session once headers are sent, and stores nothing', async () => {
    const { store, manager } = setup();
    const { session } = manager.open(context({ headersSent: () => true }));
    await assert.rejects(session.set('a', 1), (error: unknown) => error instanceof SessionError && error.code === 'HEADERS_SENT');
    await assert.rejects(session.incr('n'), { code: 'HEADERS_SENT' });
    assert.equal(store.size, 0);
  });

  it('still writes to an existing session after headers are sent', async () => {
    const { store, manager } = setup();
    const cookie = await existingSession(manager);
    const { session } = manager.open(context({ cookieHeader: () => cookie, headersSent: () => true }));
    await session.set('late', true);
    assert.equal(store.size, 1);
    assert.equal(await session.get('late'), true);
    await assert.rejects(session.regenerate(), { code: 'HEADERS_SENT' });
    assert.equal(await manager.open(context({ cookieHeader: () => cookie })).session.get('late'), true, 'regenerate changed nothing');
  });

  it('rejects keys and increments it cannot store', async () => {
    const { manager } = setup();
    const { session } = manager.open(context());
    const loose = session as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    await assert.rejects(loose.get!.call(session, 42), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(loose.set!.call(session, 42, 1), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(loose.delete!.call(session, null), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(session.incr('n', 1.5), { code: 'INVALID_ARGUMENT', message: /whole number/ });
    await assert.rejects(session.set('cyclic', (() => { const o: Record<string, unknown> = {}; o.o = o; return o; })()), { code: 'INVALID_ARGUMENT' });
  });

  it('sends nothing for an empty set() or a delete() without a session', async () => {
    const { store, manager } = setup();
    const handle = manager.open(context());
    await handle.session.set({});
    await handle.session.delete('x');
    assert.equal(store.size, 0);
    assert.equal(handle.setCookie(), undefined);
  });

  it('hands back values written by other programs as plain strings', async () => {
    const { store, manager } = setup();
    const cookie = await existingSession(manager);
    const { session } = manager.open(context({ cookieHeader: () => cookie }));
    await session.load();
    const [sid] = store.ids();
    await store.update(sid as string, [['raw', 'not json']], [], { ttlMs: 60_000, maxAgeMs: null, now: Date.now() }, manager.storeLimits);
    const fresh = manager.open(context({ cookieHeader: () => cookie })).session;
    assert.equal(await fresh.get('raw'), 'not json');
  });

  it('leaves a store the app passed open on close()', async () => {
    const { store, manager } = setup();
    await existingSession(manager);
    await manager.close();
    assert.equal(store.size, 1);
  });
});

describe('SessionError', () => {
  it('carries a code, an HTTP status and a response Hono can send', async () => {
    const cause = new Error('ECONNREFUSED');
    const error = new SessionError('STORE_UNAVAILABLE', 'Redis is unavailable', { cause });
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.equal(error.status, 503);
    assert.equal(error.expose, false);
    assert.equal(error.cause, cause);
    assert.equal(error.message, 'latchkey: Redis is unavailable');
    const response = error.getResponse();
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '1');
    assert.equal(await response.text(), 'Service Unavailable');
    assert.equal(new SessionError('HEADERS_SENT', 'x').status, 500);
  });
});
