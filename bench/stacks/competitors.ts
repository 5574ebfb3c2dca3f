// The session libraries people use today, configured as their READMEs recommend (resave off,
// saveUninitialized off), each with a Redis store. Type-checked on its own (tsconfig.bench.json):
// these libraries and latchkey's adapters both declare `req.session`, `request.session` and
// `ctx.session`, which no app does at once.
import expressSession from 'express-session';
import { RedisStore } from 'connect-redis';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import koaSession from 'koa-session';
import koaRedis from 'koa-redis';
import { connectRedis, getSetSession, objectSessionRoute, plainSession as plain, SECRET } from './common.js';
import { expressApp, fastifyApp, koaApp } from './frameworks.js';
import type { StackStarter } from './index.js';

export const stacks: Record<string, StackStarter> = {
  async express(url) {
    const redis = await connectRedis(url);
    const middleware = expressSession({
      store: new RedisStore({ client: redis }),
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
    });
    return expressApp(middleware, async (route, param, { req }) =>
      objectSessionRoute(route, param, plain(req.session as unknown as Record<string, unknown>)),
    );
  },
  async fastify(url) {
    const redis = await connectRedis(url);
    return fastifyApp(
      async (app) => {
        await app.register(fastifyCookie);
        await app.register(fastifySession, {
          secret: SECRET,
          store: new RedisStore({ client: redis }) as never,
          saveUninitialized: false,
          cookie: { secure: false },
        });
      },
      async (route, param, { request }) => objectSessionRoute(route, param, getSetSession(request.session)),
    );
  },
  async koa(url) {
    // koa-redis brings its own ioredis client; koa-session's README points to it for Redis.
    // @types/koa-redis describes an older koa-redis (node-redis options, koa-session 5's store
    // shape): the casts are to what koa-redis 4 and koa-session 7 take at run time.
    const store = koaRedis({ url } as never) as never;
    return koaApp(
      (app) => {
        app.keys = [SECRET];
        app.use(koaSession({ store, maxAge: 86_400_000, renew: false }, app));
      },
      async (route, param, ctx) => objectSessionRoute(route, param, plain(ctx.session as unknown as Record<string, unknown>)),
    );
  },
};
