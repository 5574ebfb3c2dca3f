// The demo behind `npm start`: bottle-session's two examples on Hono.
//   /            "Hello, NAME" or "I don't recognize you."
//   /set/:name   remembers your name in the session
//   /visit       a visitor counter in the same Redis the sessions use, plus your last visit
// Sessions live in Redis at REDIS_URL (default redis://localhost:6379); with no Redis there, the
// demo says so and keeps sessions in memory.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createClient } from 'redis';
import { MemoryStore } from 'latchkey';
import { host, origin, port } from './address.js';
import { session, type SessionEnv } from 'latchkey/hono';

interface Demo {
  name: string;
  visit: string;
}

const redisUrl = process.env.REDIS_URL ?? 'redis://localhost:6379';

/** The app's own Redis client, shared with latchkey; `undefined` when no Redis answers. */
async function connectRedis() {
  let connected = false;
  const client = createClient({
    url: redisUrl,
    socket: {
      connectTimeout: 1000,
      // Give up at once if Redis is not there at start; once connected, keep reconnecting.
      reconnectStrategy: (retries) => (connected ? Math.min(retries * 50, 500) : new Error('no Redis')),
    },
  });
  client.on('error', (error: Error) => {
    if (connected) console.error(`latchkey demo: Redis error: ${error.message}`);
  });
  try {
    await client.connect();
    connected = true;
    return client;
  } catch (error) {
    const reason = error instanceof Error && error.message !== 'no Redis' ? error.message : 'connection refused';
    console.log(`latchkey demo: no Redis at ${redisUrl} (${reason}); sessions are kept in memory and lost when the demo stops.`);
    return undefined;
  }
}

const redis = await connectRedis();
let memoryVisitors = 0;
const sessions = session<Demo>(redis ? { redis } : { store: new MemoryStore() });

const app = new Hono<SessionEnv<Demo>>();
app.use(sessions);

app.get('/', async (c) => {
  const name = await c.get('session').get('name');
  return c.text(name !== undefined ? `Hello, ${name}` : "I don't recognize you.");
});

app.get('/set/:name', async (c) => {
  await c.get('session').set('name', c.req.param('name'));
  return c.text('I recognize you now.');
});

app.get('/visit', async (c) => {
  const visitor = redis ? await redis.incr('latchkey-demo:visitors') : ++memoryVisitors;
  const lastVisit = await c.get('session').get('visit', 'never');
  await c.get('session').set('visit', new Date().toISOString());
  return c.text(`You are visitor ${visitor}, your last visit was on ${lastVisit}`);
});

const server = serve({ fetch: app.fetch, port, hostname: host }, () => {
  console.log(`latchkey demo on ${origin} (try /set/Chris, then /, then /visit) — sessions in ${redis ? `Redis at ${redisUrl}` : 'memory'}`);
});

async function shutdown(): Promise<void> {
  server.close();
  await sessions.close();
  await redis?.close();
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
