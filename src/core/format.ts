import { randomUUID } from 'node:crypto';
import { SessionError } from './errors.js';
import { createSessionId, storageId } from './id.js';
import { readBottleCookie, readSessionCookie, type InboundCookie } from './cookie.js';
import type { ResolvedOptions } from './options.js';

/**
 * How sessions look on the wire and at rest: the seam between latchkey's own format and another
 * library's. Built once per middleware from the options; a request only calls its methods.
 */
export interface SessionFormat {
  /** A new session id, as the cookie carries it. */
  newId(): string;
  /** The session id a request's Cookie header carries, or why it carries none; never throws. */
  readCookie(header: string | undefined): InboundCookie;
  /** The id the store keeps the session `id` under. */
  storageId(id: string): string;
  /** What the store keeps for `value` under the app's key `key`; throws `INVALID_ARGUMENT` for a value the format cannot hold. */
  encode(key: string, value: unknown): string;
  /** The app's value out of what the store keeps. */
  decode(stored: string): unknown;
  /**
   * Whether a request that uses an existing session sends its cookie again, with the full
   * lifetime as its Max-Age, so that browser and store expire together (a sliding cookie).
   */
  readonly resendOnUse: boolean;
  /** Whether sessions can be bound to users (`login()`, the user index). */
  readonly users: boolean;
}

/** latchkey's value codec: JSON, any value `JSON.stringify` accepts. */
function encodeJson(key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new SessionError('INVALID_ARGUMENT', `the value for '${key}' cannot be stored: ${(error as Error).message}`, { cause: error });
  }
  if (json === undefined) {
    throw new SessionError(
      'INVALID_ARGUMENT',
      `the value for '${key}' is ${typeof value}, which JSON cannot hold; to remove a key, use delete('${key}')`,
    );
  }
  return json;
}

function decodeJson(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    // Written by something other than latchkey: hand it back as the string it is.
    return json;
  }
}

/** A few words on what a value is, for error messages (never the value itself). */
function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

/**
 * bottle-session's value codec: strings as they are, finite numbers as their decimal text (what
 * redis-py writes for a Python int or float); anything else is refused, as redis-py refuses it.
 */
function encodeText(key: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new SessionError(
    'INVALID_ARGUMENT',
    `the value for '${key}' is ${typeOf(value)}; with compat: 'bottle-session' a session holds only strings and finite numbers (stored as text, which the Python app reads), so store String(value) or JSON.stringify(value) yourself`,
  );
}

function decodeText(stored: string): unknown {
  return stored;
}

/** latchkey's own format: 256-bit base64url ids (signed with `secrets`), hashed at rest, JSON values. */
function latchkeyFormat(options: ResolvedOptions): SessionFormat {
  const { cookieName, secrets } = options;
  return {
    newId: createSessionId,
    readCookie: (header) => readSessionCookie(header, cookieName, secrets),
    storageId,
    encode: encodeJson,
    decode: decodeJson,
    resendOnUse: false,
    users: true,
  };
}

/** `id` (32 lowercase hex characters) in the 8-4-4-4-12 form Python's `str(uuid)` gives. */
export function dashedUuid(id: string): string {
  return `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}`;
}

/**
 * bottle-session 1.0's format: ids are UUIDs, 32 lowercase hex characters in the cookie and the
 * dashed form in the Redis key (no hashing: the Python app must find the same key), values are
 * UTF-8 text, and the cookie slides with each use.
 */
function bottleFormat(options: ResolvedOptions): SessionFormat {
  const { cookieName } = options;
  return {
    newId: () => randomUUID().replace(/-/g, ''),
    readCookie: (header) => readBottleCookie(header, cookieName),
    storageId: dashedUuid,
    encode: encodeText,
    decode: decodeText,
    resendOnUse: true,
    users: false,
  };
}

/** The {@link SessionFormat} the options ask for. */
export function createSessionFormat(options: ResolvedOptions): SessionFormat {
  return options.compat === 'bottle-session' ? bottleFormat(options) : latchkeyFormat(options);
}
