// What a write costs Redis must not grow with what the session holds: writes, increments and
// refreshes touch only the fields they change, and keep the session's size in a byte tally
// (BYTES_FIELD) instead of reading the whole hash. The tally must stay exact, sessions written
// before it existed must keep working, and RedisStore must decide every write as MemoryStore does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SessionError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { BYTES_FIELD, RedisStore } from '../../src/stores/redis.js';
import { LAST_SEEN_FIELD, NO_LIMITS, type Store, type StoreField, type StoreLimits } from '../../src/stores/store.js';
import { useRedisWithClient } from '../redis/client.js';

const LIMITS: StoreLimits = { maxFields: 256, maxBytes: 262_144 };

function expiry(maxAgeMs: number | null = null) {
  return { ttlMs: 60_000, maxAgeMs, now: Date.now() };
}

/** `count` fields of `size` characters each, with latchkey's metadata. */
function sessionOf(count: number, size: number): StoreField[] {
  const now = String(Date.now());
  return [[':c', now], [':s', now], ...Array.from({ length: count }, (_, i): StoreField => [`field${i}`, 'v'.repeat(size)])];
}

describe('RedisStore: the cost of a write', () => {
  const server = useRedisWithClient();
  const store = (): RedisStore => new RedisStore({ redis: server.client as never });

  /** The fields of `key` as Redis holds them. */
  async function hashOf(key: string): Promise<Map<string, string>> {
    const flat = (await server.redis.command('HGETALL', key)) as string[];
    const map = new Map<string, string>();
    for (let i = 0; i < flat.length; i += 2) map.set(flat[i] as string, flat[i + 1] as string);
    return map;
  }

  /**
   * The size limits count: every field's name and value but the store's own bookkeeping; the
   * tally as stored, and as it should be (bytes, fields, and the last-seen time written with them).
   */
  async function sizeOf(key: string): Promise<{ fields: number; bytes: number; tally: string | undefined; exact: string }> {
    const hash = await hashOf(key);
    const tally = hash.get(BYTES_FIELD);
    hash.delete(BYTES_FIELD);
    let bytes = 0;
    for (const [field, value] of hash) bytes += Buffer.byteLength(field) + Buffer.byteLength(value);
    return { fields: hash.size, bytes, tally, exact: `${bytes}/${hash.size}/${hash.get(LAST_SEEN_FIELD) ?? ''}` };
  }

  /** The commands Redis ran (scripts' inner calls included) for `operation`. */
  async function commandsOf(operation: () => Promise<unknown>): Promise<Array<[string, number]>> {
    await server.redis.resetStats();
    await operation();
    return [...(await server.redis.commandCounts())].filter(([name]) => name !== 'config|resetstat').sort();
  }

  it('runs the same commands, and no HGETALL, on a 3-field session and a 250-field session of 800 bytes each', async () => {
    const s = store();
    assert.equal(await s.create('small', sessionOf(1, 10), 60_000), true);
    assert.equal(await s.create('large', sessionOf(250, 800), 60_000), true);
    // The same history on both (and the script cache warm, so neither pays a NOSCRIPT retry).
    for (const id of ['small', 'large']) {
      await s.update(id, [['w', '1']], [], expiry(), LIMITS);
      await s.increment(id, 'n', 1, [], expiry(), LIMITS);
    }
    const operations: Record<string, (id: string) => Promise<unknown>> = {
      'write one field': (id) => s.update(id, [['w', '"x"'], [':s', String(Date.now())]], [], expiry(), LIMITS),
      'write under an absolute lifetime': (id) => s.update(id, [['w', '"y"']], [], expiry(3_600_000), LIMITS),
      'remove a field': (id) => s.update(id, [], ['w'], expiry(), LIMITS),
      increment: (id) => s.increment(id, 'n', 1, [[':s', String(Date.now())]], expiry(), LIMITS),
      'refresh the expiry': (id) => s.update(id, [[':s', String(Date.now())]], [], expiry(), NO_LIMITS),
    };
    for (const [what, operation] of Object.entries(operations)) {
      const small = await commandsOf(() => operation('small'));
      const large = await commandsOf(() => operation('large'));
      assert.deepEqual(large, small, `${what}: the same commands whatever the session holds`);
      assert.ok(!large.some(([name]) => name === 'hgetall'), `${what}: ${JSON.stringify(large)} reads no whole hash`);
    }
    for (const id of ['small', 'large']) {
      const size = await sizeOf(`session:${id}`);
      assert.equal(size.tally, size.exact, `${id}: the tally is exact after the writes`);
    }
  });

  it('tallies a session written before the tally existed on its first write, once, and enforces the limits on it', async () => {
    const s = store();
    const now = String(Date.now());
    // As the previous version wrote it: no BYTES_FIELD.
    await server.redis.command('HSET', 'session:legacy', ':c', now, ':s', now, 'user', '"alice"', 'cart', '[1,2,3]');
    await server.redis.command('PEXPIRE', 'session:legacy', '60000');
    assert.deepEqual(await s.load('legacy'), new Map([[':c', now], [':s', now], ['user', '"alice"'], ['cart', '[1,2,3]']]));

    const first = await commandsOf(() => s.update('legacy', [['theme', '"dark"']], [], expiry(), LIMITS));
    assert.deepEqual(first.find(([name]) => name === 'hgetall'), ['hgetall', 1], 'the first write tallies the hash once');
    let size = await sizeOf('session:legacy');
    assert.equal(size.tally, size.exact);
    assert.equal(size.fields, 5);
    const second = await commandsOf(() => s.update('legacy', [['theme', '"light"']], [], expiry(), LIMITS));
    assert.equal(second.find(([name]) => name === 'hgetall'), undefined, 'later writes use the tally');

    // Exactly at the limit passes, one byte more is refused and changes nothing.
    size = await sizeOf('session:legacy');
    const room = 1000 - size.bytes - 'pad'.length;
    await assert.rejects(s.update('legacy', [['pad', 'x'.repeat(room + 1)]], [], expiry(), { maxFields: 10, maxBytes: 1000 }), isLimit);
    assert.equal((await sizeOf('session:legacy')).bytes, size.bytes, 'a refused write changes nothing');
    assert.equal(await s.update('legacy', [['pad', 'x'.repeat(room)]], [], expiry(), { maxFields: 10, maxBytes: 1000 }), true);
    size = await sizeOf('session:legacy');
    assert.deepEqual([size.fields, size.bytes, size.tally], [6, 1000, size.exact]);
    await assert.rejects(s.update('legacy', [['more', '1']], [], expiry(), { maxFields: 6, maxBytes: 10_000 }), isLimit);
  });

  it('tallies the hash again when the tally is damaged', async () => {
    const s = store();
    for (const damaged of ['x', '-5', '1.5', '', '12', '12/', '12/x', '-5/1', '12/3', '12/3/x', '12/-1/', '12/3/4/']) {
      assert.equal(await s.create('damaged', sessionOf(3, 20), 60_000), true);
      await server.redis.command('HSET', 'session:damaged', BYTES_FIELD, damaged);
      assert.equal(await s.update('damaged', [['a', '1']], [], expiry(), LIMITS), true);
      const size = await sizeOf('session:damaged');
      assert.equal(size.tally, size.exact, `a tally of '${damaged}' is replaced by the real size`);
      assert.equal(size.fields, 6);
      await server.redis.command('DEL', 'session:damaged');
    }
  });

  it('counts the hash again after a writer that does not keep the tally (an older latchkey, during a rolling upgrade)', async () => {
    const s = store();
    assert.equal(await s.create('upgrade', sessionOf(3, 20), 60_000), true);
    assert.equal(await s.update('upgrade', [['a', '1'], [LAST_SEEN_FIELD, String(Date.now())]], [], expiry(), LIMITS), true);
    // The previous version's write: HSET of the field and the last-seen time, the tally untouched.
    await server.redis.command('HSET', 'session:upgrade', 'big', 'x'.repeat(500), LAST_SEEN_FIELD, String(Date.now() + 1));
    let size = await sizeOf('session:upgrade');
    assert.notEqual(size.tally, size.exact, 'the tally is stale now');
    await assert.rejects(s.update('upgrade', [['b', '1']], [], expiry(), { maxFields: 100, maxBytes: size.bytes }), isLimit, 'the limit counts what the older version wrote');
    assert.equal(await s.update('upgrade', [['b', '1'], [LAST_SEEN_FIELD, String(Date.now() + 2)]], [], expiry(), LIMITS), true);
    size = await sizeOf('session:upgrade');
    assert.equal(size.tally, size.exact, 'and the tally is exact again');
  });

  it('never returns the tally from load, and a regenerated session carries its own', async () => {
    const s = store();
    assert.equal(await s.create('before', sessionOf(2, 5), 60_000), true);
    assert.equal((await s.load('before'))?.has(BYTES_FIELD), false);
    const moved = await s.move('before', 'after', { set: [['fresh', '1']], remove: ['field0'] }, expiry());
    assert.equal(moved?.has(BYTES_FIELD), false);
    const size = await sizeOf('session:after');
    assert.equal(size.tally, size.exact);
    assert.equal(size.fields, 4);
  });

  it('deletes a session whose last field a write removes, as it did without the tally', async () => {
    const s = store();
    assert.equal(await s.create('emptied', [['a', '1'], ['b', '2']], 60_000), true);
    assert.equal(await s.update('emptied', [], ['a', 'b'], expiry(), LIMITS), true);
    assert.equal(await server.redis.command('EXISTS', 'session:emptied'), 0);
    assert.equal(await s.load('emptied'), null);
    assert.equal(await s.update('emptied', [['a', '1']], [], expiry(), LIMITS), false, 'and no write brings it back');
  });

  it('decides every write as MemoryStore does, and keeps the tally exact (random sequences)', async () => {
    const names = ['a', 'b', 'n', 'm', 'é', ':s'];
    const value = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -20, max: 20 }).map(String), fc.constant(''), fc.constant('ü€'));
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('update' as const), set: fc.array(fc.tuple(fc.constantFrom(...names), value), { maxLength: 3 }), remove: fc.array(fc.constantFrom(...names), { maxLength: 2 }) }),
      fc.record({ kind: fc.constant('increment' as const), field: fc.constantFrom(...names), by: fc.integer({ min: -3, max: 3 }), set: fc.array(fc.tuple(fc.constantFrom(...names), value), { maxLength: 1 }) }),
    );
    const limits = fc.record({ maxFields: fc.integer({ min: 2, max: 6 }), maxBytes: fc.integer({ min: 10, max: 60 }) });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(operation, limits), { minLength: 1, maxLength: 12 }), async (steps) => {
        const id = `random${round++}`;
        const redis = store();
        const memory = new MemoryStore();
        const initial: StoreField[] = [['a', '1'], ['n', '0']];
        for (const each of [redis, memory] as Store[]) assert.equal(await each.create(id, initial, 60_000), true);
        for (const [step, stepLimits] of steps) {
          const outcome = async (each: Store): Promise<unknown> => {
            try {
              return step.kind === 'update'
                ? await each.update(id, step.set, step.remove, expiry(), stepLimits)
                : await each.increment(id, step.field, step.by, step.set, expiry(), stepLimits);
            } catch (error) {
              return error instanceof SessionError ? error.code : error;
            }
          };
          const [fromRedis, fromMemory] = [await outcome(redis), await outcome(memory)];
          assert.deepEqual(fromRedis, fromMemory, `${JSON.stringify(step)} under ${JSON.stringify(stepLimits)}`);
          assert.deepEqual(await redis.load(id), await memory.load(id), 'both hold the same session');
          if ((await server.redis.command('EXISTS', `session:${id}`)) === 1) {
            const size = await sizeOf(`session:${id}`);
            assert.equal(size.tally, size.exact, 'the tally is exact');
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});

function isLimit(error: unknown): boolean {
  return error instanceof SessionError && error.code === 'LIMIT_EXCEEDED';
}
