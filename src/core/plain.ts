import { SessionError } from './errors.js';
import { toUserId } from './admin.js';
import { RequestSession, type Session, type SessionHandle } from './session.js';

/**
 * Finds the user a session's data says it is signed in as, for the per-user features (listing
 * and revoking a user's sessions) of the sessions used as plain objects. Returns a string or a
 * whole number, or `undefined` for a session that is not signed in.
 */
export type UserOf = (data: Readonly<Record<string, unknown>>) => unknown;

/**
 * Where Passport keeps the user: `passport.user` when it is a string or a whole number (what
 * `serializeUser` usually gives), or that object's `id` when `serializeUser` gives an object.
 */
export function passportUser(data: Readonly<Record<string, unknown>>): unknown {
  const passport = data['passport'];
  if (passport === null || typeof passport !== 'object') return undefined;
  const user = (passport as { user?: unknown }).user;
  if (user !== null && typeof user === 'object') return (user as { id?: unknown }).id;
  return user;
}

/**
 * Where @fastify/passport keeps the user: the whole `passport` key (what `registerUserSerializer`
 * gives, stored as it is), or its `id` when that is an object.
 */
export function fastifyPassportUser(data: Readonly<Record<string, unknown>>): unknown {
  const value = data['passport'];
  if (value !== null && typeof value === 'object') return (value as { id?: unknown }).id;
  return value;
}

/** A user id as latchkey stores it, or `undefined` when `value` is none (or not a usable id). */
export function userIdOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    return toUserId(value, 'userOf');
  } catch {
    // An id latchkey cannot index (an object, an empty string): the session is simply not bound.
    return undefined;
  }
}

/** The JSON of a value as a session keeps it; `undefined` for what JSON drops (undefined, functions). */
function jsonOf(key: string, value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new SessionError('INVALID_ARGUMENT', `the session's '${key}' cannot be stored: ${(error as Error).message}`, { cause: error });
  }
}

function parse(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}

/** Whether `value` is kept by value (compared with Object.is) rather than by reference. */
function isPrimitive(value: unknown): value is string | number | boolean | null {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** What a save writes: keys to set with their JSON, keys to remove. */
export interface PlainChanges {
  readonly set: Array<[string, string]>;
  readonly remove: string[];
}

const NOTHING: ReadonlyMap<string, string> = new Map();

/**
 * Refuses the `compat` option in the express-session, @fastify/session and koa-session modes:
 * their session objects keep any JSON value, which another library's format (bottle-session's
 * plain strings) cannot hold.
 * @throws {@link SessionError} `INVALID_OPTIONS` when `options.compat` is set
 */
export function refuseCompat(options: { readonly compat?: unknown }, mode: string): void {
  if (options.compat !== undefined) {
    throw new SessionError(
      'INVALID_OPTIONS',
      `${mode}: compat: ${JSON.stringify(options.compat)} is not supported here, as this mode's session object holds any JSON value; use latchkey's own adapter (latchkey/express, latchkey/fastify, latchkey/koa) with compat`,
    );
  }
}

/**
 * Defines `entries` on `target` as plain data properties: never through a setter, so a key such
 * as `__proto__`, or one named like an accessor of `target`'s prototype, stays data. Keys in
 * `skip` (the API's own members) are left out.
 */
export function defineData(target: object, entries: Iterable<readonly [string, unknown]>, skip?: ReadonlySet<string>): void {
  for (const [key, value] of entries) {
    if (skip?.has(key) === true) continue;
    // An assignment is several times cheaper than defineProperty, and is the same where no
    // prototype (Object.prototype's `__proto__` included) has a property of that name.
    if (key in target) Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
    else (target as Record<string, unknown>)[key] = value;
  }
}

/**
 * A session used as a plain object, the way express-session, @fastify/session and koa-session
 * hand it to apps: its keys are read once, before the handlers run (one round trip with a cookie,
 * none without), the handlers change the object synchronously, and a save writes what changed,
 * per top-level key (a value changed in place included), in one round trip. Keys another request
 * changed meanwhile, and this one did not, are left as they are: no lost updates.
 *
 * The compatible APIs (`latchkey/express-session`, `latchkey/fastify-session`,
 * `latchkey/koa-session`) are built on it; it works with any adapter's {@link SessionHandle}.
 */
export class PlainSession {
  readonly #session: RequestSession;
  readonly #userOf: UserOf;
  /** Each key's JSON as last loaded or saved: what a save compares with. */
  #saved: ReadonlyMap<string, string> = NOTHING;
  /**
   * The primitive values (strings, numbers, booleans, null) handed out by a load or written by a
   * save, by key: a key that still holds the same one is unchanged, with no JSON to make.
   */
  #primitives = new Map<string, unknown>();
  /** Whether the next save moves the session to a new id (see {@link PlainSession.renewOnSave}). */
  #renew = false;

  /**
   * @param handle - the request's session, from {@link SessionManager.open}
   * @param userOf - where the data names its user (default: Passport's `passport.user`)
   */
  constructor(handle: Pick<SessionHandle, 'session'> | { readonly session: object }, userOf: UserOf = passportUser) {
    if (!(handle.session instanceof RequestSession)) throw new TypeError('PlainSession takes a handle from SessionManager.open()');
    this.#session = handle.session;
    this.#userOf = userOf;
  }

  /** The session as latchkey's own {@link Session}, for code that wants both. */
  get session(): Session<Record<string, unknown>> {
    return this.#session as unknown as Session<Record<string, unknown>>;
  }

  /**
   * The session's public handle, or the one a session this request saves will get: never the
   * cookie's token. Stable from the first call to the end of the request unless the session is
   * regenerated or destroyed.
   */
  get handle(): string {
    return this.#session.plannedHandle();
  }

  /** Whether the session exists in the store (it was found, or this request saved it). */
  get exists(): boolean {
    return this.#session.id !== undefined;
  }

  /** Reads the session and gives its keys and values (one round trip with a cookie, none without). */
  async load(): Promise<Array<[string, unknown]>> {
    await this.#session.load();
    return this.#take();
  }

  /** Reads the session again from the store, dropping what this request changed and did not save. */
  async reload(): Promise<Array<[string, unknown]>> {
    await this.#session.reload();
    return this.#take();
  }

  #take(): Array<[string, unknown]> {
    // The session's own map, not a copy: a write changes it exactly as a save changes what it compares with.
    this.#saved = this.#session.snapshot();
    this.#primitives = new Map();
    const entries: Array<[string, unknown]> = [];
    for (const [key, json] of this.#saved) {
      const value = parse(json);
      if (isPrimitive(value)) this.#primitives.set(key, value);
      entries.push([key, value]);
    }
    return entries;
  }

  /**
   * What a save of `data` would write: each own enumerable key whose JSON differs from what was
   * loaded or saved, and each loaded key that `data` no longer has (or holds `undefined`).
   * Keys in `skip` are the API's own properties, never data: neither written nor removed (a stored
   * key of that name, written through another API, stays as it is).
   */
  changes(data: object, skip?: ReadonlySet<string>): PlainChanges {
    const set: Array<[string, string]> = [];
    const seen = new Set<string>();
    for (const key of Object.keys(data)) {
      if (skip?.has(key) === true) continue;
      const value = (data as Record<string, unknown>)[key];
      if (isPrimitive(value) && this.#saved.has(key) && this.#primitives.has(key) && Object.is(this.#primitives.get(key), value)) {
        seen.add(key);
        continue;
      }
      const json = jsonOf(key, value);
      if (json === undefined) continue;
      seen.add(key);
      if (this.#saved.get(key) !== json) set.push([key, json]);
    }
    const remove: string[] = [];
    for (const key of this.#saved.keys()) if (!seen.has(key) && skip?.has(key) !== true) remove.push(key);
    return { set, remove };
  }

  /** Whether {@link PlainSession.save} of `data` would write anything. */
  isModified(data: object, skip?: ReadonlySet<string>): boolean {
    const { set, remove } = this.changes(data, skip);
    return set.length > 0 || remove.length > 0 || this.#userChange(data) !== undefined;
  }

  /** `[user]` when `data` names another user than the session is signed in as, `[undefined]` when it names none any more. */
  #userChange(data: object): [string | undefined] | undefined {
    const user = userIdOf(this.#userOf(data as Record<string, unknown>));
    return user === this.#session.user ? undefined : [user];
  }

  /**
   * Writes what changed in `data`, in one round trip; starts a session when there is none and
   * `data` holds a key. When the user named by the data changed, the session is signed in as the
   * new user first (a new id, as `login()` does), or, when it names none any more, it continues
   * under a new id that belongs to no user.
   */
  async save(data: object, skip?: ReadonlySet<string>): Promise<void> {
    const change = this.#userChange(data);
    if (this.#renew) {
      this.#renew = false;
      // A change of user moves the session anyway; an id this request issued never reached a browser.
      if (change === undefined && this.exists && !this.#session.isNew) await this.#session.regenerate();
    }
    if (change !== undefined) {
      const [user] = change;
      if (user !== undefined) await this.#session.login(user);
      else await this.#session.destroy();
      // What the store holds now is what the data is compared with.
      this.#saved = this.#session.snapshot();
      this.#primitives = new Map();
    }
    const { set, remove } = this.changes(data, skip);
    if (set.length === 0 && remove.length === 0) return;
    await this.#session.write(set, remove);
    this.#saved = this.#session.snapshot();
    for (const [key] of set) {
      const value = (data as Record<string, unknown>)[key];
      if (isPrimitive(value)) this.#primitives.set(key, value);
      else this.#primitives.delete(key);
    }
    for (const key of remove) this.#primitives.delete(key);
  }

  /**
   * Ends the session and starts afresh, as express-session's `regenerate()` does: the data is not
   * carried over, and the next save starts a session under a new id.
   */
  async regenerate(): Promise<void> {
    await this.#session.destroy();
    this.#saved = NOTHING;
    this.#primitives = new Map();
  }

  /**
   * Asks the next {@link PlainSession.save} to move the session to a new id with its data, as
   * koa-session's `regenerate()` does (express-session's, {@link PlainSession.regenerate}, drops
   * the data). A save that signs a user in or out moves the session anyway, so Passport's
   * regenerate-then-save costs one move; a session this request started is not moved (its id
   * never reached a browser), nor is a request without a session.
   */
  renewOnSave(): void {
    this.#renew = true;
  }

  /** Deletes the session from the store and expires the cookie. */
  async destroy(): Promise<void> {
    await this.#session.destroy();
    this.#saved = NOTHING;
    this.#primitives = new Map();
  }

  /**
   * Sends the session's cookie again with `maxAge` seconds (`undefined`: until the browser
   * closes), for a "remember me" choice; capped by the absolute lifetime. No-op without a session.
   */
  resendCookie(maxAge: number | undefined): void {
    this.#session.resendCookie(maxAge);
  }
}
