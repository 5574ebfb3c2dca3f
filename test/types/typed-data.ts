// Compile-time checks of the typed-data API: `npm test` type-checks this file, so a regression
// in the types fails the build. Nothing here runs.
import { Hono } from 'hono';
import express from 'express';
import { createClient, createCluster, createSentinel } from 'redis';
import { Cluster, Redis } from 'ioredis';
import { RedisStore, type Session } from '../../src/index.js';
import { session as honoSession, type SessionEnv } from '../../src/adapters/hono.js';
import { session as expressSession } from '../../src/adapters/express.js';

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
