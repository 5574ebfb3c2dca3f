// The apps the browser tests drive: the README's greeting on Hono, served on loopback.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono, type Context } from 'hono';
import { serve } from '@hono/node-server';
import type { SessionOptions } from '../../src/index.js';
import { session, type SessionEnv } from '../../src/adapters/hono.js';

/** A running app: its port on 127.0.0.1. */
export interface GreetingApp {
  readonly port: number;
  close(): Promise<void>;
}

/** "Hello, <name>" for the name the session holds, or "I don't recognize you.". */
export async function greet(c: Context<SessionEnv>): Promise<Response> {
  const name = await c.get('session').get('name');
  return c.text(name === undefined ? "I don't recognize you." : `Hello, ${String(name)}`);
}

/**
 * Serves the README's first example (`/set/:name` remembers a name, `/` greets by it) with
 * `options`, plus the routes `extend` adds.
 */
export async function startGreetingApp(options: SessionOptions, extend?: (app: Hono<SessionEnv>) => void): Promise<GreetingApp> {
  const middleware = session(options);
  const app = new Hono<SessionEnv>();
  app.use(middleware);
  app.get('/', greet);
  app.get('/set/:name', async (c) => {
    const name = c.req.param('name');
    await c.get('session').set('name', name);
    return c.text(`Stored ${name}`);
  });
  extend?.(app);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  if (!server.listening) await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await middleware.close();
    },
  };
}
