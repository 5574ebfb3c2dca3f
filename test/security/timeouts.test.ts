// Idle and absolute timeouts through every adapter, against a real Redis, with second-scale
// lifetimes. The adapters run side by side (each with its own Redis) so the file takes seconds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADAPTERS, Browser, handleOf, parseSetCookie, STORES, watchUnhandled, type App, type Route, type StoreUnderTest } from '../conformance/harness.js';
import { everyHash, linesOf, param, redisKey, userFields } from './support.js';

const IDLE_MS = 1000;
const ABSOLUTE_MS = 3000;
const OPTIONS = { cookieLifetime: IDLE_MS / 1000, absoluteLifetime: ABSOLUTE_MS / 1000, touchInterval: 0 };
/** Between two requests of a busy visitor: well inside the idle timeout. */
const BUSY_MS = 300;
/**
 * The store computes a TTL from the application's clock and Redis applies it when the command
 * arrives, so the expiry can sit this much past the deadline: the app-to-Redis latency.
 */
const LATENCY_MS = 100;

function routes(): Record<string, Route> {
  return {
    get: async (s, q) => ({ value: (await s.get(param(q, 'key'))) ?? null, id: s.id ?? null }),
    set: async (s, q) => {
      await s.set(param(q, 'key'), JSON.parse(param(q, 'value')));
      return { id: s.id ?? null };
    },
    incr: async (s, q) => ({ value: await s.incr(param(q, 'key')), id: s.id ?? null }),
    regenerate: async (s) => {
      await s.load();
      const before = s.id ?? null;
      await s.regenerate();
      return { before, after: s.id ?? null };
    },
    // Regenerates without reading first: the store hands over the hash before latchkey sees its age.
    regenerateOnly: async (s) => {
      await s.regenerate();
      return { after: s.id ?? null };
    },
  };
}

describe('timeouts', { concurrency: true }, () => {
  const makeStore = STORES['redis (node-redis)'];
  assert.ok(makeStore);
  let unhandled: ReturnType<typeof watchUnhandled>;
  before(() => void (unhandled = watchUnhandled()));
  after(() => assert.deepEqual(unhandled.stop(), [], 'no unhandled rejections'));

  for (const adapter of ADAPTERS) {
    describe(adapter.name, { concurrency: true }, () => {
      let sut: StoreUnderTest;
      let app: App;

      before(async () => {
        sut = await makeStore();
        app = await adapter.start({ ...sut.options, ...OPTIONS }, routes());
      });
      after(async () => {
        await app?.close();
        await sut?.close();
      });

      /** A browser with a new session holding `a: 1`, that session's absolute deadline, and when the request that created it was sent. */
      async function newSession(): Promise<{ browser: Browser; id: string; createdAt: number; deadline: number; sent: number }> {
        const browser = new Browser(app.url);
        const sent = Date.now();
        const response = await browser.get('/set?key=a&value=1');
        assert.equal(response.status, 200);
        assert.equal(parseSetCookie(linesOf(response.setCookie)[0] as string).attributes.get('max-age'), String(ABSOLUTE_MS / 1000), 'the cookie lasts until the absolute deadline');
        const id = browser.cookie as string;
        const createdAt = Number((await sut.hash(id))?.get(':c'));
        assert.ok(createdAt > 0);
        return { browser, id, createdAt, deadline: createdAt + ABSOLUTE_MS, sent };
      }

      /**
       * The expiry in Redis of a session that a request sent at `touchedAt` just refreshed: within the
       * idle timeout, never past the absolute deadline, and no sooner than that request set it.
       */
      async function checkExpiry(id: string, deadline: number, what: string, touchedAt: number): Promise<void> {
        assert.ok(sut.redis);
        const asked = Date.now();
        // One round trip, so that the three agree and a busy visitor's reads are not slowed down.
        const [ttl, expireAt, seen] = (await sut.redis.command(
          'EVAL',
          "return { redis.call('PTTL', KEYS[1]), redis.call('PEXPIRETIME', KEYS[1]), redis.call('HGET', KEYS[1], ':s') }",
          '1',
          redisKey(id),
        )) as [number, number, string | undefined];
        const measured = Date.now();
        // The touch set the idle timeout, or what was left to the absolute deadline, from the moment
        // it recorded as last seen (':s'), after touchedAt: the key lives at least until `earliest`.
        const lastSeen = Math.max(touchedAt, Number(seen ?? 0));
        const earliest = Math.min(lastSeen + IDLE_MS, deadline);
        if (ttl === -2) {
          assert.ok(measured + 5 >= earliest, `${what}: the key is gone ${earliest - measured} ms before it could expire`);
          return;
        }
        assert.ok(ttl >= 0, `${what}: PTTL ${ttl}, a session always expires`);
        assert.ok(ttl >= earliest - measured - 5, `${what}: PTTL ${ttl}, but the touch set at least ${earliest - measured} ms`);
        assert.ok(ttl <= IDLE_MS, `${what}: PTTL ${ttl} within the idle timeout`);
        assert.ok(ttl <= deadline - asked + LATENCY_MS, `${what}: PTTL ${ttl} with ${deadline - asked} ms left to the absolute deadline`);
        assert.ok(expireAt <= deadline + LATENCY_MS, `${what}: expires ${expireAt - deadline} ms after the deadline`);
      }

      /**
       * Reads the session every {@link BUSY_MS} until it ends (bounded), checking the expiry
       * after each read; resolves how many reads it served and when the first failed read
       * was answered.
       */
      async function keepBusy(browser: Browser, id: () => string, deadline: number): Promise<{ served: number; endedAt: number }> {
        let served = 0;
        for (let i = 0; i < Math.ceil((ABSOLUTE_MS * 2) / BUSY_MS); i++) {
          await sleep(BUSY_MS);
          const sent = Date.now();
          const current = id();
          const response = await browser.get('/get?key=a');
          const answered = Date.now();
          assert.equal(response.status, 200);
          const body = JSON.parse(response.body) as { value: unknown; id: string | null };
          if (body.value === 1) {
            assert.ok(sent <= deadline, `served a read sent ${sent - deadline} ms after the absolute deadline`);
            assert.equal(body.id, handleOf(current));
            served++;
            await checkExpiry(current, deadline, `read ${i}`, sent);
            continue;
          }
          assert.deepEqual(body, { value: null, id: null });
          assert.deepEqual(response.setCookie, [], 'an ended session gets no cookie');
          return { served, endedAt: answered };
        }
        assert.fail('the session never ended');
      }

      /** A write with the cookie of an ended session: it gets a new id, and the old key stays away. */
      async function writeAfterEnd(browser: Browser, id: string, createdAt: number): Promise<void> {
        const write = await browser.get('/set?key=b&value=2');
        assert.equal(write.status, 200);
        const fresh = browser.cookie as string;
        assert.notEqual(fresh, id);
        assert.equal((JSON.parse(write.body) as { id: string }).id, handleOf(fresh));
        assert.equal(await sut.hash(id), null, 'the old key is not revived');
        const hash = await sut.hash(fresh);
        assert.deepEqual([...userFields(hash)], [['b', '2']], 'none of the old data');
        assert.ok(Number(hash?.get(':c')) > createdAt, 'a new creation time, so a new absolute deadline');
      }

      it('ends a session left idle past cookieLifetime; its cookie then revives nothing', async () => {
        const { browser, id, createdAt, deadline, sent } = await newSession();
        await checkExpiry(id, deadline, 'created', sent);
        await sleep(IDLE_MS + 300);
        assert.equal(await sut.hash(id), null, 'Redis dropped it');
        const read = await browser.get('/get?key=a');
        assert.deepEqual(JSON.parse(read.body), { value: null, id: null });
        assert.deepEqual(read.setCookie, []);
        assert.equal(await sut.hash(id), null);
        await writeAfterEnd(browser, id, createdAt);
      });

      it('ends a busy session at the absolute deadline, and its TTL never reaches past it', async () => {
        const { browser, id, createdAt, deadline } = await newSession();
        // An expiry far too long, as a stale TTL would be: the first touch brings it back under the deadline.
        await sut.setTtlMs(id, 60_000);
        const { served, endedAt } = await keepBusy(browser, () => id, deadline);
        assert.ok(served >= 6, `kept alive past the idle timeout by ${served} reads`);
        assert.ok(endedAt >= deadline, `ended ${deadline - endedAt} ms before the absolute deadline`);
        assert.equal(await sut.hash(id), null);
        await writeAfterEnd(browser, id, createdAt);
      });

      it('does not revive a session past its absolute deadline that Redis still holds, whatever touches it', async () => {
        const sessions = await Promise.all(['read', 'write', 'incr', 'regenerate', 'regenerateOnly'].map(async (touch) => ({ touch, ...(await newSession()) })));
        for (const { touch, browser, id } of sessions) {
          await browser.json(`/set?key=mark&value=${encodeURIComponent(JSON.stringify(touch))}`);
          await sut.setTtlMs(id, 60_000);
        }
        const deadline = Math.max(...sessions.map((session) => session.deadline));
        await sleep(deadline - Date.now() + 150);
        for (const { touch, id } of sessions) assert.ok(await sut.hash(id), `${touch}: Redis still holds the key`);

        for (const { touch, browser, id, createdAt } of sessions) {
          switch (touch) {
            case 'read': {
              const read = await browser.get('/get?key=a');
              assert.deepEqual(JSON.parse(read.body), { value: null, id: null }, touch);
              assert.deepEqual(read.setCookie, [], touch);
              assert.equal(await sut.hash(id), null, `${touch}: the read deleted it`);
              await writeAfterEnd(browser, id, createdAt);
              break;
            }
            case 'write':
              await writeAfterEnd(browser, id, createdAt);
              break;
            case 'incr': {
              const incr = await browser.get('/incr?key=n');
              const body = JSON.parse(incr.body) as { value: number; id: string };
              assert.equal(body.value, 1, touch);
              assert.notEqual(browser.cookie, id, touch);
              assert.equal(body.id, handleOf(browser.cookie as string), touch);
              assert.equal(await sut.hash(id), null, touch);
              assert.deepEqual([...userFields(await sut.hash(browser.cookie as string))], [['n', '1']], touch);
              break;
            }
            default: {
              const regenerated = await browser.get(`/${touch}`);
              assert.equal(regenerated.status, 200, touch);
              assert.equal((JSON.parse(regenerated.body) as { after: string | null }).after, null, `${touch}: no session to move`);
              assert.deepEqual(linesOf(regenerated.setCookie).filter((line) => parseSetCookie(line).value !== ''), [], touch);
              assert.equal(await sut.hash(id), null, touch);
            }
          }
        }
        for (const [key, hash] of await everyHash(sut)) {
          assert.ok(!hash.has('mark'), `${key} holds the data of an ended session: ${hash.get('mark')}`);
        }
      });

      it('does not extend the absolute deadline on regenerate()', async () => {
        const { browser, id, createdAt, deadline } = await newSession();
        let current = id;
        for (const at of [900, 2400]) {
          // Busy until `at` ms after creation, then regenerate.
          while (Date.now() < createdAt + at) {
            await sleep(Math.min(BUSY_MS, createdAt + at - Date.now()));
            assert.equal((JSON.parse((await browser.get('/get?key=a')).body) as { value: unknown }).value, 1);
          }
          const sent = Date.now();
          const response = await browser.get('/regenerate');
          const body = JSON.parse(response.body) as { before: string; after: string };
          assert.equal(body.before, handleOf(current));
          assert.notEqual(browser.cookie, current);
          assert.equal(await sut.hash(current), null);
          current = browser.cookie as string;
          assert.equal(body.after, handleOf(current));
          assert.equal((await sut.hash(current))?.get(':c'), String(createdAt), 'the creation time is carried over');
          await checkExpiry(current, deadline, `regenerated at ${at} ms`, sent);
        }
        const { endedAt } = await keepBusy(browser, () => current, deadline);
        assert.ok(endedAt >= deadline, `ended ${deadline - endedAt} ms before the deadline`);
        assert.ok(endedAt < deadline + BUSY_MS + 500, `lived ${endedAt - deadline} ms past the first id's deadline`);
        assert.equal(await sut.hash(current), null);
        await writeAfterEnd(browser, current, createdAt);
      });
    });
  }
});
