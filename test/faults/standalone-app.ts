// The session app the outage test runs in a child process, so that a crash or an unhandled
// rejection is the app's own and cannot hide in the test runner. Started by startChildApp():
// REDIS_URL is the Redis to use, FAULT_CLIENT the client (node-redis, ioredis, or url for
// latchkey's own); prints `listening <port>` once it serves on 127.0.0.1.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withSession } from '../../src/adapters/node.js';
import { CRASH_MARKER, redisFor, type ClientKind } from './standalone-support.js';

for (const event of ['unhandledRejection', 'uncaughtException'] as const) {
  process.on(event, (reason: unknown) => {
    console.error(`${CRASH_MARKER} ${event}: ${reason instanceof Error ? reason.stack : String(reason)}`);
  });
}

const url = process.env.REDIS_URL;
const kind = process.env.FAULT_CLIENT as ClientKind | undefined;
if (url === undefined || kind === undefined) throw new Error('set REDIS_URL and FAULT_CLIENT');
const { redis } = await redisFor(kind, url);

// /plain never touches the session; /read loads it; /write writes to it (creating it without a cookie).
const server = createServer(
  withSession({ redis }, async (req, res, session) => {
    const { pathname, searchParams } = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('content-type', 'application/json');
    if (pathname === '/plain') {
      res.end('{"ok":true}');
    } else if (pathname === '/read') {
      res.end(JSON.stringify({ value: (await session.get('value')) ?? null }));
    } else if (pathname === '/write') {
      await session.set('value', searchParams.get('value'));
      res.end(JSON.stringify({ ok: true }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  }),
);
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
