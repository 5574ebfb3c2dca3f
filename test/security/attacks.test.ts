// Attacks on the session through every adapter, against a real Redis: fixation, the logout and
// regenerate races, prototype-named fields and the size limits.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENDED_GRACE_MS, isSessionError, type SessionOptions, type Store } from '../../src/index.js';
import { ADAPTERS, Browser, handleOf, parseSetCookie, type App, type Route, type StoreUnderTest } from '../conformance/harness.js';
import { adapterFixture, everyHash, Gate, linesOf, param, redisKey, storedBytes, userFields } from './support.js';

/** Iterations of the held-write race per adapter, where the ending request runs while the write waits. */
const RACE_ITERATIONS = 200;
/** Extra iterations per adapter where the ending request and the write are let go at the same time. */
const LOOSE_ITERATIONS = 60;

const LIMITS = { maxKeys: 5, maxValueBytes: 100, maxSessionBytes: 400, maxKeyLength: 20 };

/** The operations a held request tries once its session was ended under it. */
const HELD_OPS = ['set', 'setmany', 'incr', 'delete', 'regenerate'] as const;

/**
 * A store that can hold back the answer of the next update: the write is in Redis, but the
 * request that made it has not heard so yet.
 */
class PausingStore implements Store {
  pause: Gate | undefined;
  constructor(readonly inner: Store) {}
  load: Store['load'] = (...args) => this.inner.load(...args);
  create: Store['create'] = (...args) => this.inner.create(...args);
  move: Store['move'] = (...args) => this.inner.move(...args);
  destroy: Store['destroy'] = (...args) => this.inner.destroy(...args);
  close: Store['close'] = () => this.inner.close();
  update: Store['update'] = async (...args) => {
    const result = await this.inner.update(...args);
    const pause = this.pause;
    this.pause = undefined;
    if (pause) {
      pause.reach();
      await pause.released;
    }
    return result;
  };
  increment: Store['increment'] = (...args) => this.inner.increment(...args);
}

/** What the routes of one app share with the test. */
interface Control {
  gate: Gate;
}

function routes(sut: StoreUnderTest, control: Control): Record<string, Route> {
  return {
    get: async (s, q) => ({ value: (await s.get(param(q, 'key'))) ?? null, id: s.id ?? null }),
    all: async (s) => ({ all: await s.all(), id: s.id ?? null, isNew: s.isNew }),
    set: async (s, q) => {
      await s.set(param(q, 'key'), JSON.parse(param(q, 'value')));
      return { id: s.id ?? null };
    },
    setmany: async (s, q) => {
      await s.set(JSON.parse(param(q, 'values')) as Record<string, unknown>);
      return { id: s.id ?? null };
    },
    incr: async (s, q) => ({ value: await s.incr(param(q, 'key'), Number(q.get('by') ?? 1)), id: s.id ?? null }),
    del: async (s, q) => {
      await s.delete(param(q, 'key'));
      return { id: s.id ?? null };
    },
    destroy: async (s) => {
      await s.destroy();
      return { id: s.id ?? null };
    },
    regenerate: async (s) => {
      await s.load();
      const before = s.id ?? null;
      await s.regenerate();
      return { before, after: s.id ?? null };
    },
    // A login as apps write it: regenerate, then store the user. Reports what Redis holds under
    // the old id at that moment, before the response exists (the planted cookie is given as ?old=).
    login: async (s, q) => {
      await s.load();
      const before = s.id;
      await s.regenerate();
      const redis = sut.redis;
      assert.ok(redis);
      const old = redisKey(param(q, 'old'));
      const oldHash = (await redis.command('HGETALL', old)) as string[];
      const oldTtl = Number(await redis.command('PTTL', old));
      await s.set('user', param(q, 'user'));
      return { before: before ?? null, after: s.id ?? null, oldHash, oldTtl };
    },
    // Reads its session, waits at the gate, then writes (or regenerates).
    hold: async (s, q) => {
      const gate = control.gate;
      await s.get('a');
      gate.reach();
      await gate.released;
      const n = Number(param(q, 'n'));
      switch (param(q, 'op')) {
        case 'set':
          await s.set('late', n);
          break;
        case 'setmany':
          await s.set({ late: n, also: n });
          break;
        case 'incr':
          await s.incr('late', n + 1);
          break;
        case 'delete':
          await s.delete('a');
          break;
        case 'regenerate':
          await s.regenerate();
          await s.set('late', n);
          break;
      }
      return { id: s.id ?? null };
    },
    // What a prototype-named key reads as, on a session that has it or not.
    proto: async (s) => {
      const all = (await s.all()) as Record<string, unknown>;
      return {
        proto: (await s.get('__proto__')) ?? null,
        ctor: (await s.get('constructor')) ?? null,
        toString: (await s.get('toString')) ?? null,
        hasValueOf: await s.has('valueOf'),
        hasOwnProperty: await s.has('hasOwnProperty'),
        keys: (await s.keys()).sort(),
        ownProto: Object.prototype.hasOwnProperty.call(all, '__proto__'),
        allProto: Object.getPrototypeOf(all) === Object.prototype,
        polluted: ({} as Record<string, unknown>).polluted ?? null,
      };
    },
  };
}

describe('attacks', () => {
  for (const adapter of ADAPTERS) {
    describe(adapter.name, () => {
      const fixture = adapterFixture(adapter);
      const control: Control = { gate: new Gate() };

      async function start(options: SessionOptions = {}): Promise<App> {
        return fixture.start(options, routes(fixture.sut, control));
      }

      /** The errors that reached the framework since the last call. */
      function takeErrors(): unknown[] {
        return fixture.app ? fixture.app.errors.splice(0) : [];
      }

      async function command(...args: string[]): Promise<unknown> {
        assert.ok(fixture.sut.redis);
        return fixture.sut.redis.command(...args);
      }

      describe('session fixation', () => {
        it('regenerate() deletes the planted id before the response is sent; the planted cookie then gets nothing', async () => {
          const { url } = await start();
          // The attacker gets a real session and plants its cookie in the victim's browser.
          const attacker = new Browser(url);
          await attacker.json('/set?key=cart&value="planted"');
          const planted = attacker.cookie as string;
          const victim = new Browser(url);
          victim.cookie = planted;

          const login = await victim.get(`/login?user=alice&old=${planted}`);
          assert.equal(login.status, 200, login.body);
          const body = JSON.parse(login.body) as { before: string; after: string; oldHash: string[]; oldTtl: number };
          assert.equal(body.before, handleOf(planted));
          assert.deepEqual(body.oldHash, [':x', 'e'], "right after regenerate() the old key holds no data, only the mark that it ended");
          assert.ok(body.oldTtl > 0 && body.oldTtl <= ENDED_GRACE_MS, `the mark expires by itself: ${body.oldTtl}`);
          const lines = linesOf(login.setCookie);
          assert.equal(lines.length, 1, 'one session cookie, the new id');
          const renewed = parseSetCookie(lines[0] as string).value;
          assert.notEqual(renewed, planted);
          assert.equal(body.after, handleOf(renewed));
          assert.equal(victim.cookie, renewed);
          assert.deepEqual(await fixture.sut.keys(), [redisKey(renewed)]);
          assert.equal((await fixture.sut.hash(renewed))?.get('user'), '"alice"');

          // The planted cookie reads nothing and learns nothing.
          const read = await attacker.get('/all');
          assert.equal(read.status, 200);
          assert.deepEqual(JSON.parse(read.body), { all: {}, id: null, isNew: true });
          assert.deepEqual(read.setCookie, []);
          assert.equal(await fixture.sut.hash(planted), null);

          // A write with it fails while the id is known as ended, and starts nothing.
          const refused = await attacker.get('/set?key=x&value=1');
          assert.equal(refused.status, 409);
          assert.deepEqual(refused.setCookie, []);
          assert.equal(attacker.cookie, planted);
          takeErrors();

          // Once that is forgotten, a write starts a session of its own, under an id the attacker did not choose.
          await command('DEL', redisKey(planted));
          const write = await attacker.get('/set?key=x&value=1');
          assert.equal(write.status, 200);
          const fresh = attacker.cookie as string;
          assert.notEqual(fresh, planted);
          assert.notEqual(fresh, renewed);
          assert.equal((JSON.parse(write.body) as { id: string }).id, handleOf(fresh));
          assert.equal(await fixture.sut.hash(planted), null, 'the planted id stays dead');
          assert.deepEqual([...userFields(await fixture.sut.hash(fresh))], [['x', '1']], 'no data of the victim, none of the old session');
          assert.deepEqual([...userFields(await fixture.sut.hash(renewed))].sort(), [['cart', '"planted"'], ['user', '"alice"']]);
          assert.deepEqual((await fixture.sut.keys()).sort(), [redisKey(renewed), redisKey(fresh)].sort());

          const mine = (await victim.json('/all')) as { all: object; id: string };
          assert.deepEqual(mine, { all: { cart: 'planted', user: 'alice' }, id: handleOf(renewed), isNew: false });
        });

        it('regenerate() with an id the store does not hold adopts nothing', async () => {
          const { url } = await start();
          const attacker = new Browser(url);
          await attacker.json('/set?key=a&value=1');
          const planted = attacker.cookie as string;
          await attacker.json('/destroy');
          const victim = new Browser(url);
          victim.cookie = planted;
          assert.deepEqual(await victim.json('/regenerate'), { before: null, after: null });
          // A request under way with the ended id cannot start a session over the logout's cookie...
          assert.equal((await victim.get('/set?key=user&value="alice"')).status, 409);
          takeErrors();
          // ...but a login (regenerate, then write, in one request) starts one under a new id.
          const login = (await victim.json(`/login?user=alice&old=${planted}`)) as { before: string | null; after: string };
          assert.equal(login.before, null);
          assert.equal(login.after, handleOf(victim.cookie as string));
          assert.notEqual(victim.cookie, planted);
          assert.equal(await fixture.sut.hash(planted), null);
          assert.deepEqual(await fixture.sut.keys(), [redisKey(victim.cookie as string)]);
        });
      });

      describe('logout and regenerate races', () => {
        it(`${RACE_ITERATIONS} × (hold a write that read its session, end the session from another request, release): nothing resurrected`, async () => {
          const { url } = await start();
          for (let i = 0; i < RACE_ITERATIONS; i++) {
            // 150 logouts and 50 regenerates, each meeting every held operation.
            const ending = i % 4 === 3 ? 'regenerate' : 'destroy';
            const op = HELD_OPS[i % HELD_OPS.length] as string;
            const what = `iteration ${i} (${ending}, held ${op})`;
            const victim = new Browser(url);
            await victim.json('/set?key=a&value=1');
            const id = victim.cookie as string;

            control.gate = new Gate();
            const held = victim.get(`/hold?op=${op}&n=${i}`);
            await control.gate.reached;
            const other = new Browser(url);
            other.cookie = id;
            const ended = await other.get(`/${ending}`);
            assert.equal(ended.status, 200, what);
            assert.equal(await fixture.sut.hash(id), null, what);
            control.gate.release();
            const response = await held;

            assert.equal(response.status, 409, `${what}: ${response.body}`);
            assert.deepEqual(response.setCookie, [], `${what}: the held response sets no cookie`);
            const errors = takeErrors();
            assert.equal(errors.length, 1, what);
            assert.ok(isSessionError(errors[0], 'SESSION_GONE'), `${what}: ${String(errors[0])}`);
            assert.deepEqual(await command('HGETALL', redisKey(id)), [':x', 'e'], `${what}: the old key holds only the mark that it ended`);

            const hashes = await everyHash(fixture.sut);
            for (const [key, hash] of hashes) {
              assert.ok(!hash.has('late') && !hash.has('also'), `${what}: ${key} holds the held request's field`);
            }
            if (ending === 'destroy') {
              assert.deepEqual([...hashes.keys()], [], `${what}: no key at all after a logout`);
              assert.equal(other.cookie, undefined, what);
              assert.equal(linesOf(ended.setCookie).length, 1, what);
            } else {
              // The regenerate response's cookie is the only one the browser got.
              const lines = linesOf(ended.setCookie);
              assert.equal(lines.length, 1, what);
              const renewed = parseSetCookie(lines[0] as string).value;
              assert.notEqual(renewed, id);
              assert.deepEqual([...hashes.keys()], [redisKey(renewed)], what);
              assert.deepEqual([...userFields(hashes.get(redisKey(renewed)) ?? null)], [['a', '1']], `${what}: the renewed session`);
            }
            await command('FLUSHALL');
          }
        });

        it(`${LOOSE_ITERATIONS} × (release the held write and end the session at the same moment): either order, nothing resurrected`, async () => {
          const { url } = await start();
          for (let i = 0; i < LOOSE_ITERATIONS; i++) {
            const ending = i % 2 === 0 ? 'destroy' : 'regenerate';
            const op = HELD_OPS[i % 3] as string;
            const what = `iteration ${i} (${ending}, held ${op})`;
            const victim = new Browser(url);
            await victim.json('/set?key=a&value=1');
            const id = victim.cookie as string;

            control.gate = new Gate();
            const held = victim.get(`/hold?op=${op}&n=${i}`);
            await control.gate.reached;
            const other = new Browser(url);
            other.cookie = id;
            const ending$ = other.get(`/${ending}`);
            control.gate.release();
            const [response, ended] = await Promise.all([held, ending$]);

            assert.equal(ended.status, 200, what);
            assert.ok(response.status === 200 || response.status === 409, `${what}: ${response.status}`);
            const errors = takeErrors();
            if (response.status === 409) {
              assert.ok(isSessionError(errors[0], 'SESSION_GONE'), what);
              assert.deepEqual(linesOf(response.setCookie), [], `${what}: the refused write sets no session cookie`);
            }
            assert.deepEqual(await command('HGETALL', redisKey(id)), [':x', 'e'], `${what}: the old key holds only the mark that it ended`);
            const hashes = await everyHash(fixture.sut);
            if (ending === 'destroy') {
              assert.deepEqual([...hashes.keys()], [], what);
            } else {
              const renewed = parseSetCookie(linesOf(ended.setCookie)[0] as string).value;
              assert.deepEqual([...hashes.keys()], [redisKey(renewed)], what);
              // Written before the move, the field went along; refused after it, it is nowhere.
              if (response.status === 409) assert.equal(hashes.get(redisKey(renewed))?.has('late'), false, what);
            }
            await command('FLUSHALL');
          }
        });
        it('a write that landed just before a concurrent logout or regenerate does not hand the browser the ended id', async () => {
          const paused = new PausingStore(fixture.sut.store);
          const { url } = await start({ store: paused });
          for (const ending of ['regenerate', 'destroy']) {
            const browser = new Browser(url);
            await browser.json('/set?key=a&value=1');
            const id = browser.cookie as string;
            const gate = new Gate();
            paused.pause = gate;
            const held = browser.get('/set?key=late&value=1');
            await gate.reached;
            const ended = await browser.get(`/${ending}`);
            assert.equal(ended.status, 200, ending);
            const newer = browser.cookie;
            assert.notEqual(newer, id, ending);
            gate.release();
            const response = await held;
            assert.equal(response.status, 200, `${ending}: the write was applied before the session ended`);
            assert.equal(await fixture.sut.hash(id), null, `${ending}: the old id stays dead`);
            assert.deepEqual(linesOf(response.setCookie), [], `${ending}: the earlier write does not re-send the ended id`);
            assert.equal(browser.cookie, newer, `${ending}: the browser keeps the cookie of the ${ending} response`);
          }
        });
      });

      describe('prototype-named fields', () => {
        it('stores __proto__, constructor and toString as plain data, and reads absent ones as absent', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          assert.deepEqual(await browser.json('/proto'), {
            proto: null,
            ctor: null,
            toString: null,
            hasValueOf: false,
            hasOwnProperty: false,
            keys: [],
            ownProto: false,
            allProto: true,
            polluted: null,
          });

          const values = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"toString":"x"}';
          await browser.json(`/setmany?values=${encodeURIComponent(values)}`);
          const id = browser.cookie as string;
          const hash = await fixture.sut.hash(id);
          assert.equal(hash?.get('__proto__'), '{"polluted":true}');
          assert.equal(hash?.get('constructor'), '{"prototype":{"polluted":true}}');
          assert.equal(hash?.get('toString'), '"x"');
          assert.deepEqual(await browser.json('/proto'), {
            proto: { polluted: true },
            ctor: { prototype: { polluted: true } },
            toString: 'x',
            hasValueOf: false,
            hasOwnProperty: false,
            keys: ['__proto__', 'constructor', 'toString'],
            ownProto: true,
            allProto: true,
            polluted: null,
          });
          assert.equal(({} as Record<string, unknown>).polluted, undefined, 'the test process is not polluted either');

          assert.deepEqual(await browser.json('/incr?key=valueOf'), { value: 1, id: handleOf(id) });
          assert.deepEqual(await browser.json('/set?key=__proto__&value=7'), { id: handleOf(id) });
          assert.equal((await fixture.sut.hash(id))?.get('__proto__'), '7');
          // They count like any key: 4 held, 2 more pass maxKeys (5), and neither is written.
          const before = await fixture.sut.hash(id);
          const over = await browser.get(`/setmany?values=${encodeURIComponent('{"hasOwnProperty":1,"isPrototypeOf":2}')}`);
          assert.equal(over.status, 413);
          assert.deepEqual(await fixture.sut.hash(id), before);
          await browser.json('/del?key=__proto__');
          assert.deepEqual([...userFields(await fixture.sut.hash(id))].map(([k]) => k).sort(), ['constructor', 'toString', 'valueOf']);
          const errors = takeErrors();
          assert.equal(errors.length, 1);
          assert.ok(isSessionError(errors[0], 'LIMIT_EXCEEDED'));
        });
      });

      describe('limits, with no partial write', () => {
        /** Answers 413 and leaves the stored hash exactly as it was (metadata included). */
        async function refused(browser: Browser, path: string, id: string | undefined): Promise<void> {
          const before = id === undefined ? null : await fixture.sut.hash(id);
          const keysBefore = await fixture.sut.keys();
          const response = await browser.get(path);
          assert.equal(response.status, 413, `${path}: ${response.body}`);
          assert.deepEqual(linesOf(response.setCookie), [], `${path}: no session cookie`);
          if (id !== undefined) assert.deepEqual(await fixture.sut.hash(id), before, `${path}: the hash is untouched`);
          assert.deepEqual(await fixture.sut.keys(), keysBefore, `${path}: no key created`);
          const errors = takeErrors();
          assert.equal(errors.length, 1, path);
          assert.ok(isSessionError(errors[0], 'LIMIT_EXCEEDED'), `${path}: ${String(errors[0])}`);
        }
        const many = (values: Record<string, unknown>): string => `/setmany?values=${encodeURIComponent(JSON.stringify(values))}`;
        const big = 'x'.repeat(99); // 101 bytes as JSON

        it('refuses a set() of several keys where one value is too big, on a new and on an existing session', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          await refused(browser, many({ a: 1, b: big, c: 3 }), undefined);
          assert.deepEqual(await fixture.sut.keys(), [], 'no session was started');
          assert.equal(browser.cookie, undefined);

          const { id: handle } = (await browser.json('/set?key=a&value=1')) as { id: string };
          const id = String(browser.cookie);
          assert.equal(handle, handleOf(id));
          await refused(browser, many({ b: 2, c: big, d: 4 }), id);
          await refused(browser, `/set?key=c&value=${encodeURIComponent(JSON.stringify(big))}`, id);
          // 100 bytes of JSON is allowed.
          await browser.json(`/set?key=c&value=${encodeURIComponent(JSON.stringify(big.slice(1)))}`);
          assert.equal((await fixture.sut.hash(id))?.get('c'), JSON.stringify(big.slice(1)));
        });

        it('refuses too many keys, at once or added to those held, and lets overwrites through', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          await refused(browser, many({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 }), undefined);
          await browser.json(many({ a: 1, b: 2, c: 3 }));
          const id = browser.cookie as string;
          await refused(browser, many({ d: 4, e: 5, f: 6 }), id);
          await browser.json(many({ a: 10, b: 20, c: 30, d: 4, e: 5 }));
          assert.equal(userFields(await fixture.sut.hash(id)).size, 5);
          await refused(browser, '/set?key=f&value=6', id);
          await refused(browser, '/incr?key=f', id);
          await browser.json('/incr?key=a');
          assert.equal((await fixture.sut.hash(id))?.get('a'), '11', 'incr of a held key is no new key');
        });

        it('refuses a key over maxKeyLength, counted in UTF-8 bytes', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          await browser.json('/set?key=a&value=1');
          const id = browser.cookie as string;
          await refused(browser, many({ b: 1, ['k'.repeat(21)]: 2 }), id);
          await refused(browser, `/set?key=${encodeURIComponent('é'.repeat(11))}&value=1`, id);
          await refused(browser, `/incr?key=${'k'.repeat(21)}`, id);
          await browser.json(`/set?key=${'k'.repeat(20)}&value=1`);
          await browser.json(`/set?key=${encodeURIComponent('é'.repeat(10))}&value=1`);
          assert.equal(userFields(await fixture.sut.hash(id)).size, 3);
        });

        it('refuses writes past maxSessionBytes, incr growing a counter included, and never holds more', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          await browser.json('/set?key=n&value=9');
          const id = browser.cookie as string;
          const fill = JSON.stringify(big.slice(1)); // 100 bytes
          await browser.json(many({ p: big.slice(1), q: big.slice(1), r: big.slice(1) }));
          // 30 bytes of metadata (':c', ':s' and their 13-digit times) + 'n9' + 3 × 101 = 335.
          assert.equal(storedBytes(await fixture.sut.hash(id)), 30 + 2 + 3 * (1 + fill.length));
          await refused(browser, `/set?key=s&value=${encodeURIComponent(JSON.stringify('y'.repeat(64)))}`, id);
          await browser.json(`/set?key=s&value=${encodeURIComponent(JSON.stringify('y'.repeat(62)))}`);
          assert.equal(storedBytes(await fixture.sut.hash(id)), 400, 'exactly full');
          await refused(browser, '/incr?key=n', id);
          assert.equal((await fixture.sut.hash(id))?.get('n'), '9', 'the increment was undone');
          await browser.json('/incr?key=n&by=-1');
          assert.equal((await fixture.sut.hash(id))?.get('n'), '8', 'a write that keeps the size passes');
          await browser.json('/del?key=p');
          await browser.json('/incr?key=n&by=2');
          assert.ok(storedBytes(await fixture.sut.hash(id)) <= 400);
        });

        it('incr of a new key on a full session is refused and stores nothing', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          await browser.json(many({ a: 1, b: 2, c: 3, d: 4, e: 5 }));
          const id = browser.cookie as string;
          await refused(browser, '/incr?key=z&by=3', id);
          assert.equal((await fixture.sut.hash(id))?.has('z'), false);
        });

        it('lets concurrent writers add keys only up to maxKeys and maxSessionBytes, together', async () => {
          const { url } = await start({ limits: LIMITS });
          const browser = new Browser(url);
          await browser.json('/set?key=a&value=1');
          const id = browser.cookie as string;
          const writers = await Promise.all([
            ...Array.from({ length: 20 }, (_, i) => browser.get(`/set?key=k${i}&value=${i}`)),
            ...Array.from({ length: 10 }, (_, i) => browser.get(`/incr?key=n${i}`)),
          ]);
          const statuses = writers.map((response) => response.status);
          assert.equal(statuses.filter((status) => status === 200).length, 4, statuses.join());
          assert.equal(statuses.filter((status) => status === 413).length, 26, statuses.join());
          assert.equal(userFields(await fixture.sut.hash(id)).size, 5);
          const errors = takeErrors();
          assert.equal(errors.length, 26, 'every refused write took the error path');
          for (const error of errors) assert.ok(isSessionError(error, 'LIMIT_EXCEEDED'), String(error));

          const bytes = new Browser(url);
          await bytes.json('/set?key=a&value=1');
          const bytesId = bytes.cookie as string;
          const value = encodeURIComponent(JSON.stringify(big.slice(1)));
          const fills = await Promise.all(Array.from({ length: 10 }, (_, i) => bytes.get(`/set?key=v${i}&value=${value}`)));
          // 30 + 2 + 3 × 102 = 338: three 100-byte values fit, a fourth would not.
          assert.equal(fills.filter((response) => response.status === 200).length, 3);
          assert.ok(storedBytes(await fixture.sut.hash(bytesId)) <= LIMITS.maxSessionBytes);
          const byteErrors = takeErrors();
          assert.equal(byteErrors.length, 7, 'every refused write took the error path');
          for (const error of byteErrors) assert.ok(isSessionError(error, 'LIMIT_EXCEEDED'), String(error));
        });
      });
    });
  }
});
