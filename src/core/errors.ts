import { STATUS_CODES } from 'node:http';
/**
 * What went wrong, as a stable string applications and tests can match on.
 *
 * - `INVALID_OPTIONS`: the middleware or a store was configured wrongly (thrown at start-up).
 * - `INVALID_ARGUMENT`: a session method was called with a key or value it cannot store.
 * - `STORE_UNAVAILABLE`: the store could not be reached in time (Redis down, slow, failing over).
 * - `STORE_ERROR`: the store answered with an error latchkey did not expect (e.g. a key of the wrong type).
 * - `HEADERS_SENT`: a new session was about to be created after the response headers were sent,
 *   so its cookie could never reach the browser; or, on a runtime that closes the request with its
 *   response (Hono on Deno), the session was first used after that.
 * - `LIMIT_EXCEEDED`: a write would pass one of the `limits` (keys, key length, value or session
 *   size); nothing was written.
 * - `SESSION_GONE`: the session this request was using was destroyed, regenerated, revoked or expired by
 *   another request while this one ran; the write was not applied and the old id stays dead.
 * - `CSRF_MISMATCH`: an unsafe request (POST, PUT, ...) carried no CSRF token, or the wrong one.
 */
export type SessionErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_ARGUMENT'
  | 'STORE_UNAVAILABLE'
  | 'STORE_ERROR'
  | 'HEADERS_SENT'
  | 'LIMIT_EXCEEDED'
  | 'SESSION_GONE'
  | 'CSRF_MISMATCH';

const STATUS: Record<SessionErrorCode, number> = {
  INVALID_OPTIONS: 500,
  INVALID_ARGUMENT: 500,
  STORE_UNAVAILABLE: 503,
  STORE_ERROR: 500,
  HEADERS_SENT: 500,
  LIMIT_EXCEEDED: 413,
  SESSION_GONE: 409,
  CSRF_MISMATCH: 403,
};

/** What a client is told to wait before trying again after a 503. */
const RETRY_LATER: Readonly<Record<string, string>> = Object.freeze({ 'Retry-After': '1' });

/**
 * The one error type latchkey throws. `code` says what happened, `status` is the HTTP status a
 * framework should answer with (503 for `STORE_UNAVAILABLE`), `cause` holds the underlying error.
 *
 * The message is for logs, not for clients: it can quote Redis' reply or the first characters of
 * a session key. `status`, `headers` and `expose` follow the http-errors conventions that the
 * default error handlers of Koa, Express and Fastify read, and `getResponse()` is what Hono's reads.
 */
export class SessionError extends Error {
  /** What went wrong; see {@link SessionErrorCode}. */
  readonly code: SessionErrorCode;
  /**
   * The HTTP status that fits this error: 503 when the store is unavailable, 403 for a CSRF
   * mismatch, 409 for a session gone mid-request, 413 for a passed limit, otherwise 500.
   */
  readonly status: number;
  // Declared, not defined: only a 503 carries the property, so logs of other errors don't show it.
  /**
   * Headers for the response, read by the default error handlers of Koa, Express and Fastify:
   * `Retry-After: 1` when `status` is 503, otherwise none.
   */
  declare readonly headers?: Readonly<Record<string, string>>;
  /** Tells frameworks (Koa, http-errors conventions) not to show the message to the client. */
  readonly expose = false;

  /**
   * @param code - what went wrong
   * @param message - a sentence for the developer; it is prefixed with `latchkey: `
   * @param options - `cause`: the error that led to this one
   */
  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(`latchkey: ${message}`, options);
    this.name = 'SessionError';
    this.code = code;
    this.status = STATUS[code];
    if (this.status === 503) this.headers = RETRY_LATER;
  }

  /**
   * A plain-text response for this error (its status and reason phrase, no details), in the shape Hono's
   * default error handler looks for.
   */
  getResponse(): Response {
    const text = STATUS_CODES[this.status] ?? 'Error';
    return new Response(text, { status: this.status, headers: { 'content-type': 'text/plain; charset=UTF-8', ...this.headers } });
  }
}

/** Whether `value` is a {@link SessionError}, optionally with the given code. */
export function isSessionError(value: unknown, code?: SessionErrorCode): value is SessionError {
  return value instanceof SessionError && (code === undefined || value.code === code);
}
