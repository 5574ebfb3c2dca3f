import type { RequestSession } from './session.js';

/** A response's headers as the core needs them, each adapter mapping them to its framework. */
export interface ResponseHeaders {
  /** The header's current value, `undefined` when it is not set. */
  get(name: string): string | number | readonly string[] | undefined;
  /** Sets the header, replacing its value. */
  set(name: string, value: string): void;
  /** Adds one more Set-Cookie header, keeping those already there. */
  appendSetCookie(value: string): void;
}

/** Whether a Vary value already covers the Cookie header. */
function variesOnCookie(vary: string): boolean {
  return vary.split(',').some((name) => {
    const trimmed = name.trim().toLowerCase();
    return trimmed === 'cookie' || trimmed === '*';
  });
}

/**
 * Writes what a response of a request with `session` needs. A response that depends on the
 * session says so with `Vary: Cookie`, and one that sets the cookie is `no-store` unless the app
 * chose otherwise: without them a shared cache could serve one user's page, or cookie, to others.
 */
export function writeSessionHeaders(session: RequestSession, headers: ResponseHeaders): void {
  const cookies = session.setCookies();
  if (!session.active) return;
  const vary = headers.get('vary');
  if (vary === undefined) {
    headers.set('vary', 'Cookie');
  } else {
    const current = Array.isArray(vary) ? vary.join(', ') : String(vary);
    if (!variesOnCookie(current)) headers.set('vary', current === '' ? 'Cookie' : `${current}, Cookie`);
  }
  if (cookies.length === 0) return;
  for (const cookie of cookies) headers.appendSetCookie(cookie);
  if (headers.get('cache-control') === undefined) headers.set('cache-control', 'no-store');
}
