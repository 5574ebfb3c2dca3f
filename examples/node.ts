// bottle-session's two examples on plain node:http, no framework: `npm run example:node`.
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { host, listening, port, redis } from './redis.js';

import { createServer } from 'node:http';
import { withSession } from 'latchkey/node';

const server = createServer(
  withSession({ redis, cookieLifetime: 600 }, async (req, res, session) => {
    const [, route, param] = new URL(req.url ?? '/', 'http://localhost').pathname.split('/');
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    if (route === '') {
      const name = await session.get('name');
      res.end(name !== undefined ? `Hello, ${name}` : "I don't recognize you.");
    } else if (route === 'set' && param) {
      await session.set('name', decodeURIComponent(param));
      res.end('I recognize you now.');
    } else if (route === 'visit') {
      const visitor = await redis.incr('visitors');
      const lastVisit = await session.get('visit', 'never');
      await session.set('visit', new Date().toISOString());
      res.end(`You are visitor ${visitor}, your last visit was on ${lastVisit}`);
    } else {
      res.statusCode = 404;
      res.end('Not found');
    }
  }),
);

server.listen(port, host, () => listening('node'));
