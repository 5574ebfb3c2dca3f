import { parse, serialize, type SerializeOptions } from 'cookie';
import { isSessionId } from './id.js';
import type { ResolvedOptions } from './options.js';

/** What the request's Cookie header says about the session cookie. */
export interface InboundCookie {
  /** Whether the header holds a cookie with the session cookie's name at all. */
  readonly present: boolean;
  /** The id it carries, if it has exactly the shape of an id latchkey issues. */
  readonly id: string | undefined;
}

const NO_COOKIE: InboundCookie = { present: false, id: undefined };

/** Values are taken as they are: an id never needs decoding, so a percent sign is simply invalid. */
const AS_IS = (value: string): string => value;

/**
 * Reads the session cookie from a Cookie header. Anything that is not a well-formed id reads as
 * "no id"; this never throws.
 */
export function readSessionCookie(header: string | undefined, name: string): InboundCookie {
  if (!header) return NO_COOKIE;
  const value = parse(header, { decode: AS_IS })[name];
  if (value === undefined) return NO_COOKIE;
  return { present: true, id: isSessionId(value) && !isRepeated(header, name) ? value : undefined };
}

/**
 * Whether the header holds the cookie `name` more than once. Which one a server picks differs
 * between parsers, so an attacker who can plant a second cookie (from a sibling subdomain, say)
 * could choose the session; with two, latchkey takes neither.
 */
function isRepeated(header: string, name: string): boolean {
  let seen = 0;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq >= 0 && pair.slice(0, eq).trim() === name && ++seen > 1) return true;
  }
  return false;
}

function attributes(options: ResolvedOptions, secure: boolean): SerializeOptions {
  return {
    httpOnly: options.httpOnly,
    secure,
    sameSite: options.sameSite,
    path: options.path,
    domain: options.domain,
  };
}

/** The Set-Cookie value that hands the browser `id` (with Max-Age unless the lifetime is `null`). */
export function sessionCookie(options: ResolvedOptions, id: string, secure: boolean): string {
  const maxAge = options.cookieLifetime === null ? undefined : Math.ceil(options.cookieLifetime);
  return serialize(options.cookieName, id, { ...attributes(options, secure), maxAge });
}

/** The Set-Cookie value that makes the browser drop the session cookie. */
export function clearedCookie(options: ResolvedOptions, secure: boolean): string {
  return serialize(options.cookieName, '', { ...attributes(options, secure), maxAge: 0, expires: new Date(0) });
}
