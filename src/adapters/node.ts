import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isSessionError, SessionError } from '../core/errors.js';
import { openNodeSession } from '../core/http.js';
import { SessionManager } from '../core/manager.js';
import type { SessionOptions } from '../core/options.js';
// From the package's root, not core/: so an app that imports only this adapter still loads the
// module that `declare module 'latchkey'` augments (see SessionData).
import type { DefaultSessionData, Session } from '../index.js';

/** A request handler that gets the request's session as its third argument. */
export type SessionRequestHandler<Data extends object = DefaultSessionData> = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session<Data>,
) => unknown;

/** Answers an error thrown (or rejected) by a handler. */
export type SessionErrorHandler = (error: unknown, req: IncomingMessage, res: ServerResponse) => void;

/** Options of {@link withSession}: the session options of every adapter, plus `onError`. */
export interface NodeSessionOptions extends Omit<SessionOptions<IncomingMessage>, 'keyword'> {
  /**
   * Answers an error thrown by the handler. The default answers with the error's `status` (503
   * for a `SessionError` with code `STORE_UNAVAILABLE`; 500 for an error without a 4xx or 5xx
   * `status`) and a plain-text body without details, writes other 5xx errors to stderr (except
   * when `NODE_ENV` is `test`), and destroys the connection when the headers were already sent.
   * @default {@link defaultErrorHandler}
   */
  onError?: SessionErrorHandler;
}

/** The request listener returned by {@link withSession}. */
export interface NodeSessionListener<Data extends object = DefaultSessionData> {
  (req: IncomingMessage, res: ServerResponse): void;
  /** The manager behind the listener (options, store). */
  readonly manager: SessionManager<Data>;
  /** Closes the Redis connection latchkey created itself (a client or store you passed stays open). */
  close(): Promise<void>;
}

/** The HTTP status an error asks for: its `status` or `statusCode` when that is 4xx or 5xx, else 500. */
function statusOf(error: unknown): number {
  if (typeof error === 'object' && error !== null) {
    const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
    for (const code of [status, statusCode]) {
      if (typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599) return code;
    }
  }
  return 500;
}

/**
 * The default {@link NodeSessionOptions.onError}: the error's status (`status` or `statusCode`,
 * else 500) with its standard reason phrase as a plain-text body, so no detail leaks to the client.
 */
export function defaultErrorHandler(error: unknown, _req: IncomingMessage, res: ServerResponse): void {
  const status = statusOf(error);
  if (status >= 500 && !isSessionError(error) && process.env.NODE_ENV !== 'test') {
    // The app gave no error handler: like Koa and Express, say what went wrong on stderr.
    // eslint-disable-next-line no-console
    console.error(error);
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (status === 503) headers['retry-after'] = '1';
  res.writeHead(status, headers);
  res.end(STATUS_CODES[status] ?? 'Error');
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/**
 * Sessions for a plain `node:http` or `node:https` server, no framework needed: wrap your
 * request handler, and it gets the session as a third argument.
 *
 * ```ts
 * createServer(withSession({ redis: client }, async (req, res, session) => {
 *   res.end(`Hello, ${await session.get('name')}`);
 * })).listen(8080);
 * ```
 *
 * `secure: 'auto'` sets the Secure attribute on connections that are TLS (`node:https`); behind
 * a proxy that terminates TLS, set `secure: true`. A handler's error, thrown or rejected, goes to
 * `onError`, never to an unhandled rejection.
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
 */
export function withSession<Data extends object = DefaultSessionData>(
  options: NodeSessionOptions,
  handler: SessionRequestHandler<Data>,
): NodeSessionListener<Data> {
  if (typeof handler !== 'function') {
    throw new SessionError('INVALID_OPTIONS', 'withSession(options, handler) takes the request handler as its second argument; pass {} as options to use the defaults');
  }
  const { onError = defaultErrorHandler, ...sessionOptions } = options;
  if (typeof onError !== 'function') {
    throw new SessionError('INVALID_OPTIONS', `onError must be a function (error, req, res) => void, got ${typeof onError}`);
  }
  const manager = new SessionManager<Data>(sessionOptions);
  const fail = (error: unknown, req: IncomingMessage, res: ServerResponse): void => {
    try {
      onError(error, req, res);
    } catch {
      // The error handler itself failed: closing the connection is all that is left.
      res.destroy();
    }
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const { session } = openNodeSession(manager, req, res, { isSecure: () => (req.socket as TLSSocket).encrypted === true });
    try {
      const result = handler(req, res, session);
      if (isThenable(result)) result.then(undefined, (error: unknown) => fail(error, req, res));
    } catch (error) {
      fail(error, req, res);
    }
  };
  return Object.assign(listener, { manager, close: () => manager.close() });
}
