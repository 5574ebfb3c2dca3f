// One app process of the login and logout race tests: latchkey's node adapter on the Redis at
// REDIS_URL, with its own client. Prints its address once it listens; SIGTERM stops it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { isSessionError } from '../../src/index.js';
import { defaultErrorHandler, withSession } from '../../src/adapters/node.js';
import type { Session } from '../../src/core/session.js';

const redis = createClient({ url: process.env.REDIS_URL });
redis.on('error', () => {});
await redis.connect();

/** Every route answers JSON: what the session showed, and whether a write was refused. */
type Route = (session: Session, query: URLSearchParams) => Promise<Record<string, unknown>>;

/** Runs a late write; one refused with SESSION_GONE answers 409 with what the request had seen. */
async function lateWrite(session: Session, saw: boolean | null): Promise<Record<string, unknown>> {
  try {
    await session.set('late', true);
    return { saw };
  } catch (error) {
    if (!isSessionError(error, 'SESSION_GONE')) throw error;
    return { saw, status: 409 };
  }
}

/** How long a slow request holds after its first use of the session, in ms. */
const holdOf = (query: URLSearchParams): number => Number(query.get('hold') ?? 0);

const ROUTES: Record<string, Route> = {
  '/set': async (s) => {
    await s.set('cart', 'socks');
    return { id: s.id ?? null };
  },
  '/whoami': async (s) => ({ user: (await s.get('user')) ?? null, cart: (await s.get('cart')) ?? null, id: s.id ?? null }),
  '/login': async (s, q) => {
    await s.load();
    await s.regenerate();
    await s.set('user', q.get('user'));
    return { id: s.id ?? null };
  },
  '/logout': async (s) => {
    await s.destroy();
    return {};
  },
  // Read now, answer later: a page that was loading while the user logged in or out elsewhere.
  '/slowread': async (s, q) => {
    const saw = (await s.get('cart')) !== undefined;
    await sleep(holdOf(q));
    return { saw };
  },
  // Read now, write later: the write must not bring the old session back, nor start a new one.
  '/slowwrite': async (s, q) => {
    const saw = (await s.get('cart')) !== undefined;
    await sleep(holdOf(q));
    return lateWrite(s, saw);
  },
  // Write later, without reading: it must not start a session over the newer cookie either.
  '/slowblind': async (s, q) => {
    await sleep(holdOf(q));
    return lateWrite(s, null);
  },
};

const listener = withSession(
  {
    redis,
    touchInterval: process.env.TOUCH_INTERVAL === undefined ? undefined : Number(process.env.TOUCH_INTERVAL),
    onError: (error, req, res) => {
      if (isSessionError(error, 'SESSION_GONE')) {
        res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ gone: true }));
        return;
      }
      defaultErrorHandler(error, req, res);
    },
  },
  async (req, res, session) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = ROUTES[url.pathname];
    if (!route) return void res.writeHead(404).end();
    const { status = 200, ...body } = await route(session, url.searchParams);
    res.writeHead(status as number, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  },
);
const server = createServer(listener).listen(0, '127.0.0.1', () => {
  process.stdout.write(`race app on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => void redis.close().then(() => process.exit(0)));
});
