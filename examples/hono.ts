// bottle-session's two examples on Hono: `npm run example:hono`.
import { serve } from '@hono/node-server';
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { host, listening, port, redis } from './redis.js';

import { Hono } from 'hono';
import { session, type SessionEnv } from 'latchkey/hono';

interface Visitor { name: string; visit: string }

const app = new Hono<SessionEnv<Visitor>>();
app.use(session<Visitor>({ redis, cookieLifetime: 600 }));

app.get('/', async (c) => {
  const name = await c.get('session').get('name');
  return c.text(name !== undefined ? `Hello, ${name}` : "I don't recognize you.");
});

app.get('/set/:name', async (c) => {
  await c.get('session').set('name', c.req.param('name'));
  return c.text('I recognize you now.');
});

app.get('/visit', async (c) => {
  const visitor = await redis.incr('visitors');
  const lastVisit = await c.get('session').get('visit', 'never');
  await c.get('session').set('visit', new Date().toISOString());
  return c.text(`You are visitor ${visitor}, your last visit was on ${lastVisit}`);
});

serve({ fetch: app.fetch, port, hostname: host }, () => listening('hono'));
