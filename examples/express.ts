// bottle-session's two examples on Express, and a login form with a CSRF token: `npm run example:express`.
// The app's own Redis client, and where to listen: see examples/redis.ts.
import { host, listening, port, redis } from './redis.js';
import { checkCsrf, csrfToken } from 'latchkey';

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

// Logging in: the form carries the session's CSRF token, and a login gets a new session id.
app.get('/login', async (req, res) => {
  const token = await csrfToken(req.session);
  res.send(`<form method="post"><input name="name"><input type="hidden" name="_csrf" value="${token}"><button>Log in</button></form>`);
});

app.post('/login', express.urlencoded({ extended: false }), async (req, res) => {
  await checkCsrf(req.session, req.method, req.body?._csrf);
  // ... check the user's credentials here ...
  // A new session id, bound to the user: listUserSessions and revokeUserSessions find it.
  await req.session.login(String(req.body.name));
  await req.session.set('name', String(req.body.name));
  res.redirect('/');
});

app.post('/logout', express.urlencoded({ extended: false }), async (req, res) => {
  await checkCsrf(req.session, req.method, req.body?._csrf);
  await req.session.logout();
  res.redirect('/');
});

app.listen(port, host, () => listening('express'));
