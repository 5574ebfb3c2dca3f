import type { Context, MiddlewareHandler } from 'hono';
import { SessionManager } from '../core/manager.js';
import type { SessionOptions } from '../core/options.js';
// From the package's root, not core/: so an app that imports only this adapter still loads the
// module that `declare module 'latchkey'` augments (see SessionData).
import type { DefaultSessionData, Session } from '../index.js';

/**
 * The Hono environment the middleware provides: `c.get(keyword)` is the session. Use it to type
 * an app that is not built by chaining: `new Hono<SessionEnv<MyData>>()`.
 */
export interface SessionEnv<Data extends object = DefaultSessionData, Keyword extends string = 'session'> {
  Variables: { [K in Keyword]: Session<Data> };
}

/** The Hono middleware returned by {@link session}. */
export type HonoSessionMiddleware<Data extends object = DefaultSessionData, Keyword extends string = 'session'> =
  MiddlewareHandler<SessionEnv<Data, Keyword>> & {
    /** The manager behind the middleware (options, store). */
    readonly manager: SessionManager<Data>;
    /** Closes the Redis connection the middleware created itself (a client or store you passed stays open). */
    close(): Promise<void>;
  };

/**
 * Sets a header on the response a handler returned. In place where it can be: `c.header()` after
 * the handler copies the whole Response, which costs @hono/node-server its fast path on every
 * request that uses its session. A Response with immutable headers (one from `fetch()`) is left to
 * `c.header()`, which copies it.
 */
function setHeader(c: Context, name: string, value: string, append: boolean): void {
  try {
    if (append) c.res.headers.append(name, value);
    else c.res.headers.set(name, value);
  } catch {
    c.header(name, value, { append });
  }
}

/** The address of the peer of a request served by `@hono/node-server` (its `env.incoming`), if any. */
function peerAddress(env: unknown): string | undefined {
  const address = (env as { incoming?: { socket?: { remoteAddress?: unknown } } } | undefined)?.incoming?.socket?.remoteAddress;
  return typeof address === 'string' ? address : undefined;
}

/**
 * Session middleware for Hono. Handlers get the session with `c.get('session')` (or the
 * `keyword` you chose).
 *
 * ```ts
 * const app = new Hono<SessionEnv>();
 * app.use(session({ redis: client }));
 * app.get('/', async (c) => c.text(`Hello, ${await c.get('session').get('name')}`));
 * ```
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
 */
export function session<Data extends object = DefaultSessionData, Keyword extends string = 'session'>(
  options: SessionOptions<Context> & { keyword?: Keyword } = {},
): HonoSessionMiddleware<Data, Keyword> {
  const manager = new SessionManager<Data>(options);
  const keyword = manager.options.keyword as Keyword;
  const middleware: MiddlewareHandler<SessionEnv<Data, Keyword>> = async (c, next) => {
    const handle = manager.open({
      cookieHeader: () => c.req.header('cookie'),
      isSecure: () => c.req.url.startsWith('https:'),
      target: () => ({ path: new URL(c.req.url).pathname, host: c.req.header('host') }),
      // Hono has no trust-proxy setting: the peer's address where the runtime gives it (Node's
      // server), else none; the clientIp option decides otherwise.
      client: () => ({ userAgent: c.req.header('user-agent'), ip: peerAddress(c.env) }),
      request: c,
    });
    c.set(keyword, handle.session);
    await next();
    handle.writeHeaders({
      get: (name) => c.res.headers.get(name) ?? undefined,
      set: (name, value) => setHeader(c, name, value, false),
      appendSetCookie: (value) => setHeader(c, 'Set-Cookie', value, true),
    });
  };
  return Object.assign(middleware, { manager, close: () => manager.close() });
}
