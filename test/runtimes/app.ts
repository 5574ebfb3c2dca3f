// The conformance app in Bun or Deno: `bun test/runtimes/app.ts <redis-url>` (Deno's flags are in
// runtime.ts). It connects node-redis to the test's redis-server, prints the URL of its control
// server, and then starts, observes and closes apps as the test asks, each on a port of its own:
// Hono served by the runtime's own server (Bun.serve, Deno.serve), node:http by its node:http.
import process from 'node:process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';
import { RedisStore } from '../../src/index.js';
import { sessionHandle } from '../../src/core/id.js';
import { ConformanceApp, honoApp, nodeListener, type AppSpec } from '../conformance/app.js';

type Fetch = (request: Request) => Response | Promise<Response>;

/** The parts of Bun's and Deno's APIs used here (the project's types know neither). */
interface Runtimes {
  Bun?: {
    serve(options: { port: number; hostname: string; fetch: Fetch; tls?: { key: string; cert: string } }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> };
  };
  Deno?: {
    serve(
      options: { port: number; hostname: string; key?: string; cert?: string; onListen(address: { port: number }): void },
      handler: Fetch,
    ): { shutdown(): Promise<void> };
  };
}
const { Bun, Deno } = globalThis as unknown as Runtimes;

/** What the test asks for in `POST /apps`. */
export interface StartRequest {
  readonly adapter: 'hono' | 'node';
  readonly spec: AppSpec;
  readonly tls: boolean;
}

interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

const TLS = {
  key: readFileSync(new URL('../fixtures/tls-key.pem', import.meta.url), 'utf8'),
  cert: readFileSync(new URL('../fixtures/tls-cert.pem', import.meta.url), 'utf8'),
};

/** Serves `fetch` on 127.0.0.1 with the runtime's own HTTP server. */
async function serveFetch(fetch: Fetch, tls: boolean): Promise<Listening> {
  if (Bun) {
    const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch, ...(tls && { tls: TLS }) });
    return { port: server.port, close: () => server.stop(true) };
  }
  if (Deno) {
    let server: { shutdown(): Promise<void> } | undefined;
    const port = await new Promise<number>((resolve) => {
      server = Deno.serve({ port: 0, hostname: '127.0.0.1', ...(tls && TLS), onListen: (address) => resolve(address.port) }, fetch);
    });
    return { port, close: () => server!.shutdown() };
  }
  throw new Error('neither Bun nor Deno: run this file with bun or deno');
}

/** Serves `listener` on 127.0.0.1 with the runtime's node:http (or node:https). */
async function serveNode(listener: RequestListener, tls: boolean): Promise<Listening> {
  const server: Server = tls ? createHttpsServer(TLS, listener) : createServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Running {
  readonly app: ConformanceApp;
  readonly errors: unknown[];
  /** Where {@link unhandled} stood when the app started. */
  readonly unhandledFrom: number;
  close(): Promise<void>;
}

const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => void unhandled.push(reason));

const [redisUrl] = process.argv.slice(2);
if (!redisUrl) throw new Error('usage: app.ts <redis-url>');
const client = createClient({ url: redisUrl });
// Until the first connection, errors say why the app does not start; later ones, while Redis is
// down, reach the app as STORE_UNAVAILABLE, and the client reconnects by itself.
let connected = false;
client.on('error', (error: unknown) => void (connected || console.error('redis:', error)));
await client.connect();
connected = true;
const store = new RedisStore({ redis: client, commandTimeout: 1000 });

const PREFIX = 'session:';
async function peek(handle: string): Promise<Record<string, string> | null> {
  for (const key of await client.keys(`${PREFIX}*`)) {
    if (sessionHandle(key.slice(PREFIX.length)) === handle) return client.hGetAll(key);
  }
  return null;
}

const apps = new Map<string, Running>();
let started = 0;

async function start({ adapter, spec, tls }: StartRequest): Promise<{ id: string; url: string }> {
  const app = new ConformanceApp(store, spec, peek);
  const errors: unknown[] = [];
  let server: Listening;
  let closeApp: () => Promise<void>;
  if (adapter === 'hono') {
    const { app: hono, middleware } = honoApp(app.options, app.routes, errors);
    app.useAdmin(middleware.manager.admin);
    server = await serveFetch(hono.fetch, tls);
    closeApp = () => middleware.close();
  } else {
    const listener = nodeListener(app.options, app.routes, errors);
    app.useAdmin(listener.manager.admin);
    server = await serveNode(listener, tls);
    closeApp = () => listener.close();
  }
  const id = String(++started);
  apps.set(id, {
    app,
    errors,
    unhandledFrom: unhandled.length,
    async close() {
      await app.settle();
      await server.close();
      await closeApp();
    },
  });
  return { id, url: `${tls ? 'https' : 'http'}://127.0.0.1:${server.port}` };
}

function json(value: unknown): Response {
  return new Response(JSON.stringify(value), { headers: { 'content-type': 'application/json' } });
}

/** The control API the test drives; see runtime.ts. */
async function control(request: Request): Promise<Response> {
  const [, resource, id = '', what, name = '', action] = new URL(request.url).pathname.split('/');
  if (resource !== 'apps') return new Response('no such resource', { status: 404 });
  if (request.method === 'POST' && id === '') return json(await start((await request.json()) as StartRequest));
  const running = apps.get(id);
  if (!running) return new Response(`no app ${id}`, { status: 404 });
  if (request.method === 'DELETE' && what === undefined) {
    apps.delete(id);
    await running.close();
    return json(null);
  }
  if (request.method === 'GET' && what === 'observed') return json(await running.app.observed(running.errors, unhandled.slice(running.unhandledFrom)));
  if (request.method === 'POST' && what === 'reset-store-ops') {
    running.app.resetStoreOps();
    return json(null);
  }
  if (request.method === 'GET' && what === 'gates' && action === 'reached') {
    await running.app.gate(name).reached;
    return json(null);
  }
  if (request.method === 'POST' && what === 'gates' && action === 'release') {
    running.app.gate(name).release();
    return json(null);
  }
  return new Response('no such action', { status: 404 });
}

const controlServer = await serveFetch(async (request) => {
  try {
    return await control(request);
  } catch (error) {
    return new Response(error instanceof Error ? (error.stack ?? error.message) : String(error), { status: 500 });
  }
}, false);
console.log(`control http://127.0.0.1:${controlServer.port}`);
