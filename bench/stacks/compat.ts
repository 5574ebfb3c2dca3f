// latchkey's modes that speak the usual library's API (latchkey/express-session,
// latchkey/fastify-session, latchkey/koa-session), configured as competitors.ts configures the
// libraries they replace, with the app's node-redis client in place of the other library's store.
// Inside this repository `req.session`, `request.session` and `ctx.session` are typed as
// latchkey's native adapters declare them: the handlers see them through the same casts as competitors.ts.
import expressSession from 'latchkey/express-session';
import fastifySession from 'latchkey/fastify-session';
import koaSession from 'latchkey/koa-session';
import { connectRedis, getSetSession, objectSessionRoute, plainSession as plain, SECRET } from './common.js';
import { expressApp, fastifyApp, koaApp } from './frameworks.js';
import type { StackStarter } from './index.js';

export const stacks: Record<string, StackStarter> = {
  async express(url) {
    const redis = await connectRedis(url);
    const middleware = expressSession({ redis, secret: SECRET, resave: false, saveUninitialized: false });
    return expressApp(middleware, async (route, param, { req }) =>
      objectSessionRoute(route, param, plain(req.session as unknown as Record<string, unknown>)),
    );
  },
  async fastify(url) {
    const redis = await connectRedis(url);
    return fastifyApp(
      async (app) => {
        await app.register(fastifySession, { redis, secret: SECRET, saveUninitialized: false, cookie: { secure: false } });
      },
      async (route, param, { request }) => objectSessionRoute(route, param, getSetSession(request.session)),
    );
  },
  async koa(url) {
    const redis = await connectRedis(url);
    return koaApp(
      (app) => {
        app.keys = [SECRET];
        app.use(koaSession({ redis, maxAge: 86_400_000, renew: false }, app));
      },
      async (route, param, ctx) => objectSessionRoute(route, param, plain(ctx.session as unknown as Record<string, unknown>)),
    );
  },
};
