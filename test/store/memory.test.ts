import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { storeContract } from 'latchkey/testing';

storeContract('MemoryStore', async () => {
  const store = new MemoryStore();
  return {
    store,
    ttlOf: async (id) => store.inspect(id)?.ttlMs ?? -2,
    close: () => store.close(),
  };
});

describe('storeContract with the test functions of another runner', () => {
  it('registers every test, hook and group through the functions it is given', () => {
    const seen = { describe: 0, it: 0, before: 0, after: 0 };
    storeContract('recorded', async () => ({ store: new MemoryStore(), close: async () => {} }), {
      describe: (_name, body) => (seen.describe++, body()),
      it: () => seen.it++,
      before: () => seen.before++,
      after: () => seen.after++,
    });
    assert.ok(seen.it >= 36, `registered ${seen.it} tests`);
    assert.ok(seen.describe >= 10, `registered ${seen.describe} groups`);
    assert.deepEqual([seen.before, seen.after], [1, 1]);
  });
});

function assertInvalidOptions(make: () => unknown): void {
  assert.throws(make, (error: unknown) => {
    assert.ok(error instanceof SessionError, `expected a SessionError, got ${String(error)}`);
    assert.equal(error.code, 'INVALID_OPTIONS');
    return true;
  });
}

describe('MemoryStore outside the contract', () => {
  it('maxSessions evicts the least recently used session', async () => {
    const store = new MemoryStore({ maxSessions: 2 });
    assert.equal(await store.create('old-but-loaded', [['a', '1']], 60_000), true);
    assert.equal(await store.create('untouched', [['a', '2']], 60_000), true);
    // Loading the older session makes it the most recently used.
    assert.ok(await store.load('old-but-loaded'));
    assert.equal(await store.create('third', [['a', '3']], 60_000), true);
    assert.equal(store.size, 2);
    assert.deepEqual(await store.load('old-but-loaded'), new Map([['a', '1']]));
    assert.deepEqual(await store.load('third'), new Map([['a', '3']]));
    assert.equal(await store.load('untouched'), null);
    assert.deepEqual(store.ids().sort(), ['old-but-loaded', 'third']);
  });

  it('maxSessions: update and increment also count as use', async () => {
    const store = new MemoryStore({ maxSessions: 3 });
    for (const id of ['a', 'b', 'c']) await store.create(id, [['n', '0']], 60_000);
    assert.equal(await store.update('a', [['x', '1']], [], { ttlMs: 60_000, maxAgeMs: null, now: Date.now() }, { maxFields: 10, maxBytes: 1000 }), true);
    assert.equal(await store.increment('b', 'n', 1, [], { ttlMs: 60_000, maxAgeMs: null, now: Date.now() }, { maxFields: 10, maxBytes: 1000 }), 1);
    await store.create('d', [['n', '0']], 60_000);
    assert.equal(await store.load('c'), null);
    for (const id of ['a', 'b', 'd']) assert.ok(await store.load(id), `${id} should survive`);
  });

  it('maxSessions: 1 keeps only the newest session', async () => {
    const store = new MemoryStore({ maxSessions: 1 });
    await store.create('a', [['n', '0']], 60_000);
    await store.create('b', [['n', '0']], 60_000);
    assert.equal(store.size, 1);
    assert.equal(await store.load('a'), null);
    assert.ok(await store.load('b'));
  });

  it('maxSessions: an expired session makes room before a live one is evicted', async () => {
    const store = new MemoryStore({ maxSessions: 2 });
    await store.create('expiring', [['n', '0']], 30);
    await store.create('live', [['n', '0']], 60_000);
    await sleep(60);
    await store.create('new', [['n', '0']], 60_000);
    assert.ok(await store.load('live'));
    assert.ok(await store.load('new'));
  });

  it('rejects maxSessions that is not a whole number above 0 with INVALID_OPTIONS', () => {
    assertInvalidOptions(() => new MemoryStore({ maxSessions: 0 }));
    assertInvalidOptions(() => new MemoryStore({ maxSessions: -1 }));
    assertInvalidOptions(() => new MemoryStore({ maxSessions: 1.5 }));
    assertInvalidOptions(() => new MemoryStore({ maxSessions: Number.NaN }));
    assertInvalidOptions(() => new MemoryStore({ maxSessions: Infinity }));
    assertInvalidOptions(() => new MemoryStore({ maxSessions: '10' as unknown as number }));
  });

  it('does not count expired sessions in size', async () => {
    const store = new MemoryStore();
    await store.create('short-1', [['a', '1']], 30);
    await store.create('short-2', [['a', '1']], 30);
    await store.create('long', [['a', '1']], 60_000);
    assert.equal(store.size, 3);
    await sleep(80);
    assert.equal(store.size, 1);
    assert.deepEqual(store.ids(), ['long']);
    assert.equal(store.inspect('short-1'), undefined);
  });

  it('does not share its maps with callers', async () => {
    const store = new MemoryStore();
    await store.create('s', [['a', '1']], 60_000);
    const loaded = await store.load('s');
    loaded?.set('a', 'mutated');
    loaded?.set('b', 'added');
    assert.deepEqual(await store.load('s'), new Map([['a', '1']]));
    const inspected = store.inspect('s');
    inspected?.fields.set('a', 'mutated');
    assert.deepEqual(await store.load('s'), new Map([['a', '1']]));
  });

  it('close() drops every session', async () => {
    const store = new MemoryStore();
    await store.create('s', [['a', '1']], 60_000);
    await store.close();
    assert.equal(store.size, 0);
    assert.equal(await store.load('s'), null);
  });
});
