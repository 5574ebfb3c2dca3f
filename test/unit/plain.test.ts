// The core of the plain-object session (core/plain.ts) on a MemoryStore: what a save writes per
// top-level key, what the store then holds, and the user binding Passport's data implies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, SessionManager } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { PlainSession, defineData, fastifyPassportUser } from '../../src/core/plain.js';
import { context, cookieOf } from '../manager.js';

function setup(): { manager: SessionManager; store: MemoryStore; open: (cookie?: string) => { plain: PlainSession; cookie: () => string; lines: () => string[] } } {
  const store = new MemoryStore();
  const manager = new SessionManager({ store });
  return {
    manager,
    store,
    open(cookie) {
      const handle = manager.open(context(cookie));
      return { plain: new PlainSession(handle), cookie: () => cookieOf(handle), lines: () => handle.setCookies() };
    },
  };
}

/** The user fields of a stored session, by storage id, from the MemoryStore. */
function stored(store: MemoryStore, cookie: string): Record<string, string> {
  const id = cookie.split('=')[1] as string;
  const fields = store.inspect(storageId(id))?.fields;
  assert.ok(fields, 'the session is stored');
  return Object.fromEntries([...fields].filter(([field]) => !field.startsWith(':')));
}

describe('PlainSession', () => {
  it('without a cookie reads nothing and saves nothing for an unchanged object', async () => {
    const { open, store } = setup();
    const { plain, lines } = open();
    const data = Object.fromEntries(await plain.load());
    assert.deepEqual(data, {});
    await plain.save(data);
    assert.equal(plain.exists, false);
    assert.deepEqual(lines(), []);
    assert.equal(store.size, 0);
  });

  it('writes only the keys that changed, a nested change in place included, and removes deleted keys', async () => {
    const { open, store } = setup();
    const first = open();
    const planned = first.plain.handle;
    await first.plain.load();
    await first.plain.save({ a: 1, cart: { items: ['x'] }, gone: true });
    assert.equal(first.plain.handle, planned, 'the session gets the handle named before it was saved');
    const cookie = first.cookie();
    assert.deepEqual(stored(store, cookie), { a: '1', cart: '{"items":["x"]}', gone: 'true' });

    const second = open(cookie);
    const data: Record<string, unknown> = {};
    defineData(data, await second.plain.load());
    (data['cart'] as { items: string[] }).items.push('y');
    delete data['gone'];
    assert.deepEqual(second.plain.changes(data), { set: [['cart', '{"items":["x","y"]}']], remove: ['gone'] });
    await second.plain.save(data);
    assert.deepEqual(second.lines(), [], 'an existing session is not sent again');
    assert.deepEqual(stored(store, cookie), { a: '1', cart: '{"items":["x","y"]}' });
  });

  it('never overwrites a key another request changed when this one did not', async () => {
    const { open, store } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ a: 1, b: 1 });
    const cookie = first.cookie();
    const one = open(cookie);
    const two = open(cookie);
    const dataOne = Object.fromEntries(await one.plain.load());
    const dataTwo = Object.fromEntries(await two.plain.load());
    dataOne['a'] = 2;
    dataTwo['b'] = 3;
    await one.plain.save(dataOne);
    await two.plain.save(dataTwo);
    assert.deepEqual(stored(store, cookie), { a: '2', b: '3' });
  });

  it('keeps a __proto__ key as data', async () => {
    const { open, store } = setup();
    const first = open();
    await first.plain.load();
    const data = {};
    defineData(data, [['__proto__', { polluted: true }]]);
    await first.plain.save(data);
    const cookie = first.cookie();
    assert.deepEqual(Object.entries(stored(store, cookie)), [['__proto__', '{"polluted":true}']]);
    const target = {};
    defineData(target, await open(cookie).plain.load());
    assert.equal(Object.getPrototypeOf(target), Object.prototype);
    assert.deepEqual(Object.keys(target), ['__proto__']);
  });

  it('binds the user Passport names to the session, and lists it under that user', async () => {
    const { open, manager } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ passport: { user: 42 }, theme: 'dark' });
    const cookie = first.cookie();
    const sessions = await manager.admin.listUserSessions(42);
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]?.handle, first.plain.handle);
    assert.equal(await open(cookie).plain.session.userId(), '42');

    // Passport's logout removes the user: the session goes on under a new id that belongs to no one.
    const second = open(cookie);
    const data = Object.fromEntries(await second.plain.load());
    data['passport'] = {};
    await second.plain.save(data);
    const after = second.cookie();
    assert.notEqual(after, cookie);
    assert.deepEqual(await manager.admin.listUserSessions(42), []);
    assert.deepEqual(Object.fromEntries(await open(after).plain.load()), { passport: {}, theme: 'dark' });
    assert.deepEqual(await open(cookie).plain.load(), [], 'the old id holds nothing');
  });

  it("finds @fastify/passport's user: the passport key itself, or its id", () => {
    assert.equal(fastifyPassportUser({ passport: 'alice' }), 'alice');
    assert.equal(fastifyPassportUser({ passport: 7 }), 7);
    assert.equal(fastifyPassportUser({ passport: { id: 'bob', name: 'Bob' } }), 'bob');
    assert.equal(fastifyPassportUser({ passport: null }), null);
    assert.equal(fastifyPassportUser({}), undefined);
  });

  it('regenerate() starts afresh: the data is not carried, and a save goes to a new id', async () => {
    const { open } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ a: 1 });
    const cookie = first.cookie();
    const second = open(cookie);
    await second.plain.load();
    await second.plain.regenerate();
    await second.plain.save({ b: 2 });
    const after = second.cookie();
    assert.notEqual(after, cookie);
    assert.deepEqual(Object.fromEntries(await open(after).plain.load()), { b: 2 });
    assert.deepEqual(await open(cookie).plain.load(), []);
  });

  it('takes a value still equal to the one loaded as unchanged, and writes it again to a session started afresh', async () => {
    const { open, store } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ a: 1, s: 'x', n: null, t: true, o: { k: 1 } });
    const cookie = first.cookie();

    const second = open(cookie);
    const data = Object.fromEntries(await second.plain.load());
    assert.deepEqual(second.plain.changes(data), { set: [], remove: [] });
    data['a'] = 2;
    data['s'] = 'x';
    assert.deepEqual(second.plain.changes(data), { set: [['a', '2']], remove: [] });
    await second.plain.save(data);
    data['a'] = 1;
    assert.deepEqual(second.plain.changes(data), { set: [['a', '1']], remove: [] }, 'compared with what the save wrote');

    // After regenerate() nothing is stored: the same values are new again.
    await second.plain.regenerate();
    await second.plain.save({ a: 1, s: 'x' });
    const after = second.cookie();
    assert.notEqual(after, cookie);
    assert.deepEqual(stored(store, after), { a: '1', s: '"x"' });
  });

  it('renewOnSave() moves the data to a new id at the next save, once, even when the save signs a user in', async () => {
    const { open, store } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ a: 1 });
    const cookie = first.cookie();

    // No change of user: the save regenerates, then writes.
    const second = open(cookie);
    const data = Object.fromEntries(await second.plain.load());
    second.plain.renewOnSave();
    data['b'] = 2;
    await second.plain.save(data);
    const renewed = second.cookie();
    assert.notEqual(renewed, cookie);
    assert.deepEqual(stored(store, renewed), { a: '1', b: '2' });
    assert.deepEqual(await open(cookie).plain.load(), [], 'the old id holds nothing');

    // Passport's login: regenerate, then a save that names the user: one move, not two.
    const third = open(renewed);
    const before = Object.fromEntries(await third.plain.load());
    third.plain.renewOnSave();
    before['passport'] = { user: 'ann' };
    const sizeBefore = store.size;
    await third.plain.save(before);
    const loggedIn = third.cookie();
    assert.notEqual(loggedIn, renewed);
    assert.equal(store.size, sizeBefore, 'the session moved; no second copy');
    assert.deepEqual(stored(store, loggedIn), { a: '1', b: '2', passport: '{"user":"ann"}' });
    assert.equal(await open(loggedIn).plain.session.userId(), 'ann');
  });

  it('renewOnSave() leaves a session this request started where it is', async () => {
    const { open } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ a: 1 });
    const handle = first.plain.handle;
    first.plain.renewOnSave();
    await first.plain.save({ a: 1, b: 2 });
    assert.equal(first.plain.handle, handle);
    assert.deepEqual(Object.fromEntries(await open(first.cookie()).plain.load()), { a: 1, b: 2 });
  });

  it('resends the cookie with the Max-Age asked for, capped by the absolute lifetime', async () => {
    const store = new MemoryStore();
    const manager = new SessionManager({ store, absoluteLifetime: 3600 });
    const first = manager.open(context());
    const plain = new PlainSession(first);
    await plain.load();
    await plain.save({ a: 1 });
    const cookie = cookieOf(first);
    const second = manager.open(context(cookie));
    const again = new PlainSession(second);
    await again.load();
    again.resendCookie(30 * 86_400);
    const [line] = second.setCookies();
    assert.match(line ?? '', /Max-Age=360[01]/);
    assert.equal(line?.split(';')[0], cookie);
  });

  it('neither writes nor removes the keys in skip, the API\'s own names', async () => {
    const { open, store } = setup();
    const first = open();
    await first.plain.load();
    await first.plain.save({ save: 'stored by another API', a: 1 });
    const cookie = first.cookie();
    const second = open(cookie);
    await second.plain.load();
    const skip = new Set(['save', 'cookie']);
    assert.deepEqual(second.plain.changes({ a: 2, cookie: { maxAge: 1 } }, skip), { set: [['a', '2']], remove: [] });
    await second.plain.save({ a: 2, cookie: { maxAge: 1 } }, skip);
    assert.deepEqual(stored(store, cookie), { save: '"stored by another API"', a: '2' });
  });
});
