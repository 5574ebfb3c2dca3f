// bottle-session's two examples on Koa, with @koa/router: `npm run example:koa`.
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { host, listening, port, redis } from './redis.js';

import Router from '@koa/router';
import Koa from 'koa';
import { session } from 'latchkey/koa';

const app = new Koa();
app.use(session({ redis, cookieLifetime: 600 }));

const router = new Router();

router.get('/', async (ctx) => {
  const name = await ctx.session.get('name');
  ctx.body = name !== undefined ? `Hello, ${name}` : "I don't recognize you.";
});

router.get('/set/:name', async (ctx) => {
  await ctx.session.set('name', ctx.params.name);
  ctx.body = 'I recognize you now.';
});

router.get('/visit', async (ctx) => {
  const visitor = await redis.incr('visitors');
  const lastVisit = await ctx.session.get('visit', 'never');
  await ctx.session.set('visit', new Date().toISOString());
  ctx.body = `You are visitor ${visitor}, your last visit was on ${lastVisit}`;
});

app.use(router.routes());

app.listen(port, host, () => listening('koa'));
