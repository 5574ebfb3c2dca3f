// What signing in, listing and revoking cost Redis, in round trips, and that a signed-in session's
// everyday requests cost what an anonymous one's do: the index is touched only by login, logout,
// regenerate and the admin's operations.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore, SessionManager } from '../../src/index.js';
import { useRedisWithClient } from '../redis/client.js';
import { context, cookieOf } from '../manager.js';

describe('the cost of sessions per user, in Redis commands', () => {
  const server = useRedisWithClient();

  /** Runs `work`, and gives the round trips it cost: the commands clients sent, not those scripts ran. */
  async function cost(work: () => Promise<unknown>): Promise<number> {
    const monitor = await server.redis.monitor();
    await work();
    return monitor.stop();
  }

  /** Runs every path once, so that Redis has every script cached (a first EVALSHA is followed by an EVAL). */
  async function warmUp(manager: SessionManager): Promise<void> {
    const first = manager.open(context());
    await first.session.set('x', 1);
    const login = manager.open(context(cookieOf(first)));
    await login.session.login('warm-up');
    const next = manager.open(context(cookieOf(login)));
    await next.session.incr('n');
    await next.session.set('y', 2);
    await next.session.regenerate();
    await manager.admin.revokeUserSessions('warm-up');
    const gone = manager.open(context());
    await gone.session.login('warm-up');
    await gone.session.logout();
  }

  it('login, reads, writes, listing, revoking and logout', async () => {
    const manager = new SessionManager({ store: new RedisStore({ redis: server.client as never }), touchInterval: 60 });
    await warmUp(manager);
    const visitor = manager.open(context());
    await visitor.session.set('cart', ['tea']);
    const anonymous = cookieOf(visitor);

    // A visitor with a session: mark, copy, index, end the old id (4 scripts, one key each), then
    // the user's index is read to remove entries of ended sessions: HGETALL, and an HMGET per entry.
    const login = manager.open(context(anonymous));
    assert.equal(await cost(() => login.session.login('alice')), 4 + 1 + 1);
    const alice = cookieOf(login);
    // A visitor without one: create, index, and the index read (two sessions now).
    const fresh = manager.open(context());
    assert.equal(await cost(() => fresh.session.login('alice')), 2 + 1 + 2);

    // Everyday requests of a signed-in session cost what they cost before.
    assert.equal(await cost(() => manager.open(context(alice)).session.userId()), 1);
    assert.equal(await cost(() => manager.open(context(alice)).session.set('theme', 'dark')), 1);
    assert.equal(await cost(() => manager.open(context(alice)).session.incr('visits')), 1);

    // Regenerating a signed-in session also re-indexes it: the old entry goes once the old id ended.
    const again = manager.open(context(alice));
    assert.equal(await cost(() => again.session.regenerate()), 5);
    const regenerated = cookieOf(again);

    // Listing: the index, then one HMGET per session (each on its own slot on a Cluster).
    assert.equal(await cost(() => manager.admin.listUserSessions('alice')), 3);
    // Log out everywhere else: a listing to find the kept session's id, the index again, one script per session, one HDEL.
    assert.equal(await cost(() => manager.admin.revokeUserSessions('alice', { except: again.session })), 6);
    // Logout: end the session, remove it from the index.
    const out = manager.open(context(regenerated));
    assert.equal(await cost(() => out.session.logout()), 2);
    assert.equal(Number(await server.redis.command('EXISTS', 'session:user:alice')), 0, 'an empty index is gone');
  });
});
