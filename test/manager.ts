// Driving a SessionManager the way an adapter does, without a framework: for tests of the core.
import assert from 'node:assert/strict';
import type { RequestContext, SessionHandle } from '../src/index.js';

/** A plain-HTTP request context carrying `cookie` as its Cookie header, before the response. */
export function context(cookie?: string): RequestContext {
  return { cookieHeader: () => cookie, isSecure: () => false, headersSent: () => false };
}

/** The `name=value` pair of the session cookie `handle` sets; fails if it sets none. */
export function cookieOf(handle: SessionHandle): string {
  const [line] = handle.setCookies();
  assert.ok(line, 'a session cookie was set');
  return line.split(';')[0] as string;
}
