// bottle-session's two examples on Fastify: `npm run example:fastify`.
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { host, listening, port, redis } from './redis.js';

import Fastify from 'fastify';
import { session } from 'latchkey/fastify';

const app = Fastify();
await app.register(session, { redis, cookieLifetime: 600 });

app.get('/', async (request) => {
  const name = await request.session.get('name');
  return name !== undefined ? `Hello, ${name}` : "I don't recognize you.";
});

app.get<{ Params: { name: string } }>('/set/:name', async (request) => {
  await request.session.set('name', request.params.name);
  return 'I recognize you now.';
});

app.get('/visit', async (request) => {
  const visitor = await redis.incr('visitors');
  const lastVisit = await request.session.get('visit', 'never');
  await request.session.set('visit', new Date().toISOString());
  return `You are visitor ${visitor}, your last visit was on ${lastVisit}`;
});

await app.listen({ port, host });
listening('fastify');
