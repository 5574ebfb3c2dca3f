import * as crypto from 'node:crypto';

/** Bytes of CSPRNG output in a session id (256 bits). */
const ID_BYTES = 32;

/**
 * 32 bytes in unpadded base64url are 43 characters; the last one carries only 4 bits, so only
 * 16 of the 64 letters can stand there. Anything else was not issued by {@link createSessionId}.
 */
const ID_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** Ids drawn from the CSPRNG at once: one call for many ids, as `crypto.randomUUID()` does. */
const POOL_IDS = 64;
let pool = Buffer.alloc(0);
let offset = 0;

/** A new session id: 32 bytes from the operating system's CSPRNG, base64url (43 characters). */
export function createSessionId(): string {
  if (offset >= pool.length) {
    pool = crypto.randomBytes(ID_BYTES * POOL_IDS);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + ID_BYTES);
  // Bytes handed out are not kept: the pool holds only ids nobody has yet.
  pool.fill(0, offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}

/** Whether `value` has the exact shape of an id made by {@link createSessionId}. */
export function isSessionId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** `crypto.hash()` (Node 20.12+): a one-shot digest without a Hash object per call. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }).hash;

/**
 * The name a session is stored under: SHA-256 of its id, base64url. The store never holds the id
 * itself, so a leaked dump or replica of Redis holds no cookie that would let anyone in.
 */
export function storageId(id: string): string {
  return oneShotHash ? oneShotHash('sha256', id, 'base64url') : crypto.createHash('sha256').update(id).digest('base64url');
}

/** Characters of a session handle: 22 base64url characters, 132 bits of a SHA-256. */
const HANDLE_LENGTH = 22;

/**
 * The public handle of the session stored under `storageId`: what `session.id` shows. Derived
 * one way from the storage id (itself a hash of the cookie's id), so it names the session without
 * being a token: it cannot be turned back into a cookie or a Redis key name.
 */
export function sessionHandle(storageId: string): string {
  const input = `latchkey-handle:${storageId}`;
  const digest = oneShotHash ? oneShotHash('sha256', input, 'base64url') : crypto.createHash('sha256').update(input).digest('base64url');
  return digest.slice(0, HANDLE_LENGTH);
}
