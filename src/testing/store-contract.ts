// One contract for every Store: the semantics documented in src/stores/store.ts, checked through
// the Store methods only (plus an optional helper that reads the real remaining time to live).
import * as nodeTest from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from '../core/errors.js';
import { CREATED_AT_FIELD, MAX_COUNTER, type Store, type StoreChange, type StoreExpiry, type StoreField, type StoreLimits } from '../stores/store.js';

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
/** Limits raised far, as an app may. */
const ROOMY_LARGE: StoreLimits = { maxFields: 100_000, maxBytes: 100_000_000 };

/** A move that changes no field. */
const NO_CHANGE: StoreChange = { set: [], remove: [] };

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

    /**
     * Asserts `id` was ended: it reads as missing, cannot be created again, and writes and moves
     * reject with SESSION_GONE, changing nothing.
     */
    const assertEnded = async (id: string): Promise<void> => {
      assert.equal(await store().load(id), null, `${id} should read as missing`);
      await rejectsWithCode(store().update(id, [['late', '1']], [], expiry(LONG_MS), ROOMY), 'SESSION_GONE');
      await rejectsWithCode(store().increment(id, 'late', 1, [], expiry(LONG_MS), ROOMY), 'SESSION_GONE');
      await rejectsWithCode(store().move(id, newId('to'), NO_CHANGE, expiry(LONG_MS)), 'SESSION_GONE');
      assert.equal(await store().create(id, [['late', '1']], LONG_MS), false, 'an ended id is not created again');
      assert.equal(await store().load(id), null, `${id} should still read as missing`);
    };

    describe('load', () => {
      it('resolves null for a missing id', async () => {
        assert.equal(await store().load(newId()), null);
      });

      it('does not change the TTL', async () => {
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

      it('sets and removes thousands of fields in one call, as create does', async () => {
        const id = newId();
        const many: StoreField[] = Array.from({ length: 5000 }, (_, i) => [`f${i}`, `v${i}`]);
        assert.equal(await store().create(id, many, LONG_MS), true);
        assert.equal((await store().load(id))?.size, 5000);
        const changed: StoreField[] = many.map(([field]) => [field, 'changed']);
        assert.equal(await store().update(id, changed, [], expiry(LONG_MS), ROOMY_LARGE), true);
        assert.deepEqual(await store().load(id), fieldMap(changed));
        assert.equal(await store().update(id, [['kept', '1']], many.map(([field]) => field), expiry(LONG_MS), ROOMY_LARGE), true);
        assert.deepEqual(await store().load(id), fieldMap([['kept', '1']]));
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

      it('update, increment and move never set a TTL past what is left of it', async () => {
        const ids = [await createAged(3000), await createAged(3000), await createAged(3000)] as const;
        assert.equal(await store().update(ids[0], [['b', '2']], [], expiry(LONG_MS, MAX_AGE), ROOMY), true);
        assert.equal(await store().increment(ids[1], 'n', 1, [], expiry(LONG_MS, MAX_AGE), ROOMY), 1);
        const moved = newId('moved');
        assert.ok(await store().move(ids[2], moved, NO_CHANGE, expiry(LONG_MS, MAX_AGE)));
        for (const id of [ids[0], ids[1], moved]) await assertTtl(id, 1000, 3000);
      });

      it('a session past it is deleted, and update, increment and move find nothing', async () => {
        const ids = [await createAged(-1), await createAged(-1), await createAged(-1)] as const;
        assert.equal(await store().update(ids[0], [['late', '1']], [], expiry(LONG_MS, MAX_AGE), ROOMY), false);
        assert.equal(await store().increment(ids[1], 'late', 1, [], expiry(LONG_MS, MAX_AGE), ROOMY), null);
        const moved = newId('moved');
        assert.equal(await store().move(ids[2], moved, NO_CHANGE, expiry(LONG_MS, MAX_AGE)), null);
        for (const id of [...ids, moved]) await assertMissing(id);
      });

      for (const [what, createdAt] of [['no created-at field', undefined], ['an empty one', ''], ['a non-numeric one', 'soon'], ['a decimal one', '1.5e12'], ['a negative one', '-1']] as const) {
        it(`treats a session with ${what} as past it while maxAgeMs is set: deleted, never adopted`, async () => {
          const fields: StoreField[] = createdAt === undefined ? [['a', '1']] : [[CREATED_AT_FIELD, createdAt], ['a', '1']];
          const ids = [newId(), newId(), newId()] as const;
          for (const id of ids) assert.equal(await store().create(id, fields, LONG_MS), true);
          assert.equal(await store().update(ids[0], [['late', '1']], [], expiry(LONG_MS, MAX_AGE), ROOMY), false);
          assert.equal(await store().increment(ids[1], 'late', 1, [], expiry(LONG_MS, MAX_AGE), ROOMY), null);
          assert.equal(await store().move(ids[2], newId('moved'), NO_CHANGE, expiry(LONG_MS, MAX_AGE)), null);
          for (const id of ids) await assertMissing(id);
        });
      }

      it('does not bound a session when maxAgeMs is null, with or without a created-at field', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], SHORT_MS);
        assert.equal(await store().update(id, [], [], expiry(LONG_MS, null), ROOMY), true);
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

    describe('move', () => {
      it('moves every field to the new id with the change applied, keeps created-at, and ends the old id', async () => {
        const from = newId('from');
        const to = newId('to');
        const fields: StoreField[] = [[CREATED_AT_FIELD, String(Date.now() - 1000)], ['a', '1'], ['drop', 'x'], ['b', '2']];
        await store().create(from, fields, SHORT_MS);
        const change = { set: [['b', '3'], [':s', '9']] as StoreField[], remove: ['drop', 'never-there'] };
        const expected = fieldMap([[CREATED_AT_FIELD, fields[0]?.[1] as string], ['a', '1'], ['b', '3'], [':s', '9']]);
        assert.deepEqual(await store().move(from, to, change, expiry(LONG_MS)), expected);
        assert.deepEqual(await store().load(to), expected);
        await assertTtl(to, SHORT_MS, LONG_MS);
        await assertEnded(from);
      });

      it('resolves null on a missing id, and creates nothing', async () => {
        const from = newId('from');
        const to = newId('to');
        assert.equal(await store().move(from, to, NO_CHANGE, expiry(LONG_MS)), null);
        await assertMissing(from);
        await assertMissing(to);
      });

      it('gives the session created-at `now` when it has none and maxAgeMs is null', async () => {
        const from = newId('from');
        const to = newId('to');
        await store().create(from, [['a', '1']], LONG_MS);
        const now = Date.now();
        assert.deepEqual(await store().move(from, to, NO_CHANGE, { ttlMs: LONG_MS, maxAgeMs: null, now }), fieldMap([['a', '1'], [CREATED_AT_FIELD, String(now)]]));
      });

      it('moves a session whatever its size: 5,000 fields of 200 bytes', async () => {
        const from = newId('from');
        const to = newId('to');
        const many: StoreField[] = Array.from({ length: 5000 }, (_, i) => [`f${i}`, 'v'.repeat(200)]);
        await store().create(from, many, LONG_MS);
        const now = Date.now();
        const moved = await store().move(from, to, NO_CHANGE, { ttlMs: LONG_MS, maxAgeMs: null, now });
        const expected = fieldMap([...many, [CREATED_AT_FIELD, String(now)]]);
        assert.deepEqual(moved, expected);
        assert.deepEqual(await store().load(to), expected);
        await assertEnded(from);
      });

      it('hands the session to only one of two concurrent moves; the other rejects with SESSION_GONE or finds nothing', async () => {
        const from = newId('from');
        await store().create(from, [['a', '1']], LONG_MS);
        const targets = [newId('to'), newId('to')] as const;
        const results = await Promise.allSettled(targets.map((to) => store().move(from, to, NO_CHANGE, expiry(LONG_MS))));
        const winners = results.filter((result) => result.status === 'fulfilled' && result.value !== null);
        assert.equal(winners.length, 1, JSON.stringify(results.map((result) => result.status)));
        for (const result of results) {
          if (result.status === 'rejected') assert.ok(result.reason instanceof SessionError && result.reason.code === 'SESSION_GONE', String(result.reason));
        }
        const loaded = await Promise.all(targets.map((to) => store().load(to)));
        assert.equal(loaded.filter((fields) => fields !== null).length, 1, 'exactly one new id holds the session');
      });
    });

    describe('destroy', () => {
      it('ends the session: gone, and writes to it fail with SESSION_GONE rather than find nothing', async () => {
        const id = newId();
        await store().create(id, [['a', '1']], LONG_MS);
        await store().destroy(id);
        await assertEnded(id);
      });

      it('does not throw on a missing id, and leaves nothing behind', async () => {
        const id = newId();
        await store().destroy(id);
        await store().destroy(id);
        await assertMissing(id);
        assert.equal(await store().update(id, [['a', '1']], [], expiry(LONG_MS), ROOMY), false);
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
        assert.equal(await store().move(other, newId('to'), NO_CHANGE, expiry(LONG_MS)), null);
        await assertMissing(other);
        // An expired id can be created anew.
        assert.equal(await store().create(id, [['b', '1']], LONG_MS), true);
        assert.deepEqual(await store().load(id), fieldMap([['b', '1']]));
      });

      it('update and increment push the expiry back, and move gives the new id its own', async () => {
        const ids = [newId('u'), newId('i'), newId('m')] as const;
        for (const id of ids) assert.equal(await store().create(id, [['a', '1']], 300), true);
        await sleep(150);
        assert.equal(await store().update(ids[0], [], [], expiry(600), ROOMY), true);
        assert.equal(await store().increment(ids[1], 'n', 1, [], expiry(600), ROOMY), 1);
        const moved = newId('moved');
        assert.ok(await store().move(ids[2], moved, NO_CHANGE, expiry(600)));
        // 450 ms after creation: past the first TTL, well within the reset one.
        await sleep(300);
        for (const id of [ids[0], ids[1], moved]) assert.notEqual(await store().load(id), null, `${id} should still exist`);
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

      it('round-trip exactly through create, load and move', async () => {
        const id = newId();
        const fields: StoreField[] = names.map((name, i) => [name, values[i % values.length] as string]);
        assert.equal(await store().create(id, fields, LONG_MS), true);
        const loaded = await store().load(id);
        assert.deepEqual(loaded, fieldMap(fields));
        assert.equal(Object.getPrototypeOf(loaded), Map.prototype);
        const to = newId('to');
        const expected = fieldMap(fields);
        // ':c' is among the names, but no created-at time: with no absolute lifetime it gets `now`.
        const now = Date.now();
        expected.set(CREATED_AT_FIELD, String(now));
        assert.deepEqual(await store().move(id, to, NO_CHANGE, { ttlMs: LONG_MS, maxAgeMs: null, now }), expected);
        assert.deepEqual(await store().load(to), expected);
      });

      it('round-trip exactly through update, increment and move', async () => {
        const id = newId();
        await store().create(id, [['seed', 's']], LONG_MS);
        const set: StoreField[] = names.map((name, i) => [name, values[(i + 3) % values.length] as string]);
        assert.equal(await store().update(id, set, [], expiry(LONG_MS), ROOMY), true);
        assert.deepEqual(await store().load(id), fieldMap([['seed', 's'], ...set]));
        assert.equal(await store().increment(id, '__proto__ count', 1, [['🙂', 'x\ny']], expiry(LONG_MS), ROOMY), 1);
        const moved = newId('to');
        const now = Date.now();
        assert.ok(await store().move(id, moved, { set: [['ключ', ''], ['constructor', 'c']], remove: [] }, { ttlMs: LONG_MS, maxAgeMs: null, now }));
        const expected = fieldMap([['seed', 's'], ...set]);
        expected.set('__proto__ count', '1');
        expected.set('🙂', 'x\ny');
        expected.set('ключ', '');
        expected.set('constructor', 'c');
        // ':c' is among the names, but no created-at time: with no absolute lifetime it gets `now`.
        expected.set(CREATED_AT_FIELD, String(now));
        assert.deepEqual(await store().load(moved), expected);
        // Removing the odd names works too.
        assert.equal(await store().update(moved, [], ['__proto__', '', 'ключ', '🙂', 'with space'], expiry(LONG_MS), ROOMY), true);
        for (const name of ['__proto__', '', 'ключ', '🙂', 'with space']) expected.delete(name);
        assert.deepEqual(await store().load(moved), expected);
      });

      it('ids with odd characters are stored as given', async () => {
        const base = newId();
        const ids = [`${base}:x`, `${base} space`, `${base}-ключ-🙂`, `${base}{tag}`];
        for (const [i, id] of ids.entries()) assert.equal(await store().create(id, [['i', String(i)]], LONG_MS), true);
        for (const [i, id] of ids.entries()) assert.deepEqual(await store().load(id), fieldMap([['i', String(i)]]));
        for (const id of ids) await store().destroy(id);
        for (const id of ids) assert.equal(await store().load(id), null);
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
        assert.ok(await store().load(a));
        await unchanged();
        const moved = newId('a2');
        assert.ok(await store().move(a, moved, { set: [['z', '1']], remove: [] }, expiry(LONG_MS)));
        await unchanged();
        await store().destroy(moved);
        await unchanged();
        // And the other way round: b's end does not touch another session.
        const c = newId('c');
        assert.equal(await store().create(c, [['again', '1']], LONG_MS), true);
        await store().destroy(b);
        assert.deepEqual(await store().load(c), fieldMap([['again', '1']]));
        assert.equal(await store().load(b), null);
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
