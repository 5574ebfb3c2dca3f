// bottle-session's two examples on Express: `npm run example:express`.
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { listening, port, redis } from './redis.js';

import express from 'express';
import { session } from 'latchkey/express';

const app = express();
app.use(session({ redis, cookieLifetime: 600 }));

app.get('/', async (req, res) => {
  const name = await req.session.get('name');
  res.send(name !== undefined ? `Hello, ${name}` : "I don't recognize you.");
});

app.get('/set/:name', async (req, res) => {
  await req.session.set('name', req.params.name);
  res.send('I recognize you now.');
});

app.get('/visit', async (req, res) => {
  const visitor = await redis.incr('visitors');
  const lastVisit = await req.session.get('visit', 'never');
  await req.session.set('visit', new Date().toISOString());
  res.send(`You are visitor ${visitor}, your last visit was on ${lastVisit}`);
});

app.listen(port, () => listening('express'));
