// The user index cleans itself: a session that expired (idle or absolute timeout) is not listed,
// and its entry leaves the index at the next listing or login of that user. Nothing runs in the
// background for it: no timer, no keyspace notifications.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionOptions } from '../../src/index.js';
import { heldUnder, loginVisitor, notAnonymous, PREFIX, STORE_KINDS, storageOf, useDeployment, type Deployment } from './harness.js';

/** The idle timeout of the idle case, in seconds. */
const IDLE = 1;
/** The absolute lifetime of the absolute case, in seconds. */
const ABSOLUTE = 2;
/** Waited past a deadline, in ms, so that the session is certainly past it. */
const PAST = 150;

const IDLE_OPTIONS: SessionOptions = { cookieLifetime: IDLE, touchInterval: 0, absoluteLifetime: null };
const ABSOLUTE_OPTIONS: SessionOptions = { cookieLifetime: 60, absoluteLifetime: ABSOLUTE };

/** The storage ids in `user`'s index in Redis, sorted; `undefined` for a MemoryStore. */
async function indexed(deployment: Deployment, user: string): Promise<string[] | undefined> {
  if (deployment.redis === undefined) return undefined;
  return ((await deployment.redis.command('HKEYS', `${PREFIX}user:${user}`)) as string[]).sort();
}

/** The storage ids of these cookies' sessions, sorted, or `undefined` for a MemoryStore. */
function idsOf(deployment: Deployment, cookies: readonly string[]): string[] | undefined {
  return deployment.redis === undefined ? undefined : cookies.map(storageOf).sort();
}

async function handlesListed(deployment: Deployment, user: string): Promise<string[]> {
  return (await deployment.b.admin.listUserSessions(user)).map((session) => session.handle).sort();
}

/** Checks that the sessions of `cookies` are gone from the store and their browsers anonymous. */
async function expired(deployment: Deployment, cookies: readonly string[]): Promise<void> {
  for (const cookie of cookies) {
    if (deployment.redis !== undefined) assert.equal(await deployment.redis.command('EXISTS', PREFIX + storageOf(cookie)), 0, 'Redis expired the session');
  }
  for (const cookie of cookies) {
    assert.equal(await notAnonymous(deployment.a, cookie), undefined);
    assert.equal(await heldUnder(deployment, cookie), undefined);
  }
}

// The tests wait for sessions to expire: they wait side by side.
describe('the user index cleans itself', { concurrency: true }, () => {
  for (const kind of STORE_KINDS) {
    describe(kind, { concurrency: true }, () => {
      describe(`sessions that expired idle (cookieLifetime ${IDLE} s, touchInterval 0, no absolute lifetime)`, { concurrency: true }, () => {
        const deployment = useDeployment(kind, IDLE_OPTIONS);

        it('leave the index at the next listing, and the index key goes with the last of them', async () => {
          const d = deployment();
          const user = 'idle-list';
          const old = [await loginVisitor(d.a, user), await loginVisitor(d.b, user)];
          assert.equal((await handlesListed(d, user)).length, 2);
          await sleep(IDLE * 1000 + PAST);
          if (d.redis !== undefined) {
            // Nothing listens for expiries: the test Redis sends no keyspace notifications.
            assert.deepEqual(await d.redis.command('CONFIG', 'GET', 'notify-keyspace-events'), ['notify-keyspace-events', '']);
            // Without an absolute lifetime the index has no TTL of its own: only the listing can clean it.
            assert.equal(await d.redis.command('PTTL', `${PREFIX}user:${user}`), -1);
            assert.deepEqual(await indexed(d, user), idsOf(d, old.map((login) => login.cookie)), 'nothing cleaned the index before the listing');
          }
          assert.deepEqual(await d.b.admin.listUserSessions(user), []);
          if (d.redis !== undefined) {
            assert.equal(await d.redis.command('HLEN', `${PREFIX}user:${user}`), 0);
            assert.equal(await d.redis.command('EXISTS', `${PREFIX}user:${user}`), 0, 'the empty index is gone');
          }
          await expired(d, old.map((login) => login.cookie));
        });

        it('leave the index at the next login, which is listed alone', async () => {
          const d = deployment();
          const user = 'idle-login';
          const old = [await loginVisitor(d.a, user), await loginVisitor(d.b, user)];
          await sleep(IDLE * 1000 + PAST);
          const fresh = await loginVisitor(d.b, user);
          assert.deepEqual(await indexed(d, user), idsOf(d, [fresh.cookie]), 'the login removed the expired entries');
          assert.deepEqual(await handlesListed(d, user), [fresh.handle]);
          await expired(d, old.map((login) => login.cookie));
        });
      });

      describe(`sessions past the absolute lifetime (${ABSOLUTE} s)`, { concurrency: true }, () => {
        const deployment = useDeployment(kind, ABSOLUTE_OPTIONS);

        // The first session is created a second before the second one, so that when the first is
        // past the absolute lifetime the second still has a second left (and keeps the index alive).
        it('leave the index at the next listing; the sessions still within it stay', async () => {
          const d = deployment();
          const user = 'absolute-list';
          const first = await loginVisitor(d.a, user);
          await sleep(1000);
          const second = await loginVisitor(d.b, user);
          await sleep((ABSOLUTE - 1) * 1000 + PAST);
          assert.deepEqual(await indexed(d, user), idsOf(d, [first.cookie, second.cookie]), 'nothing cleaned the index before the listing');
          assert.deepEqual(await handlesListed(d, user), [second.handle]);
          assert.deepEqual(await indexed(d, user), idsOf(d, [second.cookie]));
          if (d.redis !== undefined) assert.ok(Number(await d.redis.command('PTTL', `${PREFIX}user:${user}`)) > 0, 'the index expires with the last session');
          await expired(d, [first.cookie]);
        });

        it('leave the index at the next login', async () => {
          const d = deployment();
          const user = 'absolute-login';
          const first = await loginVisitor(d.a, user);
          await sleep(1000);
          const second = await loginVisitor(d.b, user);
          await sleep((ABSOLUTE - 1) * 1000 + PAST);
          const third = await loginVisitor(d.a, user);
          assert.deepEqual(await indexed(d, user), idsOf(d, [second.cookie, third.cookie]), 'the login removed the expired entry');
          assert.deepEqual(await handlesListed(d, user), [second.handle, third.handle].sort());
          await expired(d, [first.cookie]);
        });
      });
    });
  }
});
