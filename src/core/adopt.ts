import { createHmac, timingSafeEqual } from 'node:crypto';
import { serialize } from 'cookie';
import { trimUserSessions } from './admin.js';
import { SessionError } from './errors.js';
import { cookieValue } from './cookie.js';
import { publishAdopted } from './diagnostics.js';
import { storageId } from './id.js';
import type { AdoptFrom, ResolvedAdoptSource, ResolvedOptions } from './options.js';
import { fastifyPassportUser, passportUser, userIdOf, type UserOf } from './plain.js';
import { toField } from './session.js';
import type { ForeignRecords } from '../stores/foreign.js';
import { CREATED_AT_FIELD, LAST_SEEN_FIELD, USER_FIELD, type Store, type StoreField, type UserIndexStore } from '../stores/store.js';

// `adopt`: the first request that comes back with the cookie of express-session, @fastify/session
// or koa-session, and no latchkey cookie, turns the old library's session into a latchkey one.
// The old cookie is verified as the old library verifies it, before any store command.

/** A verified cookie of an adopted library: which source (index in `adopt`), and the old session id it names. */
export interface OldCookie {
  readonly source: number;
  readonly id: string;
}

/**
 * What an adoption ended with: the latchkey session now holding the old session (its id and stored
 * fields), or `'gone'` when the old cookie names no session any more (its cookie can go).
 */
export type Adoption = { readonly id: string; readonly fields: Map<string, string> } | 'gone';

/** Longest old session id taken (express-session's are 32 characters, koa-session's 36). */
const MAX_OLD_ID = 256;

/** A cookie value as the `cookie` package (express-session, @fastify/cookie) decodes it. */
function decoded(value: string): string {
  const unquoted = unquote(value);
  if (!unquoted.includes('%')) return unquoted;
  try {
    return decodeURIComponent(unquoted);
  } catch {
    return unquoted;
  }
}

function unquote(value: string): string {
  return value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** Whether `given` equals `expected`, in time that depends only on their lengths (which are public). */
function same(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The value `signed` carries when one of `secrets` signed it as cookie-signature (express-session)
 * and @fastify/cookie's signer do: `value.` + HMAC-SHA256 in base64 without padding. Every secret
 * is tried, so the timing says nothing about which one matched.
 */
function unsign(signed: string, secrets: readonly string[]): string | undefined {
  const dot = signed.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const value = signed.slice(0, dot);
  const signature = signed.slice(dot + 1);
  let valid = false;
  for (const secret of secrets) {
    if (same(createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, ''), signature)) valid = true;
  }
  return valid ? value : undefined;
}

/** Whether one of `keys` signed `data` as keygrip does for Koa's cookies: HMAC-SHA1, base64 with `/+` as `_-`, no padding. */
function keygripSigned(data: string, signature: string, keys: readonly string[]): boolean {
  let valid = false;
  for (const key of keys) {
    const expected = createHmac('sha1', key).update(data).digest('base64').replace(/\//g, '_').replace(/\+/g, '-').replace(/=+$/, '');
    if (same(expected, signature)) valid = true;
  }
  return valid;
}

/** The old session id the request's cookie for `source` names, if its signature is good. */
function verifyOld(source: ResolvedAdoptSource, header: string): string | undefined {
  const raw = cookieValue(header, source.cookieName);
  if (raw === undefined) return undefined;
  let id: string | undefined;
  if (source.from === 'koa-session') {
    // cookies (Koa) signs `name=value` with the value as sent, and keeps it undecoded.
    const value = unquote(raw);
    const signature = cookieValue(header, `${source.cookieName}.sig`);
    if (signature !== undefined && keygripSigned(`${source.cookieName}=${value}`, unquote(signature), source.secrets)) id = value;
  } else {
    const value = decoded(raw);
    // express-session marks a signed value with `s:` and ignores any other.
    if (source.from === 'express-session') id = value.startsWith('s:') ? unsign(value.slice(2), source.secrets) : undefined;
    else id = unsign(value, source.secrets);
  }
  return id !== undefined && id.length > 0 && id.length <= MAX_OLD_ID ? id : undefined;
}

/**
 * The latchkey id an old session gets: derived from the old id, keyed by the source's first
 * secret, so that every request and process adopting it at the same time picks the same one and
 * only one session is made. 32 bytes in base64url, the shape of a latchkey id; no one without the
 * old cookie and that secret can compute it.
 */
function adoptedId(source: ResolvedAdoptSource, oldId: string): string {
  return createHmac('sha256', source.secrets[0] as string).update(`latchkey-adopt\0${source.from}\0${oldId}`).digest('base64url');
}

/** Where each library's data names the user, unless the source says otherwise. */
const USER_OF: Record<AdoptFrom, UserOf> = {
  'express-session': passportUser,
  '@fastify/session': fastifyPassportUser,
  'koa-session': passportUser,
};

/** Whether a top-level key of an old record is the library's own bookkeeping, not the app's data. */
function isBookkeeping(from: AdoptFrom, key: string): boolean {
  // express-session and @fastify/session keep the cookie's settings in `cookie`; koa-session its
  // expiry in `_expire`, `_maxAge` and `_session` (it never stores an app key starting with `_`).
  return from === 'koa-session' ? key.startsWith('_') : key === 'cookie';
}

/** The app's data in an old record, or `undefined` when it is not a session the library would use. */
function recordData(from: AdoptFrom, json: string, now: number): Record<string, unknown> | undefined {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const record = data as Record<string, unknown>;
  // koa-session drops a session whose `_expire` has passed, whatever the store's TTL.
  if (from === 'koa-session' && typeof record['_expire'] === 'number' && record['_expire'] < now) return undefined;
  return record;
}

/**
 * Adopts the sessions of the libraries in `options.adopt`; one per manager. The request's session
 * (core/session.ts) asks it to {@link Adopter.verify} the old cookie when it has no latchkey
 * cookie, and to {@link Adopter.adopt} it before its first store operation.
 */
export class Adopter {
  readonly #options: ResolvedOptions;
  readonly #sources: readonly ResolvedAdoptSource[];
  readonly #records: readonly ForeignRecords[];
  /** The session store itself (not observed), for its user index. */
  readonly #backing: Store;
  /** Per source, the Set-Cookie lines that clear its cookies, without and with Secure. */
  readonly #clearing: ReadonlyArray<readonly [readonly string[], readonly string[]]>;

  /**
   * @param records - where each source's records are, in the order of `options.adopt`
   * @param backing - the session store, unobserved: `maxSessionsPerUser` applies to an adopted user
   */
  constructor(options: ResolvedOptions, records: readonly ForeignRecords[], backing: Store) {
    this.#options = options;
    this.#backing = backing;
    this.#sources = options.adopt;
    this.#records = records;
    this.#clearing = options.adopt.map((source) => {
      const names = source.from === 'koa-session' ? [source.cookieName, `${source.cookieName}.sig`] : [source.cookieName];
      // A cookie of latchkey's own name, path and domain is replaced by latchkey's: clearing it would undo that.
      const own = (name: string): boolean => name === options.cookieName && source.cookiePath === options.path && source.cookieDomain === options.domain;
      const lines = (secure: boolean): string[] =>
        names
          .filter((name) => !own(name))
          .map((name) => serialize(name, '', { path: source.cookiePath, domain: source.cookieDomain, expires: new Date(0), maxAge: 0, httpOnly: true, secure }));
      return [lines(false), lines(true)] as const;
    });
  }

  /** The first source whose cookie the request carries with a good signature, and the old id; no store command. */
  verify(header: string | undefined): OldCookie | undefined {
    if (!header) return undefined;
    for (let source = 0; source < this.#sources.length; source++) {
      const id = verifyOld(this.#sources[source] as ResolvedAdoptSource, header);
      if (id !== undefined) return { source, id };
    }
    return undefined;
  }

  /** The Set-Cookie lines that make the browser drop the old cookie(s). */
  cleared(old: OldCookie, secure: boolean): readonly string[] {
    return (this.#clearing[old.source] as readonly [readonly string[], readonly string[]])[secure ? 1 : 0];
  }

  /**
   * Moves the old session into a latchkey session, exactly once however many requests (in
   * however many processes) do it at the same time: they all derive the same new id, only one
   * conditional create succeeds, the others find its session. The old record is deleted only once
   * the new session is stored, by every request that found it that way (so no leftover can be
   * adopted again after a logout). `extra` are fields the new session gets besides the data
   * (the client's details, with `recordClient`).
   *
   * @throws {@link SessionError} `STORE_UNAVAILABLE` when Redis failed (or a concurrent adoption
   *   did half-way); the old record is then intact
   */
  async adopt(old: OldCookie, store: Store, extra: readonly StoreField[]): Promise<Adoption> {
    const source = this.#sources[old.source] as ResolvedAdoptSource;
    const records = this.#records[old.source] as ForeignRecords;
    const id = adoptedId(source, old.id);
    const sid = storageId(id);
    const key = source.prefix + old.id;
    const found = (await store.load(sid)) ?? (await this.#take(source, records, key, store, sid, extra));
    if (found === null) {
      // No old record: unless a concurrent request has just adopted it, the old cookie names nothing.
      const again = await store.load(sid);
      if (again === null) return 'gone';
      await records.remove(key);
      return { id, fields: again };
    }
    if (found === 'unsettled') {
      // The old record is there but the adopted session is not: a create that stored it and then
      // failed to index it has ended its id for a while. Failing keeps the old cookie, so that a
      // later request adopts it, rather than start an empty session the old data could never reach.
      throw new SessionError('STORE_UNAVAILABLE', `the session adopted from ${source.from} could not be stored completely; try again`);
    }
    await records.remove(key);
    return { id, fields: found };
  }

  /**
   * Reads the old record and stores it as the session `sid`: its fields when this call (or a
   * concurrent one) stored it, `null` when there is no usable old record, `'unsettled'` when a
   * concurrent adoption's session is not there (ended, or its create failed half-way).
   */
  async #take(source: ResolvedAdoptSource, records: ForeignRecords, key: string, store: Store, sid: string, extra: readonly StoreField[]): Promise<Map<string, string> | null | 'unsettled'> {
    const record = await records.read(key);
    const now = Date.now();
    const data = record === null ? undefined : recordData(source.from, record.value, now);
    if (record === null || data === undefined) return null;
    const stamp = String(now);
    const fields: StoreField[] = [[CREATED_AT_FIELD, stamp], [LAST_SEEN_FIELD, stamp]];
    // Created with its user, so that the store indexes it as login() does.
    const user = userIdOf((source.userOf ?? USER_OF[source.from])(data));
    if (user !== undefined) fields.push([USER_FIELD, user]);
    fields.push(...extra);
    for (const [name, value] of Object.entries(data)) {
      if (isBookkeeping(source.from, name)) continue;
      const json = JSON.stringify(value);
      if (json !== undefined) fields.push([toField(name), json]);
    }
    const { storeLifetimeMs, maxAgeMs } = this.#options;
    // The old session's expiry carries over: never longer than it had left.
    const ttlMs = Math.max(1, Math.min(record.ttlMs ?? Infinity, storeLifetimeMs, maxAgeMs ?? Infinity));
    if (await store.create(sid, fields, ttlMs, maxAgeMs)) {
      publishAdopted(source.from);
      // As at a login (resolveOptions made sure the store has a user index). If this fails, the
      // request fails; the old record stays until the next request finds the adopted session.
      const max = this.#options.maxSessionsPerUser;
      if (user !== undefined && max !== null) await trimUserSessions(this.#backing as UserIndexStore, user, sid, max);
      return new Map(fields);
    }
    return (await store.load(sid)) ?? 'unsettled';
  }
}
