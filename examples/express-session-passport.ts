// An Express app written for express-session, with Passport (passport-local) and connect-flash,
// moved to latchkey by changing one import: `npm run example:express-session-passport`. Sign in at /login
// as ada, password "correct horse". The app's own Redis client: see examples/redis.ts.
// Type-checked as an app with @types/express-session installed (test/types/express-session.test.ts),
// not in this repository's program, where latchkey/express types req.session its own way.
import { randomBytes } from 'node:crypto';
import { host, listening, port, redis } from './redis.js';

import express from 'express';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import flash from 'connect-flash';
import session from 'latchkey/express-session';

// What the app keeps in its sessions, as it declared them for express-session.
declare module 'express-session' {
  interface SessionData {
    views: number;
  }
}

const users = new Map([['ada', { id: 7, name: 'ada', password: 'correct horse' }]]);

passport.use(
  new LocalStrategy((username, password, done) => {
    const user = users.get(username);
    if (user !== undefined && user.password === password) done(null, { id: user.id, name: user.name });
    else done(null, false, { message: 'Wrong name or password' });
  }),
);
passport.serializeUser((user, done) => done(null, (user as { id: number }).id));
passport.deserializeUser((id: number, done) => done(null, [...users.values()].find((user) => user.id === id) ?? false));

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(
  session({
    redis,
    // At least 32 characters. A new one at each start signs everyone out: set SESSION_SECRET.
    secret: process.env.SESSION_SECRET ?? randomBytes(32).toString('base64'),
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 30 * 60_000 },
  }),
);
app.use(passport.session());
app.use(flash());

app.get('/', (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1;
  const who = req.user ? `Signed in as ${(req.user as { name: string }).name}.` : 'Not signed in: <a href="/login">sign in</a>.';
  res.send(`<p>${who}</p><p>Views in this session: ${req.session.views}</p>`);
});

app.get('/login', (req, res) => {
  const [error] = req.flash('error');
  res.send(`${error ? `<p role="alert">${error}</p>` : ''}<form method="post"><input name="username"><input name="password" type="password"><button>Sign in</button></form>`);
});

app.post('/login', passport.authenticate('local', { successRedirect: '/me', failureRedirect: '/login', failureFlash: true }));

app.get('/me', (req, res) => {
  if (!req.user) return void res.status(401).send('Sign in first.');
  res.send(`Hello, ${(req.user as { name: string }).name}`);
});

app.post('/logout', (req, res, next) => {
  req.logout((error) => (error ? next(error) : res.redirect('/')));
});

app.listen(port, host, () => listening('express-session', 'sign in at /login as ada, password "correct horse"'));
