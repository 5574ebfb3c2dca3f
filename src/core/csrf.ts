import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SessionError } from './errors.js';
import type { Session, UntypedSessionData } from './session.js';

/** The session key that holds the CSRF token. */
export const CSRF_KEY = '_csrf';

/**
 * The part of a {@link Session} the CSRF helpers use. Every `Session<Data>` is one, whatever its
 * `Data`: the token lives under its own key, {@link CSRF_KEY}, next to the app's keys.
 */
export type CsrfSession = Pick<Session<UntypedSessionData>, 'get' | 'set'>;

/** Methods that must not change state (RFC 9110, 9.2.1), so they need no token. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** 32 random bytes in unpadded base64url: the only tokens {@link csrfToken} hands out. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

function isSafeMethod(method: unknown): boolean {
  // ASCII letters only: 'ſ'.toUpperCase() is 'S', so 'OPTIONſ' would otherwise pass as OPTIONS.
  return typeof method === 'string' && /^[A-Za-z]+$/.test(method) && SAFE_METHODS.has(method.toUpperCase());
}

function checkSession(session: unknown, caller: string): void {
  if (typeof (session as Partial<CsrfSession> | null | undefined)?.get !== 'function') {
    throw new SessionError(
      'INVALID_ARGUMENT',
      `${caller}(session, ...) takes the request's session (req.session, c.get('session'), ...), got ${session === null ? 'null' : typeof session}; is latchkey's session middleware installed on this route?`,
    );
  }
}

const MISMATCH =
  "the request's CSRF token does not match this session's: it was issued for another session (e.g. one that was destroyed since), or the wrong value was passed to checkCsrf()";

/** Why the CSRF check fails, or `undefined` when it passes. */
async function failure(session: CsrfSession, method: unknown, token: unknown, caller: string): Promise<string | undefined> {
  checkSession(session, caller);
  if (isSafeMethod(method)) return undefined;
  if (typeof token !== 'string' || token === '') {
    return "the request carried no CSRF token. Put the value of csrfToken(session) in the page (a hidden form field or a header such as X-CSRF-Token) and pass it to checkCsrf()";
  }
  const stored = await session.get(CSRF_KEY);
  // Only what csrfToken() makes counts: a short value the app put under the key would be guessable.
  if (typeof stored !== 'string' || !TOKEN_PATTERN.test(stored)) {
    return 'this session has no CSRF token: the visitor has no session (new, expired or logged out), or csrfToken(session) was never called for it. Call csrfToken(session) when rendering the page that sends this request';
  }
  // Lengths are public (every token is 43 characters); checking them first spares encoding a huge input.
  if (token.length !== stored.length) return MISMATCH;
  const given = Buffer.from(token, 'utf8');
  const expected = Buffer.from(stored, 'utf8');
  // Non-ASCII input can have the right length in characters but not in bytes, and timingSafeEqual throws on that.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return MISMATCH;
  return undefined;
}

/**
 * The session's CSRF token (synchronizer token pattern): 32 random bytes, base64url (43
 * characters), made on first use and kept under {@link CSRF_KEY} for the session's lifetime;
 * `regenerate()` drops it, so the session gets a new one after login. Put it in every page that
 * sends a POST, PUT, PATCH or DELETE, and check it with {@link checkCsrf}.
 *
 * The first call writes to the session, so a visitor without one gets a session (and a cookie):
 * call it before the response headers are sent.
 *
 * ```ts
 * import express from 'express';
 * import { checkCsrf, csrfToken } from 'latchkey';
 *
 * app.get('/transfer', async (req, res) => {
 *   res.send(`<form method="post"><input type="hidden" name="_csrf" value="${await csrfToken(req.session)}"> ...`);
 * });
 * app.post('/transfer', express.urlencoded({ extended: false }), async (req, res) => {
 *   // A mismatch throws a SessionError with status 403, which Express' error handler answers.
 *   await checkCsrf(req.session, req.method, req.get('x-csrf-token') ?? req.body?._csrf);
 *   res.send('done');
 * });
 * ```
 *
 * @param session - the request's session (any `Session<Data>`)
 * @returns the token, the same for every request of the session
 * @throws {@link SessionError} `INVALID_ARGUMENT` when `session` is not a session; any error of
 * `session.get` / `session.set` (e.g. `STORE_UNAVAILABLE`, `HEADERS_SENT`)
 */
export async function csrfToken(session: CsrfSession): Promise<string> {
  checkSession(session, 'csrfToken');
  const stored = await session.get(CSRF_KEY);
  if (typeof stored === 'string' && TOKEN_PATTERN.test(stored)) return stored;
  const token = randomBytes(32).toString('base64url');
  await session.set(CSRF_KEY, token);
  return token;
}

/**
 * Whether a request passes the CSRF check: always for the safe methods GET, HEAD, OPTIONS and
 * TRACE (any letter case), without reading the session; for every other method only when `token`
 * is the session's token from {@link csrfToken}, compared in constant time. A missing, empty,
 * non-string or wrong token fails, and so does a session that has no token yet (or holds under
 * {@link CSRF_KEY} something `csrfToken` did not make).
 *
 * @param session - the request's session (any `Session<Data>`)
 * @param method - the request's HTTP method
 * @param token - what the request sent as its token (a header or form field), whatever its type
 * @throws {@link SessionError} `INVALID_ARGUMENT` when `session` is not a session; any error of
 * `session.get` (e.g. `STORE_UNAVAILABLE`). Never for a bad `method` or `token`.
 */
export async function verifyCsrf(session: CsrfSession, method: string, token: unknown): Promise<boolean> {
  return (await failure(session, method, token, 'verifyCsrf')) === undefined;
}

/**
 * {@link verifyCsrf}, throwing when the check fails, so the framework's error path answers 403.
 *
 * @param session - the request's session (any `Session<Data>`)
 * @param method - the request's HTTP method
 * @param token - what the request sent as its token (a header or form field), whatever its type
 * @throws {@link SessionError} `CSRF_MISMATCH` (status 403) when the check fails;
 * `INVALID_ARGUMENT` when `session` is not a session; any error of `session.get`
 */
export async function checkCsrf(session: CsrfSession, method: string, token: unknown): Promise<void> {
  const reason = await failure(session, method, token, 'checkCsrf');
  if (reason !== undefined) throw new SessionError('CSRF_MISMATCH', `CSRF check failed: ${reason}`);
}
