// A latchkey app that shares its users' sessions with a Python Bottle app using bottle-session
// (SessionPlugin(cookie_lifetime=600)): the plugin README's two routes, on plain node:http, reading
// and writing the plugin's cookie and Redis layout. `npm run example:bottle-session`.
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { host, listening, port, redis } from './redis.js';

import { createServer } from 'node:http';
import { withSession } from 'latchkey/node';

const server = createServer(
  withSession({ redis, compat: 'bottle-session', cookieLifetime: 600 }, async (req, res, session) => {
    const [, route, param] = new URL(req.url ?? '/', 'http://localhost').pathname.split('/');
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    if (route === '') {
      // A string, as the Python app stored it (or a number it stored, as its decimal text).
      const name = await session.get('name');
      res.end(name !== undefined && name !== '' ? `Hello, ${String(name)}` : "I don't recognize you.");
    } else if (route === 'set' && param) {
      let name: string;
      try {
        name = decodeURIComponent(param);
      } catch {
        res.statusCode = 400;
        res.end('That name is not valid percent-encoded UTF-8.');
        return;
      }
      await session.set('name', name);
      res.end('I recognize you now.');
    } else {
      res.statusCode = 404;
      res.end('Not found');
    }
  }),
);

server.listen(port, host, () => listening('bottle-session', 'try /set/Chris, then /'));
