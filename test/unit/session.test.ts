import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, SessionError, SessionManager, type RequestContext, type SessionHandle } from '../../src/index.js';
import { sessionHandle, storageId } from '../../src/core/id.js';

function context(overrides: Partial<RequestContext> = {}): RequestContext {
  return { cookieHeader: () => undefined, isSecure: () => false, headersSent: () => false, ...overrides };
}

/** A manager on a fresh MemoryStore, plus a browser-side cookie jar of one cookie. */
function setup() {
  const store = new MemoryStore();
  const manager = new SessionManager({ store });
  return { store, manager };
}

/** The `name=value` part of the session cookie a handle sets. */
function cookieOf(handle: SessionHandle): string {
  const [line] = handle.setCookies();
  assert.ok(line, 'a session cookie was set');
  return line.split(';')[0] as string;
}

async function existingSession(manager: SessionManager): Promise<string> {
  const handle = manager.open(context());
  await handle.session.set('a', 1);
  return cookieOf(handle);
}

/** The public handle `session.id` shows for the session with this cookie. */
function handleOf(cookie: string): string {
  return sessionHandle(storageId(cookie.slice(cookie.indexOf('=') + 1)));
}

describe('a session within one request', () => {
  it('settles id and isNew when it loads', async () => {
    const { manager } = setup();
    const cookie = await existingSession(manager);
    const { session } = manager.open(context({ cookieHeader: () => cookie }));
    assert.equal(session.id, undefined);
    assert.equal(session.isNew, true);
    await session.load();
    assert.equal(session.id, handleOf(cookie));
    assert.notEqual(session.id, cookie.slice('session='.length), 'the id is not the token');
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

  it('runs store operations one after another in call order, each failure rejecting only its own call', async () => {
    const store = new MemoryStore();
    const manager = new SessionManager({ store });
    const cookie = await existingSession(manager);
    const calls: string[] = [];
    let fail = true;
    const update = store.update.bind(store);
    store.update = async (id, set, ...rest) => {
      const key = set[0]?.[0] ?? '';
      calls.push(`start ${key}`);
      await new Promise((resolve) => setTimeout(resolve, key === 'b' ? 20 : 1));
      calls.push(`end ${key}`);
      if (fail) {
        fail = false;
        throw new SessionError('STORE_UNAVAILABLE', 'down for one write');
      }
      return update(id, set, ...rest);
    };
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const { session } = manager.open(context({ cookieHeader: () => cookie }));
      const writes = [session.set('b', 1), session.set('c', 2), session.set('d', 3)];
      const outcomes = await Promise.allSettled(writes);
      assert.deepEqual(outcomes.map((outcome) => outcome.status), ['rejected', 'fulfilled', 'fulfilled']);
      assert.deepEqual(calls, ['start b', 'end b', 'start c', 'end c', 'start d', 'end d']);
      assert.deepEqual(await session.all(), { a: 1, c: 2, d: 3 });
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('refuses to start a session once the adapter took the Set-Cookie value, and stores nothing', async () => {
    const { store, manager } = setup();
    const handle = manager.open(context());
    assert.deepEqual(handle.setCookies(), []);
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
    assert.deepEqual(handle.setCookies(), []);
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
    // http-errors' `headers`, read by the default error handlers of Koa, Express and Fastify.
    assert.deepEqual(error.headers, { 'Retry-After': '1' });
    assert.equal('headers' in new SessionError('HEADERS_SENT', 'x'), false);
  });
});

describe('limits, checked before the store is asked', () => {
  const limits = { maxKeys: 3, maxKeyLength: 8, maxValueBytes: 20, maxSessionBytes: 40 };

  async function rejectsLimit(promise: Promise<unknown>, message: RegExp): Promise<void> {
    await assert.rejects(promise, (error: unknown) => {
      assert.ok(error instanceof SessionError);
      assert.equal(error.code, 'LIMIT_EXCEEDED');
      assert.equal(error.status, 413);
      assert.match(error.message, message);
      assert.match(error.message, /nothing was written/);
      return true;
    });
  }

  it('rejects a long key, a big value, too many keys or bytes at once, writing none of them', async () => {
    const store = new MemoryStore();
    const manager = new SessionManager({ store, limits });
    const { session } = manager.open(context());
    await rejectsLimit(session.set('k'.repeat(9), 1), /is 9 bytes, over limits.maxKeyLength \(8\)/);
    await rejectsLimit(session.set('é'.repeat(5), 1), /is 10 bytes/);
    await rejectsLimit(session.set({ a: 1, big: 'x'.repeat(19) }), /the value for 'big' is 21 bytes as JSON, over limits.maxValueBytes \(20\)/);
    await rejectsLimit(session.set({ a: 1, b: 2, c: 3, d: 4 }), /4 keys at once pass limits.maxKeys \(3\)/);
    await rejectsLimit(session.set({ a: 'x'.repeat(18), b: 'y'.repeat(18) }), /add up to 42 bytes, over limits.maxSessionBytes \(40\)/);
    await rejectsLimit(session.incr('k'.repeat(9)), /maxKeyLength/);
    assert.equal(store.size, 0, 'no session was created');
    assert.deepEqual(manager.open(context()).setCookies(), []);
  });

  it('lets the store refuse what only the stored session can tell: too many keys or bytes in all', async () => {
    const store = new MemoryStore();
    // latchkey's metadata (about 30 bytes) counts towards maxSessionBytes too.
    const manager = new SessionManager({ store, limits: { ...limits, maxSessionBytes: 60 } });
    const { session } = manager.open(context());
    await session.set({ a: 1, b: 2, c: 3 });
    await rejectsLimit(session.set('d', 4), /limits.maxKeys or limits.maxSessionBytes/);
    await rejectsLimit(session.incr('n'), /limits.maxKeys or limits.maxSessionBytes/);
    await session.set('a', 'replaced');
    assert.deepEqual(await session.all(), { a: 'replaced', b: 2, c: 3 });
    const stored = store.inspect(store.ids()[0] as string)?.fields;
    assert.deepEqual([...(stored?.keys() ?? [])].filter((key) => !key.startsWith(':')).sort(), ['a', 'b', 'c']);
  });
});

describe('limits lowered after sessions were stored', () => {
  it('regenerate() still moves the whole session: it was stored already, and failing would lose it', async () => {
    const store = new MemoryStore();
    const before = new SessionManager({ store });
    const writer = before.open(context());
    await writer.session.set({ a: 1, b: 2, c: 3, d: 4 });
    const cookie = cookieOf(writer);
    const after = new SessionManager({ store, limits: { maxKeys: 2 } });
    const handle = after.open(context({ cookieHeader: () => cookie }));
    const { session } = handle;
    await session.regenerate();
    assert.notEqual(cookieOf(handle), cookie);
    assert.deepEqual(await session.all(), { a: 1, b: 2, c: 3, d: 4 });
    assert.equal(store.size, 1);
  });
});

describe('onInvalidCookie', () => {
  it('hears why a cookie was refused, with the request object, once per request and never the value', async () => {
    const heard: Array<[string, unknown]> = [];
    const store = new MemoryStore();
    const manager = new SessionManager({ store, onInvalidCookie: (reason, request) => void heard.push([reason, request]) });
    const request = { marker: 'the framework request' };
    const open = (cookie: string) => manager.open(context({ cookieHeader: () => cookie, request })).session;

    await open('session=not-an-id').get('a');
    const unknown = `session=${'A'.repeat(43)}`;
    const handle = manager.open(context({ cookieHeader: () => unknown, request }));
    await handle.session.get('a');
    await handle.session.set('a', 1);
    assert.deepEqual(heard, [['malformed', request], ['unknown-id', request]]);
    await open(cookieOf(handle)).get('a');
    assert.equal(heard.length, 2, 'a good cookie is not reported');
  });

  it('with secrets tells a forged signature from a session that ended', async () => {
    const heard: string[] = [];
    const secrets = ['s'.repeat(32)];
    const manager = new SessionManager({ store: new MemoryStore(), secrets, onInvalidCookie: (reason) => void heard.push(reason) });
    const writer = manager.open(context());
    await writer.session.set('a', 1);
    const cookie = cookieOf(writer);
    const forged = cookie.slice(0, -3) + (cookie.endsWith('AAA') ? 'BAA' : 'AAA');
    await manager.open(context({ cookieHeader: () => forged })).session.get('a');
    const destroyer = manager.open(context({ cookieHeader: () => cookie })).session;
    await destroyer.destroy();
    await manager.open(context({ cookieHeader: () => cookie })).session.get('a');
    assert.deepEqual(heard, ['bad-signature', 'expired']);
  });
});

describe('input a session cannot store', () => {
  it('refuses set() with anything but a string key and a value, or one plain object: nothing is written', async () => {
    const { store, manager } = setup();
    const { session } = manager.open(context());
    const loose = session as unknown as { set(...args: unknown[]): Promise<void> };
    class Cart {
      items = ['socks'];
    }
    const cases: Array<[string, unknown[], RegExp]> = [
      ['a String object as the key', [new String('k'), 'v'], /a String/],
      ['a Map', [new Map([['k', 'v']])], /not a Map: pass Object.fromEntries\(map\)/],
      ['a Set', [new Set(['k'])], /a Set/],
      ['an array', [['k', 'v']], /an array/],
      ['a class instance', [new Cart()], /a Cart/],
      ['a Date', [new Date()], /a Date/],
      ['an object and a second argument', [{ k: 'v' }, 'extra'], /and a second argument/],
      ['a key without a value', ['k'], /needs a value/],
      ['null', [null, 'v'], /null/],
      ['a number as the key', [42, 'v'], /number/],
      ['a symbol as the key', [Symbol('k'), 'v'], /symbol/],
    ];
    for (const [what, args, message] of cases) {
      await assert.rejects(loose.set(...args), (error: unknown) => {
        assert.ok(error instanceof SessionError, what);
        assert.equal(error.code, 'INVALID_ARGUMENT', what);
        assert.match(error.message, message, what);
        return true;
      });
    }
    assert.equal(store.size, 0, 'no session was created');
  });

  it('takes an object made by Object.create(null), and a String object as a value (stored as its JSON)', async () => {
    const { manager } = setup();
    const { session } = manager.open(context());
    const values = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: 'two' });
    await session.set(values);
    await session.set('wrapped', new String('text'));
    assert.deepEqual(await session.all(), { a: 1, b: 'two', wrapped: 'text' });
  });
});

describe('a stored session whose metadata is missing or damaged', () => {
  /** A manager on a MemoryStore, and a session in it whose created-at field is `createdAt` (or none). */
  async function stored(createdAt: string | undefined, options: { absoluteLifetime?: number | null } = {}) {
    const store = new MemoryStore();
    const reasons: string[] = [];
    const manager = new SessionManager({ store, ...options, onInvalidCookie: (reason) => void reasons.push(reason) });
    const cookie = await existingSession(manager);
    const [sid] = store.ids();
    const { fields } = store.inspect(sid as string) as { fields: Map<string, string> };
    fields.delete(':c');
    if (createdAt !== undefined) fields.set(':c', createdAt);
    // Written anew by something other than latchkey, under the same id.
    await store.close();
    await store.create(sid as string, [...fields], 60_000);
    return { store, manager, cookie, sid: sid as string, reasons };
  }

  for (const [what, createdAt] of [['no created-at', undefined], ['an empty created-at', ''], ['a non-numeric created-at', 'yesterday'], ['a created-at in exponent notation', '1.7e12']] as const) {
    it(`with ${what}, and an absolute lifetime: reads as no session ('expired'), is deleted, and a login starts afresh`, async () => {
      const { store, manager, cookie, sid, reasons } = await stored(createdAt);
      const { session } = manager.open(context({ cookieHeader: () => cookie }));
      assert.equal(await session.get('a'), undefined);
      assert.equal(session.id, undefined);
      assert.deepEqual(reasons, ['expired']);
      assert.equal(store.inspect(sid), undefined, 'deleted: it can never be given an absolute lifetime');

      const login = manager.open(context({ cookieHeader: () => cookie }));
      await login.session.regenerate();
      await login.session.set('user', 'alice');
      assert.deepEqual(await login.session.all(), { user: 'alice' });
      const [line] = login.setCookies();
      assert.match(line ?? '', /^session=[\w-]{43}; Max-Age=86400;/, 'a new session with a full lifetime');
    });
  }

  it('with no created-at and absoluteLifetime: null: adopted, and a login keeps the data and gives it a created-at', async () => {
    const { store, manager, cookie, reasons } = await stored(undefined, { absoluteLifetime: null });
    assert.equal(await manager.open(context({ cookieHeader: () => cookie })).session.get('a'), 1);
    const login = manager.open(context({ cookieHeader: () => cookie }));
    const before = Date.now();
    await login.session.regenerate();
    assert.deepEqual(await login.session.all(), { a: 1 });
    const [sid] = store.ids();
    assert.ok(Number(store.inspect(sid as string)?.fields.get(':c')) >= before, 'created-at is now');
    assert.deepEqual(reasons, []);
  });

  it('with a damaged last-seen: read, and refreshed at once', async () => {
    const { store, manager, cookie, sid } = await stored(String(Date.now()));
    await store.update(sid, [[':s', 'not a time']], [], { ttlMs: 1000, maxAgeMs: null, now: Date.now() }, manager.storeLimits);
    assert.equal(store.inspect(sid)?.fields.get(':s'), 'not a time', 'the last-seen field is damaged');
    const { session } = manager.open(context({ cookieHeader: () => cookie }));
    assert.equal(await session.get('a'), 1);
    const after = store.inspect(sid);
    assert.match(after?.fields.get(':s') ?? '', /^\d{13}$/, 'last-seen is a time again');
    assert.ok((after?.ttlMs ?? 0) > 1000, 'and the expiry was extended');
  });
});
