import { createCookieWriter, type CookieWriter } from './cookie.js';
import { resolveOptions, type ResolvedOptions, type SessionOptions } from './options.js';
import { RequestSession, type RequestContext, type DefaultSessionData, type SessionHandle, type SessionRuntime } from './session.js';
import { RedisStore } from '../stores/redis.js';
import { BottleRedisStore } from '../stores/bottle-redis.js';
import { createSessionFormat } from './format.js';
import type { Store, StoreLimits } from '../stores/store.js';
import { writeSessionHeaders } from './headers.js';
import { observeStore } from './diagnostics.js';
import { SessionAdmin } from './admin.js';
import { Adopter } from './adopt.js';
import type { ForeignRecordsStore } from '../stores/foreign.js';

/**
 * The framework-independent heart of every adapter: options, store, and a {@link Session} per
 * request. Adapters create one manager per middleware and call {@link SessionManager.open} for
 * each request. It keeps no state per session: what a request does depends only on its cookie
 * and the store, never on what other clients did before.
 *
 * @typeParam Data - the keys and value types sessions hold
 */
export class SessionManager<Data extends object = DefaultSessionData> {
  /** The options with defaults applied. */
  readonly options: ResolvedOptions;
  /** Where sessions live. */
  readonly store: Store;
  /** Writes the Set-Cookie values, prepared from the options once. */
  readonly cookies: CookieWriter;
  /** {@inheritDoc SessionRuntime.storeLimits} */
  readonly storeLimits: StoreLimits;
  readonly #ownsStore: boolean;
  #admin: SessionAdmin | undefined;
  /** What sessions work with: the same, but the store observable through `node:diagnostics_channel`. */
  readonly #runtime: SessionRuntime;
  /** Stores created for `adopt` sources with a `redis` of their own, closed with the manager. */
  readonly #adoptStores: RedisStore[] = [];

  /**
   * @param options - the session options; `secure` and `onInvalidCookie` may take the adapter's
   *   own request type
   * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
   */
  constructor(options: SessionOptions<never> = {}) {
    this.options = resolveOptions(options);
    this.#ownsStore = this.options.store === undefined;
    this.store = this.options.store ?? this.#createStore();
    this.cookies = createCookieWriter(this.options);
    const { maxKeys, maxSessionBytes } = this.options.limits;
    // latchkey's own fields count too: created-at and last-seen.
    this.storeLimits = { maxFields: maxKeys + 2, maxBytes: maxSessionBytes };
    const format = createSessionFormat(this.options);
    const resent = { kind: 'set', maxAge: this.options.cookieLifetime ?? undefined } as const;
    this.#runtime = {
      options: this.options,
      store: observeStore(this.store),
      cookies: this.cookies,
      storeLimits: this.storeLimits,
      backing: this.store,
      format,
      resent,
      adopter: this.options.adopt.length > 0 ? this.#adopter() : undefined,
    };
  }

  /** The store for the `redis` option, in the layout the `compat` option asks for. */
  #createStore(): Store {
    const { redis, prefix, compat } = this.options;
    return compat === 'bottle-session' ? new BottleRedisStore({ redis, prefix }) : new RedisStore({ redis, prefix });
  }

  /** The {@link Adopter} of `adopt`, reading each source's records from its own Redis or from the store's. */
  #adopter(): Adopter {
    const records = this.options.adopt.map((source) => {
      // resolveOptions made sure that a source without its own Redis has a store that reaches one.
      if (source.redis === undefined) return (this.store as ForeignRecordsStore).foreignRecords();
      const store = new RedisStore({ redis: source.redis });
      this.#adoptStores.push(store);
      return store.foreignRecords();
    });
    return new Adopter(this.options, records, this.store);
  }

  /**
   * Sessions by user and for tooling (list, revoke, count), on this manager's store; see
   * {@link SessionAdmin}.
   */
  get admin(): SessionAdmin {
    this.#admin ??= new SessionAdmin({ store: this.store });
    return this.#admin;
  }

  /**
   * The session of one request. Nothing is read or sent until the handler uses it.
   */
  open(context: RequestContext): SessionHandle<Data> {
    const session = new RequestSession(this.#runtime, context);
    return {
      session: session as unknown as SessionHandle<Data>['session'],
      setCookies: () => session.setCookies(),
      writeHeaders: (headers) => writeSessionHeaders(session, headers),
    };
  }

  /** Closes the store if the manager created it from the `redis` option; a store or client you passed stays open. */
  async close(): Promise<void> {
    if (this.#ownsStore) await this.store.close();
    for (const store of this.#adoptStores) await store.close();
  }
}
