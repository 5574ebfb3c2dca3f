// What only Fastify has: plugin encapsulation and the app's lifecycle. Session behaviour itself is
// the conformance suite's job.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { isSessionError, MemoryStore, type SessionError } from '../../src/index.js';
import { session } from '../../src/adapters/fastify.js';
import { useRedis } from '../redis/server.js';

/** The `name=value` pairs of a response's Set-Cookie headers. */
function cookiesOf(header: string | string[] | undefined): string[] {
  return [header ?? []].flat().map((line) => line.split(';')[0] as string);
}

describe('Fastify plugin', () => {
  const redis = useRedis();

  it('gives sessions to the encapsulated context it is registered in, not to its siblings', async () => {
    const app = Fastify();
    await app.register(async (scoped) => {
      await scoped.register(session, { store: new MemoryStore() });
      scoped.get('/inside', async (request) => {
        await request.session.set('a', 1);
        return 'inside';
      });
    });
    await app.register(async (sibling) => {
      sibling.get('/outside', async (request) => String((request as unknown as Record<string, unknown>).session));
    });
    const inside = await app.inject('/inside');
    assert.equal(inside.statusCode, 200);
    assert.equal(cookiesOf(inside.headers['set-cookie']).length, 1);
    const outside = await app.inject('/outside');
    assert.equal(outside.body, 'undefined');
    assert.equal(outside.headers['set-cookie'], undefined);
    await app.close();
  });

  it('lets two registrations with their own cookie and keyword live side by side', async () => {
    const app = Fastify();
    await app.register(session, { store: new MemoryStore() });
    await app.register(session, { store: new MemoryStore(), cookieName: 'admin', keyword: 'admin' });
    app.get('/both', async (request) => {
      await request.session.set('who', 'visitor');
      await (request as unknown as { admin: typeof request.session }).admin.set('who', 'admin');
      return 'both';
    });
    const response = await app.inject('/both');
    const names = cookiesOf(response.headers['set-cookie']).map((pair) => pair.split('=')[0]);
    assert.deepEqual(names.sort(), ['admin', 'session']);
    await app.close();
  });

  it('refuses a second registration under the same keyword', async () => {
    const app = Fastify();
    await app.register(session, { store: new MemoryStore() });
    await assert.rejects(async () => void (await app.register(session, { store: new MemoryStore() })), {
      code: 'FST_ERR_DEC_ALREADY_PRESENT',
    });
    await app.close();
  });

  /** The connections Redis sees, without the one `redis.command` uses. */
  async function clientCount(): Promise<number> {
    const list = String(await redis.command('CLIENT', 'LIST'));
    return list.split('\n').filter((line) => line.includes('cmd=') && !line.includes('cmd=client')).length;
  }

  it('closes the Redis connection it created from a URL when the app closes', async (t) => {
    const baseline = await clientCount();
    const app = Fastify();
    let closed = false;
    // Closed even when an assertion fails first, so a failure cannot leave the file hanging.
    t.after(() => (closed ? undefined : app.close()));
    await app.register(session, { redis: redis.url });
    app.get('/', async (request) => {
      await request.session.set('a', 1);
      return 'ok';
    });
    const response = await app.inject('/');
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(await clientCount(), baseline + 1);
    await app.close();
    closed = true;
    // The server notices a closed connection a moment later.
    for (let attempt = 0; attempt < 50 && (await clientCount()) > baseline; attempt++) await sleep(20);
    assert.equal(await clientCount(), baseline);
  });
});

describe('Fastify plugin and error handlers', () => {
  /** A key the LIMIT_EXCEEDED message quotes: a user's data could be named so. */
  const KEY = 'diary-of-alice';

  /**
   * An app whose `/fail` route passes `limits.maxKeyLength` (413) and `/app` throws an error of its
   * own; `setUp` runs between the plugin's registration and the routes. Closed when the test ends.
   */
  async function failingApp(t: TestContext, app: FastifyInstance, setUp?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
    t.after(() => app.close());
    await app.register(session, { store: new MemoryStore(), limits: { maxKeyLength: 8 } });
    setUp?.(app);
    app.get('/fail', async (request) => {
      await request.session.set(KEY, 1);
      return 'written';
    });
    app.get('/app', async () => {
      throw Object.assign(new Error('the app says why'), { statusCode: 422, code: 'APP_ERROR' });
    });
    return app;
  }

  /** Collects the process' warnings until `stop()`. */
  function watchWarnings(): { stop(): Error[] } {
    const warnings: Error[] = [];
    const listener = (warning: Error): void => void warnings.push(warning);
    process.on('warning', listener);
    return {
      stop: () => {
        process.off('warning', listener);
        return warnings;
      },
    };
  }

  it("answers a SessionError with Fastify's JSON shape and the reason phrase as its message", async (t) => {
    const app = await failingApp(t, Fastify());
    const response = await app.inject('/fail');
    assert.equal(response.statusCode, 413);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.deepEqual(response.json(), { statusCode: 413, code: 'LIMIT_EXCEEDED', error: 'Payload Too Large', message: 'Payload Too Large' });
    assert.equal(response.headers['content-length'], String(Buffer.byteLength(response.body)));
  });

  it("leaves the app's own errors as Fastify answers them", async (t) => {
    const app = await failingApp(t, Fastify());
    const response = await app.inject('/app');
    assert.equal(response.statusCode, 422);
    assert.deepEqual(response.json(), { statusCode: 422, code: 'APP_ERROR', error: 'Unprocessable Entity', message: 'the app says why' });
  });

  it("has Fastify's logger log the whole error", async (t) => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const app = await failingApp(t, Fastify({ logger: { level: 'info', stream } }));
    assert.equal((await app.inject('/fail')).statusCode, 413);
    const logged = lines.map((line) => JSON.parse(line) as { err?: { type: string; message: string; code: string } }).find((entry) => entry.err);
    assert.equal(logged?.err?.type, 'SessionError');
    assert.equal(logged?.err?.code, 'LIMIT_EXCEEDED');
    assert.match(logged?.err?.message ?? '', new RegExp(`^latchkey: the key '${KEY}\\.\\.\\.' is 14 bytes`));
  });

  for (const allowErrorHandlerOverride of [true, false]) {
    it(`lets the app set its error handler after registering, which gets the error whole (allowErrorHandlerOverride: ${allowErrorHandlerOverride})`, async (t) => {
      const warnings = watchWarnings();
      const seen: unknown[] = [];
      const app = await failingApp(t, Fastify({ allowErrorHandlerOverride }), (app) =>
        app.setErrorHandler(async (error, _request, reply) => {
          seen.push(error);
          // An app that shows its own message, even of a SessionError: its choice, kept.
          return reply.code(418).send({ shown: (error as Error).message });
        }),
      );
      const failed = await app.inject('/fail');
      assert.equal(failed.statusCode, 418);
      assert.ok(isSessionError(seen[0], 'LIMIT_EXCEEDED'));
      assert.deepEqual(failed.json(), { shown: (seen[0] as SessionError).message });
      assert.ok((seen[0] as SessionError).message.includes(KEY));
      const own = await app.inject('/app');
      assert.deepEqual(own.json(), { shown: 'the app says why' });
      const fastifyWarnings = warnings.stop().filter((warning) => warning.name === 'FastifyWarning');
      assert.deepEqual(fastifyWarnings, [], 'no warning about an error handler set twice in one scope (FSTWRN004)');
    });
  }

  it("hides the message when the app's error handler sends the error on to Fastify's serializer", async (t) => {
    const seen: unknown[] = [];
    const app = await failingApp(t, Fastify(), (app) =>
      app.setErrorHandler((error, _request, reply) => {
        seen.push(error);
        return reply.send(error);
      }),
    );
    const failed = await app.inject('/fail');
    assert.equal(failed.statusCode, 413);
    assert.ok(isSessionError(seen[0], 'LIMIT_EXCEEDED'));
    assert.deepEqual(failed.json(), { statusCode: 413, code: 'LIMIT_EXCEEDED', error: 'Payload Too Large', message: 'Payload Too Large' });
    assert.equal((await app.inject('/app')).json<{ message: string }>().message, 'the app says why');
  });
});
