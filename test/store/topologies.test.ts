// RedisStore on Redis Sentinel and Redis Cluster, with node-redis and ioredis: the Store contract
// for each of the four clients, and sessions over HTTP through each. One Sentinel and one Cluster,
// shared by every run.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { storeContract } from 'latchkey/testing';
import { RedisStore } from '../../src/stores/redis.js';
import { ENDED_GRACE_MS } from '../../src/stores/store.js';
import { startCluster, startSentinel, type ClusterTopology, type RedisNode, type SentinelTopology } from '../redis/topology.js';
import { startSessionApp, type Browser } from './session-app.js';
import { CLUSTER_CLIENTS, SENTINEL_CLIENTS, type TopologyClient } from './topology-clients.js';

let sentinel: Promise<SentinelTopology> | undefined;
let cluster: Promise<ClusterTopology> | undefined;
const sentinelTopology = (): Promise<SentinelTopology> => (sentinel ??= startSentinel());
const clusterTopology = (): Promise<ClusterTopology> => (cluster ??= startCluster());
after(async () => {
  await Promise.all([sentinel, cluster].map(async (topology) => (await topology)?.stop()));
});

/** One of the four clients on its topology, and the node holding a key now. */
interface Target {
  connect(): Promise<TopologyClient>;
  nodeFor(key: string): Promise<RedisNode>;
  /** The primaries the topology has, for checking where sessions landed. */
  primaries(): Promise<RedisNode[]>;
}

const TARGETS: Record<string, Target> = {};
for (const [name, connect] of Object.entries(SENTINEL_CLIENTS)) {
  TARGETS[`Sentinel, ${name}`] = {
    connect: async () => {
      const topology = await sentinelTopology();
      return connect({ name: topology.masterName, sentinels: topology.sentinels });
    },
    nodeFor: async () => (await sentinelTopology()).primary(),
    primaries: async () => [await (await sentinelTopology()).primary()],
  };
}
for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
  TARGETS[`Cluster, ${name}`] = {
    connect: async () => connect((await clusterTopology()).rootNodes),
    nodeFor: async (key) => (await clusterTopology()).primaryForKey(key),
    primaries: async () => (await clusterTopology()).primaries(),
  };
}

for (const [name, target] of Object.entries(TARGETS)) {
  storeContract(`RedisStore on ${name}`, async () => {
    const { client, close } = await target.connect();
    const store = new RedisStore({ redis: client });
    return {
      store,
      ttlOf: async (id) => {
        const key = `session:${id}`;
        return Number(await (await target.nodeFor(key)).command('PTTL', key));
      },
      close: async () => {
        await store.close();
        await close();
      },
    };
  });
}

/** Whether `error` or one of its causes mentions CROSSSLOT. */
function crossSlot(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) if (/CROSSSLOT/.test(e.message)) return true;
  return false;
}

describe('sessions over HTTP on Sentinel and Cluster', () => {
  /** Sessions per client: enough that, on the cluster, each primary gets some (p(miss) ~ 3·(2/3)^24 ≈ 2e-4). */
  const SESSIONS = 24;

  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: create, read, write, incr, regenerate and destroy through the node adapter`, async (t) => {
      const { client, close } = await target.connect();
      t.after(close);
      const app = await startSessionApp(new RedisStore({ redis: client }));
      t.after(() => app.close());

      const ok = async (browser: Browser, path: string): Promise<unknown> => {
        const reply = await browser.get(path);
        assert.equal(reply.status, 200, `${path}: ${reply.status} ${reply.body}`);
        return JSON.parse(reply.body);
      };
      const exists = async (key: string): Promise<number> => Number(await (await target.nodeFor(key)).command('EXISTS', key));
      /** Only the mark that the session ended is left under `key`, with a TTL of its own. */
      const ended = async (key: string): Promise<void> => {
        const node = await target.nodeFor(key);
        assert.deepEqual(await node.command('HGETALL', key), [':x', 'e'], `${key} holds only the mark that it ended`);
        const ttl = Number(await node.command('PTTL', key));
        assert.ok(ttl > 0 && ttl <= ENDED_GRACE_MS, `the mark expires by itself: ${ttl}`);
      };

      const landed = new Map<number, number>();
      let moved = 0;
      await Promise.all(
        Array.from({ length: SESSIONS }, async (_, i) => {
          const browser = app.browser();
          assert.equal(await ok(browser, `/set?k=name&v=user-${i}`), 'ok');
          const created = browser.key;
          assert.ok(created !== undefined, 'the first write set a cookie');
          const node = await target.nodeFor(created);
          landed.set(node.port, (landed.get(node.port) ?? 0) + 1);
          assert.equal(await node.command('HGET', created, 'name'), JSON.stringify(`user-${i}`));
          assert.equal(await ok(browser, '/get?k=name'), `user-${i}`);
          assert.equal(await ok(browser, '/incr?k=n'), 1);
          assert.equal(await ok(browser, '/incr?k=n'), 2);
          assert.equal(await ok(browser, '/set?k=role&v=admin'), 'ok');
          assert.deepEqual(await ok(browser, '/all'), { name: `user-${i}`, n: 2, role: 'admin' });

          const oldId = browser.id!;
          assert.equal(await ok(browser, '/regenerate'), 'ok');
          const renamed = browser.key!;
          assert.notEqual(browser.id, oldId, 'regenerate handed out a new id');
          await ended(created);
          assert.equal(await exists(renamed), 1, 'the new key exists');
          if ((await target.nodeFor(renamed)).port !== node.port) moved++;
          assert.deepEqual(await ok(browser, '/all'), { name: `user-${i}`, n: 2, role: 'admin' });
          assert.equal(await ok(app.browser(oldId), '/get?k=name'), null, 'the old id reads nothing');
          assert.equal(await ok(browser, '/incr?k=n'), 3);

          assert.equal(await ok(browser, '/destroy'), 'ok');
          assert.equal(browser.id, undefined, 'destroy cleared the cookie');
          await ended(renamed);
        }),
      );

      const primaries = (await target.primaries()).map((node) => node.port).sort();
      if (primaries.length > 1) {
        const spread = primaries.map((port) => `${landed.get(port) ?? 0} on ${port}`).join(', ');
        t.diagnostic(`${SESSIONS} sessions: ${spread}; regenerate moved ${moved} of them to another primary`);
      }
      assert.deepEqual([...landed.keys()].sort(), primaries, 'sessions landed on every primary');
      if (primaries.length > 1) assert.ok(moved > 0, 'some regenerated sessions moved to another shard');
      assert.equal(app.errors.filter(crossSlot).length, 0, 'no CROSSSLOT error');
      assert.deepEqual(app.errors, [], 'no request failed');
    });
  }
});
