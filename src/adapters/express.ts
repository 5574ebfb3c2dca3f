import type { IncomingMessage, ServerResponse } from 'node:http';
import { openNodeSession } from '../core/http.js';
import { SessionManager } from '../core/manager.js';
import type { SessionOptions } from '../core/options.js';
// From the package's root, not core/: so an app that imports only this adapter still loads the
// module that `declare module 'latchkey'` augments (see SessionData).
import type { DefaultSessionData, Session } from '../index.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The session of this request, set by latchkey's `session()` middleware. */
      session: Session;
    }
  }
}

/**
 * The parts of an Express request latchkey reads; `secure` and `onInvalidCookie` get the request
 * typed as this (it is Express' own request object).
 */
export type ExpressRequest = IncomingMessage & { secure?: boolean; hostname?: string; ip?: string };

/** The Express middleware returned by {@link session}. */
export interface ExpressSessionMiddleware<Data extends object = DefaultSessionData> {
  (req: ExpressRequest, res: ServerResponse, next: (error?: unknown) => void): void;
  /** The manager behind the middleware (options, store). */
  readonly manager: SessionManager<Data>;
  /** The session of `req`, typed with this middleware's `Data`. */
  of(req: IncomingMessage): Session<Data>;
  /** Closes the Redis connection the middleware created itself (a client or store you passed stays open). */
  close(): Promise<void>;
}

/**
 * Session middleware for Express 5 and 4. Handlers get the session as `req.session` (or
 * `req[keyword]`). Express 5 passes a rejected handler promise to the error handler, which answers
 * 503 for a `SessionError` with code `STORE_UNAVAILABLE`; on Express 4, pass errors to `next`.
 * Express' default error handler ignores `expose`: unless `NODE_ENV` is `production`, its page shows
 * every error's stack, the message of a `SessionError` included.
 *
 * ```ts
 * app.use(session({ redis: client }));
 * app.get('/', async (req, res) => { res.send(`Hello, ${await req.session.get('name')}`); });
 * ```
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
 */
export function session<Data extends object = DefaultSessionData>(options: SessionOptions<ExpressRequest> = {}): ExpressSessionMiddleware<Data> {
  const manager = new SessionManager<Data>(options);
  const keyword = manager.options.keyword;
  const middleware = (req: ExpressRequest, res: ServerResponse, next: (error?: unknown) => void): void => {
    // Express' req.secure, req.hostname and req.ip honour the app's 'trust proxy' setting.
    const { session } = openNodeSession(manager, req, res, { isSecure: () => req.secure ?? false, host: () => req.hostname, ip: () => req.ip });
    // A plain assignment is cheapest, but Express 5 has getter-only request properties (query):
    // a keyword that names one of those is defined on the request itself instead.
    if (keyword in req) Object.defineProperty(req, keyword, { value: session, configurable: true, enumerable: true, writable: true });
    else (req as unknown as Record<string, Session<Data>>)[keyword] = session;
    next();
  };
  return Object.assign(middleware, {
    manager,
    of: (req: IncomingMessage) => (req as unknown as Record<string, Session<Data>>)[keyword] as Session<Data>,
    close: () => manager.close(),
  });
}
