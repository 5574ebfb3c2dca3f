// regenerate() when Redis fails midway, or the session is large: the session is never lost. Either
// the old id keeps every field (and the call fails with STORE_UNAVAILABLE), or the new id has them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSessionError, RedisStore, SessionManager, type RequestContext, type SessionHandle } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { useRedisWithClient } from '../redis/client.js';
import { startSessionApp, type SessionApp } from './session-app.js';

const COMMAND_TIMEOUT = 300;

/** A request with `cookie` (or none), as the core sees it. */
function context(cookie?: string): RequestContext {
  return { cookieHeader: () => cookie, isSecure: () => false, headersSent: () => false };
}

/** The `session=<id>` pair of the one session cookie `handle` sets. */
function cookieOf(handle: SessionHandle): string {
  const lines = handle.setCookies();
  assert.equal(lines.length, 1, lines.join(' | '));
  return (lines[0] as string).split(';')[0] as string;
}

describe('regenerate() on a standalone Redis that fails midway', () => {
  const server = useRedisWithClient();
  let app: SessionApp;

  before(async () => {
    app = await startSessionApp(new RedisStore({ redis: server.client as never, commandTimeout: COMMAND_TIMEOUT }));
  });
  after(async () => {
    await app?.close();
  });

  /** A browser whose session holds a name and a cart. */
  async function loggedOut(): Promise<ReturnType<SessionApp['browser']>> {
    const browser = app.browser();
    assert.equal((await browser.get('/set?k=name&v=alice')).status, 200);
    assert.equal((await browser.get('/set?k=cart&v=socks')).status, 200);
    return browser;
  }

  it('out of memory (maxmemory, noeviction): 503, and the old id keeps the whole session', async () => {
    const browser = await loggedOut();
    const id = browser.id as string;
    await server.redis.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await server.redis.command('CONFIG', 'SET', 'maxmemory', '1');
    try {
      const login = await browser.get('/regenerate');
      assert.equal(login.status, 503, login.body);
      assert.equal(browser.id, id, 'the browser keeps its cookie');
      assert.deepEqual(JSON.parse((await browser.get('/all')).body), { name: 'alice', cart: 'socks' }, 'readable at once');
    } finally {
      await server.redis.command('CONFIG', 'SET', 'maxmemory', '0');
    }
    assert.equal((await browser.get('/set?k=after&v=1')).status, 200, 'and writable once Redis has room');
    assert.equal((await browser.get('/regenerate')).status, 200);
    assert.notEqual(browser.id, id);
    assert.deepEqual(JSON.parse((await browser.get('/all')).body), { name: 'alice', cart: 'socks', after: '1' });
    assert.deepEqual(await server.redis.command('HGETALL', `session:${storageId(id)}`), [':x', 'e'], 'the old id is ended');
  });

  it('paused past the command timeout (CLIENT PAUSE): 503, and once Redis runs what was queued the old id still has everything', async () => {
    for (const mode of ['WRITE', 'ALL']) {
      const browser = await loggedOut();
      const id = browser.id as string;
      const pauseMs = COMMAND_TIMEOUT * 5;
      await server.redis.command('CLIENT', 'PAUSE', String(pauseMs), mode);
      const login = await browser.get('/regenerate');
      assert.equal(login.status, 503, `${mode}: ${login.body}`);
      assert.equal(browser.id, id, `${mode}: the browser keeps its cookie`);
      // Redis runs the queued steps once the pause ends; the session must have survived them.
      await sleep(pauseMs + 200);
      assert.deepEqual(JSON.parse((await browser.get('/all')).body), { name: 'alice', cart: 'socks' }, mode);
      assert.equal((await browser.get('/set?k=after&v=1')).status, 200, `${mode}: writable again`);
      assert.equal((await browser.get('/regenerate')).status, 200, `${mode}: and regenerate works`);
      assert.deepEqual(JSON.parse((await browser.get('/all')).body), { name: 'alice', cart: 'socks', after: '1' }, mode);
    }
  });
});

describe('regenerate() and writes of sessions as large as raised limits allow', () => {
  const server = useRedisWithClient();

  it('creates, writes and regenerates a session of 5,000 keys in one call each', async () => {
    const manager = new SessionManager({
      store: new RedisStore({ redis: server.client as never }),
      limits: { maxKeys: 10_000, maxSessionBytes: 10_000_000 },
    });
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, `value ${i}`]));
    const writer = manager.open(context());
    await writer.session.set(many);
    const cookie = cookieOf(writer);

    const changed = Object.fromEntries(Object.keys(many).map((key) => [key, 'changed']));
    const updater = manager.open(context(cookie));
    await updater.session.set(changed);
    assert.deepEqual(updater.setCookies(), []);

    const login = manager.open(context(cookie));
    await login.session.regenerate();
    const renewed = cookieOf(login);
    assert.notEqual(renewed, cookie);
    const all = await manager.open(context(renewed)).session.all();
    assert.equal(Object.keys(all).length, 5000);
    assert.deepEqual(all, changed);
    assert.equal(await manager.open(context(cookie)).session.get('k0'), undefined, 'the old id is ended');
  });

  it('still answers LIMIT_EXCEEDED (413), not a script error, for 5,000 keys at once under the default limits', async () => {
    const manager = new SessionManager({ store: new RedisStore({ redis: server.client as never }) });
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    await assert.rejects(manager.open(context()).session.set(many), (error: unknown) => isSessionError(error, 'LIMIT_EXCEEDED') && error.status === 413);
  });
});
