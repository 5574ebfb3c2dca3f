import { createHash, randomBytes } from 'node:crypto';

/** Bytes of CSPRNG output in a session id (256 bits). */
const ID_BYTES = 32;

/**
 * 32 bytes in unpadded base64url are 43 characters; the last one carries only 4 bits, so only
 * 16 of the 64 letters can stand there. Anything else was not issued by {@link createSessionId}.
 */
const ID_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** A new session id: 32 bytes from the operating system's CSPRNG, base64url (43 characters). */
export function createSessionId(): string {
  return randomBytes(ID_BYTES).toString('base64url');
}

/** Whether `value` has the exact shape of an id made by {@link createSessionId}. */
export function isSessionId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/**
 * The name a session is stored under: SHA-256 of its id, base64url. The store never holds the id
 * itself, so a leaked dump or replica of Redis holds no cookie that would let anyone in.
 */
export function storageId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}
