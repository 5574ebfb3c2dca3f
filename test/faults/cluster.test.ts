// Redis Cluster under faults, with node-redis and ioredis: a primary killed under steady load (the
// other shards keep serving; the killed shard comes back once its replica is promoted), no lost
// updates under concurrency, and 10,000 sessions spread over the three primaries.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSessionError } from '../../src/core/errors.js';
import { SessionManager } from '../../src/core/manager.js';
import type { RequestContext, SessionHandle } from '../../src/core/session.js';
import { RedisStore } from '../../src/stores/redis.js';
import { STATE_FIELD } from '../../src/stores/store.js';
import { storageId } from '../../src/core/id.js';
import { startCluster, type ClusterTopology, type RedisNode } from '../redis/topology.js';
import { startSessionApp, type Browser } from '../store/session-app.js';
import { CLUSTER_CLIENTS } from '../store/topology-clients.js';
import {
  assertFailsFast,
  assertNoLostUpdates,
  cachedScripts,
  fieldOf,
  replicated,
  sessionsAtEnd,
  show,
  steadyLoad,
  summary,
  type Sample,
  type SessionAtEnd,
} from './topology-support.js';
import { watchUnhandled } from '../conformance/harness.js';

const COMMAND_TIMEOUT = 1000;
/** A request during the failover answers within the command timeout, plus this much. */
const SLACK_MS = 500;
/** The killed shard's sessions must work again this soon after the kill. */
const RECOVERY_BOUND_MS = 15_000;
/** The load goes on this long after the killed shard's first write that worked again. */
const SETTLED_MS = 2000;
/** Sessions per primary in the failover test. */
const PER_PRIMARY = 2;

/** Whether `error` or one of its causes mentions CROSSSLOT. */
function crossSlot(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) if (/CROSSSLOT/.test(e.message)) return true;
  return false;
}

/** What one failover under load showed. */
interface FailoverRun {
  readonly samples: Sample[];
  /** Per browser: whether its session lives on the killed primary. */
  readonly onVictim: boolean[];
  /** When the kill was sent, and when the process was gone. */
  readonly killSentAt: number;
  readonly killedAt: number;
  /** When the first request of a session on the killed shard, started after the kill, answered 200. */
  readonly recoveredAt: number;
  /** When every node served all slots from live masters again, after the kill. */
  readonly stateOkMs: number;
  readonly replicaScripts: number[];
  readonly promotedScripts: number;
  readonly promotedPort: number;
  readonly victimPort: number;
  readonly sessions: SessionAtEnd[];
  readonly errors: unknown[];
  readonly rejections: unknown[];
}

/**
 * Sessions on every primary, each browser writing a new field (`w<n>`) per request; kills one
 * primary after 1 s and keeps the load on until the killed shard's sessions have worked again for
 * SETTLED_MS (or a deadline passes). Everything is torn down before it resolves.
 */
async function clusterFailover(connect: (typeof CLUSTER_CLIENTS)[keyof typeof CLUSTER_CLIENTS]): Promise<FailoverRun> {
  const cleanups: (() => unknown)[] = [];
  try {
    const unhandled = watchUnhandled();
    cleanups.push(() => unhandled.stop());
    const cluster = await startCluster();
    cleanups.push(() => cluster.stop());
    const { client, close } = await connect(cluster.rootNodes);
    cleanups.push(close);
    const app = await startSessionApp(new RedisStore({ redis: client, commandTimeout: COMMAND_TIMEOUT }), {
      requestTimeoutMs: 5000,
      session: { limits: { maxKeys: 10_000 } },
    });
    cleanups.push(() => app.close());

    const primaries = await cluster.primaries();
    const victim = primaries[0]!;
    const perPrimary = new Map<number, number>();
    const browsers: Browser[] = [];
    const onVictim: boolean[] = [];
    for (let i = 0; primaries.some((node) => (perPrimary.get(node.port) ?? 0) < PER_PRIMARY); i++) {
      assert.ok(i < 100, 'sessions on every primary among the first 100');
      const browser = app.browser();
      assert.equal((await browser.get(`/set?k=marker&v=before-${browsers.length}`)).status, 200);
      const port = (await cluster.primaryForKey(browser.key!)).port;
      if ((perPrimary.get(port) ?? 0) >= PER_PRIMARY) continue;
      perPrimary.set(port, (perPrimary.get(port) ?? 0) + 1);
      browsers.push(browser);
      onVictim.push(port === victim.port);
    }
    const idsBefore = browsers.map((browser) => browser.id);
    for (const primary of primaries) await replicated(primary);
    const replicas = cluster.nodes.filter((node) => !primaries.includes(node));
    const replicaScripts = await Promise.all(replicas.map(cachedScripts));

    let killSentAt = Infinity;
    let killedAt = Infinity;
    let recoveredAt = Infinity;
    const deadline = Date.now() + 1000 + RECOVERY_BOUND_MS + SETTLED_MS;
    const written = browsers.map(() => 0);
    const load = steadyLoad(
      browsers,
      (i) => `/set?k=w${written[i]!++}&v=1`,
      () => Date.now() > deadline || Date.now() > recoveredAt + SETTLED_MS,
      (sample) => {
        if (onVictim[sample.browser] && sample.status === 200 && sample.start >= killedAt) recoveredAt = Math.min(recoveredAt, sample.end);
      },
    );
    await sleep(1000);
    killSentAt = Date.now();
    await victim.kill();
    killedAt = Date.now();
    const stateOk = cluster.waitForState().then(() => Date.now() - killSentAt);
    const samples = await load;
    const stateOkMs = await stateOk;
    const victimKey = browsers[onVictim.indexOf(true)]!.key!;
    const promoted: RedisNode = await cluster.primaryForKey(victimKey);
    // Late writes, if any, have had time to land.
    await sleep(1000);
    const sessions = await sessionsAtEnd(browsers, idsBefore);
    return {
      samples,
      onVictim,
      killSentAt,
      killedAt,
      recoveredAt,
      stateOkMs,
      replicaScripts,
      promotedScripts: await cachedScripts(promoted),
      promotedPort: promoted.port,
      victimPort: victim.port,
      sessions,
      errors: app.errors,
      rejections: unhandled.rejections,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
  describe(`Cluster failover under steady load, ${name}: one primary is killed (SIGKILL)`, () => {
    let run: FailoverRun;
    let report = '';
    const victimSamples = (): Sample[] => run.samples.filter((sample) => run.onVictim[sample.browser]);
    const otherSamples = (): Sample[] => run.samples.filter((sample) => !run.onVictim[sample.browser]);

    before(async () => {
      run = await clusterFailover(connect);
      const { killSentAt, recoveredAt } = run;
      const since = (sample: Sample): boolean => sample.end >= killSentAt;
      report =
        `${name}: the killed shard's sessions worked again ${recoveredAt - killSentAt} ms after the kill ` +
        `(every node served all slots after ${run.stateOkMs} ms). Other shards from the kill on: ${summary(otherSamples().filter(since))}; ` +
        `killed shard from the kill on: ${summary(victimSamples().filter(since))}`;
    });

    it('sessions on the other shards answer 200 to every request throughout', (t) => {
      t.diagnostic(report);
      const others = otherSamples();
      assert.ok(others.filter((sample) => sample.start > run.killedAt && sample.end < run.recoveredAt).length > 0, 'requests ran on the other shards during the failover');
      const failed = others.filter((sample) => sample.status !== 200);
      assert.equal(failed.length, 0, `requests on the other shards failed: ${show(failed)}`);
    });

    it(`the killed shard's sessions work again within ${RECOVERY_BOUND_MS / 1000} s, once its replica is promoted, and stay working`, () => {
      const { killSentAt, recoveredAt } = run;
      assert.ok(recoveredAt - killSentAt <= RECOVERY_BOUND_MS, `the shard's sessions worked again ${recoveredAt - killSentAt} ms after the kill (bound ${RECOVERY_BOUND_MS} ms)`);
      assert.notEqual(run.promotedPort, run.victimPort, 'a replica serves the shard now');
      const settled = run.samples.filter((sample) => sample.start >= recoveredAt + 1000);
      assert.ok(settled.some((sample) => run.onVictim[sample.browser]), 'the load went on after the recovery');
      const failing = settled.filter((sample) => sample.status !== 200);
      assert.equal(failing.length, 0, `requests failed more than 1 s after the shard came back: ${show(failing)}`);
    });

    it(`requests during the failover answer 503 within commandTimeout + ${SLACK_MS} ms, never 500, with no CROSSSLOT and no unhandled rejection`, () => {
      assertFailsFast(run.samples, COMMAND_TIMEOUT + SLACK_MS);
      assert.equal(run.errors.filter(crossSlot).length, 0, 'no CROSSSLOT error');
      const other = run.errors.filter((error) => !isSessionError(error, 'STORE_UNAVAILABLE'));
      assert.deepEqual(other.map(String), [], 'only STORE_UNAVAILABLE errors');
      assert.deepEqual(run.rejections, [], 'no unhandled rejection');
    });

    it("the killed shard's sessions keep their ids and the data replicated before the kill; the scripts are loaded again on the promoted replica", () => {
      assert.deepEqual(run.replicaScripts, run.replicaScripts.map(() => 0), 'no replica had a script cached: EVALSHA answered NOSCRIPT after the promotion');
      assert.ok(run.promotedScripts > 0, 'the promoted replica has the scripts now (EVALSHA fell back to EVAL)');
      for (const [i, session] of run.sessions.entries()) {
        assert.equal(session.status, 200);
        assert.equal(session.after, session.before, `session ${i} kept its id`);
        assert.equal(session.data.marker, `before-${i}`, `session ${i} kept the data written before the kill`);
        const missing = run.samples.filter((sample) => sample.browser === i && sample.status === 200 && sample.start > run.recoveredAt && !(fieldOf(sample) in session.data));
        assert.deepEqual(missing.map(fieldOf), [], `every write to session ${i} acknowledged after the recovery is there`);
      }
    });

    it('a write answered with 503 after the primary died is never applied later', () => {
      const stale = run.sessions.flatMap((session, i) =>
        run.samples.filter((sample) => sample.browser === i && sample.status === 503 && sample.start >= run.killedAt && fieldOf(sample) in session.data),
      );
      const failed = run.samples.filter((sample) => sample.status === 503 && sample.start >= run.killedAt).length;
      assert.ok(failed > 0, 'some writes were answered 503 after the kill, so there is something to check');
      assert.equal(stale.length, 0, `${stale.length} of the ${failed} writes answered 503 were applied after all: ${show(stale)}`);
    });
  });
}

// Tests that leave every node running share one cluster.
describe('Cluster without failover', () => {
  let cluster: ClusterTopology;
  before(async () => {
    cluster = await startCluster();
  });
  after(() => cluster.stop());

  for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
    it(`${name}: regenerate() while the new id's shard is paused past the timeout fails with STORE_UNAVAILABLE, and the old id keeps the whole session, usable at once`, async (t) => {
      const { client, close } = await connect(cluster.rootNodes);
      t.after(close);
      const timeout = 300;
      const manager = new SessionManager({ store: new RedisStore({ redis: client, commandTimeout: timeout }) });
      const pauseMs = timeout * 4;
      let failed = 0;
      let moved = 0;
      // The new id's shard is random: rounds where it lands on the old id's (unpaused) shard succeed.
      for (let round = 0; round < 40 && failed < 3; round++) {
        const writer = manager.open(context());
        await writer.session.set({ user: round, cart: 'socks' });
        const id = cookieValue(writer) as string;
        const oldShard = await cluster.primaryForKey(`session:${storageId(id)}`);
        const others = (await cluster.primaries()).filter((node) => node.port !== oldShard.port);
        await Promise.all(others.map((node) => node.command('CLIENT', 'PAUSE', String(pauseMs), 'ALL')));
        const login = manager.open(context(`session=${id}`));
        const outcome = await login.session.regenerate().then(
          () => 'moved',
          (error: unknown) => error,
        );
        if (outcome === 'moved') {
          moved++;
          const renewed = cookieValue(login) as string;
          assert.deepEqual(await manager.open(context(`session=${renewed}`)).session.all(), { user: round, cart: 'socks' });
        } else {
          failed++;
          assert.ok(isSessionError(outcome, 'STORE_UNAVAILABLE'), `round ${round}: ${String(outcome)}`);
          assert.deepEqual(login.setCookies(), [], 'no new cookie: the browser keeps the old one');
          const old = manager.open(context(`session=${id}`)).session;
          assert.deepEqual(await old.all(), { user: round, cart: 'socks' }, `round ${round}: the old id reads the whole session at once`);
          await old.set('after', true);
        }
        await sleep(pauseMs + 100);
        if (outcome !== 'moved') {
          const again = manager.open(context(`session=${id}`));
          await again.session.regenerate();
          assert.deepEqual(await manager.open(context(`session=${cookieValue(again) as string}`)).session.all(), { user: round, cart: 'socks', after: true });
        }
      }
      t.diagnostic(`${name}: ${failed} regenerates failed while the new id's shard was paused, ${moved} landed on the old id's shard`);
      assert.equal(failed, 3, 'the new id landed on a paused shard three times');
    });
  }

  for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
    it(`${name}: 100 concurrent writes of different fields keep all 100, 100 concurrent increments add 100, 20 times`, async (t) => {
      const { client, close } = await connect(cluster.rootNodes);
      t.after(close);
      const app = await startSessionApp(new RedisStore({ redis: client }));
      t.after(() => app.close());
      const { requests, ms } = await assertNoLostUpdates(app, 20);
      t.diagnostic(`${name}: ${requests} requests in ${ms} ms, none lost`);
      assert.deepEqual(app.errors, []);
    });
  }

  for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
    it(`${name}: 10,000 sessions land on all three primaries, with regenerate and destroy, and no CROSSSLOT`, async (t) => {
      const { client, close } = await connect(cluster.rootNodes);
      t.after(close);
      const prefix = `spread:${name.split(' ')[0]}:`;
      const manager = new SessionManager({ store: new RedisStore({ redis: client, prefix }) });
      const result = await spreadSessions(manager, 10_000);
      const primaries = await cluster.primaries();
      const tallies = await Promise.all(primaries.map((node) => countKeys(node, `${prefix}*`)));
      const counts = tallies.map((tally) => tally.live);
      const sizes = await Promise.all(primaries.map(async (node) => Number(await node.command('DBSIZE'))));
      t.diagnostic(
        `${name}: ${result.created} sessions created, ${result.regenerated} regenerated, ${result.destroyed} destroyed in ${result.ms} ms; ` +
          `keys per primary: ${primaries.map((node, i) => `${counts[i]} on ${node.port} (DBSIZE ${sizes[i]})`).join(', ')}; ` +
          `${result.errors.length} errors, ${result.errors.filter(crossSlot).length} CROSSSLOT`,
      );
      assert.deepEqual(result.errors.map(String), [], 'no operation failed');
      assert.equal(result.errors.filter(crossSlot).length, 0, 'no CROSSSLOT error');
      assert.equal(primaries.length, 3);
      assert.equal(counts.reduce((sum, count) => sum + count, 0), result.created - result.destroyed, 'one key per live session');
      assert.equal(
        tallies.reduce((sum, tally) => sum + tally.ended, 0),
        result.destroyed + result.regenerated,
        'and for a while, one mark per id that was ended (destroyed, or regenerated away)',
      );
      for (const [i, count] of counts.entries()) assert.ok(count > (result.created - result.destroyed) / 5, `primary ${primaries[i]!.port} holds a fair share: ${count}`);
      assert.deepEqual(result.wrong, [], 'every session reads back as expected');
    });
  }
});

/** The id in the one session cookie `handle` sets, or `undefined` when it sets none or more. */
function cookieValue(handle: SessionHandle): string | undefined {
  const lines = handle.setCookies();
  const value = lines.length === 1 ? /^session=([^;]+);/.exec(lines[0] as string)?.[1] : undefined;
  return value;
}

/** A request with `cookie` (or none), as the core sees it. */
function context(cookie?: string): RequestContext {
  return { cookieHeader: () => cookie, isSecure: () => false, headersSent: () => false };
}

/** Runs `task(i)` for i in [0, count) with at most `width` at a time. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/**
 * Creates `count` sessions through the session API, then regenerates every tenth and destroys
 * another tenth, and reads them all back: the old ids of regenerated sessions and the destroyed
 * ones must read as empty, the others as what was written. Errors are caught and counted.
 */
async function spreadSessions(manager: SessionManager, count: number) {
  const started = Date.now();
  const errors: unknown[] = [];
  const wrong: string[] = [];
  const ids: (string | undefined)[] = new Array(count);
  const renamed: (string | undefined)[] = new Array(count);
  const attempt = async (what: string, task: () => Promise<void>): Promise<void> => {
    try {
      await task();
    } catch (error) {
      errors.push(new Error(`${what}: ${String(error)}`, { cause: error }));
    }
  };
  const userOf = async (id: string): Promise<unknown> => manager.open(context(`session=${id}`)).session.get('user');

  await pool(count, 64, (i) =>
    attempt(`create ${i}`, async () => {
      const handle = manager.open(context());
      await handle.session.set({ user: i, plan: 'free' });
      ids[i] = cookieValue(handle);
      if (ids[i] === undefined) wrong.push(`create ${i}: no cookie`);
    }),
  );
  let regenerated = 0;
  let destroyed = 0;
  await pool(count, 64, async (i) => {
    const id = ids[i];
    if (id === undefined) return;
    if (i % 10 === 1) {
      await attempt(`regenerate ${i}`, async () => {
        const handle = manager.open(context(`session=${id}`));
        await handle.session.regenerate();
        renamed[i] = cookieValue(handle);
        if (renamed[i] === undefined || renamed[i] === id) wrong.push(`regenerate ${i}: no new id`);
        regenerated++;
      });
    } else if (i % 10 === 2) {
      await attempt(`destroy ${i}`, async () => {
        const handle = manager.open(context(`session=${id}`));
        await handle.session.destroy();
        const lines = handle.setCookies();
        if (lines.length !== 1 || !/^session=;/.test(lines[0] ?? '')) wrong.push(`destroy ${i}: cookie not cleared`);
        destroyed++;
      });
    }
  });
  await pool(count, 64, (i) =>
    attempt(`read ${i}`, async () => {
      const id = ids[i];
      if (id === undefined) return;
      const expect = async (readId: string, value: unknown, what: string): Promise<void> => {
        const user = await userOf(readId);
        if (user !== value) wrong.push(`${what} ${i}: user ${String(user)}`);
      };
      if (i % 10 === 1) {
        await expect(id, undefined, 'old id of regenerated');
        if (renamed[i] !== undefined) await expect(renamed[i]!, i, 'regenerated');
      } else if (i % 10 === 2) {
        await expect(id, undefined, 'destroyed');
      } else {
        await expect(id, i, 'session');
      }
    }),
  );
  const created = ids.filter((id) => id !== undefined).length;
  return { created, regenerated, destroyed, errors, wrong: wrong.slice(0, 10), ms: Date.now() - started };
}

/** Keys matching `pattern` on one node, by SCAN: sessions, and marks of sessions that ended. */
async function countKeys(node: RedisNode, pattern: string): Promise<{ live: number; ended: number }> {
  let cursor = '0';
  const tally = { live: 0, ended: 0 };
  for (let round = 0; round < 10_000; round++) {
    const [next, keys] = (await node.command('SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')) as [string, string[]];
    const states = await Promise.all(keys.map((key) => node.command('HGET', key, STATE_FIELD)));
    for (const state of states) tally[state === 'e' ? 'ended' : 'live']++;
    cursor = next;
    if (cursor === '0') return tally;
  }
  throw new Error(`SCAN on ${node.port} did not finish`);
}
