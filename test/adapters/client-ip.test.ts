// The client details `recordClient` keeps, as each framework reports them: the IP address follows
// the framework's trust-proxy setting where it has one (Express `trust proxy`, Fastify
// `trustProxy`, Koa `app.proxy`), and is the socket's peer where it has none (Hono on
// @hono/node-server, node:http) unless the `clientIp` option says otherwise. Requests come from
// 127.0.0.2 and then 127.0.0.3 (the server listens on 127.0.0.1), so a peer's address is told apart
// from the server's own, from another peer's, and from a forwarded one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express5 from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { Hono, type Context } from 'hono';
import Koa from 'koa';
import Koa2 from 'koa2';
import { SessionAdmin, type SessionOptions } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { session as expressSession } from '../../src/adapters/express.js';
import { session as fastifySession } from '../../src/adapters/fastify.js';
import { session as honoSession, type SessionEnv } from '../../src/adapters/hono.js';
import { session as koaSession } from '../../src/adapters/koa.js';
import { withSession } from '../../src/adapters/node.js';
import { useRedisWithClient, type NodeRedisClient } from '../redis/client.js';

/** The two visits of a test: where each comes from, what it says it is, and whom it says it forwards. */
const VISITS = [
  { peer: '127.0.0.2', agent: 'ClientIpTest/1.0 (first visit)', forwarded: '203.0.113.7' },
  { peer: '127.0.0.3', agent: 'ClientIpTest/2.0 (second visit)', forwarded: '203.0.113.8' },
] as const;

type Visit = (typeof VISITS)[number];

/** An app serving `POST /login` (signs in as alice) and `GET /whoami` (reads the session). */
interface Running {
  readonly url: string;
  close(): Promise<void>;
}

/** The options every app gets: client details kept, and every read refreshing them. */
function options(client: NodeRedisClient): SessionOptions {
  return { redis: client, recordClient: true, touchInterval: 0 };
}

async function listening(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function expressApp(createApp: typeof express5, trustProxy: boolean) {
  return async (client: NodeRedisClient): Promise<Running> => {
    const app = createApp();
    if (trustProxy) app.set('trust proxy', true);
    const sessions = expressSession(options(client));
    app.use(sessions);
    // Errors go to next(): Express 4 does not catch a rejected handler.
    app.post('/login', (req, res, next) => void req.session.login('alice').then(() => res.send('ok'), next));
    app.get('/whoami', (req, res, next) => void req.session.userId().then((user) => res.send(user ?? ''), next));
    const server = app.listen(0, '127.0.0.1');
    const url = await listening(server);
    return { url, close: async () => (await closeServer(server), await sessions.close()) };
  };
}

function fastifyApp(trustProxy: boolean) {
  return async (client: NodeRedisClient): Promise<Running> => {
    const app = Fastify({ trustProxy });
    await app.register(fastifySession, options(client));
    app.post('/login', async (request) => (await request.session.login('alice'), 'ok'));
    app.get('/whoami', async (request) => (await request.session.userId()) ?? '');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = await listening(app.server);
    return { url, close: () => app.close() };
  };
}

function koaApp(Application: typeof Koa, proxy: boolean) {
  return async (client: NodeRedisClient): Promise<Running> => {
    const app = new Application();
    app.proxy = proxy;
    const sessions = koaSession(options(client));
    app.use(sessions);
    app.use(async (ctx) => {
      if (ctx.method === 'POST' && ctx.path === '/login') {
        await ctx.session.login('alice');
        ctx.body = 'ok';
      } else if (ctx.path === '/whoami') {
        ctx.body = (await ctx.session.userId()) ?? '';
      }
    });
    const server = app.listen(0, '127.0.0.1');
    const url = await listening(server);
    return { url, close: async () => (await closeServer(server), await sessions.close()) };
  };
}

function honoApp(clientIp?: (c: Context) => string | undefined) {
  return async (client: NodeRedisClient): Promise<Running> => {
    const sessions = honoSession({ ...options(client), ...(clientIp && { clientIp }) });
    const app = new Hono<SessionEnv>();
    app.use(sessions);
    app.post('/login', async (c) => (await c.get('session').login('alice'), c.text('ok')));
    app.get('/whoami', async (c) => c.text((await c.get('session').userId()) ?? ''));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    const url = await listening(server);
    return { url, close: async () => (await closeServer(server), await sessions.close()) };
  };
}

function nodeApp(clientIp?: (req: IncomingMessage) => string | undefined) {
  return async (client: NodeRedisClient): Promise<Running> => {
    const listener = withSession({ ...options(client), ...(clientIp && { clientIp }) }, async (req, res, session) => {
      if (req.method === 'POST' && req.url === '/login') {
        await session.login('alice');
        res.end('ok');
      } else {
        res.end((await session.userId()) ?? '');
      }
    });
    const server = createServer(listener).listen(0, '127.0.0.1');
    const url = await listening(server);
    return { url, close: async () => (await closeServer(server), await listener.close()) };
  };
}

/** What a proxy you trust says, the way an app reads it on Hono or node:http. */
const honoForwarded = (c: Context): string | undefined => c.req.header('x-forwarded-for');
const nodeForwarded = (req: IncomingMessage): string | undefined => req.headers['x-forwarded-for'] as string | undefined;

interface Case {
  readonly name: string;
  start(client: NodeRedisClient): Promise<Running>;
  /** The address the app should keep for a visit. */
  expected(visit: Visit): string;
}

const peer = (visit: Visit): string => visit.peer;
const forwarded = (visit: Visit): string => visit.forwarded;

const CASES: readonly Case[] = [
  { name: "Express 5 with app.set('trust proxy', true): the forwarded address", start: expressApp(express5, true), expected: forwarded },
  { name: 'Express 5 without trust proxy: the peer, whatever X-Forwarded-For says', start: expressApp(express5, false), expected: peer },
  { name: "Express 4 with app.set('trust proxy', true): the forwarded address", start: expressApp(express4 as unknown as typeof express5, true), expected: forwarded },
  { name: 'Express 4 without trust proxy: the peer', start: expressApp(express4 as unknown as typeof express5, false), expected: peer },
  { name: 'Fastify with trustProxy: true: the forwarded address', start: fastifyApp(true), expected: forwarded },
  { name: 'Fastify without trustProxy: the peer', start: fastifyApp(false), expected: peer },
  { name: 'Koa 3 with app.proxy = true: the forwarded address', start: koaApp(Koa, true), expected: forwarded },
  { name: 'Koa 3 without app.proxy: the peer', start: koaApp(Koa, false), expected: peer },
  { name: 'Koa 2 with app.proxy = true: the forwarded address', start: koaApp(Koa2 as unknown as typeof Koa, true), expected: forwarded },
  { name: 'Koa 2 without app.proxy: the peer', start: koaApp(Koa2 as unknown as typeof Koa, false), expected: peer },
  { name: 'Hono on @hono/node-server: the peer, whatever X-Forwarded-For says', start: honoApp(), expected: peer },
  { name: 'Hono with a clientIp option: what it returns', start: honoApp(honoForwarded), expected: forwarded },
  { name: 'node:http: the peer, whatever X-Forwarded-For says', start: nodeApp(), expected: peer },
  { name: 'node:http with a clientIp option: what it returns', start: nodeApp(nodeForwarded), expected: forwarded },
];

/** One request from `visit.peer`, saying `visit.agent` and forwarding for `visit.forwarded`. */
async function send(url: string, method: string, path: string, visit: Visit, cookie?: string): Promise<{ status: number; setCookie: string[]; body: string }> {
  const headers: Record<string, string> = { 'user-agent': visit.agent, 'x-forwarded-for': visit.forwarded };
  if (cookie !== undefined) headers.cookie = `session=${cookie}`;
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}${path}`, { method, headers, localAddress: visit.peer }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => void (body += chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, setCookie: response.headers['set-cookie'] ?? [], body }));
    });
    outgoing.once('error', reject);
    outgoing.end();
  });
}

describe('recordClient: the client address as each framework reports it', () => {
  const services = useRedisWithClient();

  for (const each of CASES) {
    it(each.name, async () => {
      const { redis, client } = services;
      await redis.command('FLUSHALL');
      const app = await each.start(client);
      const admin = new SessionAdmin({ redis: client });
      try {
        const [first, second] = VISITS;
        const login = await send(app.url, 'POST', '/login', first);
        assert.equal(login.status, 200, login.body);
        const cookie = /^session=([^;]+)/.exec(login.setCookie[0] ?? '')?.[1];
        assert.ok(cookie, 'the login sets the session cookie');
        const key = `session:${storageId(cookie)}`;
        assert.equal(await redis.command('HGET', key, ':i'), each.expected(first), 'Redis holds the address');
        assert.equal(await redis.command('HGET', key, ':a'), first.agent, 'and the user agent');
        const [listed] = await admin.listUserSessions('alice');
        assert.equal(listed?.ip, each.expected(first), 'listUserSessions shows the address');
        assert.equal(listed?.userAgent, first.agent);

        // The next read refreshes the expiry (touchInterval: 0), and the client's details with it.
        const read = await send(app.url, 'GET', '/whoami', second, cookie);
        assert.equal(read.body, 'alice');
        assert.equal(await redis.command('HGET', key, ':i'), each.expected(second), 'a refresh records where the client is now');
        assert.equal(await redis.command('HGET', key, ':a'), second.agent);
      } finally {
        await admin.close();
        await app.close();
      }
    });
  }
});
