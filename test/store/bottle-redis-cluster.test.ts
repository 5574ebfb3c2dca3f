// BottleRedisStore on Redis Cluster with node-redis and ioredis: every operation touches one key,
// so a session and the id it is regenerated to may live on different shards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BottleRedisStore } from '../../src/stores/bottle-redis.js';
import type { StoreExpiry, StoreLimits } from '../../src/index.js';
import { startCluster, type ClusterTopology } from '../redis/topology.js';
import { CLUSTER_CLIENTS, type TopologyClient } from './topology-clients.js';

const ROOMY: StoreLimits = { maxFields: 1000, maxBytes: 1_000_000 };
const expiry = (): StoreExpiry => ({ ttlMs: 600_000, maxAgeMs: null, now: Date.now() });

let cluster: ClusterTopology;
before(async () => {
  cluster = await startCluster();
});
after(async () => {
  await cluster.stop();
});

/** Two ids whose keys are on different primaries. */
async function idsOnTwoShards(): Promise<[string, string]> {
  const first = '60b5066a-bae1-4d88-9052-b5468292c5b8';
  const home = (await cluster.primaryForKey(`session:${first}`)).port;
  for (let i = 1; i < 100; i++) {
    const other = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    if ((await cluster.primaryForKey(`session:${other}`)).port !== home) return [first, other];
  }
  throw new Error('no two shards found');
}

for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
  describe(`BottleRedisStore on Redis Cluster (${name})`, () => {
    let client: TopologyClient;
    let store: BottleRedisStore;
    before(async () => {
      client = await connect(cluster.rootNodes);
      store = new BottleRedisStore({ redis: client.client });
    });
    after(async () => {
      await store.close();
      await client.close();
    });

    it('creates, updates, increments, moves across shards and destroys, each step on one key', async () => {
      const [from, to] = await idsOnTwoShards();
      assert.equal(await store.create(from, [[':c', '1'], ['name', 'Alice']], 600_000), true);
      assert.equal(await store.update(from, [['n', '41'], [':s', '2']], [], expiry(), ROOMY), true);
      assert.equal(await store.increment(from, 'n', 1, [], expiry(), ROOMY), 42);
      const moved = await store.move(from, to, { set: [[':s', '3']], remove: [] }, expiry());
      assert.deepEqual(moved, new Map([['name', 'Alice'], ['n', '42']]));
      assert.equal(await store.load(from), null);
      const node = await cluster.primaryForKey(`session:${to}`);
      assert.deepEqual(await node.command('HGETALL', `session:${to}`), ['name', 'Alice', 'n', '42']);
      assert.equal(await node.command('TTL', `session:${to}`), 600);
      await store.destroy(to);
      assert.equal(await store.load(to), null);
    });
  });
}
