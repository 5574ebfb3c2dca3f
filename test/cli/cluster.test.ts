// The operator CLI with --cluster on a Redis Cluster of three primaries of the test's own, with
// node-redis and with ioredis: sessions spread over every primary are counted, listed, inspected
// and revoked, and the credentials of the first node's URL sign in to every node.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../redis/server.js';
import { startCluster, type ClusterTopology } from '../redis/topology.js';
import { connectNodeRedisCluster, type TopologyClient } from '../store/topology-clients.js';
import { assertFailed, assertNoSecrets, assertOk, latchkey, sessionsOn, type ListedJson, type Login } from './support.js';

describe('latchkey sessions --cluster, on a Redis Cluster of three primaries', () => {
  let cluster: ClusterTopology;
  let app: TopologyClient;
  let seeds = '';
  before(async () => {
    cluster = await startCluster();
    app = await connectNodeRedisCluster(cluster.rootNodes);
    seeds = cluster.rootNodes.slice(0, 2).map(({ host, port }) => `${host}:${port}`).join(',');
  });
  after(async () => {
    await app?.close();
    await cluster?.stop();
  });

  for (const library of ['redis', 'ioredis']) {
    it(`lists, counts, inspects and revokes across every primary (${library})`, async () => {
      const prefix = `${library}:`;
      const env = { LATCHKEY_REDIS_CLIENT: library };
      const on = ['--cluster', seeds, '--prefix', prefix];
      const sessions = sessionsOn(app.client, prefix);
      const alices = [await sessions.login('alice', { userAgent: 'Firefox', ip: '192.0.2.1' }), await sessions.login('alice', { userAgent: 'Safari' })];
      const bob = await sessions.login('bob', {}, { name: 'Bob', plan: 'pro' });
      for (let i = 0; i < 9; i++) await sessions.anonymous();
      // The sessions are spread over the primaries, so a count that scanned one of them would fall short.
      const owners = new Set(await Promise.all(sessions.made.map(async ({ key }) => (await cluster.primaryForKey(key)).port)));
      assert.ok(owners.size >= 2, `the sessions landed on ${owners.size} primary`);

      const [count, list, inspect, fromEnv] = await Promise.all([
        latchkey(['sessions', 'count', ...on], env),
        latchkey(['sessions', 'list', '--user', 'alice', '--json', ...on], env),
        latchkey(['sessions', 'inspect', '--session', bob.handle, '--json', ...on], env),
        latchkey(['sessions', 'count', '--prefix', prefix], { ...env, REDIS_CLUSTER: seeds }),
      ]);
      assert.equal(assertOk(count), `${sessions.made.length} sessions\n`);
      assert.equal(assertOk(fromEnv), `${sessions.made.length} sessions\n`);
      assert.deepEqual(
        (JSON.parse(assertOk(list)) as ListedJson[]).map((session) => session.handle).sort(),
        alices.map((alice) => alice.handle).sort(),
      );
      const inspected = JSON.parse(assertOk(inspect)) as { userId: string; fields: { key: string }[] };
      assert.equal(inspected.userId, 'bob');
      assert.deepEqual(inspected.fields.map((field) => field.key).sort(), ['name', 'plan']);

      const [first, second] = alices as [Login, Login];
      assert.equal(assertOk(await latchkey(['sessions', 'revoke', '--user', 'alice', '--session', first.handle, ...on], env)), `revoked session ${first.handle} of user alice\n`);
      assert.match(JSON.stringify(await (await cluster.primaryForKey(first.key)).command('HGETALL', first.key)), /^\[":x","r[0-9]+"\]$/, 'revoked: only the mark, r and when');
      assert.deepEqual(await sessions.nextRequest(first), { user: undefined, isNew: true });
      assert.deepEqual(await sessions.nextRequest(second), { user: 'alice', isNew: false });

      assert.equal(assertOk(await latchkey(['sessions', 'revoke', '--user', 'bob', '--all', ...on], env)), 'revoked 1 session of user bob\n');
      assert.match(JSON.stringify(await (await cluster.primaryForKey(bob.key)).command('HGETALL', bob.key)), /^\[":x","r[0-9]+"\]$/, 'revoked: only the mark, r and when');
      assert.deepEqual(await sessions.nextRequest(bob), { user: undefined, isNew: true });

      const [afterwards, missing] = await Promise.all([
        latchkey(['sessions', 'count', ...on], env),
        latchkey(['sessions', 'inspect', '--session', first.handle, ...on], env),
      ]);
      assert.equal(assertOk(afterwards), `${sessions.made.length - 2} sessions\n`);
      assertFailed(missing, 1, new RegExp(`^latchkey: no session ${first.handle}\\n$`));
      assertNoSecrets(sessions.made, count.stdout, list.stdout, inspect.stdout);
    });

    it(`signs in to every node as the user of the first node's URL (${library})`, async () => {
      // An ACL user of the test's own on every node (ACL users are not shared through the cluster).
      await Promise.all(cluster.nodes.map((node) => node.command('ACL', 'SETUSER', 'operator', 'on', 'resetpass', '>0perator-secret', '~*', '&*', '+@all')));
      const env = { LATCHKEY_REDIS_CLIENT: library };
      const [host, ...rest] = seeds.split(',');
      const withPassword = (password: string): string => [`redis://operator:${password}@${host}`, ...rest].join(',');
      const [right, wrong] = await Promise.all([
        latchkey(['sessions', 'count', '--cluster', withPassword('0perator-secret'), '--prefix', 'acl:'], env),
        latchkey(['sessions', 'count', '--cluster', withPassword('not-the-secret'), '--prefix', 'acl:'], env),
      ]);
      assert.equal(assertOk(right), '0 sessions\n');
      assertFailed(wrong, 2, /^latchkey: cannot reach Redis Cluster at 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+: /);
      assert.ok(!wrong.stderr.includes('not-the-secret'), wrong.stderr);
    });
  }

  it('fails in one line with exit status 2 when no node of the cluster is there', async () => {
    const ports = [await freePort(), await freePort()];
    for (const library of ['redis', 'ioredis']) {
      const result = await latchkey(['sessions', 'count', '--cluster', ports.map((port) => `127.0.0.1:${port}`).join(',')], { LATCHKEY_REDIS_CLIENT: library });
      assertFailed(result, 2, new RegExp(`^latchkey: cannot reach Redis Cluster at 127\\.0\\.0\\.1:${ports[0]},127\\.0\\.0\\.1:${ports[1]}: `));
    }
  });
});
