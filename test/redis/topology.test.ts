import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { createCluster, createSentinel } from 'redis';
import { ioredisReady } from './client.js';
import { startCluster, startSentinel, type RedisNode } from './topology.js';

/**
 * Calls `attempt` until one call resolves, and resolves how long that took. A call that has not
 * settled after `tryMs` (a client may hold commands while it reconnects) is left running and another
 * is started; whichever resolves first counts. Rejects after `timeoutMs` with the last error.
 */
function until(what: string, attempt: () => Promise<unknown>, timeoutMs = 15_000, tryMs = 1000): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    let finished = false;
    let last: unknown;
    let current = 0;
    const timers = new Set<NodeJS.Timeout>();
    const later = (fn: () => void, ms: number): void => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        fn();
      }, ms);
      timers.add(timer);
    };
    const finish = (error?: Error): void => {
      if (finished) return;
      finished = true;
      for (const timer of timers) clearTimeout(timer);
      if (error === undefined) resolve(Date.now() - start);
      else reject(error);
    };
    const tryOnce = (): void => {
      if (finished) return;
      const id = ++current;
      later(() => id === current && tryOnce(), tryMs);
      attempt().then(
        () => finish(),
        (error: unknown) => {
          last = error;
          if (id === current) later(() => id === current && tryOnce(), 50);
        },
      );
    };
    later(() => finish(new Error(`${what}: still failing after ${timeoutMs} ms`, { cause: last })), timeoutMs);
    tryOnce();
  });
}

/** Waits until every replica of `primary` has acknowledged everything written to it so far. */
async function replicated(primary: RedisNode): Promise<void> {
  await until(`replicas of ${primary.port} catching up`, async () => {
    const info = String(await primary.command('INFO', 'replication'));
    const offset = Number(/^master_repl_offset:(\d+)/m.exec(info)?.[1]);
    const replicas = [...info.matchAll(/^slave\d+:.*offset=(\d+)/gm)].map((match) => Number(match[1]));
    if (replicas.length === 0 || replicas.some((acked) => acked < offset)) throw new Error('behind');
  });
}


describe('test topologies', () => {
  it('Sentinel: both clients work through it, and a new primary takes over after the old one is killed', async (t) => {
    let started = Date.now();
    const sentinel = await startSentinel();
    t.after(() => sentinel.stop());
    t.diagnostic(`sentinel topology up in ${Date.now() - started} ms`);
    assert.equal(sentinel.nodes.length, 2);
    assert.equal(sentinel.sentinels.length, 3);

    const nodeRedis = createSentinel({ name: sentinel.masterName, sentinelRootNodes: [...sentinel.sentinels] });
    nodeRedis.on('error', () => {});
    await nodeRedis.connect();
    t.after(() => nodeRedis.close());
    const ioredis = new Redis({ sentinels: [...sentinel.sentinels], name: sentinel.masterName });
    ioredis.on('error', () => {});
    t.after(() => ioredis.disconnect());
    await ioredisReady(ioredis);

    const old = await sentinel.primary();
    assert.equal(old.port, sentinel.nodes[0]?.port);
    await nodeRedis.set('smoke:node-redis', 'a');
    await ioredis.set('smoke:ioredis', 'b');
    assert.equal(await nodeRedis.get('smoke:ioredis'), 'b');
    assert.equal(await ioredis.get('smoke:node-redis'), 'a');
    assert.equal(await old.command('GET', 'smoke:node-redis'), 'a');
    await replicated(old);

    started = Date.now();
    await old.kill();
    const [promoted, promotedAfter, nodeRedisAfter, ioredisAfter] = await Promise.all([
      sentinel.waitForPrimary(old.port),
      sentinel.waitForPrimary(old.port).then(() => Date.now() - started),
      until('node-redis writing again', () => nodeRedis.set('smoke:after:node-redis', '1'), 20_000),
      until('ioredis writing again', () => ioredis.set('smoke:after:ioredis', '2'), 20_000),
    ]);
    t.diagnostic(
      `sentinel failover after SIGKILL: sentinels agree on the promoted replica in ${promotedAfter} ms; ` +
        `node-redis writes again in ${nodeRedisAfter} ms, ioredis in ${ioredisAfter} ms`,
    );
    assert.equal(promoted.port, sentinel.nodes[1]?.port);
    assert.equal(((await promoted.command('ROLE')) as unknown[])[0], 'master');
    assert.equal((await sentinel.primary()).port, promoted.port);
    assert.equal(await nodeRedis.get('smoke:node-redis'), 'a');
    assert.equal(await ioredis.get('smoke:ioredis'), 'b');
    assert.equal(await promoted.command('GET', 'smoke:after:node-redis'), '1');
    assert.equal(await promoted.command('GET', 'smoke:after:ioredis'), '2');
  });

  it('Cluster: both clients reach all three primaries, and a killed primary’s shard comes back', async (t) => {
    let started = Date.now();
    const cluster = await startCluster();
    t.after(() => cluster.stop());
    t.diagnostic(`cluster topology up in ${Date.now() - started} ms`);
    assert.equal(cluster.nodes.length, 6);
    const primaries = await cluster.primaries();
    assert.equal(primaries.length, 3);

    const nodeRedis = createCluster({ rootNodes: cluster.nodes.map((node) => ({ url: node.url })) });
    nodeRedis.on('error', () => {});
    await nodeRedis.connect();
    t.after(() => nodeRedis.close());
    const ioredis = new Cluster([...cluster.rootNodes]);
    ioredis.on('error', () => {});
    t.after(() => ioredis.disconnect());
    await ioredisReady(ioredis);

    // One key per client on each primary.
    const keys = new Map<number, string>();
    for (let i = 0; keys.size < 3; i++) {
      assert.ok(i < 100, 'no keys for every primary among the first 100');
      const key = `smoke:{${i}}`;
      const port = (await cluster.primaryForKey(key)).port;
      if (!keys.has(port)) keys.set(port, key);
    }
    assert.deepEqual([...keys.keys()].sort(), primaries.map((node) => node.port).sort());
    for (const [port, key] of keys) {
      await nodeRedis.set(`${key}:node-redis`, String(port));
      await ioredis.set(`${key}:ioredis`, String(port));
      assert.equal(await ioredis.get(`${key}:node-redis`), String(port));
      assert.equal(await nodeRedis.get(`${key}:ioredis`), String(port));
      const primary = primaries.find((node) => node.port === port)!;
      assert.equal(await primary.command('GET', `${key}:node-redis`), String(port));
      await replicated(primary);
    }

    const [victim, other] = primaries as [RedisNode, RedisNode, RedisNode];
    const victimKey = keys.get(victim.port)!;
    const otherKey = keys.get(other.port)!;
    started = Date.now();
    await victim.kill();
    // The other shards keep serving while this one has no master (cluster-require-full-coverage no).
    assert.equal(await nodeRedis.get(`${otherKey}:ioredis`), String(other.port));
    assert.equal(await ioredis.get(`${otherKey}:node-redis`), String(other.port));
    const [recoveredAfter, nodeRedisAfter, ioredisAfter] = await Promise.all([
      cluster.waitForState().then(() => Date.now() - started),
      until('node-redis reading the shard again', async () =>
        assert.equal(await nodeRedis.get(`${victimKey}:node-redis`), String(victim.port)),
      20_000),
      until('ioredis reading the shard again', async () =>
        assert.equal(await ioredis.get(`${victimKey}:ioredis`), String(victim.port)),
      20_000),
    ]);
    t.diagnostic(
      `cluster failover after SIGKILL: every node serves all slots in ${recoveredAfter} ms; ` +
        `node-redis reads the shard again in ${nodeRedisAfter} ms, ioredis in ${ioredisAfter} ms`,
    );
    const promoted = await cluster.primaryForKey(victimKey);
    assert.notEqual(promoted.port, victim.port);
    assert.equal((await cluster.primaries()).length, 3);

    // The killed node rejoins as a replica of the promoted one.
    started = Date.now();
    await victim.restart();
    await until('the old primary rejoining as a replica', async () => {
      const role = (await victim.command('ROLE')) as unknown[];
      if (role[0] !== 'slave' || Number(role[2]) !== promoted.port || role[3] !== 'connected') throw new Error(String(role));
    });
    await cluster.waitForState();
    t.diagnostic(`the killed primary rejoined as a replica ${Date.now() - started} ms after its restart`);
  });
});
