import { channel, tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { isSessionError, SessionError, type SessionErrorCode } from './errors.js';
import type { AdoptFrom, InvalidCookieReason } from './options.js';
import type { Store, StoreChange, StoreExpiry, StoreField, StoreLimits } from '../stores/store.js';

/**
 * The `node:diagnostics_channel` channel of session events, one message ({@link SessionEvent}) per
 * event. Subscribe with `diagnostics_channel.subscribe('latchkey:session', listener)`.
 */
export const SESSION_CHANNEL = 'latchkey:session';

/**
 * The `node:diagnostics_channel` tracing channel around every store operation a session runs:
 * `diagnostics_channel.tracingChannel('latchkey:store')`, whose channels are
 * `tracing:latchkey:store:start`, `:end`, `:asyncStart`, `:asyncEnd` and `:error`. Each operation
 * publishes one {@link StoreTraceContext} object on them, in the order Node's `tracePromise` does.
 */
export const STORE_CHANNEL = 'latchkey:store';

/**
 * A {@link Store} method a session calls: a read is `load` (followed by an `update` when it
 * extends the expiry, at most once per `touchInterval`), `set` and `delete` are `update`, `incr` is
 * `increment`, the first write of a new session is `create`, `regenerate()` is `move` and
 * `destroy()` is `destroy`.
 */
export type StoreOperation = 'load' | 'create' | 'update' | 'increment' | 'move' | 'destroy';

/**
 * How a store operation ended: `'ok'` when it found or changed the session; `'missing'` when it
 * resolved that the session is not there (`load` and `move` resolved `null`, `update` `false`,
 * `increment` `null`) or, for `create`, that the id is taken; `'error'` when it rejected.
 */
export type StoreOutcome = 'ok' | 'missing' | 'error';

/**
 * The limit a write would have passed (see `SessionLimits`). `'session'` is what the store
 * reports: the session as it would be stored passes `maxKeys` or `maxSessionBytes`; the store
 * checks both at once, atomically with the write, and does not say which.
 */
export type LimitName = 'maxKeys' | 'maxKeyLength' | 'maxValueBytes' | 'maxSessionBytes' | 'session';

/**
 * A message on {@link SESSION_CHANNEL}. None carries a cookie's token, a session's id or handle, its
 * storage key, a key name or a value:
 *
 * - `created`: a write stored a new session (its cookie goes out with the response).
 * - `regenerated`: `regenerate()` moved the session to a new id.
 * - `destroyed`: `destroy()` (or `logout()`) ended the session the request had an id for.
 * - `logged-in`: `login()` bound the session to a user, under a new id.
 * - `adopted`: `adopt` turned a session of the library `from` into a latchkey session.
 * - `revoked`: sessions were ended by user (`revokeSession`, `revokeUserSessions`, or a login past
 *   `maxSessionsPerUser`); `count` says how many.
 * - `cookie-refused`: the request's session cookie was not honoured, with the same `reason` as
 *   `onInvalidCookie`; at most once per request.
 * - `limit-exceeded`: a write was refused with `LIMIT_EXCEEDED`, and which limit it would have passed.
 * - `store-unavailable`: a store operation failed with `STORE_UNAVAILABLE`; `store` is the store's
 *   class name, as in {@link StoreTraceContext}.
 */
export type SessionEvent =
  | { readonly event: 'created' }
  | { readonly event: 'regenerated' }
  | { readonly event: 'destroyed' }
  | { readonly event: 'logged-in' }
  | { readonly event: 'adopted'; readonly from: AdoptFrom }
  | { readonly event: 'revoked'; readonly count: number }
  | { readonly event: 'cookie-refused'; readonly reason: InvalidCookieReason }
  | { readonly event: 'limit-exceeded'; readonly limit: LimitName }
  | { readonly event: 'store-unavailable'; readonly operation: StoreOperation; readonly store: string };

/**
 * The object one store operation publishes on the {@link STORE_CHANNEL} tracing channel: on `start`
 * and `end` with `operation` and `store` only; on `asyncStart` and `asyncEnd` (and first on
 * `error`, when it failed) with its outcome and duration too. Subscribers tell operations apart by
 * the object's identity.
 *
 * Unlike Node's `tracePromise`, latchkey puts neither `result` nor `error` on it: a result holds
 * the session's data, and a store's error can quote key names, Redis' reply or the command's
 * arguments. `errorCode` says what went wrong instead.
 */
export interface StoreTraceContext {
  /** The store method called. */
  readonly operation: StoreOperation;
  /**
   * The store's class name: `'RedisStore'`, `'MemoryStore'`, your store's own, or `'custom'` for a
   * store that is a plain object.
   */
  readonly store: string;
  /** How it ended; `undefined` until it has (on `start` and `end`). */
  readonly outcome: StoreOutcome | undefined;
  /**
   * When it failed: the `SessionError`'s code, or `'UNKNOWN'` for anything else a store threw.
   * Otherwise `undefined`.
   */
  readonly errorCode: SessionErrorCode | 'UNKNOWN' | undefined;
  /** Milliseconds from the call to its settling; `undefined` until it has settled. */
  readonly durationMs: number | undefined;
}

type MutableTrace = { -readonly [K in keyof StoreTraceContext]: StoreTraceContext[K] };

const sessionChannel = channel(SESSION_CHANNEL);
const storeChannel = tracingChannel<unknown, MutableTrace>(STORE_CHANNEL);
const { start, end, asyncStart, asyncEnd, error: failure } = storeChannel;

/** Whether anyone listens to the store's tracing channel (`TracingChannel#hasSubscribers` is Node >= 20.13). */
function tracing(): boolean {
  return start.hasSubscribers || end.hasSubscribers || asyncStart.hasSubscribers || asyncEnd.hasSubscribers || failure.hasSubscribers;
}

/** Publishes a `created`, `regenerated`, `destroyed` or `logged-in` event, if anyone listens. */
export function publishLifecycle(event: 'created' | 'regenerated' | 'destroyed' | 'logged-in'): void {
  if (sessionChannel.hasSubscribers) sessionChannel.publish({ event } satisfies SessionEvent);
}

/** Publishes an `adopted` event: a session of the library `from` became a latchkey session (see `adopt`). */
export function publishAdopted(from: AdoptFrom): void {
  if (sessionChannel.hasSubscribers) sessionChannel.publish({ event: 'adopted', from } satisfies SessionEvent);
}

/** Publishes a `revoked` event for `count` sessions ended by user, if any were and anyone listens. */
export function publishRevoked(count: number): void {
  if (count > 0 && sessionChannel.hasSubscribers) sessionChannel.publish({ event: 'revoked', count } satisfies SessionEvent);
}

/** Publishes a `cookie-refused` event, if anyone listens. */
export function publishCookieRefused(reason: InvalidCookieReason): void {
  if (sessionChannel.hasSubscribers) sessionChannel.publish({ event: 'cookie-refused', reason } satisfies SessionEvent);
}

/** Publishes a `limit-exceeded` event, if anyone listens. */
export function publishLimitExceeded(limit: LimitName): void {
  if (sessionChannel.hasSubscribers) sessionChannel.publish({ event: 'limit-exceeded', limit } satisfies SessionEvent);
}

/** The session events a failed store operation stands for, if anyone listens. */
function publishFailure(operation: StoreOperation, store: string, error: unknown): void {
  if (!sessionChannel.hasSubscribers || !(error instanceof SessionError)) return;
  if (error.code === 'STORE_UNAVAILABLE') sessionChannel.publish({ event: 'store-unavailable', operation, store } satisfies SessionEvent);
  // The limits that do not depend on what is stored are checked, and published, before the store is called.
  else if (error.code === 'LIMIT_EXCEEDED') sessionChannel.publish({ event: 'limit-exceeded', limit: 'session' } satisfies SessionEvent);
}

function outcomeOf(result: unknown): StoreOutcome {
  return result === null || result === false ? 'missing' : 'ok';
}

function nameOf(store: Store): string {
  const name = (Object.getPrototypeOf(store) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? name : 'custom';
}

/**
 * Runs `call` as one traced operation, the way `TracingChannel#tracePromise` does but publishing
 * the outcome in place of the result and the error.
 */
function trace<T>(operation: StoreOperation, store: string, call: () => Promise<T>): Promise<T> {
  const context: MutableTrace = { operation, store, outcome: undefined, errorCode: undefined, durationMs: undefined };
  const began = performance.now();
  const settled = (outcome: StoreOutcome, error?: unknown): void => {
    context.outcome = outcome;
    context.durationMs = performance.now() - began;
    if (outcome === 'error') {
      context.errorCode = isSessionError(error) ? error.code : 'UNKNOWN';
      failure.publish(context);
    }
  };
  return start.runStores(context, () => {
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (error) {
      settled('error', error);
      publishFailure(operation, store, error);
      throw error;
    } finally {
      end.publish(context);
    }
    return promise.then(
      (result) => {
        settled(outcomeOf(result));
        asyncStart.publish(context);
        asyncEnd.publish(context);
        return result;
      },
      (error: unknown) => {
        settled('error', error);
        asyncStart.publish(context);
        asyncEnd.publish(context);
        publishFailure(operation, store, error);
        throw error;
      },
    );
  });
}

/**
 * The store as sessions call it: every operation traced on {@link STORE_CHANNEL}, and its failures
 * published on {@link SESSION_CHANNEL}, while anyone listens. Without subscribers each method calls
 * the store's own, and returns its promise as it is.
 */
class ObservedStore implements Store {
  readonly #store: Store;
  readonly #name: string;

  /** {@inheritDoc Store.loadTouched}; only where the store has it. */
  readonly loadTouched: ((id: string, expiry: StoreExpiry) => Promise<Map<string, string> | null>) | undefined;

  constructor(store: Store) {
    this.#store = store;
    this.#name = nameOf(store);
    if (typeof store.loadTouched === 'function') {
      const loadTouched = store.loadTouched.bind(store);
      this.loadTouched = (id, expiry) => {
        if (!sessionChannel.hasSubscribers && !tracing()) return loadTouched(id, expiry);
        return this.#observe('load', () => loadTouched(id, expiry));
      };
    }
  }

  /** Calls the store through `call`, observed. Only called while someone listens, so `call` costs nothing otherwise. */
  #observe<T>(operation: StoreOperation, call: () => Promise<T>): Promise<T> {
    if (tracing()) return trace(operation, this.#name, call);
    return call().catch((error: unknown) => {
      publishFailure(operation, this.#name, error);
      throw error;
    });
  }

  load(id: string): Promise<Map<string, string> | null> {
    if (!sessionChannel.hasSubscribers && !tracing()) return this.#store.load(id);
    return this.#observe('load', () => this.#store.load(id));
  }

  create(id: string, fields: readonly StoreField[], ttlMs: number, maxAgeMs?: number | null): Promise<boolean> {
    if (!sessionChannel.hasSubscribers && !tracing()) return this.#store.create(id, fields, ttlMs, maxAgeMs);
    return this.#observe('create', () => this.#store.create(id, fields, ttlMs, maxAgeMs));
  }

  update(id: string, set: readonly StoreField[], remove: readonly string[], expiry: StoreExpiry, limits: StoreLimits): Promise<boolean> {
    if (!sessionChannel.hasSubscribers && !tracing()) return this.#store.update(id, set, remove, expiry, limits);
    return this.#observe('update', () => this.#store.update(id, set, remove, expiry, limits));
  }

  increment(id: string, field: string, by: number, set: readonly StoreField[], expiry: StoreExpiry, limits: StoreLimits): Promise<number | null> {
    if (!sessionChannel.hasSubscribers && !tracing()) return this.#store.increment(id, field, by, set, expiry, limits);
    return this.#observe('increment', () => this.#store.increment(id, field, by, set, expiry, limits));
  }

  move(from: string, to: string, change: StoreChange, expiry: StoreExpiry): Promise<Map<string, string> | null> {
    if (!sessionChannel.hasSubscribers && !tracing()) return this.#store.move(from, to, change, expiry);
    return this.#observe('move', () => this.#store.move(from, to, change, expiry));
  }

  destroy(id: string): Promise<void> {
    if (!sessionChannel.hasSubscribers && !tracing()) return this.#store.destroy(id);
    return this.#observe('destroy', () => this.#store.destroy(id));
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}

/**
 * `store` as sessions should call it: observable on {@link STORE_CHANNEL} and {@link SESSION_CHANNEL}
 * while anyone subscribes, and at the cost of one more function call per operation otherwise.
 */
export function observeStore(store: Store): Store {
  return new ObservedStore(store);
}
