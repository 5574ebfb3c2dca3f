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
  // The common case, the name written once, needs no splitting.
  if (header.indexOf(name) === header.lastIndexOf(name)) return false;
  let seen = 0;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq >= 0 && pair.slice(0, eq).trim() === name && ++seen > 1) return true;
  }
  return false;
}

/** Writes the session's Set-Cookie values; built once per middleware, as the options never change. */
export interface CookieWriter {
  /** The Set-Cookie value that hands the browser `id` (with Max-Age unless the lifetime is `null`). */
  session(id: string, secure: boolean): string;
  /** The Set-Cookie value that makes the browser drop the session cookie. */
  cleared(secure: boolean): string;
}

/**
 * A {@link CookieWriter} for `options`. The attributes are serialized by the `cookie` package
 * once per Secure flag; each response then only puts the id in front, which is safe because an
 * id is base64url and needs no encoding.
 */
export function createCookieWriter(options: ResolvedOptions): CookieWriter {
  const maxAge = options.cookieLifetime === null ? undefined : Math.ceil(options.cookieLifetime);
  const attributes = (secure: boolean): SerializeOptions => ({
    httpOnly: options.httpOnly,
    secure,
    sameSite: options.sameSite,
    path: options.path,
    domain: options.domain,
  });
  const name = options.cookieName;
  const attributesOf = (secure: boolean): string => serialize(name, '', { ...attributes(secure), maxAge }).slice(name.length + 1);
  const setAttributes = [attributesOf(false), attributesOf(true)] as const;
  const cleared = [false, true].map((secure) => serialize(name, '', { ...attributes(secure), maxAge: 0, expires: new Date(0) }));
  return {
    session: (id, secure) => `${name}=${id}${setAttributes[secure ? 1 : 0]}`,
    cleared: (secure) => cleared[secure ? 1 : 0] as string,
  };
}
