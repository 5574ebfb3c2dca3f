import { createHmac, timingSafeEqual } from 'node:crypto';
import { serialize, type SerializeOptions } from 'cookie';
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
  readonly invalid: 'malformed' | 'bad-signature' | 'duplicate' | undefined;
}

const NO_COOKIE: InboundCookie = { present: false, id: undefined, invalid: undefined };
const MALFORMED: InboundCookie = { present: true, id: undefined, invalid: 'malformed' };
const BAD_SIGNATURE: InboundCookie = { present: true, id: undefined, invalid: 'bad-signature' };
const DUPLICATE: InboundCookie = { present: true, id: undefined, invalid: 'duplicate' };

/**
 * The longest Max-Age latchkey writes, in seconds: 400 days, the most browsers keep a cookie
 * (RFC 6265bis); a session without an absolute lifetime gets it.
 */
export const MAX_COOKIE_AGE = 400 * 24 * 60 * 60;

/** An HMAC-SHA256 in unpadded base64url: 43 characters, the last one holding 4 bits. */
const SIGNATURE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** The signature of `id` under `secret`. */
function sign(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url');
}

/**
 * Whether one of `secrets` signed `id` with `signature`. Every secret is tried and compared in
 * constant time, so the answer's timing says nothing about the signature or which secret it was.
 */
function isSigned(id: string, signature: string, secrets: readonly string[]): boolean {
  const given = Buffer.from(signature, 'base64url');
  let signed = false;
  for (const secret of secrets) {
    if (timingSafeEqual(Buffer.from(sign(id, secret), 'base64url'), given)) signed = true;
  }
  return signed;
}

/**
 * Reads the session cookie from a Cookie header. Anything that is not a well-formed id (with a
 * good signature, when `secrets` are given) reads as "no id"; this never throws. `name` is a
 * cookie-name token, as `resolveOptions()` checks.
 */
export function readSessionCookie(header: string | undefined, name: string, secrets: readonly string[] = []): InboundCookie {
  // An empty name occurs everywhere and is no token; the search for it would never move on.
  if (!header || name === '') return NO_COOKIE;
  const value = sessionValueOf(header, name);
  if (typeof value !== 'string') return value;
  if (secrets.length === 0) return isSessionId(value) ? { present: true, id: value, invalid: undefined } : MALFORMED;
  const dot = value.indexOf('.');
  const id = dot < 0 ? value : value.slice(0, dot);
  if (!isSessionId(id)) return MALFORMED;
  const signature = dot < 0 ? '' : value.slice(dot + 1);
  if (!SIGNATURE.test(signature) || !isSigned(id, signature, secrets)) return BAD_SIGNATURE;
  return { present: true, id, invalid: undefined };
}

/** 32 hex digits: what remains of a UUID once Python's `uuid.UUID()` has taken its decorations off. */
const UUID_HEX = /^[0-9A-Fa-f]{32}$/;

/**
 * The UUID in `value` as 32 lowercase hex characters, read as Python's `uuid.UUID(value)` reads
 * it (what bottle-session does with its cookie): `urn:` and `uuid:` removed wherever they are,
 * braces stripped from both ends, every `-` removed, then exactly 32 hex digits in any case. A
 * value in double quotes (as Python's cookie parser unquotes it) is read without them. Python's
 * `int(..., 16)` would also take a `0x`, a sign, spaces or `_` between digits, which no UUID
 * bottle-session writes has: those are refused here. `undefined` when it is no UUID.
 */
export function parseUuid(value: string): string | undefined {
  let text = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  // The common case, a cookie bottle-session or latchkey wrote, allocates nothing more.
  if (text.length !== 32 || !UUID_HEX.test(text)) {
    text = text.replaceAll('urn:', '').replaceAll('uuid:', '').replace(/^[{}]+|[{}]+$/g, '').replaceAll('-', '');
    if (!UUID_HEX.test(text)) return undefined;
  }
  return text.toLowerCase();
}

/**
 * Reads bottle-session's cookie from a Cookie header: its value is a UUID in any form Python's
 * `uuid.UUID()` accepts (see {@link parseUuid}), and the id is its 32 lowercase hex characters.
 * Anything else reads as a malformed cookie; like {@link readSessionCookie}, this never throws and
 * refuses a cookie sent twice.
 */
export function readBottleCookie(header: string | undefined, name: string): InboundCookie {
  if (!header || name === '') return NO_COOKIE;
  const value = sessionValueOf(header, name);
  if (typeof value !== 'string') return value;
  const id = parseUuid(value);
  return id === undefined ? MALFORMED : { present: true, id, invalid: undefined };
}

/**
 * The raw value of the cookie `name` in `header` (not decoded), found as the session cookie is:
 * `undefined` when it is absent, sent twice, or under a look-alike name. For `adopt`, which reads
 * other libraries' cookies.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header || name === '') return undefined;
  const value = sessionValueOf(header, name);
  return typeof value === 'string' ? value : undefined;
}

const TAB = 0x09;
const SPACE = 0x20;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;

/** One character of what `String#trim` removes (`\s`), for characters outside ASCII. */
const WIDE_WHITESPACE = /\s/y;

/**
 * Whether the character at `index` is whitespace to `String#trim`. Parsers other than `cookie`
 * trim more than spaces and tabs from a name, so any of it makes a look-alike.
 */
function isWhitespaceAt(header: string, index: number): boolean {
  const code = header.charCodeAt(index);
  if (code < 0x80) return code === SPACE || (code >= TAB && code <= 0x0d);
  WIDE_WHITESPACE.lastIndex = index;
  return WIDE_WHITESPACE.test(header);
}

/** Whether `code` is a space or a tab, all that the `cookie` package trims from names and values. */
function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

/**
 * The value of the cookie `name` in `header`, as the `cookie` package's `parse()` reads it without
 * decoding: the first pair whose name is `name` once spaces and tabs are trimmed, its value
 * trimmed the same way, quotes and percent signs kept (an id never needs decoding, so a percent
 * sign is simply invalid). Or why there is none to take.
 *
 * Only the places where `name` occurs are looked at, as parsing every pair made a header of many
 * cookies costly: a quarter of a millisecond of CPU per request for 1,846 of them (15.5 KB), 30
 * times what finding the name takes. A place counts only where it is a whole pair's name: after
 * a `;` or the header's start and before the pair's `=`, with nothing but whitespace between, so
 * the name inside another cookie's name or value (`xsession=1`, `a=session=2`) is passed over. A
 * pair without `=` is no cookie, as for `parse`.
 *
 * The cookie is refused when `name` is in the header under a look-alike name that a parser trims
 * to it (`"  session"`, with more than the one space browsers write after `;`, or `"session "`:
 * malformed), or more than once (duplicate). A cookie set under a name with extra whitespace escapes the browser's
 * `__Host-` rules yet reads as the real one; and which of two copies a server picks differs
 * between parsers, so an attacker who can plant a second cookie (from a sibling subdomain, say)
 * could choose the session. latchkey takes none of them. Browsers send two copies when they hold
 * cookies of one name for different paths or domains, e.g. one left over after the app changed
 * its `path` or `domain`.
 */
function sessionValueOf(header: string, name: string): string | InboundCookie {
  let value: string | undefined;
  let copies = 0;
  let lookAlike = false;
  // A name token holds no whitespace, `;` or `=`, so no pair's name starts inside an occurrence;
  // and each run of whitespace is walked at most twice (after one occurrence, before the next).
  for (let at = header.indexOf(name); at >= 0; at = header.indexOf(name, at + name.length)) {
    let start = at;
    let blank = true;
    while (start > 0 && isWhitespaceAt(header, start - 1)) {
      start--;
      blank &&= isBlank(header.charCodeAt(start));
    }
    if (start > 0 && header.charCodeAt(start - 1) !== SEMICOLON) continue;
    let end = at + name.length;
    while (end < header.length && isWhitespaceAt(header, end)) {
      blank &&= isBlank(header.charCodeAt(end));
      end++;
    }
    if (header.charCodeAt(end) !== EQUALS) continue;
    // Browsers write `; ` between cookies, so one space before the name is the real one.
    const exact = end === at + name.length && (start === at || (start === at - 1 && header.charCodeAt(start) === SPACE));
    if (exact) copies++;
    else lookAlike = true;
    // `parse` trims only spaces and tabs, so a name padded with other whitespace is not the cookie.
    if (blank && value === undefined) value = blankTrimmed(header, end + 1);
    if (lookAlike && value !== undefined) return MALFORMED;
  }
  if (value === undefined) return NO_COOKIE;
  return copies > 1 ? DUPLICATE : value;
}

/** The value that starts at `from` and runs to the next `;`, without the spaces and tabs around it. */
function blankTrimmed(header: string, from: number): string {
  const semicolon = header.indexOf(';', from);
  let end = semicolon < 0 ? header.length : semicolon;
  let start = from;
  while (start < end && isBlank(header.charCodeAt(start))) start++;
  while (end > start && isBlank(header.charCodeAt(end - 1))) end--;
  return header.slice(start, end);
}

/** Writes the session's Set-Cookie values; built once per middleware, as the options never change. */
export interface CookieWriter {
  /**
   * The Set-Cookie value that hands the browser `id`, with `maxAge` (seconds) as its Max-Age, or
   * none (a browser-session cookie) when `undefined`.
   */
  session(id: string, secure: boolean, maxAge: number | undefined): string;
  /** The Set-Cookie value that makes the browser drop the session cookie. */
  cleared(secure: boolean): string;
  /**
   * Set-Cookie values that drop every copy of the session cookie a browser could have sent with a
   * request to `target`: one for each Path that request's path could match (up to a few segments
   * deep) and each Domain its host could match, the configured ones included unless `keepOwn`
   * (the response sets a new cookie there).
   */
  clearedCopies(secure: boolean, target: { readonly path: string; readonly host: string | undefined } | undefined, keepOwn: boolean): string[];
}

/** Segments of the request path whose Paths {@link CookieWriter.clearedCopies} covers. */
const COPY_PATH_DEPTH = 3;
/** Parent domains of the request's host that {@link CookieWriter.clearedCopies} covers. */
const COPY_DOMAIN_DEPTH = 3;

/**
 * The Paths a cookie sent with a request for `path` can have (RFC 6265, 5.1.4): `/`, and each
 * prefix that ends at a segment boundary, with and without its trailing slash.
 */
function cookiePathsOf(path: string): string[] {
  const end = path.search(/[?#]/);
  const plain = end < 0 ? path : path.slice(0, end);
  const paths = ['/'];
  if (!plain.startsWith('/')) return paths;
  let from = 1;
  for (let depth = 0; depth < COPY_PATH_DEPTH && from < plain.length; depth++) {
    const slash = plain.indexOf('/', from);
    if (slash < 0) {
      paths.push(plain);
      break;
    }
    paths.push(plain.slice(0, slash), plain.slice(0, slash + 1));
    from = slash + 1;
  }
  return paths;
}

/** The Domains a cookie sent to `host` can have: the host and its parents (no IP addresses, no top-level domains). */
function cookieDomainsOf(host: string | undefined): string[] {
  const name = host?.toLowerCase().replace(/:[0-9]*$/, '') ?? '';
  if (!/^[a-z0-9.-]+$/.test(name) || /^[0-9.]+$/.test(name)) return [];
  const labels = name.split('.').filter((label) => label !== '');
  const domains: string[] = [];
  for (let i = 0; i + 1 < labels.length && domains.length < COPY_DOMAIN_DEPTH; i++) domains.push(labels.slice(i).join('.'));
  return domains;
}

const SAME_SITE_NAMES = { lax: 'Lax', strict: 'Strict', none: 'None' } as const;

/**
 * The line that sets bottle-session's cookie, byte for byte as the Python plugin's (Python's
 * `http.cookies.Morsel` writes the attributes sorted by name): `NAME=ID; HttpOnly; Max-Age=N;
 * Path=/; Secure`, HttpOnly and Secure only when set, Domain and SameSite (which the plugin never
 * writes) only when configured, in their sorted places. Without a Max-Age (`cookieLifetime:
 * null`) the attribute is left out, where the plugin writes a literal `Max-Age=None` that
 * browsers ignore.
 */
function bottleSessionLine(options: ResolvedOptions): (id: string, secure: boolean, maxAge: number | undefined) => string {
  const { cookieName, domain, httpOnly, path, sameSite } = options;
  const before = `${domain === undefined ? '' : `; Domain=${domain}`}${httpOnly ? '; HttpOnly' : ''}`;
  const after = `; Path=${path}${sameSite === undefined ? '' : `; SameSite=${SAME_SITE_NAMES[sameSite]}`}`;
  const tails = [after, `${after}; Secure`] as const;
  return (id, secure, maxAge) => `${cookieName}=${id}${before}${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}${tails[secure ? 1 : 0]}`;
}

/**
 * A {@link CookieWriter} for `options`. The attributes are serialized by the `cookie` package
 * once per Secure flag; each response then only puts the id (and its signature) and Max-Age in
 * front, which is safe because they are base64url and digits and need no encoding.
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when the line that sets the cookie or the one that
 *   clears it would pass 4096 bytes, the most browsers keep; the message names the line
 */
export function createCookieWriter(options: ResolvedOptions): CookieWriter {
  const name = options.cookieName;
  const attributes = (secure: boolean, path = options.path, domain = options.domain): SerializeOptions => ({
    httpOnly: options.httpOnly,
    secure,
    sameSite: options.sameSite,
    path,
    domain,
  });
  const attributesOf = (secure: boolean): string => serialize(name, '', attributes(secure)).slice(name.length + 1);
  const setAttributes = [attributesOf(false), attributesOf(true)] as const;
  const clear = (secure: boolean, path?: string, domain?: string): string =>
    serialize(name, '', { ...attributes(secure, path, domain), maxAge: 0, expires: new Date(0) });
  const cleared = [clear(false), clear(true)] as const;
  const secret = options.secrets[0];
  const valueOf = secret === undefined ? (id: string) => id : (id: string) => `${id}.${sign(id, secret)}`;
  const session =
    options.compat === 'bottle-session'
      ? bottleSessionLine(options)
      : (id: string, secure: boolean, maxAge: number | undefined): string =>
          `${name}=${valueOf(id)}${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}${setAttributes[secure ? 1 : 0]}`;

  // The longest Max-Age these options give a cookie: the whole absolute lifetime.
  const maxAge = options.cookieLifetime === null ? undefined : Math.min(MAX_COOKIE_AGE, Math.ceil(options.absoluteLifetime ?? Infinity));
  const sessionBytes = Buffer.byteLength(session(createSessionId(), true, maxAge));
  const clearedBytes = Buffer.byteLength(cleared[1]);
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
    session,
    cleared: (secure) => cleared[secure ? 1 : 0],
    clearedCopies(secure, target, keepOwn) {
      const lines = new Set<string>();
      const own = cleared[secure ? 1 : 0];
      const domains = [undefined, ...cookieDomainsOf(target?.host)];
      for (const path of target ? cookiePathsOf(target.path) : []) {
        for (const domain of domains) {
          try {
            lines.add(clear(secure, path, domain));
          } catch {
            // A path or host the cookie package will not write cannot hold a cookie either.
          }
        }
      }
      if (keepOwn) lines.delete(own);
      else lines.add(own);
      return [...lines].filter((line) => Buffer.byteLength(line) <= MAX_COOKIE_BYTES);
    },
  };
}
