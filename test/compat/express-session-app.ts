// An Express app written for express-session, its import changed to latchkey/express-session:
// Passport with passport-local, connect-flash, and routes that use req.session as a plain object.
// Served over HTTP on 127.0.0.1 for test/compat/express-session.test.ts.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import flash from 'connect-flash';
import session, { type ExpressSessionOptions, type ExpressSessionMiddleware } from '../../src/adapters/express-session.js';

/** The one user the app knows. */
export const USER = { id: 7, name: 'ada', password: 'correct horse' };

/** A request the test holds after the session is loaded, until it releases it. */
export class Gate {
  #release: (() => void) | undefined;
  readonly #open = new Promise<void>((resolve) => (this.#release = resolve));
  #arrived: (() => void) | undefined;
  /** Resolves when a request is waiting at the gate. */
  readonly arrived = new Promise<void>((resolve) => (this.#arrived = resolve));
  wait(): Promise<void> {
    this.#arrived?.();
    return this.#open;
  }
  release(): void {
    this.#release?.();
  }
}

/** The session as the routes use it: express-session's object, keys untyped. */
type Data = Record<string, unknown> & { save(cb: (error?: unknown) => void): unknown; destroy(cb: (error?: unknown) => void): unknown; cookie: { maxAge: number | null } };

function data(req: express5.Request): Data {
  return req.session as unknown as Data;
}

/** A running app. */
export interface SessionApp {
  readonly url: string;
  readonly middleware: ExpressSessionMiddleware;
  /** Gates by name: a request to /gate/:name waits at it. */
  readonly gates: Map<string, Gate>;
  close(): Promise<void>;
}

/** Starts the app on Express 5 (or 4) with the session middleware made from `options`. */
export async function startApp(options: ExpressSessionOptions, version: 4 | 5 = 5): Promise<SessionApp> {
  const express = (version === 5 ? express5 : express4) as typeof express5;
  const app = express();
  const middleware = session(options);
  const gates = new Map<string, Gate>();
  const authenticator = new passport.Passport();
  authenticator.use(
    new LocalStrategy((username, password, done) => {
      if (username === USER.name && password === USER.password) done(null, { id: USER.id, name: USER.name });
      else done(null, false, { message: 'Wrong name or password' });
    }),
  );
  authenticator.serializeUser((user, done) => done(null, (user as { id: number }).id));
  authenticator.deserializeUser((id: number, done) => done(null, id === USER.id ? { id, name: USER.name } : false));

  app.use(middleware);
  app.use(express.urlencoded({ extended: false }));
  app.use(flash());
  app.use(authenticator.session());

  app.post('/login', authenticator.authenticate('local', { successRedirect: '/me', failureRedirect: '/login', failureFlash: true }));
  app.get('/login', (req, res) => {
    res.json({ errors: req.flash('error') });
  });
  app.post('/remember', authenticator.authenticate('local', { failureRedirect: '/login' }), (req, res) => {
    data(req).cookie.maxAge = 7 * 86_400_000;
    res.redirect('/me');
  });
  app.get('/me', (req, res) => {
    if (req.user === undefined) res.status(401).send('Who are you?');
    else res.json(req.user);
  });
  app.post('/logout', (req, res, next) => {
    req.logout((error) => (error ? next(error) : res.redirect('/')));
  });
  app.get('/set/:key/:value', (req, res) => {
    data(req)[req.params.key] = req.params.value;
    res.send('ok');
  });
  app.get('/json/:key/:value', (req, res) => {
    data(req)[req.params.key] = req.params.value;
    res.json({ ok: true });
  });
  app.get('/redirect/:key/:value', (req, res) => {
    data(req)[req.params.key] = req.params.value;
    res.redirect('/get');
  });
  app.get('/stream/:key/:value', (req, res) => {
    data(req)[req.params.key] = req.params.value;
    res.write('one,');
    setTimeout(() => {
      res.write('two,');
      res.end('three');
    }, 5);
  });
  app.get('/writehead/:key/:value', (req, res) => {
    data(req)[req.params.key] = req.params.value;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'private, max-age=5' });
    res.end('written');
  });
  app.get('/push/:item', (req, res) => {
    const cart = (data(req)['cart'] ??= { items: [] }) as { items: string[] };
    cart.items.push(req.params.item);
    res.send('ok');
  });
  app.get('/delete/:key', (req, res) => {
    // What an app does to drop a key: the session object's own property goes.
    Reflect.deleteProperty(data(req), req.params.key);
    res.send('ok');
  });
  app.get('/get', (req, res) => {
    res.json({ ...data(req) });
  });
  app.get('/id', (req, res) => {
    res.json({ sessionID: (req as unknown as { sessionID: string }).sessionID, id: (req.session as unknown as { id: string }).id });
  });
  app.get('/destroy', (req, res, next) => {
    data(req).destroy((error) => (error ? next(error) : res.json({ session: req.session === undefined ? 'gone' : 'kept' })));
  });
  app.get('/unset', (req, res) => {
    (req as unknown as { session: unknown }).session = null;
    res.send('ok');
  });
  app.get('/gate/:name/:key/:value', async (req, res) => {
    const gate = gates.get(req.params.name);
    await gate?.wait();
    data(req)[req.params.key] = req.params.value;
    res.send('after the gate');
  });
  app.get('/save-now/:key/:value', (req, res, next) => {
    data(req)[req.params.key] = req.params.value;
    data(req).save((error) => (error ? next(error) : res.send('saved')));
  });

  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    middleware,
    gates,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await middleware.close();
    },
  };
}

/** A browser's cookie jar for one site, and fetch through it (redirects not followed). */
export class Browser {
  readonly #cookies = new Map<string, string>();
  /** The Set-Cookie lines of the last response. */
  lastSetCookie: string[] = [];
  constructor(readonly base: string) {}

  cookie(name = 'connect.sid'): string | undefined {
    return this.#cookies.get(name);
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const header = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const headers = new Headers(init.headers);
    if (header !== '') headers.set('cookie', header);
    const response = await fetch(this.base + path, { ...init, headers, redirect: 'manual' });
    this.lastSetCookie = response.headers.getSetCookie();
    for (const line of this.lastSetCookie) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0\b/i.test(line) || /expires=thu, 01 jan 1970/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  post(path: string, form: Record<string, string>): Promise<Response> {
    return this.fetch(path, { method: 'POST', body: new URLSearchParams(form) });
  }
}
