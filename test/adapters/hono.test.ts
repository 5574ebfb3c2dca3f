// What only the Hono adapter has: it adds the session's headers to the Response a handler
// returned, in place when it can, and by copying it when its headers are immutable.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { MemoryStore } from '../../src/index.js';
import { session, type SessionEnv } from '../../src/adapters/hono.js';

describe('Hono adapter', () => {
  it("adds Set-Cookie, Vary and Cache-Control to a Response whose headers are immutable (one from fetch())", async () => {
    const upstream = createServer((_req, res) => res.end('from upstream')).listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const app = new Hono<SessionEnv>();
    app.use(session({ store: new MemoryStore() }));
    app.get('/', async (c) => {
      await c.get('session').set('a', 1);
      const proxied = await fetch(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`);
      assert.throws(() => proxied.headers.set('x-probe', '1'), TypeError, 'the headers of a fetched Response are immutable');
      return proxied;
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await once(server, 'listening');
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'from upstream');
      assert.match(response.headers.getSetCookie()[0] ?? '', /^session=[\w-]{43}; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
      assert.equal(response.headers.get('vary'), 'Cookie');
      assert.equal(response.headers.get('cache-control'), 'no-store');
    } finally {
      server.close();
      upstream.close();
    }
  });
});
