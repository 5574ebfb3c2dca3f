// A login is two steps in Redis: store the session, then index it under the user. When the second
// step fails (here: the user's index key holds a string, so its HSET fails with WRONGTYPE, as a
// process dying between the steps would leave it unindexed), the login fails and leaves no usable
// session under the new id. And an index entry whose session is gone is dropped at the next list.
// Redis only: the steps and the keys are RedisStore's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSessionError } from '../../src/index.js';
import { loginVisitor, PREFIX, storageOf, succeed, useDeployment, visit, whoIs, type Deployment } from './harness.js';

const REDIS_KINDS = ['RedisStore (node-redis)', 'RedisStore (ioredis)'] as const;

/** Every session key in Redis (user indexes left out), with what it holds. */
async function sessionKeys(deployment: Deployment): Promise<Map<string, string[]>> {
  const redis = deployment.redis!;
  const keys = ((await redis.command('KEYS', `${PREFIX}*`)) as string[]).filter((key) => !key.startsWith(`${PREFIX}user:`));
  const held = new Map<string, string[]>();
  for (const key of keys) held.set(key, (await redis.command('HGETALL', key)) as string[]);
  return held;
}

for (const kind of REDIS_KINDS) {
  describe(`a login whose index step fails, ${kind}`, () => {
    const deployment = useDeployment(kind);

    it('of a new visitor: rejects, sends no cookie, and leaves only the mark that the new id ended', async () => {
      const d = deployment();
      await d.redis!.command('SET', `${PREFIX}user:broken`, 'not a hash');
      const before = new Set((await sessionKeys(d)).keys());
      const live = await d.a.admin.countSessions();
      const login = await visit(d.a, undefined, (session) => session.login('broken'));
      assert.equal(login.ok, false);
      assert.ok(isSessionError(login.error, 'STORE_ERROR'), String(login.error));
      assert.match(String((login.error as Error).cause), /WRONGTYPE/);
      assert.deepEqual(login.lines, [], 'no cookie');
      assert.equal(login.handle, undefined);
      // The session was stored before the index step failed; now its key holds the end mark only.
      const added = [...(await sessionKeys(d))].filter(([key]) => !before.has(key));
      assert.deepEqual(added.map(([, fields]) => fields), [[':x', 'e']]);
      assert.equal(await d.a.admin.countSessions(), live, 'no live session more');
      assert.equal(await d.redis!.command('GET', `${PREFIX}user:broken`), 'not a hash', 'the index key is as it was');
    });

    it('of a visitor with a session: rejects, sends no cookie, and the old session is as it was', async () => {
      const d = deployment();
      await d.redis!.command('SET', `${PREFIX}user:broken-move`, 'not a hash');
      const { cookie } = await succeed(d.a, undefined, (session) => session.set('cart', 'socks'));
      assert.ok(cookie);
      const oldKey = PREFIX + storageOf(cookie);
      const before = new Set((await sessionKeys(d)).keys());
      const login = await visit(d.b, cookie, async (session) => {
        await session.load();
        await session.login('broken-move');
      });
      assert.equal(login.ok, false);
      assert.ok(isSessionError(login.error, 'STORE_ERROR'), String(login.error));
      assert.deepEqual(login.lines, [], 'no cookie');
      const held = await sessionKeys(d);
      const old = held.get(oldKey) ?? [];
      assert.ok(old.includes('cart') && !old.includes(':x') && !old.includes(':u'), `the old session is not marked: ${JSON.stringify(old)}`);
      const added = [...held].filter(([key]) => !before.has(key));
      assert.deepEqual(added.map(([, fields]) => fields), [[':x', 'e']], 'the new id holds only the end mark');
      // The old session works as before: read and written, still anonymous.
      const seen = await whoIs(d.a, cookie);
      assert.deepEqual([seen.user, seen.data, seen.lines], [undefined, { cart: 'socks' }, []]);
      assert.ok(seen.handle !== undefined);
      await succeed(d.a, cookie, (session) => session.set('more', 1));
      // Once the index can be written, the same browser logs in.
      await d.redis!.command('DEL', `${PREFIX}user:broken-move`);
      const retried = await succeed(d.b, cookie, (session) => session.login('broken-move'));
      assert.ok(retried.cookie !== undefined && retried.cookie !== cookie);
      assert.deepEqual(await whoIs(d.a, retried.cookie), { user: 'broken-move', data: { cart: 'socks', more: 1 }, handle: retried.handle, lines: [] });
      assert.deepEqual((await d.a.admin.listUserSessions('broken-move')).map((session) => session.handle), [retried.handle]);
    });

    it('an index entry whose session key was deleted is dropped at the next listing', async () => {
      const d = deployment();
      const user = 'pruned';
      const gone = await loginVisitor(d.a, user);
      const kept = await loginVisitor(d.b, user);
      const index = `${PREFIX}user:${user}`;
      assert.equal(await d.redis!.command('DEL', PREFIX + storageOf(gone.cookie)), 1);
      assert.equal(await d.redis!.command('HLEN', index), 2);
      assert.deepEqual((await d.b.admin.listUserSessions(user)).map((session) => session.handle), [kept.handle]);
      assert.deepEqual(await d.redis!.command('HKEYS', index), [storageOf(kept.cookie)]);
    });
  });
}
