// One contract for every Store: the semantics documented in src/stores/store.ts, checked through
// the Store methods only (plus an optional helper that reads the real remaining time to live).
import * as nodeTest from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from '../core/errors.js';
import { MAX_COUNTER, type Store, type StoreField } from '../stores/store.js';

/** A store under test, and how to read a session's remaining time to live and clean up. */
export interface StoreFixture {
  /** The store the contract runs against. */
  readonly store: Store;
  /**
   * Remaining time to live of the entry `id` in ms; -2 when it does not exist (as Redis' PTTL
   * says). Without it, the contract checks expiry only by waiting for it.
   */
  ttlOf?(id: string): Promise<number>;
  /** Releases what `setup` opened; called once after the tests. */
  close(): Promise<void>;
}

/** A long time to live for sessions that must not expire during a test. */
const LONG_MS = 60_000;
/** A shorter time to live, so that a reset to {@link LONG_MS} is easy to see. */
const SHORT_MS = 5_000;

/** A fresh id no other test (or earlier run) uses. */
function newId(label = 's'): string {
  return `contract-${label}-${randomBytes(8).toString('hex')}`;
}

function fieldMap(fields: readonly StoreField[]): Map<string, string> {
  return new Map(fields);
}

/** Asserts that `promise` rejects with a SessionError of the given code. */
async function rejectsWithCode(promise: Promise<unknown>, code: SessionError['code']): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SessionError, `expected a SessionError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

/**
 * The test functions the contract registers its tests with. By default those of `node:test`;
 * pass Vitest's or Jest's (`{ describe, it, before: beforeAll, after: afterAll }`) to run the
 * contract there.
 */
export interface TestApi {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>): unknown;
  before(body: () => Promise<void>): unknown;
  after(body: () => Promise<void>): unknown;
}

const NODE_TEST: TestApi = {
  describe: (name, body) => nodeTest.describe(name, body),
  it: (name, body) => nodeTest.it(name, body),
  before: (body) => nodeTest.before(body),
  after: (body) => nodeTest.after(body),
};

/**
 * Registers `describe(name)` with the tests of the {@link Store} contract: every operation, its
 * conditions, expiry, field names and values, concurrency. A store that passes them behaves like
 * latchkey's own stores, so sessions behave the same on it. `setup` runs once before the tests;
 * every test uses its own ids, so the tests do not depend on each other, and a shared backend
 * needs no cleaning between them. Some tests wait a few seconds for entries to expire.
 *
 * ```ts
 * import { storeContract } from 'latchkey/testing';
 * storeContract('MyStore', async () => {
 *   const store = new MyStore();
 *   return { store, ttlOf: (id) => store.ttl(id), close: () => store.close() };
 * });
 * ```
 *
 * @param test - the test functions to register with; `node:test`'s by default
 */
export function storeContract(name: string, setup: () => Promise<StoreFixture>, test: TestApi = NODE_TEST): void {
  const { describe, it, before, after } = test;
  describe(name, () => {
    let fixture: StoreFixture | undefined;

    before(async () => {
      fixture = await setup();
    });

    after(async () => {
      await fixture?.close();
    });

    const store = (): Store => {
      if (fixture === undefined) throw new Error('store fixture was not set up');
      return fixture.store;
    };

    /** The remaining TTL, or `undefined` when the fixture cannot tell. */
    const ttl = async (id: string): Promise<number | undefined> => (fixture?.ttlOf ? fixture.ttlOf(id) : undefined);

    /** Asserts the TTL of `id` is above `min` and at most `max` (skipped without ttlOf). */
    const assertTtl = async (id: string, min: number, max: number): Promise<void> => {
      const left = await ttl(id);
      if (left === undefined) return;
      assert.ok(left > min && left <= max, `TTL of ${id} should be in (${min}, ${max}], got ${left}`);
    };

    /** Asserts `id` does not exist, through load and (when available) the TTL. */
    const assertMissing = async (id: string): Promise<void> => {
      assert.equal(await store().load(id), null, `${id} should not exist`);
      const left = await ttl(id);
      if (left !== undefined) assert.equal(left, -2, `${id} should have no TTL, got ${left}`);
    };

    describe('load', () => {
      it('resolves null for a missing id', async () => {
        assert.equal(await store().load(newId()), null);
      });

      it('resolves null with refresh for a missing id and does not create it', async () => {
        const id = newId();
        assert.equal(await store().load(id, { ttlMs: LONG_MS, set: [[':s', '1']] }), null);
        await assertMissing(id);
      });

      it('with refresh resets the TTL and sets the refresh fields', async () => {
        const id = newId();
        assert.equal(await store().create(id, [['a', '1'], ['b', '2']], SHORT_MS), true);
        await assertTtl(id, 0, SHORT_MS);
        const loaded = await store().load(id, { ttlMs: LONG_MS, set: [[':s', '123'], ['b', '3']] });
        assert.ok(loaded instanceof Map, 'load should resolve a Map');
        // The returned map may show the fields before or after the refresh: only check the old ones.
        assert.equal(loaded.get('a'), '1');
        assert.ok(loaded.has('b'));
        assert.deepEqual(await store().load(id), fieldMap([['a', '1'], ['b', '3'], [':s', '123']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('with refresh and no fields to set only resets the TTL', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], SHORT_MS);
        const loaded = await store().load(id, { ttlMs: LONG_MS, set: [] });
        assert.deepEqual(loaded, fieldMap([['a', '1']]));
        assert.deepEqual(await store().load(id), fieldMap([['a', '1']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('without refresh does not change the TTL', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], SHORT_MS);
        await store().load(id);
        await assertTtl(id, 0, SHORT_MS);
      });
    });

    describe('create', () => {
      it('resolves true and load returns exactly the fields, as a Map of strings', async () => {
        const id = newId();
        const fields: StoreField[] = [[':c', '1700000000000'], ['name', '"alice"'], ['n', '42']];
        assert.equal(await store().create(id, fields, LONG_MS), true);
        const loaded = await store().load(id);
        assert.ok(loaded instanceof Map, 'load should resolve a Map');
        assert.deepEqual(loaded, fieldMap(fields));
        for (const [field, value] of loaded) {
          assert.equal(typeof field, 'string');
          assert.equal(typeof value, 'string');
        }
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('resolves false on an existing id and changes nothing (fields nor TTL)', async () => {
        const id = newId();
        assert.equal(await store().create(id, [['a', '1'], ['b', '2']], SHORT_MS), true);
        assert.equal(await store().create(id, [['a', 'other'], ['c', '3']], LONG_MS), false);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1'], ['b', '2']]));
        await assertTtl(id, 0, SHORT_MS);
      });
    });

    describe('update', () => {
      it('leaves no session behind when the last field is removed', async () => {
        const id = newId();
        await store().create(id, [['only', '1']], LONG_MS);
        assert.equal(await store().update(id, [], ['only'], LONG_MS), true);
        await assertMissing(id);
      });

      it('sets and removes fields, resets the TTL and resolves true', async () => {
        const id = newId();
        await store().create(id, [['keep', 'k'], ['change', 'old'], ['drop', 'd'], ['drop2', 'd2']], SHORT_MS);
        const updated = await store().update(id, [['change', 'new'], ['added', 'a']], ['drop', 'drop2', 'never-there'], LONG_MS);
        assert.equal(updated, true);
        assert.deepEqual(await store().load(id), fieldMap([['keep', 'k'], ['change', 'new'], ['added', 'a']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('with nothing to set or remove still resets the TTL', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], SHORT_MS);
        assert.equal(await store().update(id, [], [], LONG_MS), true);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('resolves false on a missing id and does not create the session', async () => {
        const id = newId();
        assert.equal(await store().update(id, [['a', '1']], ['b'], LONG_MS), false);
        await assertMissing(id);
      });
    });

    describe('increment', () => {
      it('counts a missing field as 0 and resolves the new value', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        assert.equal(await store().increment(id, 'count', 1, [], LONG_MS), 1);
        assert.equal(await store().increment(id, 'count', 5, [], LONG_MS), 6);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1'], ['count', '6']]));
      });

      it('adds to an existing integer, and a negative `by` subtracts', async () => {
        const id = newId();
        await store().create(id, [['n', '10']], LONG_MS);
        assert.equal(await store().increment(id, 'n', -3, [], LONG_MS), 7);
        assert.equal(await store().increment(id, 'n', -10, [], LONG_MS), -3);
        assert.equal(await store().increment(id, 'n', 0, [], LONG_MS), -3);
        assert.equal((await store().load(id))?.get('n'), '-3');
      });

      it('sets the extra fields and resets the TTL', async () => {
        const id = newId();
        await store().create(id, [['a', '1'], ['b', 'old']], SHORT_MS);
        assert.equal(await store().increment(id, 'n', 2, [['b', 'new'], [':t', '99']], LONG_MS), 2);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1'], ['b', 'new'], ['n', '2'], [':t', '99']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('resolves null on a missing session and creates nothing', async () => {
        const id = newId();
        assert.equal(await store().increment(id, 'n', 1, [['x', '1']], LONG_MS), null);
        await assertMissing(id);
      });

      for (const value of ['"x"', '1.5', 'abc', '']) {
        it(`rejects with INVALID_ARGUMENT on the non-integer ${JSON.stringify(value)} and leaves it unchanged`, async () => {
          const id = newId();
          await store().create(id, [['n', value], ['other', 'o']], LONG_MS);
          await store().update(id, [], [], SHORT_MS);
          await rejectsWithCode(store().increment(id, 'n', 1, [['other', 'changed'], ['extra', 'e']], LONG_MS), 'INVALID_ARGUMENT');
          assert.deepEqual(await store().load(id), fieldMap([['n', value], ['other', 'o']]));
          await assertTtl(id, 0, SHORT_MS);
        });
      }

      it('counts up to MAX_COUNTER in both directions and no further, changing nothing when it refuses', async () => {
        const id = newId();
        await store().create(id, [['up', String(MAX_COUNTER - 1)], ['down', String(-MAX_COUNTER + 1)]], SHORT_MS);
        assert.equal(await store().increment(id, 'up', 1, [], SHORT_MS), MAX_COUNTER);
        assert.equal(await store().increment(id, 'down', -1, [], SHORT_MS), -MAX_COUNTER);
        await rejectsWithCode(store().increment(id, 'up', 1, [['x', '1']], LONG_MS), 'INVALID_ARGUMENT');
        await rejectsWithCode(store().increment(id, 'down', -1, [['x', '1']], LONG_MS), 'INVALID_ARGUMENT');
        assert.deepEqual(await store().load(id), fieldMap([['up', String(MAX_COUNTER)], ['down', String(-MAX_COUNTER)]]));
        await assertTtl(id, 0, SHORT_MS);
      });

      it('rejects with INVALID_ARGUMENT when the result would overflow, leaving the value unchanged', async () => {
        const id = newId();
        const max = '9223372036854775807';
        await store().create(id, [['n', max]], LONG_MS);
        await rejectsWithCode(store().increment(id, 'n', 1, [], LONG_MS), 'INVALID_ARGUMENT');
        assert.equal((await store().load(id))?.get('n'), max);
      });

      it('rejects with INVALID_ARGUMENT when `by` is not an integer', async () => {
        const id = newId();
        await store().create(id, [['n', '1']], LONG_MS);
        await rejectsWithCode(store().increment(id, 'n', 1.5, [], LONG_MS), 'INVALID_ARGUMENT');
        assert.equal((await store().load(id))?.get('n'), '1');
      });

      it('50 concurrent increments of one field give exactly 50', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        const results = await Promise.all(Array.from({ length: 50 }, () => store().increment(id, 'n', 1, [], LONG_MS)));
        assert.equal((await store().load(id))?.get('n'), '50');
        // Every increment saw a different value: 1 to 50, each exactly once.
        assert.deepEqual(
          [...results].sort((x, y) => (x ?? 0) - (y ?? 0)),
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
      });
    });

    describe('take', () => {
      it('resolves the fields and the session is gone afterwards', async () => {
        const id = newId();
        const fields: StoreField[] = [['a', '1'], [':c', '2']];
        await store().create(id, fields, LONG_MS);
        assert.deepEqual(await store().take(id), fieldMap(fields));
        await assertMissing(id);
        assert.equal(await store().take(id), null);
        assert.equal(await store().update(id, [['a', '2']], [], LONG_MS), false);
        await assertMissing(id);
      });

      it('resolves null on a missing id', async () => {
        const id = newId();
        assert.equal(await store().take(id), null);
        await assertMissing(id);
      });

      it('hands the fields to only one of two concurrent takes', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        const [first, second] = await Promise.all([store().take(id), store().take(id)]);
        const winners = [first, second].filter((result) => result !== null);
        assert.equal(winners.length, 1);
        assert.deepEqual(winners[0], fieldMap([['a', '1']]));
      });
    });

    describe('destroy', () => {
      it('removes the session', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        await store().destroy(id);
        await assertMissing(id);
        assert.equal(await store().update(id, [['a', '2']], [], LONG_MS), false);
        assert.equal(await store().increment(id, 'n', 1, [], LONG_MS), null);
        await assertMissing(id);
      });

      it('does not throw on a missing id', async () => {
        const id = newId();
        await store().destroy(id);
        await store().destroy(id);
        await assertMissing(id);
      });

      it('lets the id be created again', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        await store().destroy(id);
        assert.equal(await store().create(id, [['b', '2']], LONG_MS), true);
        assert.deepEqual(await store().load(id), fieldMap([['b', '2']]));
      });
    });

    describe('expiry', () => {
      it('a session created with ttlMs 300 is gone after ~450 ms, and update does not revive it', async () => {
        const id = newId();
        const other = newId();
        assert.equal(await store().create(id, [['a', '1']], 300), true);
        assert.equal(await store().create(other, [['a', '1']], 300), true);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1']]));
        await sleep(450);
        assert.equal(await store().load(id), null);
        assert.equal(await store().update(id, [['a', '2']], [], LONG_MS), false);
        await assertMissing(id);
        // Without a load first, the expired session is not revived by update or increment either.
        assert.equal(await store().update(other, [['a', '2']], [], LONG_MS), false);
        assert.equal(await store().increment(other, 'n', 1, [], LONG_MS), null);
        assert.equal(await store().load(other, { ttlMs: LONG_MS, set: [['x', '1']] }), null);
        await assertMissing(other);
        // An expired id can be created anew.
        assert.equal(await store().create(id, [['b', '1']], LONG_MS), true);
        assert.deepEqual(await store().load(id), fieldMap([['b', '1']]));
      });

      it('update, increment and load with refresh push the expiry back', async () => {
        const ids = [newId('u'), newId('i'), newId('r')] as const;
        for (const id of ids) assert.equal(await store().create(id, [['a', '1']], 300), true);
        await sleep(150);
        assert.equal(await store().update(ids[0], [], [], 600), true);
        assert.equal(await store().increment(ids[1], 'n', 1, [], 600), 1);
        assert.ok(await store().load(ids[2], { ttlMs: 600, set: [] }));
        // 450 ms after creation: past the first TTL, well within the reset one.
        await sleep(300);
        for (const id of ids) assert.notEqual(await store().load(id), null, `${id} should still exist`);
      });

      it('a plain load does not push the expiry back', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], 300);
        await sleep(150);
        assert.ok(await store().load(id));
        await sleep(300);
        assert.equal(await store().load(id), null);
      });
    });

    describe('field names and values', () => {
      const names = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', ':c', 'with space', 'ключ', '🙂', 'a\nb', '0', '1'];
      const values = ['', 'ключ значение', '🙂 emoji', 'line1\nline2\r\nline3', '"json"', '{"a":[1,2]}', '\u0000nul', ' padded ', '0'];

      it('round-trip exactly through create, load and take', async () => {
        const id = newId();
        const fields: StoreField[] = names.map((name, i) => [name, values[i % values.length] as string]);
        assert.equal(await store().create(id, fields, LONG_MS), true);
        const loaded = await store().load(id);
        assert.deepEqual(loaded, fieldMap(fields));
        assert.equal(Object.getPrototypeOf(loaded), Map.prototype);
        assert.deepEqual(await store().take(id), fieldMap(fields));
      });

      it('round-trip exactly through update, increment and load with refresh', async () => {
        const id = newId();
        await store().create(id, [['seed', 's']], LONG_MS);
        const set: StoreField[] = names.map((name, i) => [name, values[(i + 3) % values.length] as string]);
        assert.equal(await store().update(id, set, [], LONG_MS), true);
        assert.deepEqual(await store().load(id), fieldMap([['seed', 's'], ...set]));
        assert.equal(await store().increment(id, '__proto__ count', 1, [['🙂', 'x\ny']], LONG_MS), 1);
        assert.ok(await store().load(id, { ttlMs: LONG_MS, set: [['ключ', ''], ['constructor', 'c']] }));
        const expected = fieldMap([['seed', 's'], ...set]);
        expected.set('__proto__ count', '1');
        expected.set('🙂', 'x\ny');
        expected.set('ключ', '');
        expected.set('constructor', 'c');
        assert.deepEqual(await store().load(id), expected);
        // Removing the odd names works too.
        assert.equal(await store().update(id, [], ['__proto__', '', 'ключ', '🙂', 'with space'], LONG_MS), true);
        for (const name of ['__proto__', '', 'ключ', '🙂', 'with space']) expected.delete(name);
        assert.deepEqual(await store().load(id), expected);
      });

      it('ids with odd characters are stored as given', async () => {
        const base = newId();
        const ids = [`${base}:x`, `${base} space`, `${base}-ключ-🙂`, `${base}{tag}`];
        for (const [i, id] of ids.entries()) assert.equal(await store().create(id, [['i', String(i)]], LONG_MS), true);
        for (const [i, id] of ids.entries()) assert.deepEqual(await store().load(id), fieldMap([['i', String(i)]]));
        for (const id of ids) await store().destroy(id);
        for (const id of ids) await assertMissing(id);
      });
    });

    describe('concurrency', () => {
      it('50 concurrent updates of different fields all survive', async () => {
        const id = newId();
        await store().create(id, [['base', 'b']], LONG_MS);
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store().update(id, [[`f${i}`, `v${i}`]], [], LONG_MS)),
        );
        assert.ok(results.every((result) => result === true));
        const expected = new Map<string, string>([['base', 'b']]);
        for (let i = 0; i < 50; i++) expected.set(`f${i}`, `v${i}`);
        assert.deepEqual(await store().load(id), expected);
      });

      it('concurrent creates of one id: exactly one wins', async () => {
        const id = newId();
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store().create(id, [['who', String(i)]], LONG_MS)));
        assert.equal(results.filter((result) => result).length, 1);
        const winner = results.indexOf(true);
        assert.deepEqual(await store().load(id), fieldMap([['who', String(winner)]]));
      });
    });

    describe('ids are independent', () => {
      it('operations on one id never affect another', async () => {
        const a = newId('a');
        const b = newId('b');
        const bFields: StoreField[] = [['x', '1'], ['n', '5']];
        assert.equal(await store().create(a, [['x', '1'], ['n', '5']], LONG_MS), true);
        assert.equal(await store().create(b, bFields, SHORT_MS), true);
        const unchanged = async (): Promise<void> => {
          assert.deepEqual(await store().load(b), fieldMap(bFields));
          await assertTtl(b, 0, SHORT_MS);
        };
        assert.equal(await store().create(a, [['x', '2']], LONG_MS), false);
        await unchanged();
        assert.equal(await store().update(a, [['x', '2']], ['n'], LONG_MS), true);
        await unchanged();
        assert.equal(await store().increment(a, 'n', 10, [['y', '1']], LONG_MS), 10);
        await unchanged();
        assert.ok(await store().load(a, { ttlMs: LONG_MS, set: [['z', '1']] }));
        await unchanged();
        assert.ok(await store().take(a));
        await unchanged();
        await store().destroy(a);
        await unchanged();
        // And the other way round: b's end does not touch a new a.
        assert.equal(await store().create(a, [['again', '1']], LONG_MS), true);
        await store().destroy(b);
        assert.deepEqual(await store().load(a), fieldMap([['again', '1']]));
        await assertMissing(b);
      });

      it('an id that is a prefix of another is a different session', async () => {
        const base = newId();
        await store().create(base, [['which', 'short']], LONG_MS);
        await store().create(`${base}0`, [['which', 'long']], LONG_MS);
        await store().destroy(base);
        assert.deepEqual(await store().load(`${base}0`), fieldMap([['which', 'long']]));
      });
    });
  });
}
