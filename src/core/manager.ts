import { createCookieWriter, type CookieWriter } from './cookie.js';
import { resolveOptions, type ResolvedOptions, type SessionOptions } from './options.js';
import { RequestSession, type RequestContext, type SessionData, type SessionHandle, type SessionRuntime } from './session.js';
import { RedisStore } from '../stores/redis.js';
import type { Store, StoreLimits } from '../stores/store.js';
import { writeSessionHeaders } from './headers.js';

/** How many sessions the expiry-refresh memo remembers; older entries are forgotten first. */
const REFRESH_MEMO_SIZE = 10_000;

/**
 * The framework-independent heart of every adapter: options, store, and a {@link Session} per
 * request. Adapters create one manager per middleware and call {@link SessionManager.open} for
 * each request.
 *
 * @typeParam Data - the keys and value types sessions hold
 */
export class SessionManager<Data extends object = SessionData> implements SessionRuntime {
  /** The options with defaults applied. */
  readonly options: ResolvedOptions;
  /** Where sessions live. */
  readonly store: Store;
  /** Writes the Set-Cookie values, prepared from the options once. */
  readonly cookies: CookieWriter;
  /** {@inheritDoc SessionRuntime.storeLimits} */
  readonly storeLimits: StoreLimits;
  readonly #ownsStore: boolean;
  /** Storage id -> when this process last refreshed that session's expiry and cookie (Infinity: ended). */
  readonly #refreshedAt = new Map<string, number>();

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong
   */
  constructor(options: SessionOptions = {}) {
    this.options = resolveOptions(options);
    this.#ownsStore = this.options.store === undefined;
    this.store = this.options.store ?? new RedisStore({ redis: this.options.redis, prefix: this.options.prefix });
    this.cookies = createCookieWriter(this.options);
    const { maxKeys, maxSessionBytes } = this.options.limits;
    // latchkey's own fields count too: created-at and last-seen.
    this.storeLimits = { maxFields: maxKeys + 2, maxBytes: maxSessionBytes };
  }

  /**
   * The session of one request. Nothing is read or sent until the handler uses it.
   */
  open(context: RequestContext): SessionHandle<Data> {
    const session = new RequestSession(this, context);
    return {
      session: session as unknown as SessionHandle<Data>['session'],
      setCookie: () => session.setCookie(),
      writeHeaders: (headers) => writeSessionHeaders(session, headers),
    };
  }

  /** {@inheritDoc SessionRuntime.shouldRefresh} */
  shouldRefresh(sid: string, now: number): boolean {
    const last = this.#refreshedAt.get(sid);
    return last === undefined || now - last >= this.options.touchInterval * 1000;
  }

  /** {@inheritDoc SessionRuntime.refreshed} */
  refreshed(sid: string, now: number): void {
    this.#refreshedAt.delete(sid);
    if (this.#refreshedAt.size >= REFRESH_MEMO_SIZE) {
      this.#refreshedAt.delete(this.#refreshedAt.keys().next().value as string);
    }
    this.#refreshedAt.set(sid, now);
  }

  /** {@inheritDoc SessionRuntime.forget} */
  forget(sid: string): void {
    // Not deleted but marked as never to refresh: a request of that session still under way must
    // not hand the browser its dead id again, over the cookie of the logout or regenerate.
    this.refreshed(sid, Infinity);
  }

  /** Closes the store if the manager created it from the `redis` option; a store or client you passed stays open. */
  async close(): Promise<void> {
    this.#refreshedAt.clear();
    if (this.#ownsStore) await this.store.close();
  }
}
