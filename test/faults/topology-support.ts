// What the Sentinel and Cluster fault tests share: a steady, bounded load of HTTP requests that
// records every reply, replication checks, and a watch for unhandled rejections.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisNode } from '../redis/topology.js';
import type { Browser, Reply, SessionApp } from '../store/session-app.js';

/** One request of a load: which browser sent it, when it started and ended, and what came back. */
export interface Sample extends Reply {
  readonly browser: number;
  readonly path: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Each browser sends `path(browser)` again and again, one request at a time with `pauseMs` between
 * them, until `done()` says so; resolves every sample, in the order they ended. `onSample` sees
 * each one as it ends.
 */
export async function steadyLoad(
  browsers: readonly Browser[],
  path: (browser: number) => string,
  done: () => boolean,
  onSample: (sample: Sample) => void = () => {},
  pauseMs = 20,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  await Promise.all(
    browsers.map(async (browser, index) => {
      while (!done()) {
        const start = Date.now();
        const sent = path(index);
        const reply = await browser.get(sent);
        const sample = { ...reply, browser: index, path: sent, start, end: Date.now() };
        samples.push(sample);
        onSample(sample);
        await sleep(pauseMs);
      }
    }),
  );
  return samples;
}

/** The field a sample's `/set?k=<field>` request wrote. */
export function fieldOf(sample: Sample): string {
  return new URL(sample.path, 'http://app').searchParams.get('k')!;
}

/** `samples` in a few words: how many, by status, the longest. */
export function summary(samples: readonly Sample[]): string {
  const byStatus = new Map<number, number>();
  for (const sample of samples) byStatus.set(sample.status, (byStatus.get(sample.status) ?? 0) + 1);
  const statuses = [...byStatus].sort(([a], [b]) => a - b).map(([status, count]) => `${count}×${status}`).join(', ');
  return `${samples.length} requests (${statuses}), longest ${Math.max(0, ...samples.map((sample) => sample.ms))} ms`;
}

/** Up to five samples as text, for assertion messages. */
export function show(samples: readonly Sample[]): string {
  return JSON.stringify(samples.slice(0, 5).map(({ browser, path, status, ms, body }) => ({ browser, path, status, ms, body: body.slice(0, 120) })));
}

/**
 * Asserts what a request during a fault may do: answer 200, or 503 (never 500, never no answer),
 * and never take longer than `maxMs`.
 */
export function assertFailsFast(samples: readonly Sample[], maxMs: number): void {
  const wrong = samples.filter((sample) => sample.status !== 200 && sample.status !== 503);
  assert.deepEqual(wrong.length, 0, `requests answered neither 200 nor 503: ${show(wrong)}`);
  const slow = samples.filter((sample) => sample.ms > maxMs);
  assert.equal(slow.length, 0, `requests took longer than ${maxMs} ms: ${show(slow)}`);
}

/** Waits until every replica of `primary` has acknowledged everything written to it so far. */
export async function replicated(primary: RedisNode, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const info = String(await primary.command('INFO', 'replication'));
    const offset = Number(/^master_repl_offset:(\d+)/m.exec(info)?.[1]);
    const replicas = [...info.matchAll(/^slave\d+:.*offset=(\d+)/gm)].map((match) => Number(match[1]));
    if (replicas.length > 0 && replicas.every((acked) => acked >= offset)) return;
    last = `offset ${offset}, replicas at ${replicas.join(', ')}`;
    await sleep(50);
  }
  throw new Error(`the replicas of ${primary.port} did not catch up within ${timeoutMs} ms (${last})`);
}

/** Scripts in a node's script cache (INFO memory); a replica never gets them from its primary. */
export async function cachedScripts(node: RedisNode): Promise<number> {
  const info = String(await node.command('INFO', 'memory'));
  return Number(/^number_of_cached_scripts:(\d+)/m.exec(info)?.[1]);
}

/**
 * 100 requests at once on one session, each setting its own field, then 100 increments at once:
 * every field and every increment must be there, `rounds` times.
 */
export async function assertNoLostUpdates(app: SessionApp, rounds: number): Promise<{ requests: number; ms: number }> {
  const started = Date.now();
  let requests = 0;
  const ok = async (browser: Browser, path: string): Promise<unknown> => {
    const reply = await browser.get(path);
    requests++;
    assert.equal(reply.status, 200, `${path}: ${reply.status} ${reply.body}`);
    return JSON.parse(reply.body);
  };
  for (let round = 0; round < rounds; round++) {
    const browser = app.browser();
    await ok(browser, `/set?k=round&v=${round}`);
    await Promise.all(Array.from({ length: 100 }, (_, i) => ok(browser, `/set?k=f${i}&v=${round}-${i}`)));
    const all = (await ok(browser, '/all')) as Record<string, unknown>;
    const expected: Record<string, unknown> = { round: String(round) };
    for (let i = 0; i < 100; i++) expected[`f${i}`] = `${round}-${i}`;
    assert.deepEqual(all, expected, `round ${round}: all 100 fields`);
    const counts = await Promise.all(Array.from({ length: 100 }, () => ok(browser, '/incr?k=n')));
    assert.deepEqual((counts as number[]).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1), `round ${round}: each increment saw its own value`);
    assert.equal(await ok(browser, '/get?k=n'), 100, `round ${round}: +100`);
  }
  return { requests, ms: Date.now() - started };
}

/** A browser's session at the end of a failover: its id before the kill, after, and what `/all` shows. */
export interface SessionAtEnd {
  readonly before: string | undefined;
  readonly after: string | undefined;
  readonly status: number;
  readonly data: Record<string, unknown>;
}

/** Reads every browser's session once the failover is over. */
export async function sessionsAtEnd(browsers: readonly Browser[], idsBefore: readonly (string | undefined)[]): Promise<SessionAtEnd[]> {
  return Promise.all(
    browsers.map(async (browser, i) => {
      const reply = await browser.get('/all');
      const data = reply.status === 200 ? (JSON.parse(reply.body) as Record<string, unknown>) : {};
      return { before: idsBefore[i], after: browser.id, status: reply.status, data };
    }),
  );
}
