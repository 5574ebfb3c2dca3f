// One contract for every Store: the semantics documented in src/stores/store.ts, checked through
// the Store methods only (plus an optional helper that reads the real remaining time to live).
import * as nodeTest from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from '../core/errors.js';
import {
  CLIENT_IP_FIELD,
  CREATED_AT_FIELD,
  hasUserIndex,
  LAST_SEEN_FIELD,
  MAX_COUNTER,
  METADATA_FIELDS,
  USER_AGENT_FIELD,
  USER_FIELD,
  type IndexedSession,
  type Store,
  type StoreChange,
  type StoreExpiry,
  type StoreField,
  type StoreLimits,
  type UserIndexStore,
} from '../stores/store.js';

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

/** The methods of the optional {@link UserIndexStore} capability. */
const USER_INDEX_METHODS = ['userSessions', 'endSessions', 'endUserSessions', 'scanSessions'] as const;

/** Why the user-index tests do not apply to a store without one. */
const NO_USER_INDEX =
  'the store keeps no user index (userSessions, endSessions, endUserSessions, scanSessions): UserIndexStore is optional, ' +
  'and without it sessions cannot be listed or revoked by user';

/** Sessions the scanSessions test makes: enough that a store walking its backend in steps of 1000 (Redis' SCAN) takes several. */
const SCANNED_SESSIONS = 2500;

/**
 * Registers `describe(name)` with the tests of the {@link Store} contract: every operation, its
 * conditions, expiry, field names and values, concurrency. A store that passes them behaves like
 * latchkey's own stores, so sessions behave the same on it. `setup` runs once before the tests;
 * every test uses its own ids, so the tests do not depend on each other, and a shared backend
 * needs no cleaning between them. Some tests wait a few seconds for entries to expire.
 *
 * The group `user index (UserIndexStore, optional)` checks the optional capability of
 * {@link UserIndexStore} (what `SessionAdmin`, `listUserSessions`, `revokeUserSessions` and
 * `maxSessionsPerUser` need), through the store's methods only: a session created or moved with
 * {@link USER_FIELD} is listed by `userSessions` under that user, with its metadata fields and
 * never its data, and no longer once it moved away, was destroyed, revoked or expired (however
 * long or short the absolute lifetimes `create` and `move` were given); `endSessions` ends the
 * user's sessions it is given (and ids not stored yet, and the ids a session was moved to within
 * {@link ENDED_GRACE_MS}), never another user's, and resolves how many stored sessions it ended;
 * a move racing it never leaves the new id usable; `scanSessions` yields every live session once,
 * some thousands of them, with their metadata only, no ended session and no entry of the index.
 * Those tests apply only to a store where `hasUserIndex(store)` holds. On a store without the
 * capability they are reported skipped, with the reason, under `node:test`, Vitest or Mocha; under
 * Jest, which cannot skip a test once it runs, they pass without checking anything but that the
 * store has none of the four methods. A store with some of them but not all fails them: a user
 * index needs all four, or none.
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
   * A test of an optional capability gives `inapplicable`, the reason it does not apply to the
   * fixture's store (or `undefined` when it does), and is then skipped before it checks anything.
   */
  const it = (title: string, body: () => Promise<void>, inapplicable?: () => string | undefined): unknown =>
    // A body without declared parameters: Jest would take one as a done callback.
    test.it(title, async function (this: unknown) {
      // eslint-disable-next-line prefer-rest-params -- the runner's context, read without declaring a parameter
      const skip = skipOf(arguments[0], this);
      const notFor = inapplicable?.();
      if (notFor !== undefined) {
        // Where the runner cannot skip (Jest) the test passes: a store may leave an optional capability out.
        skip?.(notFor);
        return;
      }
      const state: Unchecked = { count: 0 };
      await unchecked.run(state, body);
      if (state.count === 0) return;
      const reason = `the fixture gives no ttlOf: ${state.count} time-to-live check${state.count === 1 ? '' : 's'} did not run (the rest of this test passed)`;
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

    /**
     * Asserts `id` was revoked (see UserIndexStore.endSessions): it reads as missing, cannot be
     * created again, and writes and moves find no session (rather than reject), changing nothing.
     * With `orEnded`, an id that had ended before it was revoked passes too.
     */
    const assertRevoked = async (id: string, orEnded = false): Promise<void> => {
      assert.equal(await store().load(id), null, `${id} should read as missing`);
      const settle = async <T>(write: Promise<T>, missing: T, what: string): Promise<void> => {
        const outcome = await write.then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        if ('error' in outcome) {
          const gone = outcome.error instanceof SessionError && outcome.error.code === 'SESSION_GONE';
          assert.ok(orEnded && gone, `${what} of a revoked id should find no session, got ${String(outcome.error)}`);
        } else {
          assert.equal(outcome.value, missing, `${what} of a revoked id finds no session`);
        }
      };
      await settle(store().update(id, [['late', '1']], [], expiry(LONG_MS), ROOMY), false, 'an update');
      await settle(store().increment(id, 'late', 1, [], expiry(LONG_MS), ROOMY), null, 'an increment');
      await settle(store().move(id, newId('to'), NO_CHANGE, expiry(LONG_MS)), null, 'a move');
      assert.equal(await store().create(id, [['late', '1']], LONG_MS), false, 'a revoked id is not created again');
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

    describe('user index (UserIndexStore, optional)', () => {
      /** The skip reason when the store has no user index; a store with part of one fails instead. */
      const withoutUserIndex = (): string | undefined => {
        const candidate = store();
        if (hasUserIndex(candidate)) return undefined;
        const record = candidate as unknown as Record<string, unknown>;
        const present = USER_INDEX_METHODS.filter((method) => typeof record[method] === 'function');
        if (present.length > 0) {
          const absent = USER_INDEX_METHODS.filter((method) => !present.includes(method));
          throw new Error(`the store has ${present.join(' and ')} but not ${absent.join(' and ')}: a user index (UserIndexStore) needs all four methods, or none`);
        }
        return NO_USER_INDEX;
      };
      const indexed = (title: string, body: () => Promise<void>): unknown => it(title, body, withoutUserIndex);

      const users = (): UserIndexStore => {
        const candidate = store();
        if (!hasUserIndex(candidate)) throw new Error('a user-index test ran on a store without a user index');
        return candidate;
      };

      /** A fresh user id no other test (or earlier run) uses. */
      const newUser = (): string => `contract-user-${randomBytes(8).toString('hex')}`;

      /** latchkey's metadata fields of a new session, signed in to `user` unless it is `undefined`. */
      const metadata = (user: string | undefined): StoreField[] => {
        const now = String(Date.now());
        const signedIn: StoreField[] = user === undefined ? [] : [[USER_FIELD, user]];
        return [[CREATED_AT_FIELD, now], [LAST_SEEN_FIELD, now], ...signedIn, [USER_AGENT_FIELD, 'contract-agent/1.0'], [CLIENT_IP_FIELD, '192.0.2.7']];
      };
      /** The app's data beside the metadata: never part of a listing. */
      const appData = (user: string | undefined): StoreField[] => [['name', '"alice"'], ['cart', '[1,2,3]'], ['u', JSON.stringify(user ?? 'nobody')]];

      /** Creates a session of `user` (anonymous for `undefined`) with metadata and data; resolves its id. */
      const createFor = async (user: string | undefined, ttlMs = LONG_MS, maxAgeMs?: number | null): Promise<string> => {
        const id = newId('user');
        assert.equal(await users().create(id, [...metadata(user), ...appData(user)], ttlMs, maxAgeMs), true);
        return id;
      };

      /** The ids `userSessions(user)` lists, sorted. */
      const listed = async (user: string): Promise<string[]> => {
        const sessions = await users().userSessions(user);
        return sessions.map((session) => session.id).sort();
      };

      /** The metadata of a session as a listing gives it: those of {@link METADATA_FIELDS} it holds. */
      const metadataOf = (fields: ReadonlyMap<string, string>): Map<string, string> =>
        new Map([...fields].filter(([field]) => (METADATA_FIELDS as readonly string[]).includes(field)));

      describe('userSessions', () => {
        indexed('lists a session created with USER_FIELD, with its metadata fields and none of its data', async () => {
          const user = newUser();
          const id = newId('user');
          const fields = [...metadata(user), ...appData(user)];
          assert.equal(await users().create(id, fields, LONG_MS, null), true);
          const sessions = await users().userSessions(user);
          assert.deepEqual(sessions.map((session) => session.id), [id]);
          assert.deepEqual(new Map((sessions[0] as IndexedSession).fields), metadataOf(fieldMap(fields)));
        });

        indexed('lists neither a session created without USER_FIELD nor another user\'s: each user has their own', async () => {
          const base = newUser();
          // Users with odd ids, one of them a prefix of another.
          const [a, b, c] = [`${base}@example.com`, `${base} ключ 🙂 {tag} *?:x`, `${base}@example.com0`] as const;
          const anonymous = await createFor(undefined);
          // Data that names the user does not sign the session in.
          await users().create(newId('data'), [...metadata(undefined), ['user', a], [':user', a]], LONG_MS);
          const aIds = [await createFor(a), await createFor(a)].sort();
          const bIds = [await createFor(b)];
          const cIds = [await createFor(c)];
          assert.deepEqual(await listed(a), aIds);
          assert.deepEqual(await listed(b), bIds);
          assert.deepEqual(await listed(c), cIds);
          assert.deepEqual(await listed(newUser()), [], 'a user without sessions has none listed');
          assert.ok(await users().load(anonymous), 'the anonymous session is stored');
        });
      });

      describe('move of an indexed session', () => {
        indexed('lists the new id in place of the old one, with the metadata as the move changed it', async () => {
          const user = newUser();
          const from = await createFor(user);
          const other = await createFor(user);
          const to = newId('to');
          const seen = String(Date.now() + 1000);
          const moved = await users().move(from, to, { set: [[LAST_SEEN_FIELD, seen]], remove: ['cart'] }, expiry(LONG_MS));
          assert.ok(moved, 'the move found the session');
          assert.deepEqual(await listed(user), [other, to].sort());
          const listing = (await users().userSessions(user)).find((session) => session.id === to);
          assert.deepEqual(new Map(listing?.fields), metadataOf(moved));
          assert.equal(listing?.fields.get(LAST_SEEN_FIELD), seen);
        });

        indexed('that sets USER_FIELD lists the new id under that user only', async () => {
          const [a, b] = [newUser(), newUser()];
          // Signing in: an anonymous session moves to a new id with the user set.
          const anonymous = await createFor(undefined);
          const signedIn = newId('to');
          assert.ok(await users().move(anonymous, signedIn, { set: [[USER_FIELD, a]], remove: [] }, expiry(LONG_MS)));
          assert.deepEqual(await listed(a), [signedIn]);
          // Signing in as someone else: the session leaves a's listing for b's.
          const switched = newId('to');
          assert.ok(await users().move(signedIn, switched, { set: [[USER_FIELD, b]], remove: [] }, expiry(LONG_MS)));
          assert.deepEqual(await listed(a), []);
          assert.deepEqual(await listed(b), [switched]);
          assert.equal((await users().userSessions(b))[0]?.fields.get(USER_FIELD), b);
        });
      });

      describe('destroy of an indexed session', () => {
        indexed('removes it from its user\'s listing, and only it', async () => {
          const user = newUser();
          const [gone, kept] = [await createFor(user), await createFor(user)];
          await users().destroy(gone);
          assert.deepEqual(await listed(user), [kept]);
          const moved = newId('to');
          assert.ok(await users().move(kept, moved, NO_CHANGE, expiry(LONG_MS)));
          await users().destroy(moved);
          assert.deepEqual(await listed(user), []);
        });
      });

      describe('endSessions', () => {
        indexed('ends the user\'s sessions it is given, unlists them, and resolves how many were stored', async () => {
          const user = newUser();
          const [first, second, kept] = [await createFor(user), await createFor(user), await createFor(user)];
          const never = newId('never');
          assert.equal(await users().endSessions(user, [first, second, never]), 2);
          for (const id of [first, second, never]) await assertRevoked(id);
          assert.deepEqual(await listed(user), [kept]);
          assert.equal(await users().endSessions(user, [first, second, never]), 0, 'ended sessions are not counted again');
          assert.equal(await users().endSessions(user, []), 0);
          assert.deepEqual(await listed(user), [kept]);
        });

        indexed('fails the writes of a request under way when the session was revoked (since before it), and not those begun after', async () => {
          const user = newUser();
          const id = await createFor(user);
          const began = Date.now() - 1000;
          assert.equal(await users().endSessions(user, [id]), 1);
          const underWay = { ...expiry(LONG_MS), since: began };
          await rejectsWithCode(users().update(id, [['late', '1']], [], underWay, ROOMY), 'SESSION_GONE');
          await rejectsWithCode(users().increment(id, 'late', 1, [], underWay, ROOMY), 'SESSION_GONE');
          await rejectsWithCode(users().move(id, newId('to'), NO_CHANGE, underWay), 'SESSION_GONE');
          const after = { ...expiry(LONG_MS), since: Date.now() + 1 };
          assert.equal(await users().update(id, [['late', '1']], [], after, ROOMY), false);
          assert.equal(await users().increment(id, 'late', 1, [], after, ROOMY), null);
          assert.equal(await users().move(id, newId('to'), NO_CHANGE, after), null);
          assert.equal(await users().load(id), null, 'nothing was written');
        });

        indexed('ends an id never stored, so that a later create of it resolves false and stores nothing', async () => {
          const user = newUser();
          const id = newId('early');
          assert.equal(await users().endSessions(user, [id]), 0);
          assert.equal(await users().create(id, [...metadata(user), ...appData(user)], LONG_MS), false);
          assert.equal(await users().create(id, metadata(undefined), LONG_MS), false);
          assert.equal(await users().load(id), null);
          assert.deepEqual(await listed(user), []);
        });

        indexed('leaves another user\'s session alone, even when given its id', async () => {
          const [a, b] = [newUser(), newUser()];
          const mine = await createFor(a);
          const theirs = newId('user');
          const theirFields = [...metadata(b), ...appData(b)];
          assert.equal(await users().create(theirs, theirFields, LONG_MS), true);
          assert.equal(await users().endSessions(a, [mine, theirs]), 1);
          await assertRevoked(mine);
          assert.deepEqual(await users().load(theirs), fieldMap(theirFields));
          assert.equal(await users().update(theirs, [['still', 'here']], [], expiry(LONG_MS), ROOMY), true);
          assert.deepEqual(await listed(b), [theirs]);
        });

        indexed('of an id moved within the grace time ends the id it was moved to, through every move', async () => {
          const user = newUser();
          const kept = await createFor(user);
          const first = await createFor(user);
          const second = newId('to');
          const third = newId('to');
          assert.ok(await users().move(first, second, NO_CHANGE, expiry(LONG_MS)));
          assert.ok(await users().move(second, third, { set: [[LAST_SEEN_FIELD, String(Date.now())]], remove: [] }, expiry(LONG_MS)));
          assert.deepEqual(await listed(user), [kept, third].sort());
          // A revocation that read the listing before the moves names the first id only.
          assert.equal(await users().endSessions(user, [first]), 1);
          // The ids moved away stay ended as the moves ended them; the last is revoked.
          for (const id of [first, second]) await assertEnded(id);
          await assertRevoked(third);
          assert.deepEqual(await listed(user), [kept]);
        });

        indexed('endUserSessions revokes every session of the user but those kept, moved ones included, and no other user\'s', async () => {
          const [user, other] = [newUser(), newUser()];
          const [kept, first, moving] = [await createFor(user), await createFor(user), await createFor(user)];
          const theirs = await createFor(other);
          const moved = newId('to');
          assert.ok(await users().move(moving, moved, NO_CHANGE, expiry(LONG_MS)));
          assert.equal(await users().endUserSessions(user, [kept]), 2);
          for (const id of [first, moved]) await assertRevoked(id);
          await assertEnded(moving);
          assert.deepEqual(await listed(user), [kept]);
          assert.equal(await users().update(kept, [['still', 'here']], [], expiry(LONG_MS), ROOMY), true, 'the kept session takes writes');
          assert.deepEqual(await listed(other), [theirs]);
          assert.equal(await users().endUserSessions(user, []), 1, 'then the kept one');
          assert.deepEqual(await listed(user), []);
          assert.equal(await users().endUserSessions(newUser(), []), 0, 'a user without sessions');
        });

        indexed('does not follow a move to another user\'s session', async () => {
          const [a, b] = [newUser(), newUser()];
          const from = await createFor(a);
          const to = newId('to');
          assert.ok(await users().move(from, to, { set: [[USER_FIELD, b]], remove: [] }, expiry(LONG_MS)));
          assert.equal(await users().endSessions(a, [from]), 0);
          assert.equal((await users().load(to))?.get(USER_FIELD), b);
          assert.deepEqual(await listed(b), [to]);
        });

        indexed('racing a move of the same session never leaves the new id usable', async () => {
          const user = newUser();
          const ids = await Promise.all(Array.from({ length: 20 }, () => createFor(user)));
          await Promise.all(
            ids.map(async (from, i) => {
              const to = newId('to');
              let move: Promise<Map<string, string> | null>;
              let end: Promise<number>;
              // Half start the move first, half the revocation.
              if (i % 2 === 0) {
                move = users().move(from, to, NO_CHANGE, expiry(LONG_MS));
                end = users().endSessions(user, [from]);
              } else {
                end = users().endSessions(user, [from]);
                move = users().move(from, to, NO_CHANGE, expiry(LONG_MS));
              }
              const [moved, ended] = await Promise.allSettled([move, end]);
              if (moved.status === 'rejected') {
                assert.ok(moved.reason instanceof SessionError && moved.reason.code === 'SESSION_GONE', `the move failed with ${String(moved.reason)}`);
              }
              assert.equal(ended.status, 'fulfilled', ended.status === 'rejected' ? String(ended.reason) : '');
              // The old id, and the new one if the move stored it before it was ended.
              const count = ended.status === 'fulfilled' ? ended.value : -1;
              assert.ok(count >= 1 && count <= 2, `endSessions counted ${count}`);
              // Ended by the move, or revoked before it.
              await assertRevoked(from, true);
              // Ended if the move stored it before the revocation reached it; never stored otherwise.
              assert.equal(await users().load(to), null, 'the new id holds no session');
              const write = users().update(to, [['late', '1']], [], expiry(LONG_MS), ROOMY);
              await write.then(
                (updated) => assert.equal(updated, false, 'a write to the new id finds no session'),
                (error: unknown) => assert.ok(error instanceof SessionError && error.code === 'SESSION_GONE', String(error)),
              );
              assert.equal(await users().load(to), null, 'and the write stored nothing');
            }),
          );
          assert.deepEqual(await listed(user), []);
        });
      });

      describe('expired sessions', () => {
        indexed('leave their user\'s listing', async () => {
          const user = newUser();
          const expiring = [await createFor(user, 300), await createFor(user, 300)];
          const kept = await createFor(user);
          assert.deepEqual(await listed(user), [...expiring, kept].sort());
          await sleep(450);
          assert.deepEqual(await listed(user), [kept]);
          assert.deepEqual(await listed(user), [kept], 'and a second listing agrees');
        });

        indexed('leave the others listed, however long the absolute lifetime each session was created or moved with', async () => {
          const [longer, none, unsaid, moved] = [newUser(), newUser(), newUser(), newUser()];
          // A later session with a shorter lifetime does not cut short the listing of an earlier one.
          const lasting = await createFor(longer, 5000, 5000);
          await createFor(longer, 300, 300);
          // Nor does one with a lifetime end the listing of a later one without (null), or with none said.
          await createFor(none, 300, 300);
          const unbounded = await createFor(none, LONG_MS, null);
          await createFor(unsaid, 300, 300);
          const unstated = await createFor(unsaid, LONG_MS);
          // A move gives the session the lifetime of its expiry.
          const from = await createFor(moved, 300, 300);
          const to = newId('to');
          assert.ok(await users().move(from, to, NO_CHANGE, expiry(LONG_MS, null)));
          await sleep(450);
          assert.deepEqual(await listed(longer), [lasting]);
          assert.deepEqual(await listed(none), [unbounded]);
          assert.deepEqual(await listed(unsaid), [unstated]);
          assert.deepEqual(await listed(moved), [to]);
        });
      });

      describe('scanSessions', () => {
        indexed(`yields each of ${SCANNED_SESSIONS} live sessions once, users' and anonymous, with their metadata only; no ended one, no index entry`, async () => {
          const [a, b] = [newUser(), newUser()];
          const owners = Array.from({ length: SCANNED_SESSIONS }, (_, i) => (i % 5 === 0 ? undefined : i % 2 === 0 ? a : b));
          const expected = new Map<string, Map<string, string>>();
          const ids: string[] = [];
          // In groups, so that a store on a network is not sent thousands of requests at once.
          for (let start = 0; start < owners.length; start += 250) {
            await Promise.all(
              owners.slice(start, start + 250).map(async (owner, i) => {
                const id = newId('scan');
                const fields = [...metadata(owner), ...appData(owner)];
                assert.equal(await users().create(id, fields, LONG_MS), true);
                ids[start + i] = id;
                expected.set(id, metadataOf(fieldMap(fields)));
              }),
            );
          }
          const ended = new Set<string>();
          // Destroyed, revoked, moved away: ended, whether anonymous or signed in.
          for (const id of ids.slice(0, 40)) {
            await users().destroy(id);
            ended.add(id);
          }
          const revoked = ids.slice(40, 80).filter((_, i) => owners[40 + i] === a);
          assert.equal(await users().endSessions(a, revoked), revoked.length);
          for (const id of revoked) ended.add(id);
          for (const id of ids.slice(80, 120)) {
            const to = newId('scan');
            const fields = await users().move(id, to, NO_CHANGE, expiry(LONG_MS));
            assert.ok(fields);
            ended.add(id);
            expected.set(to, metadataOf(fields));
          }
          for (const id of ended) expected.delete(id);

          const seen = new Map<string, number>();
          const found = new Map<string, ReadonlyMap<string, string>>();
          for await (const batch of users().scanSessions()) {
            assert.ok(Array.isArray(batch), 'a batch is an array');
            for (const session of batch) {
              seen.set(session.id, (seen.get(session.id) ?? 0) + 1);
              found.set(session.id, session.fields);
              assert.ok(!session.id.includes(a) && !session.id.includes(b), `${session.id} is an entry of a user's index, not a session`);
              const data = [...session.fields.keys()].filter((field) => !(METADATA_FIELDS as readonly string[]).includes(field));
              assert.deepEqual(data, [], `${session.id} is listed with fields that are not metadata`);
            }
          }
          const twice = [...seen].filter(([, count]) => count > 1).map(([id]) => id);
          assert.deepEqual(twice, [], 'no session is yielded twice');
          const missed = [...expected.keys()].filter((id) => !seen.has(id));
          assert.deepEqual(missed, [], 'every live session is yielded');
          assert.deepEqual([...ended].filter((id) => seen.has(id)), [], 'no ended session is yielded');
          for (const [id, fields] of expected) assert.deepEqual(new Map(found.get(id)), fields, `the metadata of ${id}`);
        });
      });

      describe('user index concurrency', () => {
        indexed('100 concurrent creates of sessions of one user are all listed', async () => {
          const user = newUser();
          const ids = await Promise.all(Array.from({ length: 100 }, () => createFor(user)));
          assert.deepEqual(await listed(user), ids.sort());
        });
      });
    });
  });
}
