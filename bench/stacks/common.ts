// What every stack serves, so that only the session library differs between stacks of one
// framework. Values are small and fixed: the benchmark measures the session layer, not payloads.
import { createClient } from 'redis';

/** The fields /login stores: a typical logged-in user. */
export const LOGIN = { user: 'u-48151623', name: 'Ada Lovelace', role: 'admin' } as const;

/** The 10 fields of 20 characters /fill10 stores, for the memory comparison. */
export const FILL10: Record<string, string> = Object.fromEntries(
  Array.from({ length: 10 }, (_, i) => [`field${i}`, `value-${i}-`.padEnd(20, 'x')]),
);

/**
 * The 100 fields /login100 stores, values of 20 to 50 characters: a large session, for the routes
 * that show how a session's size weighs on reads and writes. `name` is among them, for /read100.
 */
export const FIELDS100: Record<string, string> = {
  ...LOGIN,
  ...Object.fromEntries(Array.from({ length: 100 - Object.keys(LOGIN).length }, (_, i) => [`field${i}`, `value-${i}-`.padEnd(20 + ((i * 7) % 31), 'x')])),
};

/** Secret for the libraries that sign their cookies (express-session, @fastify/session, koa-session). */
export const SECRET = 'latchkey-benchmark-secret-0123456789abcdef';

/** The app's own node-redis client, connected; stacks that need one share it with their session library. */
export async function connectRedis(url: string) {
  const client = createClient({ url });
  client.on('error', (error: Error) => console.error(`bench server: Redis error: ${error.message}`));
  await client.connect();
  return client;
}

/** The node-redis client type the stacks use. */
export type RedisClient = Awaited<ReturnType<typeof connectRedis>>;

/** A session that is a plain object, seen through get/set/all (its `cookie` bookkeeping left out). */
export function plainSession(data: Record<string, unknown>) {
  return {
    get: (key: string) => data[key],
    set: (key: string, value: unknown) => void (data[key] = value),
    all: () => Object.fromEntries(Object.entries(data).filter(([key]) => key !== 'cookie')),
  };
}

/** @fastify/session's `request.session` (or latchkey/fastify-session's): synchronous get/set over a plain object. */
export function getSetSession(session: object) {
  const s = session as { get(key: string): unknown; set(key: string, value: unknown): void };
  return {
    get: (key: string) => s.get(key),
    set: (key: string, value: unknown) => s.set(key, value),
    all: () => plainSession(session as Record<string, unknown>).all(),
  };
}

/**
 * The routes for libraries whose session is a plain object saved at the end of the request
 * (express-session, @fastify/session, koa-session): `get`/`set` over that object.
 */
export function objectSessionRoute(
  route: string,
  param: string | undefined,
  s: { get(key: string): unknown; set(key: string, value: unknown): void; all(): Record<string, unknown> },
): string {
  switch (route) {
    case 'login':
      for (const [key, value] of Object.entries(LOGIN)) s.set(key, value);
      return 'ok';
    case 'login100':
      for (const [key, value] of Object.entries(FIELDS100)) s.set(key, value);
      return 'ok';
    case 'read':
    case 'read100':
      return String(s.get('name'));
    case 'write':
    case 'write100':
      s.set('note', `n${Date.now()}`);
      return 'ok';
    case 'incr': {
      const n = ((s.get('n') as number | undefined) ?? 0) + 1;
      s.set('n', n);
      return String(n);
    }
    case 'setfield':
      s.set(`f${param}`, Number(param));
      return 'ok';
    case 'dump':
      return JSON.stringify(s.all());
    case 'fill10':
      for (const [key, value] of Object.entries(FILL10)) s.set(key, value);
      return 'ok';
    default:
      throw Object.assign(new Error(`no route ${route}`), { status: 404 });
  }
}
