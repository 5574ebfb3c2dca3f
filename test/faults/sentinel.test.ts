// Redis Sentinel under faults, with node-redis and ioredis: the primary killed under steady load
// (writes resume after the promotion, with the same app), and no lost updates under concurrency.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSessionError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/stores/redis.js';
import { startSentinel, type SentinelTopology } from '../redis/topology.js';
import { startSessionApp } from '../store/session-app.js';
import { SENTINEL_CLIENTS } from '../store/topology-clients.js';
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
/** Writes must work again this soon after the primary is killed. */
const RECOVERY_BOUND_MS = 15_000;
/** The load goes on this long after the first write that worked again, which must all work. */
const SETTLED_MS = 2000;
const BROWSERS = 4;

/** What one failover under load showed. */
interface FailoverRun {
  readonly samples: Sample[];
  /** When the kill was sent, and when the process was gone. */
  readonly killSentAt: number;
  readonly killedAt: number;
  /** When the first request that started after the kill answered 200. */
  readonly recoveredAt: number;
  readonly promotedMs: number;
  readonly replicaPort: number;
  readonly promotedPort: number;
  readonly scriptsBefore: number;
  readonly scriptsAfter: number;
  /** Per browser: its session id before the kill, after, and `/all` at the end. */
  readonly sessions: SessionAtEnd[];
  readonly errors: unknown[];
  readonly rejections: unknown[];
}

/**
 * Serves BROWSERS sessions from the app through `connect`'s client, each browser writing a new field
 * (`w<n>`) per request; kills the primary after 1 s and keeps the load on until writes have worked
 * again for SETTLED_MS (or a deadline passes). Everything is torn down before it resolves.
 */
async function sentinelFailover(connect: (typeof SENTINEL_CLIENTS)[keyof typeof SENTINEL_CLIENTS]): Promise<FailoverRun> {
  const cleanups: (() => unknown)[] = [];
  try {
    const unhandled = watchUnhandled();
    cleanups.push(() => unhandled.stop());
    const topology = await startSentinel();
    cleanups.push(() => topology.stop());
    const { client, close } = await connect({ name: topology.masterName, sentinels: topology.sentinels });
    cleanups.push(close);
    const app = await startSessionApp(new RedisStore({ redis: client, commandTimeout: COMMAND_TIMEOUT }), {
      requestTimeoutMs: 5000,
      session: { limits: { maxKeys: 10_000 } },
    });
    cleanups.push(() => app.close());

    const browsers = Array.from({ length: BROWSERS }, () => app.browser());
    for (const [i, browser] of browsers.entries()) assert.equal((await browser.get(`/set?k=marker&v=before-${i}`)).status, 200);
    const idsBefore = browsers.map((browser) => browser.id);
    const old = await topology.primary();
    const replica = topology.nodes.find((node) => node !== old)!;
    await replicated(old);
    const scriptsBefore = await cachedScripts(replica);

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
        if (sample.status === 200 && sample.start >= killedAt) recoveredAt = Math.min(recoveredAt, sample.end);
      },
    );
    await sleep(1000);
    killSentAt = Date.now();
    await old.kill();
    killedAt = Date.now();
    const promoted = topology.waitForPrimary(old.port).then((node) => ({ node, ms: Date.now() - killSentAt }));
    const samples = await load;
    const { node: primary, ms: promotedMs } = await promoted;
    // Late writes, if any, have had time to land.
    await sleep(1000);
    const sessions = await sessionsAtEnd(browsers, idsBefore);
    return {
      samples,
      killSentAt,
      killedAt,
      recoveredAt,
      promotedMs,
      replicaPort: replica.port,
      promotedPort: primary.port,
      scriptsBefore,
      scriptsAfter: await cachedScripts(primary),
      sessions,
      errors: app.errors,
      rejections: unhandled.rejections,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

for (const [name, connect] of Object.entries(SENTINEL_CLIENTS)) {
  describe(`Sentinel failover under steady load, ${name}: the primary is killed (SIGKILL)`, () => {
    let run: FailoverRun;
    let report = '';
    before(async () => {
      run = await sentinelFailover(connect);
      const { samples, killSentAt, killedAt, recoveredAt } = run;
      const after = (sample: Sample): boolean => sample.start > recoveredAt;
      const during = (sample: Sample): boolean => sample.end >= killSentAt && sample.start <= recoveredAt;
      const lost = run.sessions.flatMap((session, i) =>
        samples.filter((sample) => sample.browser === i && sample.status === 200 && sample.end < killedAt && !(fieldOf(sample) in session.data)),
      );
      report =
        `${name}: sentinels agreed on the promoted replica ${run.promotedMs} ms after the kill; first successful write ` +
        `${recoveredAt - killSentAt} ms after it, with the same app. Before: ${summary(samples.filter((s) => s.end < killSentAt))}; ` +
        `failover: ${summary(samples.filter(during))}; after: ${summary(samples.filter(after))}; ` +
        `acknowledged writes lost to asynchronous replication: ${lost.length}`;
    });

    it(`writes work again within ${RECOVERY_BOUND_MS / 1000} s of the kill, without restarting the app, and stay working`, (t) => {
      t.diagnostic(report);
      const { samples, killSentAt, recoveredAt } = run;
      const before = samples.filter((sample) => sample.end < killSentAt);
      assert.ok(before.length > 0 && before.every((sample) => sample.status === 200), `steady before the kill: ${summary(before)}`);
      assert.ok(recoveredAt - killSentAt <= RECOVERY_BOUND_MS, `writes resumed ${recoveredAt - killSentAt} ms after the kill (bound ${RECOVERY_BOUND_MS} ms)`);
      const settled = samples.filter((sample) => sample.start >= recoveredAt + 1000);
      assert.ok(settled.length > 0, 'the load went on after the recovery');
      const failing = settled.filter((sample) => sample.status !== 200);
      assert.equal(failing.length, 0, `requests failed more than 1 s after writes resumed: ${show(failing)}`);
      assert.equal(run.promotedPort, run.replicaPort, 'the replica was promoted');
    });

    it(`requests during the failover answer 503 within commandTimeout + ${SLACK_MS} ms, never 500, and no rejection goes unhandled`, () => {
      assertFailsFast(run.samples, COMMAND_TIMEOUT + SLACK_MS);
      const other = run.errors.filter((error) => !isSessionError(error, 'STORE_UNAVAILABLE'));
      assert.deepEqual(other.map(String), [], 'only STORE_UNAVAILABLE errors');
      assert.deepEqual(run.rejections, [], 'no unhandled rejection');
    });

    it('the sessions keep their ids and data, and the scripts are loaded again on the new primary (EVALSHA falls back to EVAL)', () => {
      assert.equal(run.scriptsBefore, 0, 'the replica had no script cached: EVALSHA answered NOSCRIPT after its promotion');
      assert.ok(run.scriptsAfter > 0, 'the new primary has the scripts now');
      for (const [i, session] of run.sessions.entries()) {
        assert.equal(session.status, 200);
        assert.equal(session.after, session.before, 'the session kept its id');
        assert.equal(session.data.marker, `before-${i}`, 'data written before the kill (and replicated) is there');
        const missing = run.samples.filter((sample) => sample.browser === i && sample.status === 200 && sample.start > run.recoveredAt && !(fieldOf(sample) in session.data));
        assert.deepEqual(missing.map(fieldOf), [], 'every write acknowledged after the recovery is there');
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

describe('Sentinel: no lost updates', () => {
  let topology: SentinelTopology;
  before(async () => {
    topology = await startSentinel();
  });
  after(() => topology.stop());

  for (const [name, connect] of Object.entries(SENTINEL_CLIENTS)) {
    it(`${name}: 100 concurrent writes of different fields keep all 100, 100 concurrent increments add 100, 20 times`, async (t) => {
      const { client, close } = await connect({ name: topology.masterName, sentinels: topology.sentinels });
      t.after(close);
      const app = await startSessionApp(new RedisStore({ redis: client }));
      t.after(() => app.close());
      const { requests, ms } = await assertNoLostUpdates(app, 20);
      t.diagnostic(`${name}: ${requests} requests in ${ms} ms, none lost`);
      assert.deepEqual(app.errors, []);
    });
  }
});
