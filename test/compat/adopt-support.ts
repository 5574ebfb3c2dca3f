// Shared by test/compat/adopt-*.test.ts: sessions made by the real old libraries over HTTP, then
// served by latchkey with `adopt`. An HTTP server helper, the data every old session holds, a
// latchkey app per framework that reports what its session holds, and the checks on Redis.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyRequest } from 'fastify';
import Koa from 'koa';
import { session as expressSession } from '../../src/adapters/express.js';
import { session as fastifySession } from '../../src/adapters/fastify.js';
import { session as koaSession } from '../../src/adapters/koa.js';
import type { Session, SessionOptions } from '../../src/index.js';
import { isSessionError } from '../../src/index.js';
import type { RedisServer } from '../redis/server.js';

/**
 * A browser's cookie jar and fetch through it (redirects not followed). {@link Browser.at} gives
 * the same jar on another origin: the old app and latchkey's serve the same site in real life.
 */
export class Browser {
  readonly #cookies: Map<string, string>;
  constructor(readonly base: string, cookies = new Map<string, string>()) {
    this.#cookies = cookies;
  }

  /** The same jar, for requests to `base`. */
  at(base: string): Browser {
    return new Browser(base, this.#cookies);
  }

  cookie(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const header = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const headers = new Headers(init.headers);
    if (header !== '' && !headers.has('cookie')) headers.set('cookie', header);
    const response = await fetch(this.base + path, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (clears(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  post(path: string, form: Record<string, string>): Promise<Response> {
    return this.fetch(path, { method: 'POST', body: new URLSearchParams(form) });
  }
}

/** What every old session holds besides the user: values of each JSON type. */
export const DATA = { visits: 3, cart: { items: ['a', 'b'] }, flag: true, note: 'hi', nothing: null, list: [1, 'two'] } as const;

/** The old libraries' secret, and one that signed nothing. */
export const OLD_SECRET = 'the-old-library-secret';
export const NEW_SECRET = 'a-newer-secret-the-old-library-rotated-to';
export const WRONG_SECRET = 'not-the-secret-that-signed-it';

/** A running HTTP app. */
export interface Running {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `handler` on a free loopback port. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Running> {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What the latchkey apps' `/whoami` answers. */
export interface Whoami {
  readonly user: string | undefined;
  readonly data: Record<string, unknown>;
  readonly isNew: boolean;
}

/** Routes every native latchkey app has, on its `Session`. */
async function route(path: string, session: Session): Promise<[number, unknown]> {
  try {
    if (path === '/whoami') {
      const data = await session.all();
      return [200, { user: await session.userId(), data, isNew: session.isNew } satisfies Whoami];
    }
    // A first request that writes before it reads anything.
    if (path === '/write') {
      await session.set('written', 1);
      return [200, { ok: true }];
    }
    if (path.startsWith('/login/')) {
      await session.login(path.slice('/login/'.length));
      return [200, { ok: true }];
    }
    if (path === '/logout') {
      await session.logout();
      return [200, { ok: true }];
    }
    return [200, { untouched: true }];
  } catch (error) {
    if (isSessionError(error)) return [error.status, { code: error.code }];
    throw error;
  }
}

/** A latchkey app on `framework`'s native adapter, with `options`. */
export type NativeFramework = 'express' | 'fastify' | 'koa';

export async function startNative(framework: NativeFramework, options: SessionOptions): Promise<Running> {
  if (framework === 'express') {
    const app = express();
    const middleware = expressSession(options as SessionOptions<IncomingMessage>);
    app.use(middleware);
    app.use((req, res) => {
      route(req.path, req.session).then(([status, body]) => res.status(status).json(body), (error: unknown) => res.status(500).send(String(error)));
    });
    const running = await listen(app);
    return { url: running.url, close: async () => (await running.close(), await middleware.close()) };
  }
  if (framework === 'fastify') {
    const app = Fastify();
    await app.register(fastifySession, options as SessionOptions<FastifyRequest>);
    app.get('/*', async (request, reply) => {
      const [status, body] = await route(request.url.split('?')[0] as string, request.session);
      return reply.code(status).send(body);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  }
  const app = new Koa();
  const middleware = koaSession(options as SessionOptions<Koa.Context>);
  app.use(middleware);
  app.use(async (ctx) => {
    const [status, body] = await route(ctx.path, ctx.session);
    ctx.status = status;
    ctx.body = body;
  });
  const running = await listen(app.callback());
  return { url: running.url, close: async () => (await running.close(), await middleware.close()) };
}

/** The Set-Cookie lines of `response` for the cookie `name`. */
export function setCookiesOf(response: Response, name: string): string[] {
  return response.headers.getSetCookie().filter((line) => line.startsWith(`${name}=`));
}

/** Whether `line` clears its cookie. */
export function clears(line: string): boolean {
  return /max-age=0\b/i.test(line) || /expires=thu, 01 jan 1970/i.test(line);
}

/** The latchkey session keys in Redis (prefix `session:`), user indexes left out. */
export async function sessionKeys(redis: RedisServer): Promise<string[]> {
  const keys = (await redis.command('KEYS', 'session:*')) as string[];
  return keys.filter((key) => !key.startsWith('session:user:')).sort();
}

/** Checks what `/whoami` answers: signed in as `user` (if given), with `DATA` intact. */
export function assertAdopted(whoami: Whoami, user: string | undefined, extra: Record<string, unknown> = {}): void {
  assert.equal(whoami.user, user);
  assert.deepEqual(whoami.data, { ...DATA, ...extra });
}
