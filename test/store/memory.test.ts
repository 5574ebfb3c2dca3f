import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { storeContract, type StoreFixture } from 'latchkey/testing';

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

/** Registers the contract on `fixture` through recording test functions; resolves its tests by name, set up. */
async function recordContract(fixture: () => StoreFixture): Promise<{ bodies: Map<string, Body>; close(): Promise<void> }> {
  const bodies = new Map<string, Body>();
  const hooks: Array<() => Promise<void>> = [];
  const closers: Array<() => Promise<void>> = [];
  storeContract('recorded', async () => fixture(), {
    describe: (_name, body) => body(),
    it: (name, body) => void bodies.set(name, body as Body),
    before: (body) => void hooks.push(body),
    after: (body) => void closers.push(body),
  });
  for (const hook of hooks) await hook();
  return { bodies, close: async () => void (await Promise.all(closers.map((close) => close()))) };
}

/** What the runner's skip was told; thrown like Vitest's and Mocha's skip, which end the test. */
class Skipped extends Error {}

describe('storeContract without ttlOf: the checks it cannot make are skipped visibly, never passed in silence', () => {
  const TTL_ONLY = 'without refresh does not change the TTL';
  const WITH_TTL = 'update, increment and load with refresh never set a TTL past what is left of it';
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
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', 'test/store/contract-without-ttl.ts'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_TEST_CONTEXT: undefined },
      timeout: 60_000,
    });
    assert.equal(child.status, 0, `${child.stdout.slice(-3000)}\n${child.stderr}`);
    const count = (what: string): number => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(child.stdout)?.[1]);
    assert.equal(count('fail'), 0);
    assert.ok(count('skipped') >= 20, `skipped ${count('skipped')}`);
    assert.ok(count('pass') >= 10, `passed ${count('pass')}`);
    const results = [...child.stdout.matchAll(/^\s*ok \d+ - (.*)$/gm)].map((match) => match[1] as string);
    const skipped = results.filter((line) => line.includes('# SKIP'));
    assert.equal(skipped.length, count('skipped'));
    for (const line of skipped) assert.match(line, /# SKIP the fixture gives no ttlOf: \d+ time-to-live checks? did not run \(the rest of this test passed\)$/);
    for (const name of [TTL_ONLY, WITH_TTL]) assert.ok(skipped.some((line) => line.startsWith(`${name} # SKIP`)), `${name} is reported skipped`);
    assert.ok(results.includes(NO_TTL), `${NO_TTL} is reported passed`);
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
