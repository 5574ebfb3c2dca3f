// latchkey on every framework, each route written once against its Session.
import type { Session } from 'latchkey';
import { session as expressSession } from 'latchkey/express';
import { session as fastifySession } from 'latchkey/fastify';
import { session as honoSession } from 'latchkey/hono';
import { session as koaSession } from 'latchkey/koa';
import { withSession } from 'latchkey/node';
import { connectRedis, FIELDS100, FILL10, LOGIN } from './common.js';
import { expressApp, fastifyApp, honoApp, koaApp, nodeApp } from './frameworks.js';
import type { StackStarter } from './index.js';

const ROUTES: Record<string, (session: Session, param: string | undefined) => Promise<string>> = {
  login: async (s) => (await s.set(LOGIN), 'ok'),
  login100: async (s) => (await s.set(FIELDS100), 'ok'),
  read: async (s) => String(await s.get('name')),
  read100: async (s) => String(await s.get('name')),
  write: async (s) => (await s.set('note', `n${Date.now()}`), 'ok'),
  write100: async (s) => (await s.set('note', `n${Date.now()}`), 'ok'),
  incr: async (s) => String(await s.incr('n')),
  setfield: async (s, i) => (await s.set(`f${i}`, Number(i)), 'ok'),
  dump: async (s) => JSON.stringify(await s.all()),
  fill10: async (s) => (await s.set(FILL10), 'ok'),
};

function run(route: string, session: Session, param: string | undefined): Promise<string> {
  const handler = ROUTES[route];
  if (!handler) throw Object.assign(new Error(`no route ${route}`), { status: 404 });
  return handler(session, param);
}

export const stacks: Record<string, StackStarter> = {
  async express(url) {
    const redis = await connectRedis(url);
    return expressApp(expressSession({ redis }), (route, param, { req }) => run(route, req.session, param));
  },
  async fastify(url) {
    const redis = await connectRedis(url);
    return fastifyApp(
      async (app) => void (await app.register(fastifySession, { redis })),
      (route, param, { request }) => run(route, request.session, param),
    );
  },
  async koa(url) {
    const redis = await connectRedis(url);
    return koaApp(
      (app) => app.use(koaSession({ redis })),
      (route, param, ctx) => run(route, ctx.session, param),
    );
  },
  async hono(url) {
    const redis = await connectRedis(url);
    return honoApp(honoSession({ redis }), (route, param, c) => run(route, c.get('session'), param));
  },
  async node(url) {
    const redis = await connectRedis(url);
    return withSession({ redis }, nodeApp<Session>((route, param, { extra }) => run(route, extra, param)));
  },
};
