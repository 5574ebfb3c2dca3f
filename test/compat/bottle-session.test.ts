// compat: 'bottle-session' over HTTP (node:http) on a real redis-server, through node-redis and
// ioredis: the cookie line, the Redis key, fields, values and TTL byte for byte as Python's
// bottle-session 1.0 writes them (../shared/reference/bottle-session-layout.md), a hash laid out
// by "the Python app" (raw Redis commands) read back, and the options the mode refuses.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import { withSession, type NodeSessionOptions } from '../../src/adapters/node.js';
import { isSessionError, MemoryStore, RedisStore, resolveOptions, SessionManager, type InvalidCookieReason, type RedisClientLike, type Session, type SessionOptions } from '../../src/index.js';
import { useRedis, type RedisServer } from '../redis/server.js';
import { ioredisReady } from '../redis/client.js';

/** A cookie and key as bottle-session would have made them. */
const HEX = '60b5066abae14d889052b5468292c5b8';
const DASHED = '60b5066a-bae1-4d88-9052-b5468292c5b8';
const KEY = `session:${DASHED}`;

/** The 8-4-4-4-12 form of 32 hex characters. */
function dashed(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The plugin's cookie line with the given attributes in between: the whole line, nothing else. */
function cookieLine(middle: string, after = ''): RegExp {
  return new RegExp(`^bottle\\.session=([0-9a-f]{32})${middle}; Path=/${after}$`);
}

interface BottleApp {
  readonly url: string;
  readonly reasons: InvalidCookieReason[];
  close(): Promise<void>;
}

/** A latchkey app in bottle-session mode with routes like the plugin's observation app. */
async function startApp(options: NodeSessionOptions): Promise<BottleApp> {
  const reasons: InvalidCookieReason[] = [];
  const listener = withSession(
    { compat: 'bottle-session', cookieLifetime: 600, onInvalidCookie: (reason) => void reasons.push(reason), ...options },
    async (req, res, session) => {
      const [, route, param = ''] = new URL(req.url ?? '/', 'http://localhost').pathname.split('/');
      const arg = decodeURIComponent(param);
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      const json = (value: unknown): void => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(value));
      };
      try {
        switch (route) {
          case '': {
            const name = await session.get('name');
            res.end(name !== undefined ? `Hello, ${String(name)}` : "I don't recognize you.");
            return;
          }
          case 'set':
            await session.set('name', arg);
            res.end('I recognize you now.');
            return;
          case 'get':
            json({ value: (await session.get(arg)) ?? null, type: typeof (await session.get(arg)) });
            return;
          case 'all':
            json(await session.all());
            return;
          case 'setnum':
            await session.set({ n: 42, f: 0.1 + 0.2 });
            res.end('ok');
            return;
          case 'setempty':
            await session.set('e', '');
            res.end('ok');
            return;
          case 'setcolon':
            await session.set(':x', 'colon');
            res.end('ok');
            return;
          case 'incr':
            json({ value: await session.incr(arg) });
            return;
          case 'regen':
            await session.regenerate();
            res.end('regenerated');
            return;
          case 'destroy':
            await session.destroy();
            res.end('destroyed');
            return;
          case 'plain':
            res.end('no session here');
            return;
          case 'bad': {
            const value = { true: true, object: {}, null: null, array: [1], nan: NaN, infinity: Infinity, bigint: 1n }[arg];
            await session.set('bad', value as string);
            res.end('stored?!');
            return;
          }
          case 'login':
            await session.login('7');
            res.end('logged in?!');
            return;
          default:
            res.statusCode = 404;
            res.end('Not found');
        }
      } catch (error) {
        res.statusCode = 500;
        json(isSessionError(error) ? { code: error.code, message: error.message } : { message: String(error) });
      }
    },
  );
  const server: Server = createServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reasons,
    async close() {
      server.closeAllConnections();
      server.close();
      await listener.close();
    },
  };
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly setCookie: string[];
}

async function get(app: BottleApp, path: string, cookie?: string): Promise<Reply> {
  const response = await fetch(app.url + path, { headers: cookie === undefined ? {} : { cookie: `bottle.session=${cookie}` } });
  return { status: response.status, body: await response.text(), setCookie: response.headers.getSetCookie() };
}

/** The 32-hex id of the one Set-Cookie line a reply carries. */
function cookieOf(reply: Reply): string {
  assert.equal(reply.setCookie.length, 1, `one Set-Cookie line: ${JSON.stringify(reply.setCookie)}`);
  const hex = /^bottle\.session=([0-9a-f]{32});/.exec(reply.setCookie[0] as string)?.[1];
  assert.ok(hex, reply.setCookie[0]);
  return hex;
}

async function keys(redis: RedisServer): Promise<string[]> {
  return ((await redis.command('KEYS', '*')) as string[]).sort();
}

async function hgetall(redis: RedisServer, key: string): Promise<Record<string, string>> {
  const flat = (await redis.command('HGETALL', key)) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

const CLIENTS: Record<string, (url: string) => Promise<{ client: RedisClientLike; close(): void }>> = {
  'node-redis': async (url) => {
    const client = createClient({ url });
    client.on('error', () => {});
    await client.connect();
    return { client, close: () => client.destroy() };
  },
  ioredis: async (url) => {
    const client = new Redis(url, { lazyConnect: false });
    client.on('error', () => {});
    await ioredisReady(client);
    return { client, close: () => client.disconnect() };
  },
};

for (const [clientName, connect] of Object.entries(CLIENTS)) {
  describe(`compat: 'bottle-session' on Redis (${clientName})`, () => {
    const redis = useRedis();
    let client: RedisClientLike;
    let closeClient: () => void;
    const apps: BottleApp[] = [];
    const start = async (options: NodeSessionOptions = {}): Promise<BottleApp> => {
      const app = await startApp({ redis: client, ...options });
      apps.push(app);
      return app;
    };
    before(async () => {
      ({ client, close: closeClient } = await connect(redis.url));
    });
    after(() => closeClient());
    beforeEach(async () => {
      for (const app of apps.splice(0)) await app.close();
      await redis.command('FLUSHALL');
    });
    after(async () => {
      for (const app of apps.splice(0)) await app.close();
    });

    it("writes the plugin's layout: one hash session:<dashed uuid> of plain strings, TTL = cookieLifetime, the plugin's cookie line", async () => {
      const app = await start();
      const reply = await get(app, '/set/Chris');
      assert.equal(reply.body, 'I recognize you now.');
      assert.equal(reply.setCookie.length, 1);
      const line = reply.setCookie[0] as string;
      assert.match(line, cookieLine('; Max-Age=600'), 'no HttpOnly, no Secure, no SameSite, no Expires by default');
      const hex = cookieOf(reply);
      assert.deepEqual(await keys(redis), [`session:${dashed(hex)}`]);
      assert.equal(await redis.command('TYPE', `session:${dashed(hex)}`), 'hash');
      assert.deepEqual(await hgetall(redis, `session:${dashed(hex)}`), { name: 'Chris' }, 'no metadata fields, no JSON');
      assert.equal(await redis.command('TTL', `session:${dashed(hex)}`), 600);

      const utf8 = await get(app, '/set/Jos%C3%A9', hex);
      assert.equal(cookieOf(utf8), hex, 'the same id is sent again');
      assert.deepEqual(await hgetall(redis, `session:${dashed(hex)}`), { name: 'José' });
      assert.equal(await redis.command('HSTRLEN', `session:${dashed(hex)}`, 'name'), 5, 'UTF-8 bytes');
    });

    it('stores numbers as their decimal text and reads strings back; incr works on the text; an empty string is kept', async () => {
      const app = await start();
      const hex = cookieOf(await get(app, '/setnum'));
      const key = `session:${dashed(hex)}`;
      assert.deepEqual(await hgetall(redis, key), { n: '42', f: '0.30000000000000004' });
      assert.deepEqual(JSON.parse((await get(app, '/get/n', hex)).body), { value: '42', type: 'string' }, 'a number comes back as a string, as in Python');
      assert.deepEqual(JSON.parse((await get(app, '/incr/n', hex)).body), { value: 43 });
      assert.equal(await redis.command('HGET', key, 'n'), '43');
      await get(app, '/setempty', hex);
      assert.equal(await redis.command('HEXISTS', key, 'e'), 1);
      assert.deepEqual(JSON.parse((await get(app, '/get/e', hex)).body), { value: '', type: 'string' });
      assert.equal(await redis.command('TTL', key), 600);
    });

    it('stores a key starting with ":" under that name, and reads a ":" field the Python app wrote', async () => {
      const app = await start();
      const hex = cookieOf(await get(app, '/setcolon'));
      const key = `session:${dashed(hex)}`;
      assert.deepEqual(await hgetall(redis, key), { ':x': 'colon' });
      await redis.command('HSET', key, ':c', 'python');
      assert.deepEqual(JSON.parse((await get(app, '/all', hex)).body), { ':x': 'colon', ':c': 'python' });
    });

    it('refuses set(true), set({}), null, arrays, NaN, Infinity and bigint with INVALID_ARGUMENT, writing nothing', async () => {
      const app = await start();
      for (const kind of ['true', 'object', 'null', 'array', 'nan', 'infinity', 'bigint']) {
        await redis.resetStats();
        const reply = await get(app, `/bad/${kind}`);
        assert.equal(reply.status, 500);
        const error = JSON.parse(reply.body) as { code: string; message: string };
        assert.equal(error.code, 'INVALID_ARGUMENT', kind);
        assert.match(error.message, /the value for 'bad' is .*strings and finite numbers/, kind);
        assert.deepEqual(reply.setCookie, []);
        assert.equal(await redis.commandTotal(), 0, `${kind}: no Redis command`);
      }
      assert.deepEqual(await keys(redis), []);
    });

    it('writes HttpOnly and Secure where the plugin does, only when configured', async () => {
      const both = await start({ httpOnly: true, secure: true });
      assert.match((await get(both, '/set/Chris')).setCookie[0] as string, cookieLine('; HttpOnly; Max-Age=600', '; Secure'));
      const httpOnly = await start({ httpOnly: true });
      assert.match((await get(httpOnly, '/set/Chris')).setCookie[0] as string, cookieLine('; HttpOnly; Max-Age=600'));
      const secure = await start({ secure: true, sameSite: 'strict' });
      assert.match((await get(secure, '/set/Chris')).setCookie[0] as string, cookieLine('; Max-Age=600', '; SameSite=Strict; Secure'), 'SameSite only when asked for');
    });

    it('cookieLifetime: null keeps the session 604800 s in Redis and sends a cookie without Max-Age', async () => {
      const app = await start({ cookieLifetime: null });
      const reply = await get(app, '/set/Bob');
      assert.match(reply.setCookie[0] as string, cookieLine(''));
      assert.equal(await redis.command('TTL', `session:${dashed(cookieOf(reply))}`), 604800);
    });

    it("reads a hash the Python app wrote, with the cookie in every form Python's uuid.UUID() accepts, and sends it back as 32 hex", async () => {
      const app = await start();
      await redis.command('HSET', KEY, 'name', 'José');
      const forms = [
        HEX,
        DASHED,
        HEX.toUpperCase(),
        DASHED.toUpperCase(),
        `{${DASHED}}`,
        `{${HEX}}`,
        `urn:uuid:${DASHED}`,
        `uuid:${HEX}`,
        `"${HEX}"`,
        '60b5-066a-bae14d889052b5468292c5b8',
        `${HEX}-`,
      ];
      for (const form of forms) {
        await redis.command('PERSIST', KEY);
        const reply = await get(app, '/', form);
        assert.equal(reply.body, 'Hello, José', form);
        assert.deepEqual(reply.setCookie, [`bottle.session=${HEX}; Max-Age=600; Path=/`], `${form}: re-sent, normalized, with the full Max-Age`);
        assert.equal(await redis.command('TTL', KEY), 600, `${form}: the read set the TTL of a key that had none`);
      }
      assert.deepEqual(app.reasons, []);
      assert.deepEqual(await keys(redis), [KEY]);
      assert.deepEqual(await hgetall(redis, KEY), { name: 'José' }, 'reading wrote nothing');
    });

    it('accepts any 128-bit id, not only version 4', async () => {
      const app = await start();
      await redis.command('HSET', 'session:00000000-0000-0000-0000-000000000001', 'name', 'Zero');
      assert.equal((await get(app, '/', '00000000000000000000000000000001')).body, 'Hello, Zero');
      await redis.command('HSET', 'session:11111111-2222-3333-c444-555555555555', 'name', 'Eleven');
      assert.equal((await get(app, '/', '11111111-2222-3333-C444-555555555555')).body, 'Hello, Eleven');
    });

    it('treats a malformed cookie as no session: no error, no Redis command, no cookie for a read, reason malformed', async () => {
      const app = await start();
      await redis.command('HSET', KEY, 'name', 'José');
      const bad = ['garbage', '', HEX.slice(1), `${HEX}ab`, `0x${HEX.slice(2)}`, `+${HEX.slice(1)}`, `${HEX.slice(0, 16)}_${HEX.slice(17)}`, `${HEX.slice(0, 31)}g`, `URN:UUID:${DASHED}`];
      for (const value of bad) {
        app.reasons.splice(0);
        await redis.resetStats();
        const reply = await get(app, '/', value);
        assert.equal(reply.status, 200, value);
        assert.equal(reply.body, "I don't recognize you.", value);
        assert.deepEqual(reply.setCookie, [], `${value}: a read-only visitor gets no cookie`);
        assert.equal(await redis.commandTotal(), 0, `${value}: no Redis command`);
        assert.deepEqual(app.reasons, ['malformed'], value);
      }
      // A well-formed id Redis does not hold: one read, reason unknown-id.
      app.reasons.splice(0);
      assert.equal((await get(app, '/', '0'.repeat(32))).body, "I don't recognize you.");
      assert.deepEqual(app.reasons, ['unknown-id']);
    });

    it('refuses the cookie sent twice (latchkey keeps its refusal; Python would take the last)', async () => {
      const app = await start();
      await redis.command('HSET', KEY, 'name', 'José');
      const response = await fetch(`${app.url}/`, { headers: { cookie: `bottle.session=${HEX}; bottle.session=${HEX}` } });
      assert.equal(await response.text(), "I don't recognize you.");
      assert.deepEqual(app.reasons, ['duplicate']);
    });

    it('a read refreshes the TTL to the full lifetime and sends the cookie again; a route that never uses the session does neither', async () => {
      const app = await start();
      await redis.command('HSET', KEY, 'name', 'Chris');
      await redis.command('EXPIRE', KEY, '5');
      const reply = await get(app, '/', HEX);
      assert.equal(reply.body, 'Hello, Chris');
      assert.equal(await redis.command('TTL', KEY), 600);
      assert.deepEqual(reply.setCookie, [`bottle.session=${HEX}; Max-Age=600; Path=/`]);

      // One round trip: the read and the refresh are one script (HGETALL, then PEXPIRE), not two commands.
      await redis.command('EXPIRE', KEY, '5');
      await redis.resetStats();
      assert.equal((await get(app, '/', HEX)).body, 'Hello, Chris');
      assert.deepEqual(Object.fromEntries(await redis.commandCounts()), { evalsha: 1, hgetall: 1, pexpire: 1 });
      assert.equal(await redis.command('TTL', KEY), 600);

      await redis.command('EXPIRE', KEY, '100');
      await redis.resetStats();
      const plain = await get(app, '/plain', HEX);
      assert.deepEqual(plain.setCookie, []);
      assert.ok(Number(await redis.command('TTL', KEY)) <= 100);
      assert.deepEqual((await redis.commandCounts()).get('ttl'), 1, 'only the test asked Redis anything');
    });

    it('a read-only visitor creates no key and gets no cookie', async () => {
      const app = await start();
      const reply = await get(app, '/');
      assert.equal(reply.body, "I don't recognize you.");
      assert.deepEqual(reply.setCookie, []);
      assert.deepEqual(await keys(redis), []);
    });

    it('destroy() deletes the key and clears the cookie', async () => {
      const app = await start();
      await redis.command('HSET', KEY, 'name', 'Chris');
      const reply = await get(app, '/destroy', HEX);
      assert.equal(reply.body, 'destroyed');
      assert.equal(reply.setCookie.length, 1);
      assert.match(reply.setCookie[0] as string, /^bottle\.session=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT$/);
      assert.deepEqual(await keys(redis), []);
    });

    it('regenerate() moves every field to a new id: the old key is gone, the new one holds everything with the full TTL', async () => {
      const app = await start();
      await redis.command('HSET', KEY, 'name', 'Alice', 'n', '42', ':x', 'colon', 'e', '');
      await redis.command('EXPIRE', KEY, '30');
      const reply = await get(app, '/regen', HEX);
      assert.equal(reply.body, 'regenerated');
      const hex = cookieOf(reply);
      assert.notEqual(hex, HEX);
      assert.match(reply.setCookie[0] as string, cookieLine('; Max-Age=600'));
      assert.deepEqual(await keys(redis), [`session:${dashed(hex)}`]);
      assert.deepEqual(await hgetall(redis, `session:${dashed(hex)}`), { name: 'Alice', n: '42', ':x': 'colon', e: '' });
      assert.equal(await redis.command('TTL', `session:${dashed(hex)}`), 600);
      assert.equal((await get(app, '/', HEX)).body, "I don't recognize you.", 'the old cookie is dead');
      assert.equal((await get(app, '/', hex)).body, 'Hello, Alice');
    });

    it('a logout in another request: a request that had seen the session fails its write with SESSION_GONE; one that had not starts a new session', async () => {
      const manager = new SessionManager({ redis: client, compat: 'bottle-session', cookieLifetime: 600 });
      const open = (): ReturnType<SessionManager['open']> => manager.open({ cookieHeader: () => `bottle.session=${HEX}`, isSecure: () => false });
      await redis.command('HSET', KEY, 'name', 'Chris');
      const underway = open();
      assert.equal(await underway.session.get('name'), 'Chris');
      const logout = open();
      await logout.session.destroy();
      assert.deepEqual(await keys(redis), []);
      await assert.rejects(underway.session.set('cart', '1'), (error: unknown) => isSessionError(error, 'SESSION_GONE'));
      assert.deepEqual(underway.setCookies(), [], 'no cookie over the logout');
      assert.deepEqual(await keys(redis), [], 'the ended id is not brought back');
      const late = open();
      await late.session.set('cart', '1');
      const [line] = late.setCookies();
      const hex = /^bottle\.session=([0-9a-f]{32});/.exec(line ?? '')?.[1] as string;
      assert.notEqual(hex, HEX);
      assert.deepEqual(await keys(redis), [`session:${dashed(hex)}`]);
      await manager.close();
    });

    it('login() is refused: bottle-session has no users', async () => {
      const app = await start();
      const reply = await get(app, '/login');
      const error = JSON.parse(reply.body) as { code: string; message: string };
      assert.equal(error.code, 'INVALID_OPTIONS');
      assert.match(error.message, /bottle-session has no users/);
      assert.deepEqual(await keys(redis), []);
    });
  });
}

describe("compat: 'bottle-session' on MemoryStore (same cookie and value semantics, for development)", () => {
  it('sets the same cookie line, refuses the same values, reads numbers back as strings', async () => {
    const store = new MemoryStore();
    const app = await startApp({ store });
    try {
      const reply = await get(app, '/setnum');
      assert.match(reply.setCookie[0] as string, cookieLine('; Max-Age=600'));
      const hex = cookieOf(reply);
      assert.deepEqual(JSON.parse((await get(app, '/get/f', hex)).body), { value: '0.30000000000000004', type: 'string' });
      assert.equal(JSON.parse((await get(app, '/bad/true', hex)).body).code, 'INVALID_ARGUMENT');
      assert.equal((await get(app, '/', `{${dashed(hex).toUpperCase()}}`)).setCookie[0], `bottle.session=${hex}; Max-Age=600; Path=/`);
    } finally {
      await app.close();
    }
  });
});

describe("compat: 'bottle-session' is a core option: the same cookie through every adapter", () => {
  it('Hono, Fastify, Express and Koa write the plugin\'s cookie line', async () => {
    const store = new MemoryStore();
    const { session: hono } = await import('../../src/adapters/hono.js');
    const { Hono } = await import('hono');
    const app = new Hono<{ Variables: { session: Session } }>();
    app.use(hono({ store, compat: 'bottle-session', cookieLifetime: 600 }));
    app.get('/set', async (c) => {
      await c.get('session').set('name', 'Chris');
      return c.text('ok');
    });
    assert.match((await app.request('/set')).headers.get('set-cookie') ?? '', cookieLine('; Max-Age=600'));

    const { session: fastify } = await import('../../src/adapters/fastify.js');
    const { default: Fastify } = await import('fastify');
    const server = Fastify();
    await server.register(fastify, { store, compat: 'bottle-session', cookieLifetime: 600 });
    server.get('/set', async (request) => {
      await request.session.set('n', 1);
      return 'ok';
    });
    const injected = await server.inject('/set');
    assert.match(String(injected.headers['set-cookie']), cookieLine('; Max-Age=600'));
    await server.close();

    const { session: express } = await import('../../src/adapters/express.js');
    const { session: koa } = await import('../../src/adapters/koa.js');
    assert.equal(express({ store, compat: 'bottle-session' }).manager.options.cookieName, 'bottle.session');
    assert.equal(koa({ store, compat: 'bottle-session' }).manager.options.cookieName, 'bottle.session');
  });
});

describe("compat: 'bottle-session' options", () => {
  const rejects = (options: SessionOptions, message: RegExp): void => {
    assert.throws(
      () => resolveOptions(options),
      (error: unknown) => {
        assert.ok(isSessionError(error, 'INVALID_OPTIONS'), String(error));
        assert.match(error.message, message);
        return true;
      },
    );
  };

  it("applies the plugin's defaults", () => {
    const resolved = resolveOptions({ compat: 'bottle-session', store: new MemoryStore() });
    assert.equal(resolved.cookieName, 'bottle.session');
    assert.equal(resolved.cookieLifetime, 300);
    assert.equal(resolved.httpOnly, false);
    assert.equal(resolved.secure, false);
    assert.equal(resolved.sameSite, undefined);
    assert.equal(resolved.absoluteLifetime, null);
    assert.equal(resolved.touchInterval, 0);
    assert.equal(resolved.prefix, 'session:');
    assert.equal(resolved.compat, 'bottle-session');
    assert.equal(resolveOptions({ compat: 'bottle-session', cookieName: 'sid', store: new MemoryStore() }).cookieName, 'sid');
  });

  it('refuses, at start-up, what would write fields or hashed ids the Python app would see or break on', async () => {
    const bottle = { compat: 'bottle-session' } as const;
    rejects({ ...bottle, secrets: 'x'.repeat(32) }, /secrets cannot be used with compat: 'bottle-session': the Bottle app reads the cookie as a bare UUID/);
    rejects({ ...bottle, absoluteLifetime: 3600 }, /absoluteLifetime cannot be used .*creation time stored in the session/);
    rejects({ ...bottle, maxSessionsPerUser: 3 }, /maxSessionsPerUser cannot be used .*bottle-session has no users/);
    rejects({ ...bottle, recordClient: true }, /recordClient cannot be used .*fields the Python app would see/);
    rejects({ ...bottle, touchInterval: 30 }, /touchInterval cannot be set .*every request that uses it/);
    rejects({ ...bottle, adopt: { from: 'express-session', secrets: ['old secret'] } }, /adopt cannot be used .*latchkey's own layout/);
    const redisStore = new RedisStore({ redis: 'redis://127.0.0.1:1' });
    try {
      rejects({ ...bottle, store: redisStore }, /a RedisStore cannot be used .*bookkeeping fields.*pass redis/);
    } finally {
      await redisStore.close();
    }
    rejects({ compat: 'bottle' as 'bottle-session' }, /compat must be one of 'bottle-session'/);
    // What stays allowed: the neutral values, and MemoryStore.
    resolveOptions({ ...bottle, absoluteLifetime: null, maxSessionsPerUser: null, recordClient: false, touchInterval: 0, store: new MemoryStore() });
  });

  it("is refused by the express-session, @fastify/session and koa-session modes, whose session objects hold any JSON", async () => {
    const { default: expressSession } = await import('../../src/adapters/express-session.js');
    assert.throws(
      () => expressSession({ secret: 'x'.repeat(32), compat: 'bottle-session' } as never),
      (error: unknown) => isSessionError(error, 'INVALID_OPTIONS') && /latchkey\/express-session: compat: "bottle-session" is not supported here/.test(error.message),
    );
    const { fastifySession } = await import('../../src/adapters/fastify-session.js');
    const { default: Fastify } = await import('fastify');
    const app = Fastify();
    void app.register(fastifySession, { secret: 'x'.repeat(32), store: new MemoryStore(), compat: 'bottle-session' } as never);
    await assert.rejects(async () => void (await app.ready()), (error: unknown) => isSessionError(error, 'INVALID_OPTIONS') && /compat/.test(error.message));
    await app.close();
  });
});
