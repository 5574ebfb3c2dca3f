import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSessionError, SessionError } from '../../src/core/errors.js';
import { DEFAULT_MEMORY_STORE_OPTIONS, MemoryStore } from '../../src/stores/memory.js';
import type { StoreExpiry, StoreField, StoreLimits } from '../../src/stores/store.js';
import { storeContract, type StoreFixture } from 'latchkey/testing';
import { withoutUserIndex } from './store-views.js';

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

/** A test body as the contract registers it, called the way a runner calls it. */
type Body = (this: unknown, context?: unknown) => Promise<void>;

/**
 * Registers the contract on `fixture` through recording test functions; resolves its tests by
 * name, set up, and the groups each test is in.
 */
async function recordContract(
  fixture: () => StoreFixture,
): Promise<{ bodies: Map<string, Body>; groups: Map<string, readonly string[]>; close(): Promise<void> }> {
  const bodies = new Map<string, Body>();
  const groups = new Map<string, readonly string[]>();
  const path: string[] = [];
  const hooks: Array<() => Promise<void>> = [];
  const closers: Array<() => Promise<void>> = [];
  storeContract('recorded', async () => fixture(), {
    describe: (name, body) => {
      path.push(name);
      body();
      path.pop();
    },
    it: (name, body) => {
      assert.ok(!bodies.has(name), `the contract has one test named '${name}'`);
      bodies.set(name, body as Body);
      groups.set(name, [...path]);
    },
    before: (body) => void hooks.push(body),
    after: (body) => void closers.push(body),
  });
  for (const hook of hooks) await hook();
  return { bodies, groups, close: async () => void (await Promise.all(closers.map((close) => close()))) };
}

/** What the runner's skip was told; thrown like Vitest's and Mocha's skip, which end the test. */
class Skipped extends Error {}

describe('storeContract without ttlOf: the checks it cannot make are skipped visibly, never passed in silence', () => {
  const TTL_ONLY = 'does not change the TTL';
  const WITH_TTL = 'update, increment and move never set a TTL past what is left of it';
  const NO_TTL = 'counts a missing field as 0 and resolves the new value';
  const memory = (ttl: boolean) => (): StoreFixture => {
    const store = new MemoryStore();
    return { store, close: () => store.close(), ...(ttl && { ttlOf: async (id: string) => store.inspect(id)?.ttlMs ?? -2 }) };
  };

  it('registers test bodies that declare no parameter, so Jest never takes one for a done callback', async () => {
    const { bodies, close } = await recordContract(memory(false));
    try {
      assert.ok(bodies.size >= 36);
      assert.deepEqual([...bodies].filter(([, body]) => body.length !== 0).map(([name]) => name), []);
    } finally {
      await close();
    }
  });

  it("skips, with the reason, through the context's skip (node:test, Vitest) or this.skip (Mocha), after the other checks ran", async () => {
    const { bodies, close } = await recordContract(memory(false));
    try {
      for (const style of ['context', 'this'] as const) {
        const notes: string[] = [];
        const runner = {
          skip(note: string): never {
            notes.push(note);
            throw new Skipped(note);
          },
        };
        const run = (name: string): Promise<void> => {
          const body = bodies.get(name);
          assert.ok(body, `the contract has a test named '${name}'`);
          return style === 'context' ? body.call(undefined, runner) : body.call(runner);
        };
        for (const name of [TTL_ONLY, WITH_TTL]) {
          await assert.rejects(run(name), Skipped, `${style}: ${name}`);
        }
        assert.equal(notes.length, 2, style);
        assert.match(notes[0] as string, /^the fixture gives no ttlOf: 1 time-to-live check did not run \(the rest of this test passed\)$/);
        assert.match(notes[1] as string, /^the fixture gives no ttlOf: 3 time-to-live checks did not run/);
        await run(NO_TTL);
        assert.equal(notes.length, 2, `${style}: a test without TTL checks is not skipped`);
      }
    } finally {
      await close();
    }
  });

  it('fails, asking for ttlOf, where the runner cannot skip a running test (Jest)', async () => {
    const { bodies, close } = await recordContract(memory(false));
    try {
      await assert.rejects((bodies.get(TTL_ONLY) as Body).call(undefined), /the fixture gives no ttlOf: 1 time-to-live check did not run.*cannot mark a test skipped once it runs: give ttlOf\(id\)/);
      await (bodies.get(NO_TTL) as Body).call(undefined);
    } finally {
      await close();
    }
  });

  it('neither skips nor fails with ttlOf', async () => {
    const { bodies, close } = await recordContract(memory(true));
    try {
      const runner = { skip: (note: string) => assert.fail(`skipped: ${note}`) };
      for (const name of [TTL_ONLY, WITH_TTL, NO_TTL]) await (bodies.get(name) as Body).call(undefined, runner);
    } finally {
      await close();
    }
  });

  it('shows as skipped, with the reason, in what node:test reports', () => {
    const { count, results, skipped } = tapReport('test/store/contract-without-ttl.ts');
    assert.ok(count('skipped') >= 20, `skipped ${count('skipped')}`);
    assert.ok(count('pass') >= 10, `passed ${count('pass')}`);
    for (const line of skipped) assert.match(line, /# SKIP the fixture gives no ttlOf: \d+ time-to-live checks? did not run \(the rest of this test passed\)$/);
    for (const name of [TTL_ONLY, WITH_TTL]) assert.ok(skipped.some((line) => line.startsWith(`${name} # SKIP`)), `${name} is reported skipped`);
    assert.ok(results.includes(NO_TTL), `${NO_TTL} is reported passed`);
  });
});

describe('storeContract on a store without a user index: its tests are skipped visibly, and a store with part of one fails them', () => {
  const GROUP = 'user index (UserIndexStore, optional)';
  const REASON = /^the store keeps no user index \(userSessions, endSessions, endUserSessions, scanSessions\): UserIndexStore is optional/;
  const OTHER = 'counts a missing field as 0 and resolves the new value';
  const plain = (extra: Record<string, unknown> = {}) => (): StoreFixture => {
    const memory = new MemoryStore();
    const store = Object.assign(withoutUserIndex(memory), extra);
    return { store, ttlOf: async (id: string) => memory.inspect(id)?.ttlMs ?? -2, close: () => memory.close() };
  };
  /** The names of the user-index tests, from a recording. */
  const indexTests = (groups: Map<string, readonly string[]>): string[] => [...groups].filter(([, path]) => path.includes(GROUP)).map(([name]) => name);

  it('skips each of them, with the reason, before it checks anything (node:test, Vitest, Mocha)', async () => {
    const { bodies, groups, close } = await recordContract(plain());
    try {
      const names = indexTests(groups);
      assert.ok(names.length >= 14, `${names.length} user-index tests`);
      for (const style of ['context', 'this'] as const) {
        const notes: string[] = [];
        const runner = {
          skip(note: string): never {
            notes.push(note);
            throw new Skipped(note);
          },
        };
        for (const name of names) {
          const body = bodies.get(name) as Body;
          await assert.rejects(style === 'context' ? body.call(undefined, runner) : body.call(runner), Skipped, `${style}: ${name}`);
        }
        assert.equal(notes.length, names.length);
        for (const note of notes) assert.match(note, REASON);
        await (bodies.get(OTHER) as Body).call(undefined, runner);
        assert.equal(notes.length, names.length, `${style}: the other tests run`);
      }
    } finally {
      await close();
    }
  });

  it('passes them where the runner cannot skip a running test (Jest), since the capability is optional', async () => {
    const { bodies, groups, close } = await recordContract(plain());
    try {
      for (const name of indexTests(groups)) await (bodies.get(name) as Body).call(undefined);
    } finally {
      await close();
    }
  });

  it('fails them on a store with some of the three methods but not all, naming what is missing', async () => {
    const some = { userSessions: async () => [], scanSessions: async function* () {} };
    const { bodies, groups, close } = await recordContract(plain(some));
    try {
      const runner = { skip: (note: string) => assert.fail(`skipped: ${note}`) };
      for (const name of indexTests(groups)) {
        await assert.rejects((bodies.get(name) as Body).call(undefined, runner), /the store has userSessions and scanSessions but not endSessions and endUserSessions: a user index \(UserIndexStore\) needs all four methods, or none/);
      }
    } finally {
      await close();
    }
  });

  it('shows them as skipped, with the reason, in what node:test reports, and the rest of the contract passes', () => {
    const { count, results, skipped } = tapReport('test/store/contract-without-user-index.ts');
    assert.ok(count('skipped') >= 14, `skipped ${count('skipped')}`);
    assert.ok(count('pass') >= 50, `passed ${count('pass')}`);
    for (const line of skipped) assert.match(line, / # SKIP the store keeps no user index \(userSessions, endSessions, endUserSessions, scanSessions\)/);
    assert.ok(results.includes(OTHER), `${OTHER} is reported passed`);
  });
});

/**
 * Runs a contract file under node:test's TAP reporter, asserts it passed with no failure, and gives its
 * counts, the names of its results, and those reported skipped (checked to match the skipped count).
 */
function tapReport(file: string): { count: (what: string) => number; results: string[]; skipped: string[] } {
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], {
    encoding: 'utf8',
    env: { ...process.env, NODE_TEST_CONTEXT: undefined },
    timeout: 60_000,
  });
  assert.equal(child.status, 0, `${child.stdout.slice(-3000)}\n${child.stderr}`);
  const count = (what: string): number => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(child.stdout)?.[1]);
  assert.equal(count('fail'), 0);
  const results = [...child.stdout.matchAll(/^\s*ok \d+ - (.*)$/gm)].map((match) => match[1] as string);
  const skipped = results.filter((line) => line.includes('# SKIP'));
  assert.equal(skipped.length, count('skipped'));
  return { count, results, skipped };
}

/** Numbers no count or size option takes. */
const NOT_WHOLE_ABOVE_ZERO: readonly unknown[] = [0, -1, 1.5, Number.NaN, Infinity];

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
    // The live session is the least recently used, so plain LRU eviction would pick it.
    await store.create('live', [['n', '0']], 60_000);
    await store.create('expiring', [['n', '0']], 30);
    await sleep(60);
    await store.create('new', [['n', '0']], 60_000);
    assert.ok(await store.load('live'), 'the live session was kept');
    assert.ok(await store.load('new'));
    assert.deepEqual(store.ids().sort(), ['live', 'new']);
  });

  it('rejects maxSessions that is not a whole number above 0 with INVALID_OPTIONS', () => {
    for (const value of [...NOT_WHOLE_ABOVE_ZERO, '10']) assertInvalidOptions(() => new MemoryStore({ maxSessions: value as number }));
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

const expiry = (): StoreExpiry => ({ ttlMs: 60_000, maxAgeMs: null, now: Date.now() });
const roomy: StoreLimits = { maxFields: 1000, maxBytes: 10_000_000 };

/** What a store counts for a session and for a field beyond their characters, read from a store. */
async function overheads(): Promise<{ session: number; field: number }> {
  const store = new MemoryStore();
  await store.create('i', [['a', 'b']], 60_000);
  const one = store.bytes;
  await store.create('j', [['a', 'b'], ['c', 'd']], 60_000);
  const field = store.bytes - one - one - 2;
  return { session: one - field - 3, field };
}

/** A full recount of what `store` holds, for stores of ASCII text only. */
function recount(store: MemoryStore, overhead: { session: number; field: number }): number {
  let total = 0;
  for (const id of store.ids()) {
    total += overhead.session + id.length;
    for (const [field, value] of store.inspect(id)?.fields ?? []) total += overhead.field + field.length + value.length;
  }
  return total;
}

describe('MemoryStore maxBytes', () => {
  it('defaults to 32 MiB', () => {
    assert.equal(DEFAULT_MEMORY_STORE_OPTIONS.maxBytes, 32 * 1024 * 1024);
  });

  it('counts overheads that are neither nothing nor most of a small session', async () => {
    const { session, field } = await overheads();
    assert.ok(session >= 100 && session <= 1000, `a session counts ${session} bytes beyond its characters`);
    assert.ok(field >= 32 && field <= 256, `a field counts ${field} bytes beyond its characters`);
  });

  it('evicts the least recently used sessions to make room for a new one', async () => {
    const fields: StoreField[] = [['name', 'x'.repeat(500)]];
    const probe = new MemoryStore();
    await probe.create('a', fields, 60_000);
    const store = new MemoryStore({ maxBytes: 3 * probe.bytes });
    for (const id of ['a', 'b', 'c']) assert.equal(await store.create(id, fields, 60_000), true);
    assert.equal(store.bytes, 3 * probe.bytes, 'three sessions fit');
    assert.ok(await store.load('a'));
    assert.equal(await store.create('d', fields, 60_000), true);
    assert.deepEqual(store.ids(), ['c', 'a', 'd'], 'b, the least recently used, made room');
    assert.equal(store.bytes, 3 * probe.bytes);
  });

  it('evicts others, never the session written, when an update grows a session', async () => {
    const probe = new MemoryStore();
    await probe.create('a', [['n', '1']], 60_000);
    const store = new MemoryStore({ maxBytes: 3 * probe.bytes });
    for (const id of ['a', 'b', 'c']) await store.create(id, [['n', '1']], 60_000);
    // 'a' is the least recently used until it is written.
    assert.equal(await store.update('a', [['note', 'x'.repeat(100)]], [], expiry(), roomy), true);
    assert.deepEqual(store.ids(), ['c', 'a']);
    assert.equal(store.inspect('a')?.fields.get('note'), 'x'.repeat(100));
    assert.ok(store.bytes <= 3 * probe.bytes);
    // A write that does not grow the store evicts nothing.
    assert.equal(await store.update('c', [['n', '2']], [], expiry(), roomy), true);
    assert.deepEqual(store.ids(), ['a', 'c']);
  });

  it('evicts the least recently used session when an increment adds a digit', async () => {
    const probe = new MemoryStore();
    await probe.create('a', [['n', '9']], 60_000);
    const store = new MemoryStore({ maxBytes: 3 * probe.bytes });
    for (const id of ['a', 'b', 'c']) await store.create(id, [['n', '9']], 60_000);
    assert.equal(await store.increment('b', 'n', 1, [], expiry(), roomy), 10);
    assert.deepEqual(store.ids(), ['c', 'b'], 'one more byte: a goes');
    assert.equal(store.bytes, 3 * probe.bytes - probe.bytes + 1);
  });

  it('evicts when a move grows a session, never the session moved', async () => {
    const probe = new MemoryStore();
    await probe.create('a', [[':c', '1'], ['s', '1']], 60_000);
    const store = new MemoryStore({ maxBytes: 2 * probe.bytes });
    for (const id of ['a', 'b']) await store.create(id, [[':c', '1'], ['s', '1']], 60_000);
    // 'a' moves to 'z' (same length) with one more character: 'b' goes; the mark of 'a' counts nothing.
    assert.ok(await store.move('a', 'z', { set: [['s', '12']], remove: [] }, expiry()));
    assert.deepEqual(store.ids(), ['z']);
    assert.equal(store.bytes, probe.bytes + 1);
  });

  it('stores a session larger than maxBytes alone, and lets it go for the next one', async () => {
    const store = new MemoryStore({ maxBytes: 1000 });
    await store.create('a', [['n', '1']], 60_000);
    await store.create('b', [['n', '1']], 60_000);
    assert.equal(await store.create('large', [['note', 'x'.repeat(2000)]], 60_000), true);
    assert.deepEqual(store.ids(), ['large']);
    assert.ok(store.bytes > 2000);
    assert.equal(await store.create('c', [['n', '1']], 60_000), true);
    assert.deepEqual(store.ids(), ['c']);
    assert.ok(store.bytes <= 1000);
  });

  it('gives back what a session counted when it is deleted, moved, emptied, destroyed or closed', async () => {
    const store = new MemoryStore();
    const fields: StoreField[] = [['a', '1'], ['b', 'two']];
    await store.create('s', fields, 60_000);
    const one = store.bytes;
    await store.create('t', fields, 60_000);
    assert.equal(store.bytes, 2 * one);
    await store.update('t', [['c', 'x'.repeat(50)]], [], expiry(), roomy);
    await store.update('t', [], ['c'], expiry(), roomy);
    assert.equal(store.bytes, 2 * one, 'a field added and deleted again');
    await store.update('t', [], ['a', 'b'], expiry(), roomy);
    assert.equal(store.inspect('t'), undefined, 'a session without fields is gone');
    assert.equal(store.bytes, one);
    await store.create('t', fields, 60_000);
    assert.ok(await store.move('t', 'u', { set: [], remove: [] }, expiry()));
    assert.ok(store.bytes > 2 * one, 'the moved session holds a created-at time now');
    await store.destroy('u');
    assert.equal(store.bytes, one, 'the mark of an ended session counts nothing');
    await store.destroy('s');
    await store.destroy('s');
    assert.equal(store.bytes, 0);
    await store.create('s', fields, 60_000);
    await store.close();
    assert.equal(store.bytes, 0);
  });

  it('gives back what expired sessions counted, and lets them make room before live ones', async () => {
    const probe = new MemoryStore();
    await probe.create('a', [['n', '0']], 60_000);
    const store = new MemoryStore({ maxBytes: 2 * probe.bytes });
    await store.create('b', [['n', '0']], 60_000);
    await store.create('a', [['n', '0']], 30);
    assert.equal(store.bytes, 2 * probe.bytes);
    await sleep(60);
    assert.equal(store.bytes, probe.bytes);
    await store.create('c', [['n', '0']], 60_000);
    assert.deepEqual(store.ids(), ['b', 'c']);
  });

  it('gives back what a session past its absolute lifetime counted', async () => {
    const store = new MemoryStore();
    await store.create('live', [['n', '0']], 60_000);
    const live = store.bytes;
    await store.create('old', [[':c', String(Date.now() - 10_000)]], 60_000);
    assert.equal(await store.update('old', [['n', '1']], [], { ...expiry(), maxAgeMs: 5000 }, roomy), false);
    assert.equal(store.bytes, live);
  });

  it("counts a string's UTF-8 bytes, or two a character when V8 keeps it at two", async () => {
    const counted = async (value: string): Promise<number> => {
      const store = new MemoryStore();
      await store.create('s', [['v', value]], 60_000);
      return store.bytes;
    };
    const ascii = await counted('x'.repeat(100));
    assert.equal(await counted('é' + 'x'.repeat(99)), ascii + 1, 'é is 2 bytes in UTF-8, 1 in V8');
    assert.equal(await counted('ā' + 'x'.repeat(99)), ascii + 100, 'one ā makes V8 keep all 100 characters at 2 bytes');
    assert.equal(await counted('中'.repeat(100)), ascii + 200, '中 is 3 bytes in UTF-8, more than 2 in V8');
    assert.equal(await counted('😀'.repeat(50)), ascii + 100, 'an emoji is 4 bytes in UTF-8 and two characters of 2 bytes in V8');
  });

  it('keeps an exact count within maxBytes through any sequence of operations', async () => {
    const overhead = await overheads();
    const maxBytes = 4000;
    const store = new MemoryStore({ maxBytes });
    // A small deterministic generator (mulberry32), so a failure can be replayed.
    let seed = 42;
    const random = (below: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) % below);
    };
    const text = (): string => 'x'.repeat(random(600));
    const fields = (): StoreField[] => Array.from({ length: 1 + random(4) }, () => [`f${random(6)}`, text()] as const);
    const ids = Array.from({ length: 12 }, (_, i) => `session-${i}`);
    // An id once ended stays marked for a minute, so it is replaced in the set by a fresh one.
    let fresh = ids.length;
    const retire = (id: string): void => void ids.splice(ids.indexOf(id), 1, `session-${fresh++}`);
    let evictions = 0;
    for (let step = 0; step < 3000; step++) {
      const id = ids[random(ids.length)] as string;
      const others = store.ids().filter((other) => other !== id);
      let written = false;
      const op = random(7);
      try {
        switch (op) {
          case 0:
            written = await store.create(id, fields(), 60_000);
            break;
          case 1:
            written = await store.update(id, fields(), [], expiry(), roomy);
            break;
          case 2:
            // May remove the last fields, and with them the session.
            await store.update(id, [], [`f${random(6)}`, `f${random(6)}`], expiry(), roomy);
            break;
          case 3:
            written = (await store.increment(id, 'n', random(2000) - 1000, [['s', String(step)]], expiry(), roomy)) !== null;
            break;
          case 4:
            await store.load(id);
            break;
          case 5: {
            // Moves the session to another id of the set that holds no session now, if any.
            const to = ids.find((other) => other !== id && store.inspect(other) === undefined);
            if (to !== undefined && (await store.move(id, to, { set: [['s', text()]], remove: [] }, expiry())) !== null) {
              assert.ok(store.inspect(to), `step ${step}: the session moved to was evicted`);
              retire(id);
            }
            break;
          }
          default:
            await store.destroy(id);
            retire(id);
        }
      } catch (error) {
        // Each changes nothing: a write to an id ended (destroyed or moved away) a moment ago, a
        // counter pushed past its range, a move onto an id that still holds the mark of an ended session.
        const expected = isSessionError(error, 'SESSION_GONE') || isSessionError(error, 'INVALID_ARGUMENT') || isSessionError(error, 'STORE_ERROR');
        if (!expected) throw error;
      }
      assert.equal(store.bytes, recount(store, overhead), `step ${step}`);
      assert.ok(store.bytes <= maxBytes, `step ${step}: ${store.bytes} bytes`);
      if (written) assert.ok(store.inspect(id), `step ${step}, op ${op}: the session written was evicted`);
      if (others.some((other) => store.inspect(other) === undefined)) evictions++;
    }
    assert.ok(evictions > 100, `${evictions} writes evicted sessions`);
  });

  it('rejects maxBytes that is not a whole number above 0 with INVALID_OPTIONS, and says why it matters', () => {
    for (const value of [...NOT_WHOLE_ABOVE_ZERO, '1mb']) assertInvalidOptions(() => new MemoryStore({ maxBytes: value as number }));
    assert.throws(() => new MemoryStore({ maxBytes: 0 }), /maxBytes must be a whole number of bytes above 0.*got 0.*limits\.maxSessionBytes/);
  });
});
