// One contract for every Store: the semantics documented in src/stores/store.ts, checked through
// the Store methods only (plus an optional helper that reads the real remaining time to live).
import * as nodeTest from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from '../core/errors.js';
import { CREATED_AT_FIELD, MAX_COUNTER, type Store, type StoreExpiry, type StoreField, type StoreLimits } from '../stores/store.js';

/** A store under test, and how to read a session's remaining time to live and clean up. */
export interface StoreFixture {
  /** The store the contract runs against. */
  readonly store: Store;
  /**
   * Remaining time to live of the entry `id` in ms; -2 when it does not exist (as Redis' PTTL
   * says). Without it the contract cannot check the time to live a write sets (reset by each
   * write, capped at the absolute deadline, left alone by a refused write), nor that a removed
   * entry is gone rather than only unreadable: the tests that check those run their other checks
   * and are then marked skipped, with the reason, where the runner can skip a test once it runs
   * (node:test, Vitest, Mocha); under Jest, which cannot, they fail and ask for `ttlOf`.
   */
  ttlOf?(id: string): Promise<number>;
  /** Releases what `setup` opened; called once after the tests. */
  close(): Promise<void>;
}

/** A long time to live for sessions that must not expire during a test. */
const LONG_MS = 60_000;
/** A shorter time to live, so that a reset to {@link LONG_MS} is easy to see. */
const SHORT_MS = 5_000;

/** An idle time to live of `ttlMs` with no absolute lifetime. */
function expiry(ttlMs: number, maxAgeMs: number | null = null): StoreExpiry {
  return { ttlMs, maxAgeMs, now: Date.now() };
}

/** Limits no test passes unless it means to. */
const ROOMY: StoreLimits = { maxFields: 1000, maxBytes: 1_000_000 };

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
 * contract there. A test skips itself through the context the runner calls it with: the first
 * argument (node:test's `t.skip(reason)`, Vitest's `context.skip(note)`) or `this` (Mocha's
 * `this.skip()`).
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

/** The checks the running test could not make, counted by the TTL helpers of {@link storeContract}. */
interface Unchecked {
  count: number;
}

/** The runner's way to mark the running test skipped, found on its context or `this`. */
function skipOf(...holders: unknown[]): ((reason: string) => void) | undefined {
  for (const holder of holders) {
    if ((typeof holder === 'object' || typeof holder === 'function') && holder !== null && typeof (holder as { skip?: unknown }).skip === 'function') {
      return (reason) => (holder as { skip(reason: string): void }).skip(reason);
    }
  }
  return undefined;
}

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
  const { describe, before, after } = test;
  const unchecked = new AsyncLocalStorage<Unchecked>();

  /**
   * Registers a test that, when it could not make some of its checks for want of `ttlOf`, marks
   * itself skipped with the reason once the others passed, or fails where the runner cannot skip.
   */
  const it = (title: string, body: () => Promise<void>): unknown =>
    // A body without declared parameters: Jest would take one as a done callback.
    test.it(title, async function (this: unknown) {
      const state: Unchecked = { count: 0 };
      await unchecked.run(state, body);
      if (state.count === 0) return;
      const reason = `the fixture gives no ttlOf: ${state.count} time-to-live check${state.count === 1 ? '' : 's'} did not run (the rest of this test passed)`;
      // eslint-disable-next-line prefer-rest-params -- the runner's context, read without declaring a parameter
      const skip = skipOf(arguments[0], this);
      if (skip === undefined) {
        throw new Error(`${reason}, and this test runner cannot mark a test skipped once it runs: give ttlOf(id), the remaining time to live in ms (-2 when missing), or run the contract under node:test, Vitest or Mocha`);
      }
      skip(reason);
    });

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

    /** The remaining TTL, or `undefined`, counted as a check not made, when the fixture cannot tell. */
    const ttl = async (id: string): Promise<number | undefined> => {
      if (fixture?.ttlOf) return fixture.ttlOf(id);
      const state = unchecked.getStore();
      if (state === undefined) throw new Error('a time-to-live check ran outside a test of the contract');
      state.count++;
      return undefined;
    };

    /** Asserts the TTL of `id` is above `min` and at most `max` (the test is skipped without ttlOf). */
    const assertTtl = async (id: string, min: number, max: number): Promise<void> => {
      const left = await ttl(id);
      if (left === undefined) return;
      assert.ok(left > min && left <= max, `TTL of ${id} should be in (${min}, ${max}], got ${left}`);
    };

    /** Asserts `id` does not exist, through load and the TTL (the test is skipped without ttlOf). */
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
        assert.equal(await store().load(id, { ...expiry(LONG_MS), set: [[':s', '1']] }), null);
        await assertMissing(id);
      });

      it('with refresh resets the TTL and sets the refresh fields', async () => {
        const id = newId();
        assert.equal(await store().create(id, [['a', '1'], ['b', '2']], SHORT_MS), true);
        await assertTtl(id, 0, SHORT_MS);
        const loaded = await store().load(id, { ...expiry(LONG_MS), set: [[':s', '123'], ['b', '3']] });
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
        const loaded = await store().load(id, { ...expiry(LONG_MS), set: [] });
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
        assert.equal(await store().update(id, [], ['only'], expiry(LONG_MS), ROOMY), true);
        await assertMissing(id);
      });

      it('sets and removes fields, resets the TTL and resolves true', async () => {
        const id = newId();
        await store().create(id, [['keep', 'k'], ['change', 'old'], ['drop', 'd'], ['drop2', 'd2']], SHORT_MS);
        const updated = await store().update(id, [['change', 'new'], ['added', 'a']], ['drop', 'drop2', 'never-there'], expiry(LONG_MS), ROOMY);
        assert.equal(updated, true);
        assert.deepEqual(await store().load(id), fieldMap([['keep', 'k'], ['change', 'new'], ['added', 'a']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('with nothing to set or remove still resets the TTL', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], SHORT_MS);
        assert.equal(await store().update(id, [], [], expiry(LONG_MS), ROOMY), true);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('resolves false on a missing id and does not create the session', async () => {
        const id = newId();
        assert.equal(await store().update(id, [['a', '1']], ['b'], expiry(LONG_MS), ROOMY), false);
        await assertMissing(id);
      });
    });

    describe('increment', () => {
      it('counts a missing field as 0 and resolves the new value', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        assert.equal(await store().increment(id, 'count', 1, [], expiry(LONG_MS), ROOMY), 1);
        assert.equal(await store().increment(id, 'count', 5, [], expiry(LONG_MS), ROOMY), 6);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1'], ['count', '6']]));
      });

      it('adds to an existing integer, and a negative `by` subtracts', async () => {
        const id = newId();
        await store().create(id, [['n', '10']], LONG_MS);
        assert.equal(await store().increment(id, 'n', -3, [], expiry(LONG_MS), ROOMY), 7);
        assert.equal(await store().increment(id, 'n', -10, [], expiry(LONG_MS), ROOMY), -3);
        assert.equal(await store().increment(id, 'n', 0, [], expiry(LONG_MS), ROOMY), -3);
        assert.equal((await store().load(id))?.get('n'), '-3');
      });

      it('sets the extra fields and resets the TTL', async () => {
        const id = newId();
        await store().create(id, [['a', '1'], ['b', 'old']], SHORT_MS);
        assert.equal(await store().increment(id, 'n', 2, [['b', 'new'], [':t', '99']], expiry(LONG_MS), ROOMY), 2);
        assert.deepEqual(await store().load(id), fieldMap([['a', '1'], ['b', 'new'], ['n', '2'], [':t', '99']]));
        await assertTtl(id, SHORT_MS, LONG_MS);
      });

      it('resolves null on a missing session and creates nothing', async () => {
        const id = newId();
        assert.equal(await store().increment(id, 'n', 1, [['x', '1']], expiry(LONG_MS), ROOMY), null);
        await assertMissing(id);
      });

      for (const value of ['"x"', '1.5', 'abc', '']) {
        it(`rejects with INVALID_ARGUMENT on the non-integer ${JSON.stringify(value)} and leaves it unchanged`, async () => {
          const id = newId();
          await store().create(id, [['n', value], ['other', 'o']], LONG_MS);
          await store().update(id, [], [], expiry(SHORT_MS), ROOMY);
          await rejectsWithCode(store().increment(id, 'n', 1, [['other', 'changed'], ['extra', 'e']], expiry(LONG_MS), ROOMY), 'INVALID_ARGUMENT');
          assert.deepEqual(await store().load(id), fieldMap([['n', value], ['other', 'o']]));
          await assertTtl(id, 0, SHORT_MS);
        });
      }

      it('counts up to MAX_COUNTER in both directions and no further, changing nothing when it refuses', async () => {
        const id = newId();
        await store().create(id, [['up', String(MAX_COUNTER - 1)], ['down', String(-MAX_COUNTER + 1)]], SHORT_MS);
        assert.equal(await store().increment(id, 'up', 1, [], expiry(SHORT_MS), ROOMY), MAX_COUNTER);
        assert.equal(await store().increment(id, 'down', -1, [], expiry(SHORT_MS), ROOMY), -MAX_COUNTER);
        await rejectsWithCode(store().increment(id, 'up', 1, [['x', '1']], expiry(LONG_MS), ROOMY), 'INVALID_ARGUMENT');
        await rejectsWithCode(store().increment(id, 'down', -1, [['x', '1']], expiry(LONG_MS), ROOMY), 'INVALID_ARGUMENT');
        assert.deepEqual(await store().load(id), fieldMap([['up', String(MAX_COUNTER)], ['down', String(-MAX_COUNTER)]]));
        await assertTtl(id, 0, SHORT_MS);
      });

      it('rejects with INVALID_ARGUMENT when the result would overflow, leaving the value unchanged', async () => {
        const id = newId();
        const max = '9223372036854775807';
        await store().create(id, [['n', max]], LONG_MS);
        await rejectsWithCode(store().increment(id, 'n', 1, [], expiry(LONG_MS), ROOMY), 'INVALID_ARGUMENT');
        assert.equal((await store().load(id))?.get('n'), max);
      });

      it('rejects with INVALID_ARGUMENT when `by` is not an integer', async () => {
        const id = newId();
        await store().create(id, [['n', '1']], LONG_MS);
        await rejectsWithCode(store().increment(id, 'n', 1.5, [], expiry(LONG_MS), ROOMY), 'INVALID_ARGUMENT');
        assert.equal((await store().load(id))?.get('n'), '1');
      });

      it('50 concurrent increments of one field give exactly 50', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        const results = await Promise.all(Array.from({ length: 50 }, () => store().increment(id, 'n', 1, [], expiry(LONG_MS), ROOMY)));
        assert.equal((await store().load(id))?.get('n'), '50');
        // Every increment saw a different value: 1 to 50, each exactly once.
        assert.deepEqual(
          [...results].sort((x, y) => (x ?? 0) - (y ?? 0)),
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
      });
    });

    describe('absolute lifetime', () => {
      const MAX_AGE = 60_000;
      /** A session created so long ago that `leftMs` of its absolute lifetime remain. */
      const createAged = async (leftMs: number, extra: StoreField[] = []): Promise<string> => {
        const id = newId('aged');
        const createdAt = String(Date.now() - MAX_AGE + leftMs);
        assert.equal(await store().create(id, [[CREATED_AT_FIELD, createdAt], ['a', '1'], ...extra], LONG_MS), true);
        return id;
      };

      it('update, increment and load with refresh never set a TTL past what is left of it', async () => {
        const ids = [await createAged(3000), await createAged(3000), await createAged(3000)] as const;
        assert.equal(await store().update(ids[0], [['b', '2']], [], expiry(LONG_MS, MAX_AGE), ROOMY), true);
        assert.equal(await store().increment(ids[1], 'n', 1, [], expiry(LONG_MS, MAX_AGE), ROOMY), 1);
        assert.ok(await store().load(ids[2], { ...expiry(LONG_MS, MAX_AGE), set: [] }));
        for (const id of ids) await assertTtl(id, 1000, 3000);
      });

      it('a session past it is deleted, and update, increment and load with refresh find nothing', async () => {
        const ids = [await createAged(-1), await createAged(-1), await createAged(-1)] as const;
        assert.equal(await store().update(ids[0], [['late', '1']], [], expiry(LONG_MS, MAX_AGE), ROOMY), false);
        assert.equal(await store().increment(ids[1], 'late', 1, [], expiry(LONG_MS, MAX_AGE), ROOMY), null);
        assert.equal(await store().load(ids[2], { ...expiry(LONG_MS, MAX_AGE), set: [['late', '1']] }), null);
        for (const id of ids) await assertMissing(id);
      });

      it('does not bound a session without a created-at field, nor when maxAgeMs is null', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], SHORT_MS);
        assert.equal(await store().update(id, [], [], expiry(LONG_MS, 1), ROOMY), true);
        await assertTtl(id, SHORT_MS, LONG_MS);
        const aged = await createAged(-1000);
        assert.equal(await store().update(aged, [], [], expiry(LONG_MS, null), ROOMY), true);
        await assertTtl(aged, SHORT_MS, LONG_MS);
      });
    });

    describe('limits', () => {
      /** Bytes of field names and values, as the limits count them. */
      const bytesOf = (fields: readonly StoreField[]): number => fields.reduce((sum, [f, v]) => sum + Buffer.byteLength(f) + Buffer.byteLength(v), 0);
      const base: StoreField[] = [['a', '1'], ['b', '22']];

      it('update rejects with LIMIT_EXCEEDED past maxFields or maxBytes and changes nothing, TTL included', async () => {
        const id = newId();
        await store().create(id, base, SHORT_MS);
        const tight: StoreLimits = { maxFields: 3, maxBytes: 100 };
        await rejectsWithCode(store().update(id, [['c', '3'], ['d', '4']], [], expiry(LONG_MS), tight), 'LIMIT_EXCEEDED');
        await rejectsWithCode(store().update(id, [['c', 'x'.repeat(100)]], [], expiry(LONG_MS), tight), 'LIMIT_EXCEEDED');
        assert.deepEqual(await store().load(id), fieldMap(base));
        await assertTtl(id, 0, SHORT_MS);
      });

      it('update counts the hash as it would be: a replaced value once, removed fields not at all', async () => {
        const id = newId();
        await store().create(id, base, LONG_MS);
        const exact: StoreLimits = { maxFields: 2, maxBytes: bytesOf([['a', '1'], ['b', 'x'.repeat(10)]]) };
        assert.equal(await store().update(id, [['b', 'x'.repeat(10)]], [], expiry(LONG_MS), exact), true);
        assert.equal(await store().update(id, [['c', '1']], ['a'], expiry(LONG_MS), exact), true);
        await rejectsWithCode(store().update(id, [['d', '1']], [], expiry(LONG_MS), exact), 'LIMIT_EXCEEDED');
        assert.deepEqual(await store().load(id), fieldMap([['b', 'x'.repeat(10)], ['c', '1']]));
      });

      it('increment rejects with LIMIT_EXCEEDED for a new field past maxFields, or a longer value past maxBytes, changing nothing', async () => {
        const id = newId();
        await store().create(id, [['n', '9']], SHORT_MS);
        await rejectsWithCode(store().increment(id, 'm', 1, [], expiry(LONG_MS), { maxFields: 1, maxBytes: 100 }), 'LIMIT_EXCEEDED');
        await rejectsWithCode(store().increment(id, 'n', 1, [], expiry(LONG_MS), { maxFields: 1, maxBytes: 2 }), 'LIMIT_EXCEEDED');
        assert.deepEqual(await store().load(id), fieldMap([['n', '9']]));
        await assertTtl(id, 0, SHORT_MS);
        assert.equal(await store().increment(id, 'n', -1, [], expiry(LONG_MS), { maxFields: 1, maxBytes: 2 }), 8);
      });

      it('holds under concurrency: 20 writers adding a field each to a session of at most 10 fields leave exactly 10', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        const limits: StoreLimits = { maxFields: 10, maxBytes: 10_000 };
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => store().update(id, [[`f${i}`, '1']], [], expiry(LONG_MS), limits)),
        );
        assert.equal(results.filter((result) => result.status === 'fulfilled').length, 9);
        assert.equal((await store().load(id))?.size, 10);
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
        assert.equal(await store().update(id, [['a', '2']], [], expiry(LONG_MS), ROOMY), false);
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
        assert.equal(await store().update(id, [['a', '2']], [], expiry(LONG_MS), ROOMY), false);
        assert.equal(await store().increment(id, 'n', 1, [], expiry(LONG_MS), ROOMY), null);
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
        assert.equal(await store().update(id, [['a', '2']], [], expiry(LONG_MS), ROOMY), false);
        await assertMissing(id);
        // Without a load first, the expired session is not revived by update or increment either.
        assert.equal(await store().update(other, [['a', '2']], [], expiry(LONG_MS), ROOMY), false);
        assert.equal(await store().increment(other, 'n', 1, [], expiry(LONG_MS), ROOMY), null);
        assert.equal(await store().load(other, { ...expiry(LONG_MS), set: [['x', '1']] }), null);
        await assertMissing(other);
        // An expired id can be created anew.
        assert.equal(await store().create(id, [['b', '1']], LONG_MS), true);
        assert.deepEqual(await store().load(id), fieldMap([['b', '1']]));
      });

      it('update, increment and load with refresh push the expiry back', async () => {
        const ids = [newId('u'), newId('i'), newId('r')] as const;
        for (const id of ids) assert.equal(await store().create(id, [['a', '1']], 300), true);
        await sleep(150);
        assert.equal(await store().update(ids[0], [], [], expiry(600), ROOMY), true);
        assert.equal(await store().increment(ids[1], 'n', 1, [], expiry(600), ROOMY), 1);
        assert.ok(await store().load(ids[2], { ...expiry(600), set: [] }));
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
        assert.equal(await store().update(id, set, [], expiry(LONG_MS), ROOMY), true);
        assert.deepEqual(await store().load(id), fieldMap([['seed', 's'], ...set]));
        assert.equal(await store().increment(id, '__proto__ count', 1, [['🙂', 'x\ny']], expiry(LONG_MS), ROOMY), 1);
        assert.ok(await store().load(id, { ...expiry(LONG_MS), set: [['ключ', ''], ['constructor', 'c']] }));
        const expected = fieldMap([['seed', 's'], ...set]);
        expected.set('__proto__ count', '1');
        expected.set('🙂', 'x\ny');
        expected.set('ключ', '');
        expected.set('constructor', 'c');
        assert.deepEqual(await store().load(id), expected);
        // Removing the odd names works too.
        assert.equal(await store().update(id, [], ['__proto__', '', 'ключ', '🙂', 'with space'], expiry(LONG_MS), ROOMY), true);
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
          Array.from({ length: 50 }, (_, i) => store().update(id, [[`f${i}`, `v${i}`]], [], expiry(LONG_MS), ROOMY)),
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
        assert.equal(await store().update(a, [['x', '2']], ['n'], expiry(LONG_MS), ROOMY), true);
        await unchanged();
        assert.equal(await store().increment(a, 'n', 10, [['y', '1']], expiry(LONG_MS), ROOMY), 10);
        await unchanged();
        assert.ok(await store().load(a, { ...expiry(LONG_MS), set: [['z', '1']] }));
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
