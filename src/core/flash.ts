import { randomBytes } from 'node:crypto';
import { SessionError } from './errors.js';
import type { Session, UntypedSessionData } from './session.js';

/** The start of the session keys that hold flash messages, one key per message. */
export const FLASH_PREFIX = '_flash.';

/**
 * The part of a {@link Session} the flash helpers use. Every `Session<Data>` is one, whatever its
 * `Data`: messages live under keys of their own, starting with {@link FLASH_PREFIX}.
 */
export type FlashSession = Pick<Session<UntypedSessionData>, 'keys' | 'get' | 'set' | 'delete'>;

/** A flash message, as {@link takeFlashes} gives it back. */
export interface Flash {
  /** The category it was added with (`'info'` unless another was given). */
  category: string;
  /** The message, as JSON gives it back. */
  message: unknown;
}

let lastTime = 0;
let counter = 0;

/**
 * A key that sorts after every flash key this process made before it, and that no other process
 * makes. Keys from different processes sort by their millisecond, ties in no particular order.
 */
function flashKey(): string {
  // Never backwards, even if the clock is set back: order within a process must hold.
  lastTime = Math.max(lastTime, Date.now());
  counter = (counter + 1) % 36 ** 4;
  // 9 base36 digits hold Date.now() for millennia, so the text sorts like the number.
  const time = lastTime.toString(36).padStart(9, '0');
  const sequence = counter.toString(36).padStart(4, '0');
  return `${FLASH_PREFIX}${time}${sequence}${randomBytes(6).toString('base64url')}`;
}

function checkSession(session: unknown, caller: string): void {
  if (typeof (session as Partial<FlashSession> | null | undefined)?.keys !== 'function') {
    throw new SessionError(
      'INVALID_ARGUMENT',
      `${caller}(session, ...) takes the request's session (req.session, c.get('session'), ...), got ${session === null ? 'null' : typeof session}; is latchkey's session middleware installed on this route?`,
    );
  }
}

function isFlash(value: unknown): value is Flash {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Flash>).category === 'string' && Object.hasOwn(value, 'message');
}

/**
 * Adds a message to show on a later request (after a redirect, typically), read once by
 * {@link takeFlashes}. Each message is one write under a key of its own, never a read-modify-write
 * of a shared list, so messages added by concurrent requests are all kept. Adding a message to a
 * visitor without a session starts one.
 *
 * Each message is one key of the session, so it counts towards the `limits` option's `maxKeys`.
 *
 * @param session - the request's session (any `Session<Data>`)
 * @param message - any JSON value: a string, or e.g. `{ text, field }` for a template
 * @param category - a name to group and filter messages by, such as `'error'`
 * @throws {@link SessionError} `INVALID_ARGUMENT` when `message` is not JSON (`undefined`, a
 * function, a bigint, a cycle), `category` not a string or `session` not a session; any error of
 * `session.set` (e.g. `STORE_UNAVAILABLE`, `HEADERS_SENT`, `LIMIT_EXCEEDED`)
 */
export async function addFlash(session: FlashSession, message: unknown, category = 'info'): Promise<void> {
  checkSession(session, 'addFlash');
  if (typeof category !== 'string') {
    throw new SessionError('INVALID_ARGUMENT', `addFlash(session, message, category) takes a string category, got ${typeof category}`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(message);
  } catch (error) {
    throw new SessionError('INVALID_ARGUMENT', `addFlash() cannot store this message: ${(error as Error).message}`, { cause: error });
  }
  // Inside { category, message } JSON would silently drop it, and the message would come back undefined.
  if (json === undefined) {
    throw new SessionError('INVALID_ARGUMENT', `addFlash() takes a JSON value as its message, got ${typeof message}`);
  }
  await session.set(flashKey(), { category, message });
}

/**
 * Takes the flash messages out of the session: returns them in the order they were added (only
 * those of `category`, when given) and deletes them, so each is shown once. A session without
 * messages costs no write, and a visitor without a session gets none.
 *
 * Messages are deleted one write each after they are read; two requests taking at the very same
 * moment may both get a message.
 *
 * @param session - the request's session (any `Session<Data>`)
 * @param category - take only the messages of this category, leaving the others for later
 * @returns the messages, oldest first; `[]` when there are none
 * @throws {@link SessionError} `INVALID_ARGUMENT` when `category` is given but not a string or
 * `session` is not a session; any error of the session's reads and writes (e.g.
 * `STORE_UNAVAILABLE`, or `SESSION_GONE` when another request destroyed or regenerated the session
 * meanwhile: after a regenerate the messages moved to the new id and show on the next request)
 */
export async function takeFlashes(session: FlashSession, category?: string): Promise<Flash[]> {
  checkSession(session, 'takeFlashes');
  if (category !== undefined && typeof category !== 'string') {
    throw new SessionError('INVALID_ARGUMENT', `takeFlashes(session, category) takes a string category or none, got ${typeof category}`);
  }
  const keys = (await session.keys()).filter((key) => key.startsWith(FLASH_PREFIX)).sort();
  const flashes: Flash[] = [];
  const taken: string[] = [];
  for (const key of keys) {
    const value = await session.get(key);
    // A key under the prefix that addFlash() did not write is the app's own business: left alone.
    if (!isFlash(value) || (category !== undefined && value.category !== category)) continue;
    flashes.push({ category: value.category, message: value.message });
    taken.push(key);
  }
  for (const key of taken) await session.delete(key);
  return flashes;
}
