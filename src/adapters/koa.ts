import type { Context, DefaultState, Middleware } from 'koa';
import { openNodeSession } from '../core/http.js';
import { SessionManager } from '../core/manager.js';
import type { SessionOptions } from '../core/options.js';
// From the package's root, not core/: so an app that imports only this adapter still loads the
// module that `declare module 'latchkey'` augments (see SessionData).
import type { DefaultSessionData, Session } from '../index.js';

declare module 'koa' {
  interface DefaultContext {
    /** The session of this request, set by latchkey's `session()` middleware. */
    session: Session;
  }
}

/** The context properties the middleware adds: `ctx[keyword]` is the session. */
export type KoaSessionContext<Data extends object = DefaultSessionData, Keyword extends string = 'session'> = {
  [K in Keyword]: Session<Data>;
};

/** The Koa middleware returned by {@link session}. */
export type KoaSessionMiddleware<Data extends object = DefaultSessionData, Keyword extends string = 'session'> = Middleware<
  DefaultState,
  KoaSessionContext<Data, Keyword>
> & {
  /** The manager behind the middleware (options, store). */
  readonly manager: SessionManager<Data>;
  /** Closes the Redis connection the middleware created itself (a client or store you passed stays open). */
  close(): Promise<void>;
};

/**
 * Session middleware for Koa 3 and 2. Handlers get the session as `ctx.session` (or
 * `ctx[keyword]`). A `SessionError` thrown by a handler takes Koa's own error path: the response
 * gets its `status` (503 for `STORE_UNAVAILABLE`) and the app emits `'error'`.
 *
 * `ctx.session` is typed for the whole app with `SessionData`: declare your keys in it with
 * `declare module 'latchkey'`. Koa merges that type with the middleware's own context type, so
 * `Data` types the session only under a keyword of your own: `session<Data, 'cart'>({ keyword:
 * 'cart' })` gives a `ctx.cart` of type `Session<Data>`.
 *
 * ```ts
 * app.use(session({ redis: client }));
 * app.use(async (ctx) => { ctx.body = `Hello, ${await ctx.session.get('name')}`; });
 * ```
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
 */
export function session<Data extends object = DefaultSessionData, Keyword extends string = 'session'>(
  options: SessionOptions<Context> & { keyword?: Keyword } = {},
): KoaSessionMiddleware<Data, Keyword> {
  const manager = new SessionManager<Data>(options);
  const keyword = manager.options.keyword;
  const middleware: Middleware<DefaultState, KoaSessionContext<Data, Keyword>> = (ctx, next) => {
    // ctx.secure and ctx.hostname honour the app's `proxy` setting.
    const { session } = openNodeSession(manager, ctx.req, ctx.res, { isSecure: () => ctx.secure, host: () => ctx.hostname, ip: () => ctx.ip, request: ctx });
    (ctx as unknown as Record<string, Session<Data>>)[keyword] = session;
    return next();
  };
  return Object.assign(middleware, { manager, close: () => manager.close() });
}
