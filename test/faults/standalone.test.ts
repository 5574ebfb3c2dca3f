// Fault tests of issue 6 on a standalone Redis: killed for 5 s under load, slowed past the command
// timeout, and hammered with concurrent writes to one session. Each runs with the app's own
// node-redis client, its own ioredis client (both set up as the README advises for production),
// and latchkey's own client from a redis:// URL. Run by `npm run test:faults`, not `npm test`.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisStore } from '../../src/index.js';
import { withSession } from '../../src/adapters/node.js';
import { storageId } from '../../src/core/id.js';
import { startRedis, type RedisServer } from '../redis/server.js';
import { handleOf } from '../conformance/harness.js';
import {
  CLIENT_KINDS,
  CRASH_MARKER,
  hit,
  max,
  redisFor,
  sessionCookie,
  startChildApp,
  type ClientKind,
  type Outcome,
} from './standalone-support.js';

const LABELS: Record<ClientKind, string> = {
  'node-redis': "the app's own node-redis client",
  ioredis: "the app's own ioredis client",
  url: "latchkey's own client from a redis:// URL",
};

/** The Redis key of the session whose cookie (unsigned) is `cookie`. */
function keyOf(cookie: string): string {
  return `session:${storageId(cookie)}`;
}

/** A stored hash as a Map. */
async function hashOf(redis: RedisServer, key: string): Promise<Map<string, string>> {
  const flat = (await redis.command('HGETALL', key)) as string[];
  const hash = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) hash.set(flat[i] as string, flat[i + 1] as string);
  return hash;
}

/** Runs `test` against a Redis of its own, stopped afterwards whatever happens. */
async function withRedis(test: (redis: RedisServer) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  try {
    await test(redis);
  } finally {
    await redis.stop();
  }
}

/** Serves `listener` on a free loopback port until `close()`. */
async function serve(listener: Parameters<typeof createServer>[1]): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A short summary of some outcomes, for assertion messages. */
function sample(outcomes: readonly (Outcome & { path?: string })[]): string {
  return JSON.stringify(
    outcomes.slice(0, 5).map(({ path, status, sent, answered, body, error }) => ({ path, status, ms: Math.round(answered - sent), body: body.slice(0, 80), error })),
  );
}

// ---------------------------------------------------------------------------------------------
// 1. Redis killed for 5 s under steady load.

const OUTAGE = {
  /** Requests in flight at any time. */
  workers: 20,
  /** Sessions the load reads and writes (besides new visitors). */
  sessions: 4,
  beforeMs: 1500,
  downMs: 5000,
  afterMs: 3000,
  /** How long Redis holds the commands that are in flight when it is killed. */
  holdMs: 100,
  /** Pause of each worker between its requests. */
  pauseMs: 5,
  /** A request that needs the session gets its 503 within this. */
  failWithinMs: 1000,
  /** Full service within this of Redis answering again. */
  recoverWithinMs: 2000,
};

type Kind = 'plain' | 'read' | 'write' | 'visitor';
type Request = Outcome & { kind: Kind; path: string; value?: string };

async function outageUnderLoad(t: TestContext, client: ClientKind): Promise<void> {
  await withRedis(async (redis) => {
    const app = await startChildApp(client, redis.url);
    try {
      const jar: (string | undefined)[] = [];
      for (let i = 0; i < OUTAGE.sessions; i++) {
        const created = await hit(app.url, `/write?value=seed-${i}`, undefined);
        assert.equal(created.status, 200, sample([created]));
        jar.push(sessionCookie(created));
        assert.ok(jar[i], 'a write creates the session and sets its cookie');
      }

      const requests: Request[] = [];
      let stop = false;
      let sequence = 0;
      const hardStop = performance.now() + 60_000;
      const worker = async (w: number): Promise<void> => {
        for (let n = 0; !stop && performance.now() < hardStop; n++) {
          const slot = (w + n) % OUTAGE.sessions;
          const step = (w * 3 + n) % 10;
          const kind: Kind = step < 2 ? 'plain' : step < 6 ? 'read' : step < 9 ? 'write' : 'visitor';
          const value = `w${sequence++}`;
          const path = kind === 'plain' ? '/plain' : kind === 'read' ? '/read' : `/write?value=${value}`;
          const outcome = await hit(app.url, path, kind === 'read' || kind === 'write' ? jar[slot] : undefined);
          requests.push({ ...outcome, kind, path, ...(kind === 'write' || kind === 'visitor' ? { value } : {}) });
          if (kind === 'write') jar[slot] = sessionCookie(outcome) ?? jar[slot];
          await sleep(OUTAGE.pauseMs);
        }
      };
      const workers = Array.from({ length: OUTAGE.workers }, (_, w) => worker(w));

      let holding = 0;
      let killCalled = 0;
      let killed = 0;
      let restartCalled = 0;
      let restarted = 0;
      try {
        await sleep(OUTAGE.beforeMs);
        // Redis dies with commands outstanding, as a crashing Redis under load does: holding them
        // for a moment makes sure every run has some in flight at the kill.
        holding = performance.now();
        await redis.command('CLIENT', 'PAUSE', String(OUTAGE.holdMs * 4), 'ALL');
        await sleep(OUTAGE.holdMs);
        killCalled = performance.now();
        await redis.kill();
        killed = performance.now();
        await sleep(OUTAGE.downMs);
        restartCalled = performance.now();
        // Resolves once the new (empty) server answers.
        await redis.restart();
        restarted = performance.now();
        await sleep(OUTAGE.afterMs);
      } finally {
        stop = true;
        await Promise.all(workers);
      }

      const plain = requests.filter((r) => r.kind === 'plain');
      const session = requests.filter((r) => r.kind !== 'plain');
      const latency = (r: Outcome): number => r.answered - r.sent;
      const before = session.filter((r) => r.answered < holding);
      const inFlight = session.filter((r) => r.sent < killCalled && r.answered >= killCalled);
      const down = session.filter((r) => r.sent >= killed && r.answered <= restartCalled);
      const plainDuring = plain.filter((r) => r.sent >= killed && r.answered <= restartCalled);
      // The load really ran in each phase, and was fully served before the outage.
      assert.ok(before.length >= 100, `only ${before.length} session requests before the outage`);
      assert.deepEqual(before.filter((r) => r.status !== 200).map((r) => r.status), [], 'full service before the outage');
      assert.ok(down.length >= 200, `only ${down.length} session requests while Redis was down`);
      assert.ok(plainDuring.length >= 50, `only ${plainDuring.length} requests without a session while Redis was down`);
      assert.ok(inFlight.length >= 5, `only ${inFlight.length} session requests in flight when Redis was killed`);
      assert.ok(performance.now() - restarted >= OUTAGE.recoverWithinMs, 'the load ran past the recovery deadline');

      // Every property is checked before the test fails, so that one run tells all that broke.
      const broken: string[] = [];
      const check = (what: string, bad: readonly Request[]): void => {
        if (bad.length > 0) broken.push(`${bad.length} ${what}: ${sample(bad)}`);
      };

      // No crash, no unhandled rejection, no restart of the app.
      if (app.process.exitCode !== null || app.process.signalCode !== null) {
        broken.push(`the app exited (${app.process.exitCode ?? app.process.signalCode}); stderr:\n${app.stderr().slice(-2000)}`);
      }
      const crashes = app.stderr().split('\n').filter((line) => line.includes(CRASH_MARKER));
      if (crashes.length > 0) broken.push(`unhandled rejections or uncaught exceptions in the app:\n${crashes.slice(0, 5).join('\n')}`);

      // Every request was answered, with 200 or 503; the route without a session never noticed.
      check('requests without an answer', requests.filter((r) => r.status === 0));
      check('requests answered neither 200 nor 503', requests.filter((r) => r.status !== 0 && r.status !== 200 && r.status !== 503));
      check('requests without a session that failed', plain.filter((r) => r.status !== 200));

      // While Redis is down, everything that needs the session fails fast with 503: requests sent
      // while it is down, and those in flight when it died.
      check('session requests while Redis was down not answered 503', down.filter((r) => r.status !== 503));
      const around = session.filter((r) => r.sent <= restarted && r.answered >= holding);
      check(`session requests around the outage that took ${OUTAGE.failWithinMs} ms or more`, around.filter((r) => latency(r) >= OUTAGE.failWithinMs));
      const max503 = max(session.filter((r) => r.status === 503).map(latency));

      // Full service again soon after Redis answers: the last failure ends the recovery.
      const lastFailure = max(session.filter((r) => r.status !== 200 && r.answered > restarted).map((r) => r.answered));
      const recovery = Math.max(0, lastFailure - restarted);
      if (recovery >= OUTAGE.recoverWithinMs) broken.push(`session requests kept failing ${recovery.toFixed(0)} ms after Redis answered again`);
      const recovered = session.filter((r) => r.sent > Math.max(lastFailure, restarted));
      for (const kind of ['read', 'write', 'visitor'] as const) {
        const served = recovered.filter((r) => r.kind === kind).length;
        if (served < 20) broken.push(`only ${served} ${kind} requests after the recovery`);
      }

      // Redis holds what users were told was written, and nothing they were told had failed
      // (the restarted Redis is empty: whatever it holds was written after it came back).
      const heldValues = (await redis.command(
        'EVAL',
        "local out = {} for _, k in ipairs(redis.call('KEYS', 'session:*')) do out[#out + 1] = redis.call('HGET', k, 'value') or '' end return out",
        '0',
      )) as string[];
      const held = new Set(heldValues.map((json) => (json === '' ? '' : (JSON.parse(json) as string))));
      check('writes answered 503 that Redis ran after all', session.filter((r) => r.status === 503 && r.value !== undefined && held.has(r.value)));
      check('sessions created after the recovery that Redis does not hold', recovered.filter((r) => r.kind === 'visitor' && !held.has(r.value as string)));

      const reconnectErrors = app.stderr().split('\n').filter((line) => line.startsWith('Redis: ')).length;
      t.diagnostic(
        `${client}: ${requests.length} requests (${inFlight.length} needing the session in flight when Redis was killed, ` +
          `${down.length} sent while it was down); ` +
          `max 503 latency ${max503.toFixed(1)} ms (${max(down.map(latency)).toFixed(1)} ms for those sent while Redis was down), ` +
          `max latency around the outage ${max(around.map(latency)).toFixed(1)} ms; ` +
          `full service ${recovery.toFixed(0)} ms after Redis answered again ` +
          `(${session.filter((r) => r.status !== 200 && r.sent > restarted).length} failures after it did); ` +
          `Redis down ${(restarted - killCalled).toFixed(0)} ms; ${reconnectErrors} 'error' events logged by the app`,
      );
      assert.deepEqual(broken, [], `${client}: what broke during the outage`);

      // Each browser's session works again, in the app and in Redis.
      for (const [i, cookie] of jar.entries()) {
        assert.ok(cookie);
        const write = await hit(app.url, `/write?value=final-${i}`, cookie);
        assert.equal(write.status, 200);
        const current = sessionCookie(write) ?? cookie;
        assert.equal((await hashOf(redis, keyOf(current))).get('value'), JSON.stringify(`final-${i}`));
        assert.equal((await hit(app.url, '/read', current)).body, JSON.stringify({ value: `final-${i}` }));
      }
    } finally {
      await app.stop();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Slow Redis: every client's commands held past the command timeout.

const SLOW = {
  commandTimeout: 500,
  pauseMs: 2000,
  /** When the second batch goes out: still paused, and answered within its timeout once the pause ends. */
  secondBatchAtMs: 1750,
  sessions: 6,
  readsPerSession: 3,
};

async function slowRedis(t: TestContext, client: ClientKind): Promise<void> {
  await withRedis(async (redis) => {
    const { redis: option, close } = await redisFor(client, redis.url);
    const store = new RedisStore({ redis: option, commandTimeout: SLOW.commandTimeout });
    const app = await serve(
      withSession({ store }, async (req, res, session) => {
        const { pathname, searchParams } = new URL(req.url ?? '/', 'http://localhost');
        if (pathname === '/create') await session.set('name', searchParams.get('name'));
        else if (pathname === '/write') await session.set({ w1: searchParams.get('tag'), w2: searchParams.get('tag') });
        const data = await session.all();
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ id: session.id ?? null, data }));
      }),
    );
    try {
      const names = Array.from({ length: SLOW.sessions }, (_, i) => `s${i}`);
      const cookies = new Map<string, string>();
      for (const name of names) {
        const created = await hit(app.url, `/create?name=${name}`, undefined);
        assert.equal(created.status, 200, sample([created]));
        cookies.set(name, sessionCookie(created) as string);
      }

      /** Reads every session `times` times at once; each answer that is 200 must be that session's own. */
      const readAll = async (times: number): Promise<Outcome[]> => {
        const reads = await Promise.all(
          names.flatMap((name) => Array.from({ length: times }, () => hit(app.url, '/read', cookies.get(name)).then((outcome) => ({ name, outcome })))),
        );
        for (const { name, outcome } of reads) {
          if (outcome.status !== 200) continue;
          const { id, data } = JSON.parse(outcome.body) as { id: string; data: Record<string, unknown> };
          assert.equal(id, handleOf(cookies.get(name) as string), `${name} read another session's id`);
          const { name: own, w1, w2, ...rest } = data;
          assert.equal(own, name, `${name} read another session's data: ${outcome.body}`);
          assert.deepEqual(rest, {}, `${name} read fields it never had: ${outcome.body}`);
          assert.ok((w1 === undefined && w2 === undefined) || (w1 === `${name}-late` && w2 === `${name}-late`), `${name}: ${outcome.body}`);
        }
        return reads.map(({ outcome }) => outcome);
      };

      assert.ok((await readAll(1)).every((r) => r.status === 200));

      await redis.command('CLIENT', 'PAUSE', String(SLOW.pauseMs), 'ALL');
      const paused = performance.now();
      // First batch: a read and a two-field write per session, held past the timeout.
      const [firstReads, writes] = await Promise.all([
        readAll(1),
        Promise.all(names.map((name) => hit(app.url, `/write?tag=${name}-late`, cookies.get(name)))),
      ]);
      const first = [...firstReads, ...writes];
      const firstLatency = first.map((r) => r.answered - r.sent);
      assert.ok(first.every((r) => r.status === 503), `held requests not answered 503: ${sample(first.filter((r) => r.status !== 503))}`);
      assert.ok(max(firstLatency) < SLOW.commandTimeout + 500, `a 503 took ${max(firstLatency)} ms`);
      assert.ok(Math.min(...firstLatency) >= SLOW.commandTimeout - 50, 'the requests waited for the command timeout');

      // Second batch, sent while the first one's replies are still due: its replies arrive right
      // behind theirs on the same connections.
      await sleep(paused + SLOW.secondBatchAtMs - performance.now());
      const second = await readAll(SLOW.readsPerSession);
      assert.ok(second.every((r) => r.status === 200), `reads sent just before the pause ended: ${sample(second.filter((r) => r.status !== 200))}`);

      // After the pause: everyone reads their own session.
      await redis.command('PING');
      const third = await readAll(SLOW.readsPerSession);
      assert.ok(third.every((r) => r.status === 200), sample(third));

      // A write answered 503 after the timeout had already been sent, and a timeout cannot take it
      // back: Redis may still run it when the pause ends (it did in every run so far, as the
      // diagnostic says), but only whole, and only on its own session.
      let applied = 0;
      for (const name of names) {
        const hash = await hashOf(redis, keyOf(cookies.get(name) as string));
        assert.equal(hash.get('name'), JSON.stringify(name));
        const [w1, w2] = [hash.get('w1'), hash.get('w2')];
        assert.ok((w1 === undefined && w2 === undefined) || (w1 === JSON.stringify(`${name}-late`) && w2 === w1), `${name}: w1 ${w1}, w2 ${w2}`);
        if (w1 !== undefined) applied++;
      }
      t.diagnostic(
        `${client}: commandTimeout ${SLOW.commandTimeout} ms, Redis paused ${SLOW.pauseMs} ms: ${first.length} held requests answered 503 ` +
          `in ${Math.min(...firstLatency).toFixed(0)}-${max(firstLatency).toFixed(0)} ms; ${second.length} reads queued behind the late replies ` +
          `and ${third.length} after the pause each got their own session; ${applied}/${names.length} writes answered 503 were applied when the pause ended`,
      );
    } finally {
      await app.close();
      await store.close();
      close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Lost updates: concurrent writes to one session.

const LOST = { rounds: 20, concurrent: 100, counterStart: 1000 };

async function lostUpdates(t: TestContext, client: ClientKind): Promise<void> {
  await withRedis(async (redis) => {
    const { redis: option, close } = await redisFor(client, redis.url);
    const listener = withSession({ redis: option }, async (req, res, session) => {
      const { pathname, searchParams } = new URL(req.url ?? '/', 'http://localhost');
      res.setHeader('content-type', 'application/json');
      if (pathname === '/create') {
        await session.set('n', LOST.counterStart);
        res.end('{}');
      } else if (pathname === '/set') {
        const field = searchParams.get('field') as string;
        await session.set(field, field);
        res.end('{}');
      } else if (pathname === '/incr') {
        res.end(JSON.stringify(await session.incr('n')));
      } else {
        res.end(JSON.stringify(await session.all()));
      }
    });
    const app = await serve(listener);
    const started = performance.now();
    try {
      for (let round = 0; round < LOST.rounds; round++) {
        const created = await hit(app.url, '/create', undefined);
        assert.equal(created.status, 200, sample([created]));
        const cookie = sessionCookie(created) as string;
        const fields = Array.from({ length: LOST.concurrent }, (_, i) => `f${i}`);

        const sets = await Promise.all(fields.map((field) => hit(app.url, `/set?field=${field}`, cookie)));
        assert.deepEqual(sets.filter((r) => r.status !== 200), [], `round ${round}: failed writes`);
        const incrs = await Promise.all(fields.map(() => hit(app.url, '/incr', cookie)));
        assert.deepEqual(incrs.filter((r) => r.status !== 200), [], `round ${round}: failed increments`);
        const counted = incrs.map((r) => Number(r.body)).sort((a, b) => a - b);
        const expected = Array.from({ length: LOST.concurrent }, (_, i) => LOST.counterStart + i + 1);
        assert.deepEqual(counted, expected, `round ${round}: each increment saw its own new value`);

        const hash = await hashOf(redis, keyOf(cookie));
        const stored = fields.filter((field) => hash.get(field) === JSON.stringify(field));
        assert.equal(stored.length, LOST.concurrent, `round ${round}: ${stored.length}/${LOST.concurrent} fields in Redis`);
        assert.equal(hash.get('n'), String(LOST.counterStart + LOST.concurrent), `round ${round}: counter in Redis`);
        const read = JSON.parse((await hit(app.url, '/all', cookie)).body) as Record<string, unknown>;
        assert.equal(Object.keys(read).length, LOST.concurrent + 1, `round ${round}: the app reads every field back`);
        assert.equal(read.n, LOST.counterStart + LOST.concurrent);
      }
      t.diagnostic(
        `${client}: ${LOST.rounds} rounds of ${LOST.concurrent} concurrent writes and ${LOST.concurrent} concurrent increments on one session: ` +
          `no update lost, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      await app.close();
      await listener.close();
      close();
    }
  });
}

describe('standalone Redis faults', () => {
  for (const client of CLIENT_KINDS) {
    describe(LABELS[client], () => {
      it('keeps serving through Redis killed for 5 s under load: 503 within 1 s, no crash, full service within 2 s', (t) => outageUnderLoad(t, client));
      it('answers 503 within the command timeout + 0.5 s when Redis is slow, and no late reply reaches a later request', (t) => slowRedis(t, client));
      it('loses no update: 100 concurrent writes and 100 concurrent increments on one session, 20 times', (t) => lostUpdates(t, client));
    });
  }
});
