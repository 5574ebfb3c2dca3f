import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse, serialize, type SerializeOptions } from 'cookie';
import { SessionError } from './errors.js';
import { createSessionId, isSessionId } from './id.js';
import { MAX_COOKIE_BYTES, type ResolvedOptions } from './options.js';

/** What the request's Cookie header says about the session cookie. */
export interface InboundCookie {
  /** Whether the header holds a cookie with the session cookie's name at all. */
  readonly present: boolean;
  /** The id it carries, if it has exactly the shape of an id latchkey issues (and a good signature). */
  readonly id: string | undefined;
  /** Why a cookie that is present carries no usable id. */
  readonly invalid: 'malformed' | 'bad-signature' | undefined;
  /** Whether it was signed with one of the previous secrets, so it should be re-issued. */
  readonly resign: boolean;
}

const NO_COOKIE: InboundCookie = { present: false, id: undefined, invalid: undefined, resign: false };
const MALFORMED: InboundCookie = { present: true, id: undefined, invalid: 'malformed', resign: false };
const BAD_SIGNATURE: InboundCookie = { present: true, id: undefined, invalid: 'bad-signature', resign: false };

/** Values are taken as they are: an id never needs decoding, so a percent sign is simply invalid. */
const AS_IS = (value: string): string => value;

/** An HMAC-SHA256 in unpadded base64url: 43 characters, the last one holding 4 bits. */
const SIGNATURE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** The signature of `id` under `secret`. */
function sign(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url');
}

/**
 * Which of `secrets` signed `id` with `signature`: its index, or -1. Every secret is tried and
 * compared in constant time, so the answer's timing says nothing about the signature.
 */
function signerOf(id: string, signature: string, secrets: readonly string[]): number {
  const given = Buffer.from(signature, 'base64url');
  let signer = -1;
  for (let i = 0; i < secrets.length; i++) {
    if (timingSafeEqual(Buffer.from(sign(id, secrets[i] as string), 'base64url'), given) && signer < 0) signer = i;
  }
  return signer;
}

/**
 * Reads the session cookie from a Cookie header. Anything that is not a well-formed id (with a
 * good signature, when `secrets` are given) reads as "no id"; this never throws.
 */
export function readSessionCookie(header: string | undefined, name: string, secrets: readonly string[] = []): InboundCookie {
  if (!header) return NO_COOKIE;
  const value = parse(header, { decode: AS_IS })[name];
  if (value === undefined) return NO_COOKIE;
  if (isAmbiguous(header, name)) return MALFORMED;
  if (secrets.length === 0) return isSessionId(value) ? { present: true, id: value, invalid: undefined, resign: false } : MALFORMED;
  const dot = value.indexOf('.');
  const id = dot < 0 ? value : value.slice(0, dot);
  if (!isSessionId(id)) return MALFORMED;
  const signature = dot < 0 ? '' : value.slice(dot + 1);
  if (!SIGNATURE.test(signature)) return BAD_SIGNATURE;
  const signer = signerOf(id, signature, secrets);
  return signer < 0 ? BAD_SIGNATURE : { present: true, id, invalid: undefined, resign: signer > 0 };
}

/**
 * Whether the cookie `name` is in the header more than once, or only under a look-alike name that
 * a parser trims to it (`" session"`, `"session "`). Which of two a server picks differs between
 * parsers, so an attacker who can plant a second cookie (from a sibling subdomain, say) could
 * choose the session; and a cookie set under a name with extra whitespace escapes the browser's
 * `__Host-` rules yet reads as the real one. latchkey takes none of them.
 */
function isAmbiguous(header: string, name: string): boolean {
  const at = header.indexOf(name);
  // The common case, the name written once right after a separator, needs no splitting.
  if (at === header.lastIndexOf(name) && (at === 0 || header[at - 1] === ';' || header.startsWith('; ', at - 2))) {
    return header[at + name.length] !== '=';
  }
  let seen = 0;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const raw = pair.slice(0, eq);
    if (raw.trim() !== name) continue;
    if ((raw !== name && raw !== ` ${name}`) || ++seen > 1) return true;
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
 * once per Secure flag; each response then only puts the id (and its signature) in front, which
 * is safe because both are base64url and need no encoding.
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when the line that sets the cookie or the one that
 *   clears it would pass 4096 bytes, the most browsers keep; the message names the line
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
  const secret = options.secrets[0];
  const valueOf = secret === undefined ? (id: string) => id : (id: string) => `${id}.${sign(id, secret)}`;

  const sessionBytes = Buffer.byteLength(`${name}=${valueOf(createSessionId())}${setAttributes[1]}`);
  const clearedBytes = Buffer.byteLength(cleared[1] as string);
  const over = Math.max(sessionBytes, clearedBytes) - MAX_COOKIE_BYTES;
  if (over > 0) {
    // Both lines carry the name, path and domain, so shortening those by the larger excess fixes both.
    const [line, bytes] =
      sessionBytes >= clearedBytes
        ? ['the Set-Cookie line that sets the session cookie', sessionBytes]
        : ['the Set-Cookie line that clears the session cookie (sent when a session is destroyed)', clearedBytes];
    throw new SessionError(
      'INVALID_OPTIONS',
      `${line} would be ${bytes} bytes, ${over} over the ${MAX_COOKIE_BYTES} browsers keep, so browsers would ignore it; ` +
        `shorten cookieName, path or domain by at least ${over} byte${over === 1 ? '' : 's'}`,
    );
  }
  return {
    session: (id, secure) => `${name}=${valueOf(id)}${setAttributes[secure ? 1 : 0]}`,
    cleared: (secure) => cleared[secure ? 1 : 0] as string,
  };
}
