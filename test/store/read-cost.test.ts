// What a read costs must not depend on what other clients do: a client that creates sessions by the
// thousand, or another app process serving the same user, leaves one read one HGETALL and no cookie.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore, SessionManager } from '../../src/index.js';
import { useRedisWithClient } from '../redis/client.js';
import { context, cookieOf } from '../manager.js';

describe('the cost of a read', () => {
  const server = useRedisWithClient();

  /** Reads the session of `cookie` through `manager`: the Redis commands it cost, and its Set-Cookie lines. */
  async function read(manager: SessionManager, cookie: string): Promise<{ commands: Array<[string, number]>; setCookies: string[]; value: unknown }> {
    await server.redis.resetStats();
    const handle = manager.open(context(cookie));
    const value = await handle.session.get('user');
    return { commands: [...(await server.redis.commandCounts())], setCookies: handle.setCookies(), value };
  }

  it('is one HGETALL and no Set-Cookie after another client created 12,000 sessions, in this process and another', async () => {
    const manager = new SessionManager({ store: new RedisStore({ redis: server.client as never }) });
    const writer = manager.open(context());
    await writer.session.set('user', 'alice');
    const alice = cookieOf(writer);
    assert.deepEqual(await read(manager, alice), { commands: [['hgetall', 1]], setCookies: [], value: 'alice' });

    // An anonymous client starts sessions as fast as it can.
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < 12_000) {
          next++;
          await manager.open(context()).session.set('n', next);
        }
      }),
    );
    assert.equal(Number(await server.redis.command('DBSIZE')), 12_001);

    assert.deepEqual(await read(manager, alice), { commands: [['hgetall', 1]], setCookies: [], value: 'alice' }, 'this process');
    // Another app process behind the same load balancer, which never served alice before.
    const other = new SessionManager({ store: new RedisStore({ redis: server.client as never }) });
    assert.deepEqual(await read(other, alice), { commands: [['hgetall', 1]], setCookies: [], value: 'alice' }, 'another process');
  });
});
