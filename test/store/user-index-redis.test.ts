// RedisStore's user index as Redis holds it, with node-redis and ioredis: the index key of each
// user, its entries and its TTL, the order of a create's steps (stored, then indexed), and, on a
// Redis Cluster of three primaries, a user's index and sessions on different shards with no
// CROSSSLOT. The behaviour itself is the Store contract's (latchkey/testing), which runs on every
// topology; this file checks what it cannot see.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { SessionError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/stores/redis.js';
import { CREATED_AT_FIELD, ENDED_GRACE_MS, LAST_SEEN_FIELD, USER_FIELD, type StoreExpiry, type StoreField } from '../../src/stores/store.js';
import { useRedis } from '../redis/server.js';
import { ioredisReady } from '../redis/client.js';
import { startCluster, type ClusterTopology } from '../redis/topology.js';
import { CLUSTER_CLIENTS, type TopologyClient } from './topology-clients.js';

const HOUR = 3_600_000;
/** Slack for the time between setting a TTL and reading it back. */
const SLACK = 10_000;
const ROOMY = { maxFields: 1000, maxBytes: 1_000_000 };

const STANDALONE_CLIENTS: Record<string, (url: string) => Promise<TopologyClient>> = {
  'node-redis': async (url) => {
    const client = createClient({ url });
    client.on('error', () => {});
    await client.connect();
    return { client, close: () => client.close() };
  },
  ioredis: async (url) => {
    const client = new Redis(url);
    client.on('error', () => {});
    await ioredisReady(client);
    return { client, close: async () => void client.disconnect() };
  },
};

const newId = (): string => randomBytes(16).toString('hex');
const newUser = (): string => `user-${randomBytes(6).toString('hex')}`;

/** latchkey's metadata of a session of `user` created now, and a field of data. */
function fieldsOf(user: string): StoreField[] {
  const now = String(Date.now());
  return [[CREATED_AT_FIELD, now], [LAST_SEEN_FIELD, now], [USER_FIELD, user], ['name', '"alice"']];
}

function expiry(maxAgeMs: number | null): StoreExpiry {
  return { ttlMs: 60_000, maxAgeMs, now: Date.now() };
}

/** Asserts `promise` rejects with a SessionError of `code`, and returns the error. */
async function rejection(promise: Promise<unknown>, code: SessionError['code']): Promise<SessionError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return error instanceof SessionError && error.code === code;
  });
  return caught as SessionError;
}

/** The messages of `error` and its causes. */
function messages(error: unknown): string {
  const out: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) out.push(e.message);
  return out.join(' <- ');
}

describe('RedisStore user index layout on a standalone Redis', () => {
  const redis = useRedis();
  const raw = (...args: string[]): Promise<unknown> => redis.command(...args);
  const pttl = async (key: string): Promise<number> => Number(await raw('PTTL', key));
  /** The entries of a user's index hash: storage id to the time it was indexed. */
  const entries = async (key: string): Promise<Map<string, string>> => {
    const flat = (await raw('HGETALL', key)) as string[];
    const map = new Map<string, string>();
    for (let i = 0; i < flat.length; i += 2) map.set(flat[i] as string, flat[i + 1] as string);
    return map;
  };
  /**
   * Asserts only the mark that `key`'s session ended is left, for the grace time; that of a signed-in
   * session that was moved names the id it went to, for a revocation to follow.
   */
  const assertEndedMark = async (key: string, movedTo?: string, revoked = false): Promise<void> => {
    const held = (await raw('HGETALL', key)) as string[];
    if (revoked) assert.match(JSON.stringify(held), /^\[":x","r[0-9]+"\]$/, `${key} holds only the mark that it was revoked, and when`);
    else assert.deepEqual(held, [':x', movedTo === undefined ? 'e' : `e:${movedTo}`], `${key} holds only the mark that it ended`);
    const ttl = await pttl(key);
    assert.ok(ttl > 0 && ttl <= ENDED_GRACE_MS, `the mark of ${key} expires by itself: ${ttl}`);
  };

  for (const [name, connect] of Object.entries(STANDALONE_CLIENTS)) {
    describe(name, () => {
      let connected: TopologyClient | undefined;
      const stores: RedisStore[] = [];
      /** A store on this client, with `prefix` (default 'session:'). */
      const storeWith = async (prefix?: string): Promise<RedisStore> => {
        connected ??= await connect(redis.url);
        const store = new RedisStore({ redis: connected.client, ...(prefix === undefined ? {} : { prefix }) });
        stores.push(store);
        return store;
      };
      after(async () => {
        for (const store of stores) await store.close();
        await connected?.close();
      });

      it("keeps each user's index in prefix + 'user:' + user id: a hash of storage ids to when each was indexed", async () => {
        const store = await storeWith('app:sess:');
        const user = `${newUser()}@example.com`;
        const ids = [newId(), newId()];
        const before = Date.now();
        for (const id of ids) assert.equal(await store.create(id, fieldsOf(user), 60_000, HOUR), true);
        const after = Date.now();
        const index = await entries(`app:sess:user:${user}`);
        assert.deepEqual([...index.keys()].sort(), [...ids].sort());
        for (const at of index.values()) {
          assert.match(at, /^\d+$/);
          assert.ok(Number(at) >= before && Number(at) <= after, `indexed at ${at}, between ${before} and ${after}`);
        }
        for (const id of ids) assert.equal(await raw('HGET', `app:sess:${id}`, USER_FIELD), user);
        assert.equal(await raw('EXISTS', `session:user:${user}`), 0, 'nothing outside the prefix');
        // A session without a user is in no index.
        const anonymous = newId();
        assert.equal(await store.create(anonymous, fieldsOf(user).filter(([field]) => field !== USER_FIELD), 60_000, HOUR), true);
        assert.deepEqual([...(await entries(`app:sess:user:${user}`)).keys()].sort(), [...ids].sort());
      });

      it('gives the index the longest absolute lifetime among its sessions, and no TTL once one has none', async () => {
        const store = await storeWith();
        const user = newUser();
        const key = `session:user:${user}`;
        const ttlNear = async (expected: number, what: string): Promise<void> => {
          const ttl = await pttl(key);
          assert.ok(ttl > expected - SLACK && ttl <= expected, `${what}: PTTL ${ttl}, expected about ${expected}`);
        };
        assert.equal(await store.create(newId(), fieldsOf(user), 60_000, HOUR), true);
        await ttlNear(HOUR, 'the first session lives an hour at most');
        assert.equal(await store.create(newId(), fieldsOf(user), 60_000, 2 * HOUR), true);
        await ttlNear(2 * HOUR, 'a longer lifetime lengthens it');
        assert.equal(await store.create(newId(), fieldsOf(user), 60_000, HOUR), true);
        await ttlNear(2 * HOUR, 'a shorter one leaves it');
        assert.equal(await store.create(newId(), fieldsOf(user), 60_000, null), true);
        assert.equal(await pttl(key), -1, 'a session without an absolute lifetime makes it persist');
        assert.equal(await store.create(newId(), fieldsOf(user), 60_000, HOUR), true);
        assert.equal(await pttl(key), -1, 'and a later one with a lifetime does not bound it again');

        const unsaid = newUser();
        assert.equal(await store.create(newId(), fieldsOf(unsaid), 60_000), true);
        assert.equal(await pttl(`session:user:${unsaid}`), -1, 'a create that does not say has no bound');

        // A move indexes the new id for its expiry's lifetime.
        const mover = newUser();
        const from = newId();
        assert.equal(await store.create(from, fieldsOf(mover), 60_000, HOUR), true);
        assert.ok(await store.move(from, newId(), { set: [], remove: [] }, expiry(3 * HOUR)));
        const ttl = await pttl(`session:user:${mover}`);
        assert.ok(ttl > 3 * HOUR - SLACK && ttl <= 3 * HOUR, `after the move: PTTL ${ttl}`);
        const unbounded = newUser();
        const from2 = newId();
        assert.equal(await store.create(from2, fieldsOf(unbounded), 60_000, HOUR), true);
        assert.ok(await store.move(from2, newId(), { set: [], remove: [] }, expiry(null)));
        assert.equal(await pttl(`session:user:${unbounded}`), -1);
      });

      it('keeps the entries exact as sessions move, change user, are destroyed and revoked', async () => {
        const store = await storeWith();
        const [a, b] = [newUser(), newUser()];
        const ids = Array.from({ length: 4 }, () => newId());
        for (const id of ids) assert.equal(await store.create(id, fieldsOf(a), 60_000, HOUR), true);
        const [stay, moving, switching, destroyed] = ids as [string, string, string, string];
        const moved = newId();
        assert.ok(await store.move(moving, moved, { set: [], remove: [] }, expiry(HOUR)));
        const switched = newId();
        assert.ok(await store.move(switching, switched, { set: [[USER_FIELD, b]], remove: [] }, expiry(HOUR)));
        await store.destroy(destroyed);
        assert.deepEqual([...(await entries(`session:user:${a}`)).keys()].sort(), [stay, moved].sort());
        assert.deepEqual([...(await entries(`session:user:${b}`)).keys()], [switched]);
        await assertEndedMark(`session:${moving}`, moved);
        await assertEndedMark(`session:${switching}`, switched);
        await assertEndedMark(`session:${destroyed}`);

        assert.equal(await store.endSessions(a, [stay, moved]), 2);
        // Revoked: marked 'r', so that the browser's next write finds no session rather than failing.
        for (const id of [stay, moved]) await assertEndedMark(`session:${id}`, undefined, true);
        assert.equal(await raw('EXISTS', `session:user:${a}`), 0, 'an index left without entries is gone');
        assert.deepEqual([...(await entries(`session:user:${b}`)).keys()], [switched]);
      });

      it("a listing removes the entries of sessions that expired, ended, or are not the user's", async () => {
        const store = await storeWith();
        const [user, other] = [newUser(), newUser()];
        const key = `session:user:${user}`;
        const expiring = [newId(), newId()];
        for (const id of expiring) assert.equal(await store.create(id, fieldsOf(user), 200, HOUR), true);
        const kept = newId();
        assert.equal(await store.create(kept, fieldsOf(user), 60_000, HOUR), true);
        const theirs = newId();
        assert.equal(await store.create(theirs, fieldsOf(other), 60_000, HOUR), true);
        // Entries an index can hold after a step failed: a session another user's, an id never stored.
        const never = newId();
        await raw('HSET', key, theirs, String(Date.now()), never, String(Date.now()));
        await sleep(350);
        // Expiry removes the sessions, not their entries: listings do.
        assert.equal(Number(await raw('HLEN', key)), 5);
        assert.deepEqual((await store.userSessions(user)).map((session) => session.id), [kept]);
        assert.deepEqual([...(await entries(key)).keys()], [kept]);
        assert.deepEqual((await store.userSessions(other)).map((session) => session.id), [theirs], "the other user's session is untouched");
      });

      it('stores a session before indexing it: a create whose index step fails rejects, and leaves the id ended', async () => {
        const store = await storeWith();
        const user = newUser();
        const key = `session:user:${user}`;
        // A string where the index hash should be: HSET fails with WRONGTYPE after the session was stored.
        await raw('SET', key, 'not a hash');
        const id = newId();
        const error = await rejection(store.create(id, fieldsOf(user), 60_000, HOUR), 'STORE_ERROR');
        assert.match(messages(error), /WRONGTYPE/);
        await assertEndedMark(`session:${id}`);
        assert.equal(await store.load(id), null);
        assert.equal(await store.create(id, fieldsOf(newUser()), 60_000, HOUR), false, 'the id cannot be used again');
        await rejection(store.update(id, [['late', '1']], [], expiry(HOUR), ROOMY), 'SESSION_GONE');
        assert.equal(await raw('GET', key), 'not a hash');
      });

      it('a move whose index step fails rejects, keeps the old session usable and leaves the new id ended', async () => {
        const store = await storeWith();
        const [user, next] = [newUser(), newUser()];
        const from = newId();
        const fields = fieldsOf(user);
        assert.equal(await store.create(from, fields, 60_000, HOUR), true);
        await raw('SET', `session:user:${next}`, 'not a hash');
        const to = newId();
        const error = await rejection(store.move(from, to, { set: [[USER_FIELD, next]], remove: [] }, expiry(HOUR)), 'STORE_ERROR');
        assert.match(messages(error), /WRONGTYPE/);
        assert.deepEqual(await store.load(from), new Map(fields));
        assert.equal(await store.update(from, [['after', '1']], [], expiry(HOUR), ROOMY), true, 'the old session takes writes at once');
        await assertEndedMark(`session:${to}`);
        assert.deepEqual([...(await entries(`session:user:${user}`)).keys()], [from]);
        assert.deepEqual((await store.userSessions(user)).map((session) => session.id), [from]);
      });
    });
  }
});

describe('RedisStore user index on a Redis Cluster of three primaries', () => {
  let cluster: Promise<ClusterTopology> | undefined;
  const topology = (): Promise<ClusterTopology> => (cluster ??= startCluster());
  after(async () => {
    await (await cluster)?.stop();
  });

  for (const [name, connect] of Object.entries(CLUSTER_CLIENTS)) {
    it(`${name}: a user's sessions on every primary and the index on one, listed, moved, revoked and scanned with single-key commands`, async (t) => {
      const nodes = await topology();
      const { client, close } = await connect(nodes.rootNodes);
      t.after(close);
      const store = new RedisStore({ redis: client });
      t.after(() => store.close());
      const user = newUser();
      const indexKey = `session:user:${user}`;

      // 30 sessions: each primary gets some (p(miss) ~ 3·(2/3)^30 ≈ 2e-5).
      const ids = Array.from({ length: 30 }, () => newId());
      await Promise.all(ids.map(async (id) => assert.equal(await store.create(id, fieldsOf(user), 60_000, HOUR), true)));
      const primaries = (await nodes.primaries()).map((node) => node.port).sort();
      assert.equal(primaries.length, 3);
      const shards = new Set(await Promise.all(ids.map(async (id) => (await nodes.primaryForKey(`session:${id}`)).port)));
      assert.deepEqual([...shards].sort(), primaries, 'the sessions are on every primary');
      const indexNode = await nodes.primaryForKey(indexKey);
      const index = (await indexNode.command('HGETALL', indexKey)) as string[];
      assert.deepEqual(index.filter((_, i) => i % 2 === 0).sort(), [...ids].sort(), 'the index, on one primary, names every session');

      assert.deepEqual((await store.userSessions(user)).map((session) => session.id).sort(), [...ids].sort());
      const [movedFrom, revoked1, revoked2, destroyed] = ids as [string, string, string, string];
      const movedTo = newId();
      assert.ok(await store.move(movedFrom, movedTo, { set: [], remove: [] }, expiry(HOUR)));
      // The old id, followed to the new one, and another session.
      assert.equal(await store.endSessions(user, [movedFrom, revoked1, revoked2]), 3);
      await store.destroy(destroyed);
      const live = ids.slice(4);
      assert.deepEqual((await store.userSessions(user)).map((session) => session.id).sort(), [...live].sort());
      const indexed = (await indexNode.command('HKEYS', indexKey)) as string[];
      assert.deepEqual([...indexed].sort(), [...live].sort(), 'the index holds the live sessions only');

      const scanned = new Set<string>();
      for await (const batch of store.scanSessions()) for (const session of batch) if (session.fields.get(USER_FIELD) === user) scanned.add(session.id);
      assert.deepEqual([...scanned].sort(), [...live].sort(), 'a scan of every primary finds them');
    });
  }
});
