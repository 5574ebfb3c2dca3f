// Sessions per user at scale on Redis Cluster (three primaries), with node-redis' createCluster
// and ioredis' Cluster: 10,000 users with 3 sessions each, made through SessionManagers on both,
// then counted, listed and revoked exactly by each. Every command latchkey sends is single-key, so none fails
// with CROSSSLOT (any error fails the test), and the sessions spread over every primary.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionManager } from '../../src/index.js';
import { startCluster, type ClusterTopology, type RedisNode } from '../redis/topology.js';
import { CLUSTER_CLIENTS } from '../store/topology-clients.js';
import { notAnonymous, succeed } from './harness.js';

const USERS = 10_000;
const PER_USER = 3;
/** Requests under way at once while the sessions are made. */
const CONCURRENCY = 200;
/** Users whose lists are checked, before and after the revocation. */
const SAMPLE = 200;
/** Users whose sessions are revoked. */
const REVOKED = 100;

/** Runs `task(0..count-1)` with at most `limit` under way at once. */
async function pool(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

/** `count` users spread evenly over all of them, starting at `offset`. */
function spread(count: number, offset: number): number[] {
  return Array.from({ length: count }, (_, i) => (Math.floor((i * USERS) / count) + offset) % USERS);
}

/** One session of a user: its browser's cookie and its handle. */
interface Made {
  readonly cookie: string;
  readonly handle: string;
}

/**
 * The `k`th session of `user`, made one of three ways so that both ways a login stores a session
 * (created signed in, or moved from an anonymous one) run between shards: a new visitor logs in;
 * a visitor writes and logs in within one request; a visitor writes, and logs in on its next.
 */
async function makeSession(manager: SessionManager, user: string, k: number): Promise<Made> {
  let cookie: string | undefined;
  if (k === 2) cookie = (await succeed(manager, undefined, (session) => session.set('cart', 'socks'))).cookie;
  const login = await succeed(manager, cookie, async (session) => {
    if (k === 1) await session.set('cart', 'socks');
    await session.login(user);
  });
  assert.ok(login.cookie !== undefined && login.cookie !== cookie && login.handle !== undefined, 'the login set a new cookie');
  return { cookie: login.cookie, handle: login.handle };
}

const seconds = (since: number): string => ((performance.now() - since) / 1000).toFixed(1);

/** A connected client of one library, and the manager on it. */
interface App {
  readonly name: string;
  readonly manager: SessionManager;
  /** What the client reported through its 'error' event. */
  readonly reported: unknown[];
  close(): Promise<void>;
}

/**
 * Both libraries at once, as two app processes on one cluster: the users' sessions are made through
 * both (each user gets sessions from each, so both write to every user's index), then each library
 * counts, lists and revokes exactly. The whole file must finish within the test runner's 120 s, so
 * the 30,000 sessions are made once, by both, rather than once per library.
 */
describe(`sessions per user on Redis Cluster: ${USERS} users × ${PER_USER} sessions`, () => {
  let cluster: ClusterTopology;
  let primaries: RedisNode[];
  const apps: App[] = [];
  const made: Made[][] = Array.from({ length: USERS }, () => []);
  /** Sessions that should be live, as the tests go. */
  let live = 0;
  /** How long the steps of the running test took. */
  const timings: string[] = [];

  before(async () => {
    cluster = await startCluster();
    primaries = await cluster.primaries();
    for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
      const { client, close } = await connect(cluster.rootNodes);
      // Any error the client reports (a CROSSSLOT among them) fails the test.
      const reported: unknown[] = [];
      (client as unknown as { on(event: 'error', listener: (error: unknown) => void): void }).on('error', (error) => reported.push(error));
      apps.push({ name, manager: new SessionManager({ redis: client }), reported, close });
    }
  });
  after(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await cluster?.stop();
  });

  it(`${USERS * PER_USER} sessions made through both libraries at once spread over the 3 primaries`, async (t) => {
    assert.equal(primaries.length, 3);
    const started = performance.now();
    await pool(USERS * PER_USER, CONCURRENCY, async (i) => {
      const user = Math.floor(i / PER_USER);
      const k = i % PER_USER;
      const app = apps[(user + k) % apps.length] as App;
      (made[user] as Made[])[k] = await makeSession(app.manager, `u${user}`, k);
    });
    live = USERS * PER_USER;
    const madeIn = `made ${live} sessions (${(USERS * PER_USER * 4) / 3} requests) in ${seconds(started)} s`;
    const sizes = await Promise.all(primaries.map(async (node) => Number(await node.command('DBSIZE'))));
    const keys = sizes.reduce((sum, size) => sum + size, 0);
    t.diagnostic(`${madeIn}; keys per primary ${sizes.join(', ')} (sessions, user indexes, end marks of the moved ids)`);
    for (const size of sizes) assert.ok(size > keys / 6, `keys per primary: ${sizes.join(', ')}`);
    for (const app of apps) assert.deepEqual(app.reported, [], app.name);
  });

  for (const [index, name] of Object.keys(CLUSTER_CLIENTS).entries()) {
    it(`${name}: counts, lists and revokes exactly`, async (t) => {
      assert.equal(live > 0, true, 'the sessions were made');
      const app = apps[index] as App;
      const admin = app.manager.admin;
      let started = performance.now();
      assert.equal(await admin.countSessions(), live);
      timings.push(`countSessions ${seconds(started)} s`);

      const listsOf = async (users: readonly number[]): Promise<void> => {
        await pool(users.length, 20, async (j) => {
          const user = users[j] as number;
          const listed = await admin.listUserSessions(`u${user}`);
          assert.deepEqual(listed.map((session) => session.handle).sort(), (made[user] as Made[]).map((session) => session.handle).sort(), `u${user}'s sessions`);
        });
      };
      started = performance.now();
      await listsOf(spread(SAMPLE, index));
      timings.push(`${SAMPLE} lists ${seconds(started)} s`);

      // Each library revokes users of its own, whose sessions both libraries made.
      const revoked = spread(REVOKED, 7 + index * 13);
      started = performance.now();
      const counts = await Promise.all(revoked.map((user) => admin.revokeUserSessions(`u${user}`)));
      timings.push(`${REVOKED} revocations ${seconds(started)} s`);
      assert.deepEqual(counts, revoked.map(() => PER_USER));
      live -= REVOKED * PER_USER;
      started = performance.now();
      assert.equal(await admin.countSessions(), live);
      timings.push(`countSessions ${seconds(started)} s`);
      for (const user of revoked) assert.deepEqual(await admin.listUserSessions(`u${user}`), []);
      await pool(REVOKED * PER_USER, 20, async (j) => {
        const session = (made[revoked[Math.floor(j / PER_USER)] as number] as Made[])[j % PER_USER] as Made;
        assert.equal(await notAnonymous(app.manager, session.cookie), undefined);
      });
      // Nobody else's sessions: other users' lists are whole, and their browsers still signed in.
      const gone = new Set(revoked);
      for (const other of apps) if (other !== app) for (const user of spread(REVOKED, 7 + apps.indexOf(other) * 13)) gone.add(user);
      const others = spread(SAMPLE, 3 + index).filter((user) => !gone.has(user));
      await listsOf(others);
      for (const user of others.slice(0, 20)) {
        for (const session of made[user] as Made[]) assert.equal((await succeed(app.manager, session.cookie, (s) => s.userId())).value, `u${user}`);
      }
      assert.deepEqual(app.reported, []);
      t.diagnostic(timings.splice(0).join('; '));
    });
  }
});
