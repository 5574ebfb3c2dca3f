// The floor of each framework: no session library, exactly one raw Redis command per route on
// the hash named by an `sid` cookie (none for /plain). No session layer can do less.
import { connectRedis, FIELDS100, FILL10, LOGIN, type RedisClient } from './common.js';
import { expressApp, fastifyApp, honoApp, koaApp, nodeApp } from './frameworks.js';
import type { StackStarter } from './index.js';

const ROUTES: Record<string, (redis: RedisClient, key: string, param: string | undefined) => Promise<string>> = {
  login: async (redis, key) => (await redis.hSet(key, LOGIN), 'ok'),
  login100: async (redis, key) => (await redis.hSet(key, FIELDS100), 'ok'),
  read: async (redis, key) => String((await redis.hGetAll(key)).name),
  read100: async (redis, key) => String((await redis.hGetAll(key)).name),
  write: async (redis, key) => (await redis.hSet(key, 'note', `n${Date.now()}`), 'ok'),
  write100: async (redis, key) => (await redis.hSet(key, 'note', `n${Date.now()}`), 'ok'),
  incr: async (redis, key) => String(await redis.hIncrBy(key, 'n', 1)),
  setfield: async (redis, key, i) => (await redis.hSet(key, `f${i}`, String(i)), 'ok'),
  dump: async (redis, key) => JSON.stringify(await redis.hGetAll(key)),
  fill10: async (redis, key) => (await redis.hSet(key, FILL10), 'ok'),
};

/** Runs `route` on the hash of the request's `sid` cookie; a request without one gets a new hash and cookie. */
async function run(
  redis: RedisClient,
  route: string,
  param: string | undefined,
  cookieHeader: string | undefined,
  setCookie: (value: string) => void,
): Promise<string> {
  const handler = ROUTES[route];
  if (!handler) throw Object.assign(new Error(`no route ${route}`), { status: 404 });
  let sid = cookieHeader?.match(/(?:^|;\s*)sid=([\w-]+)/)?.[1];
  if (sid === undefined) {
    sid = crypto.randomUUID();
    setCookie(`sid=${sid}; Path=/; HttpOnly; SameSite=Lax`);
  }
  return handler(redis, `floor:${sid}`, param);
}

/** The floors, each with an optional empty middleware (or hook) mounted the framework's way. */
function floors(empty: boolean): Record<string, StackStarter> {
  return {
    async express(url) {
      const redis = await connectRedis(url);
      return expressApp(empty ? (_req, _res, next) => next() : undefined, (route, param, { req, res }) =>
        run(redis, route, param, req.headers.cookie, (value) => res.setHeader('Set-Cookie', value)),
      );
    },
    async fastify(url) {
      const redis = await connectRedis(url);
      return fastifyApp(
        async (app) => {
          if (empty) app.addHook('onRequest', (_request, _reply, next) => next());
        },
        (route, param, { request, reply }) => run(redis, route, param, request.headers.cookie, (value) => reply.header('set-cookie', value)),
      );
    },
    async koa(url) {
      const redis = await connectRedis(url);
      return koaApp(
        (app) => {
          if (empty) app.use((_ctx, next) => next());
        },
        (route, param, ctx) => run(redis, route, param, ctx.get('cookie'), (value) => ctx.set('Set-Cookie', value)),
      );
    },
    async hono(url) {
      const redis = await connectRedis(url);
      return honoApp(empty ? (_c, next) => next() : undefined, (route, param, c) => run(redis, route, param, c.req.header('cookie'), (value) => c.header('Set-Cookie', value)));
    },
    async node(url) {
      const redis = await connectRedis(url);
      const app = nodeApp<undefined>((route, param, { req, res }) =>
        run(redis, route, param, req.headers.cookie, (value) => res.setHeader('Set-Cookie', value)),
      );
      return (req, res) => void app(req, res, undefined);
    },
  };
}

export const stacks = floors(false);

/** What mounting any middleware costs each framework: the floor with one that does nothing. */
export const withEmptyMiddleware = floors(true);
