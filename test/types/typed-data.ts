// Compile-time checks of the typed-data API: `npm test` type-checks this file, so a regression
// in the types fails the build. Nothing here runs.
import { Hono } from 'hono';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { createClient, createCluster, createSentinel } from 'redis';
import { Cluster, Redis } from 'ioredis';
import { RedisStore, type DefaultSessionData, type Session, type UntypedSessionData } from '../../src/index.js';
import { session as honoSession, type SessionEnv } from '../../src/adapters/hono.js';
import { session as expressSession } from '../../src/adapters/express.js';
import { session as fastifySession } from 'latchkey/fastify';
import { session as koaSession } from 'latchkey/koa';
import { withSession } from 'latchkey/node';

interface Data {
  name: string;
  visits: number;
  tags?: string[];
}

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** `is<T>()(value)` compiles only when `value` has exactly the type `T`. */
function is<Expected>() {
  return <Actual>(actual: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : ['type differs']): Actual => actual;
}

export async function typedSession(s: Session<Data>): Promise<void> {
  const name = await s.get('name');
  is<string | undefined>()(name);
  const visits = await s.get('visits', 0);
  is<number>()(visits);
  await s.set('name', 'Chris');
  await s.set({ visits: 2 });
  const n = await s.incr('visits');
  is<number>()(n);
  // @ts-expect-error wrong value type
  await s.set('name', 3);
  // @ts-expect-error unknown key
  await s.get('nope');
  // @ts-expect-error incr only takes numeric keys
  await s.incr('name');
  const all = await s.all();
  is<Partial<Data>>()(all);
}

export function undeclaredData(s: Session): void {
  // Nothing in this project declares SessionData's keys: a session without a type takes any key.
  is<Session<UntypedSessionData>>()(s);
  is<UntypedSessionData>()({} as DefaultSessionData);
}

export function honoApp(): void {
  const app = new Hono<SessionEnv<Data>>();
  app.use(honoSession<Data>());
  app.get('/', async (c) => {
    const name = await c.get('session').get('name');
    is<string | undefined>()(name);
    return c.text(name ?? '');
  });
  // Chained apps pick up the variables from the middleware.
  new Hono().use(honoSession<Data, 'visit'>({ keyword: 'visit' })).get('/', async (c) => {
    const visits = await c.get('visit').get('visits');
    is<number | undefined>()(visits);
    return c.text(String(visits));
  });
}

export function expressApp(): void {
  const app = express();
  const sessions = expressSession<Data>();
  app.use(sessions);
  app.get('/', async (req, res) => {
    const untyped = await req.session.get('anything');
    is<unknown>()(untyped);
    const name = await sessions.of(req).get('name');
    is<string | undefined>()(name);
    res.send(name);
  });
}

export async function fastifyApp(): Promise<void> {
  const app = Fastify();
  await app.register(fastifySession, { cookieLifetime: 600 });
  app.get('/', async (request) => {
    is<Session>()(request.session);
    const name = request.session.get('name');
    is<Promise<unknown>>()(name);
    return name;
  });
  // @ts-expect-error misspelt option
  await app.register(fastifySession, { cookieLifetme: 1 });
}

export function koaApp(): void {
  type KoaData = { name: string; visits: number };
  new Koa().use(koaSession<KoaData>()).use(async (ctx) => {
    // The adapter declares `session: Session` on Koa's DefaultContext (for apps not built by
    // chaining), and Koa's use() puts that first in the merged context: ctx.session is
    // `Session & Session<KoaData>`, whose untyped overloads win (get() gives Promise<unknown>,
    // incr() takes any key). It still is a Session<KoaData>, so a typed variable gets the typed API.
    const session: Session<KoaData> = ctx.session;
    const name = session.get('name');
    is<Promise<string | undefined>>()(name);
    // @ts-expect-error incr only takes numeric keys
    await session.incr('name');
    ctx.body = await name;
  });
  // A keyword of its own has no such clash: ctx.sess is exactly the typed session.
  new Koa().use(koaSession<Data, 'sess'>({ keyword: 'sess' })).use(async (ctx) => {
    is<Session<Data>>()(ctx.sess);
    const visits = ctx.sess.get('visits');
    is<Promise<number | undefined>>()(visits);
    // @ts-expect-error incr only takes numeric keys
    await ctx.sess.incr('name');
    ctx.body = String(await visits);
  });
}

export function nodeServer(): void {
  withSession<{ name: string }>({}, async (_req, res, session) => {
    const name = session.get('name');
    is<Promise<string | undefined>>()(name);
    res.end(await name);
  });
  // @ts-expect-error keyword is not an option of the node adapter: the session is the handler's third argument
  withSession({ keyword: 'x' }, async (_req, res) => res.end());
}

export function clientsAreAccepted(): void {
  // Every supported client type is accepted as it comes, without casts.
  new RedisStore({ redis: createClient() });
  new RedisStore({ redis: createCluster({ rootNodes: [] }) });
  new RedisStore({ redis: createSentinel({ name: 'primary', sentinelRootNodes: [] }) });
  new RedisStore({ redis: new Redis() });
  new RedisStore({ redis: new Cluster([]) });
  honoSession({ redis: new Redis(), prefix: 'app:' });
  expressSession({ redis: createClient() });
}
