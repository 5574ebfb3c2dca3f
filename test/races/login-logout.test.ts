// A login or a logout racing requests of the same browser that started before it: whatever
// order the responses come back in, the browser ends with the cookie of the login or logout. In
// one app process, and across two processes on one Redis (a load balancer's two backends).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { storageId } from '../../src/core/id.js';
import { startRedis, type RedisServer } from '../redis/server.js';
import { runProgram, waitForOutput } from '../process.js';

/** Rounds per scenario; each round is one browser, one race. */
const ROUNDS = 200;
/** Rounds run at once (each with a browser and session of its own). */
const PARALLEL = 10;
/** How long the earlier request holds after it read its session, in ms. */
const HOLD_MS = 120;
/** When the login or logout is sent, after the earlier request, in ms. */
const LAG_MS = 30;

const APP = fileURLToPath(new URL('./race-app.ts', import.meta.url));

/** One app process: its address, and how to stop it. */
interface AppProcess {
  readonly url: string;
  stop(): Promise<void>;
}

async function startApp(redisUrl: string, env: Record<string, string> = {}): Promise<AppProcess> {
  const program = runProgram(APP, { ...env, REDIS_URL: redisUrl });
  const [, url] = await waitForOutput(program, /race app on (http:\/\/\S+)\n/, 'the race app');
  return { url: url as string, stop: () => program.stop() };
}

/**
 * A browser's cookie jar for one cookie, `session` on Path=/: each response's Set-Cookie lines are
 * applied when that response arrives, in order, as browsers do; Max-Age=0 deletes the cookie.
 */
class Jar {
  cookie: string | undefined;

  async get(base: string, path: string): Promise<{ status: number; body: Record<string, unknown>; sent: string | undefined }> {
    const sent = this.cookie;
    const response = await fetch(base + path, { headers: sent === undefined ? {} : { cookie: `session=${sent}` } });
    const text = await response.text();
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (pair.slice(0, eq).trim() !== 'session') continue;
      this.cookie = /;\s*max-age=0(;|$)/i.test(line) ? undefined : pair.slice(eq + 1);
    }
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), sent };
  }
}

/** The requests that start before the login or logout, one kind per round in turn. */
const EARLIER = ['slowread', 'slowwrite', 'slowblind'] as const;

interface Tally {
  /** Rounds where the earlier request read the session before the login or logout ended it. */
  raced: number;
  /** Rounds where the earlier request was a write that had not read first. */
  blind: number;
  /** Earlier writes refused with SESSION_GONE. */
  refused: number;
  /** What went wrong, per round. */
  wrong: string[];
}

/**
 * One round: a browser with a session (and a cart) sends a slow request to `slow`, then, while
 * it is held, logs in or out at `fast`. Checks what the browser ends with.
 */
async function round(ending: 'login' | 'logout', fast: string, slow: string, i: number, redis: RedisServer, tally: Tally): Promise<void> {
  const jar = new Jar();
  await jar.get(fast, '/set');
  const before = jar.cookie;
  assert.ok(before, 'the first write set a cookie');
  const kind = EARLIER[i % EARLIER.length] as (typeof EARLIER)[number];
  const what = `round ${i} (${ending}, ${kind})`;

  const earlier = jar.get(slow, `/${kind}?hold=${HOLD_MS}`);
  await sleep(LAG_MS);
  const ended = await jar.get(fast, ending === 'login' ? `/login?user=u${i}` : '/logout');
  const newest = jar.cookie;
  const late = await earlier;

  if (ended.status !== 200) tally.wrong.push(`${what}: the ${ending} answered ${ended.status}`);
  if (late.body.saw === true) tally.raced++;
  if (kind === 'slowblind') tally.blind++;
  if (late.status === 409) tally.refused++;
  else if (late.status !== 200) tally.wrong.push(`${what}: the earlier request answered ${late.status}`);
  if (jar.cookie !== newest) tally.wrong.push(`${what}: the browser ended with ${jar.cookie === undefined ? 'no cookie' : jar.cookie === before ? 'the old cookie' : 'another cookie'}, not the ${ending}'s`);

  // And what the next request of that browser sees.
  const next = await jar.get(fast, '/whoami');
  if (ending === 'login') {
    if (next.body.user !== `u${i}` || next.body.cart !== 'socks') tally.wrong.push(`${what}: after the race the browser reads ${JSON.stringify(next.body)}`);
  } else if (next.body.user !== null || next.body.cart !== null || jar.cookie !== undefined) {
    tally.wrong.push(`${what}: after the logout the browser reads ${JSON.stringify(next.body)} with ${jar.cookie === undefined ? 'no cookie' : 'a cookie'}`);
  }
  // The old id's session never comes back: its key holds at most the mark that it ended.
  const old = (await redis.command('HGETALL', `session:${storageId(before)}`)) as string[];
  if (old.length > 0 && old.join() !== ':x,e') tally.wrong.push(`${what}: the old key holds ${old.join()}`);
}

async function scenario(ending: 'login' | 'logout', fast: AppProcess, slow: AppProcess, redis: RedisServer): Promise<Tally> {
  const tally: Tally = { raced: 0, blind: 0, refused: 0, wrong: [] };
  for (let start = 0; start < ROUNDS; start += PARALLEL) {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, ROUNDS - start) }, (_, j) => round(ending, fast.url, slow.url, start + j, redis, tally)));
  }
  return tally;
}

describe('a login or logout racing requests that started before it', () => {
  let redis: RedisServer;
  const apps: AppProcess[] = [];
  let one: AppProcess;
  let a: AppProcess;
  let b: AppProcess;

  before(async () => {
    redis = await startRedis();
    // The single process refreshes on every read (touchInterval: 0), the case where the expiry
    // refresh of a read used to re-send the cookie; the pair runs with the defaults.
    [one, a, b] = await Promise.all([startApp(redis.url, { TOUCH_INTERVAL: '0' }), startApp(redis.url), startApp(redis.url)]);
    apps.push(one, a, b);
  });
  after(async () => {
    await Promise.all(apps.map((app) => app.stop()));
    await redis?.stop();
  });

  for (const ending of ['login', 'logout'] as const) {
    for (const [name, pick] of [
      ['in one process', () => [one, one]],
      ['across two processes', () => [a, b]],
    ] as const) {
      it(`${ending}, ${name}: ${ROUNDS} rounds, the browser always ends with the ${ending}'s cookie`, async (t) => {
        const [fast, slow] = pick() as [AppProcess, AppProcess];
        const tally = await scenario(ending, fast, slow, redis);
        t.diagnostic(`${tally.raced} of ${ROUNDS - tally.blind} earlier reads and writes read the session before the ${ending} ended it; ${tally.refused} earlier writes refused (409)`);
        assert.deepEqual(tally.wrong.slice(0, 10), [], `${tally.wrong.length} rounds went wrong`);
        // The race must really have happened, or the rounds prove nothing.
        assert.ok(tally.raced >= (ROUNDS - tally.blind) / 2, `only ${tally.raced} of ${ROUNDS - tally.blind} earlier requests read the session before the ${ending}`);
      });
    }
  }
});
