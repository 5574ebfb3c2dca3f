import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics_channel from 'node:diagnostics_channel';
import {
  MemoryStore,
  SESSION_CHANNEL,
  SessionError,
  SessionManager,
  STORE_CHANNEL,
  type Store,
  type StoreTraceContext,
} from '../../src/index.js';
import { observeStore } from '../../src/core/diagnostics.js';
import { context, cookieOf } from '../manager.js';

/** A store whose every operation fails as if Redis were down. */
class DownStore extends MemoryStore {
  override load(): Promise<Map<string, string> | null> {
    return Promise.reject(new SessionError('STORE_UNAVAILABLE', 'down'));
  }
}

/**
 * Drives every path that publishes: a session created, read, written, incremented, regenerated
 * and destroyed; refused cookies; limits passed in the session and in the store; a store down.
 */
async function everyPath(): Promise<void> {
  const manager = new SessionManager({ store: new MemoryStore(), limits: { maxKeys: 2, maxValueBytes: 50 } });
  const first = manager.open(context());
  await first.session.set('a', 1);
  const cookie = cookieOf(first);
  const second = manager.open(context(cookie));
  await second.session.get('a');
  await second.session.incr('n');
  await assert.rejects(second.session.set('c', 3), { code: 'LIMIT_EXCEEDED' });
  await assert.rejects(second.session.set('a', 'x'.repeat(60)), { code: 'LIMIT_EXCEEDED' });
  await second.session.regenerate();
  await second.session.destroy();
  await manager.open(context('session=nonsense')).session.get('a');
  await manager.open(context(cookie)).session.get('a');
  const down = new SessionManager({ store: new DownStore() });
  await assert.rejects(down.open(context(cookie)).session.get('a'), { code: 'STORE_UNAVAILABLE' });
}

/** Replaces `name` of `target` with a counter of its calls until `restore()`; the original still runs. */
function countCalls<T extends object>(target: T, name: keyof T & string, counts: Map<string, number>, label: string): () => void {
  const own = Object.getOwnPropertyDescriptor(target, name);
  Object.defineProperty(target, name, {
    configurable: true,
    writable: true,
    value(this: T, ...args: unknown[]) {
      counts.set(label, (counts.get(label) ?? 0) + 1);
      // Looked up at each call: a channel changes its prototype when it gains or loses subscribers.
      const original = (Object.getPrototypeOf(this) as T)[name] as (...args: unknown[]) => unknown;
      return original.apply(this, args);
    },
  });
  return () => {
    if (own) Object.defineProperty(target, name, own);
    else Reflect.deleteProperty(target, name);
  };
}

/** Counts calls to everything that publishes on latchkey's channels. */
function watchPublishing(): { counts: Map<string, number>; restore(): void } {
  const counts = new Map<string, number>();
  const trace = diagnostics_channel.tracingChannel(STORE_CHANNEL);
  const restores = [
    countCalls(diagnostics_channel.channel(SESSION_CHANNEL), 'publish', counts, 'session.publish'),
    countCalls(trace.start, 'runStores', counts, 'start.runStores'),
    countCalls(trace.start, 'publish', counts, 'start.publish'),
    countCalls(trace.end, 'publish', counts, 'end.publish'),
    countCalls(trace.asyncStart, 'publish', counts, 'asyncStart.publish'),
    countCalls(trace.asyncEnd, 'publish', counts, 'asyncEnd.publish'),
    countCalls(trace.error, 'publish', counts, 'error.publish'),
  ];
  return { counts, restore: () => restores.forEach((restore) => restore()) };
}

describe('diagnostics without subscribers', () => {
  it('publishes nothing, on either channel, on any path', async () => {
    assert.equal(diagnostics_channel.hasSubscribers(SESSION_CHANNEL), false);
    const watch = watchPublishing();
    try {
      await everyPath();
      assert.deepEqual([...watch.counts], []);
      // The same paths with listeners do publish: the counters above would have seen it.
      const heard: unknown[] = [];
      const listener = (message: unknown): void => void heard.push(message);
      const traced = (): void => {};
      diagnostics_channel.subscribe(SESSION_CHANNEL, listener);
      diagnostics_channel.subscribe(`tracing:${STORE_CHANNEL}:asyncEnd`, traced);
      try {
        await everyPath();
      } finally {
        diagnostics_channel.unsubscribe(SESSION_CHANNEL, listener);
        diagnostics_channel.unsubscribe(`tracing:${STORE_CHANNEL}:asyncEnd`, traced);
      }
      assert.deepEqual(heard, [
        { event: 'created' },
        { event: 'limit-exceeded', limit: 'session' },
        { event: 'limit-exceeded', limit: 'maxValueBytes' },
        { event: 'regenerated' },
        { event: 'destroyed' },
        { event: 'cookie-refused', reason: 'malformed' },
        { event: 'cookie-refused', reason: 'unknown-id' },
        { event: 'store-unavailable', operation: 'load', store: 'DownStore' },
      ]);
      assert.equal(watch.counts.get('session.publish'), heard.length);
      // create, load, increment, update (refused), move, destroy, load, load (down)
      assert.equal(watch.counts.get('start.runStores'), 8);
      assert.equal(watch.counts.get('asyncEnd.publish'), 8);
    } finally {
      watch.restore();
    }
  });

  it('hands back the store’s own promise, with no promise or closure of its own', async () => {
    const store = new MemoryStore();
    const observed = observeStore(store);
    const returned: Array<Promise<unknown>> = [];
    for (const name of ['load', 'create', 'update', 'increment', 'move', 'destroy'] as const) {
      const original = store[name].bind(store) as (...args: unknown[]) => Promise<unknown>;
      (store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        const promise = original(...args);
        returned.push(promise);
        return promise;
      };
    }
    const expiry = { ttlMs: 60_000, maxAgeMs: null, now: Date.now() };
    const limits = { maxFields: 10, maxBytes: 1000 };
    const calls = (from: string, to: string): Array<Promise<unknown>> => [
      observed.create(from, [[':c', String(Date.now())]], 60_000),
      observed.load(from),
      observed.update(from, [['x', '1']], [], expiry, limits),
      observed.increment(from, 'n', 1, [], expiry, limits),
      observed.move(from, to, { set: [], remove: [] }, expiry),
      observed.destroy(to),
    ];
    const quiet = calls('a', 'b');
    assert.deepEqual(quiet, returned.splice(0), 'each call returned the very promise the store did');
    await Promise.all(quiet);

    const listener = (): void => {};
    diagnostics_channel.subscribe(SESSION_CHANNEL, listener);
    try {
      const heard = calls('c', 'd');
      const own = returned.splice(0);
      assert.equal(own.length, 6);
      for (const [i, promise] of heard.entries()) assert.notEqual(promise, own[i], 'with a subscriber, the call is observed');
      await Promise.all(heard);
    } finally {
      diagnostics_channel.unsubscribe(SESSION_CHANNEL, listener);
    }
  });
});

/** Records every message of the store's tracing channel, as it was when published. */
function recordTraces(): { events: Array<[string, StoreTraceContext]>; contexts: Set<object>; stop(): void } {
  const trace = diagnostics_channel.tracingChannel(STORE_CHANNEL);
  const events: Array<[string, StoreTraceContext]> = [];
  const contexts = new Set<object>();
  const handlers = {
    start: (message: unknown) => (contexts.add(message as object), events.push(['start', { ...(message as StoreTraceContext) }])),
    end: (message: unknown) => events.push(['end', { ...(message as StoreTraceContext) }]),
    asyncStart: (message: unknown) => events.push(['asyncStart', { ...(message as StoreTraceContext) }]),
    asyncEnd: (message: unknown) => events.push(['asyncEnd', { ...(message as StoreTraceContext) }]),
    error: (message: unknown) => events.push(['error', { ...(message as StoreTraceContext) }]),
  };
  trace.subscribe(handlers);
  return { events, contexts, stop: () => void trace.unsubscribe(handlers) };
}

/** The trace events with durations replaced by whether they are a time. */
function shapes(events: Array<[string, StoreTraceContext]>): Array<[string, Record<string, unknown>]> {
  return events.map(([name, context]) => [name, { ...context, durationMs: context.durationMs === undefined ? undefined : context.durationMs >= 0 }]);
}

const started = (operation: string, store: string) => ({ operation, store, outcome: undefined, errorCode: undefined, durationMs: undefined });
const settled = (operation: string, store: string, outcome: string, errorCode?: string) => ({ operation, store, outcome, errorCode, durationMs: true });

describe('the store tracing channel', () => {
  it('traces each operation the way tracePromise does, with the outcome in place of result and error', async () => {
    const recorder = recordTraces();
    try {
      const store = observeStore(new MemoryStore());
      assert.equal(await store.load('none'), null);
      assert.equal(await store.create('a', [[':c', String(Date.now())]], 60_000), true);
      await assert.rejects(store.increment('a', ':c', 1, [], { ttlMs: 1000, maxAgeMs: null, now: Date.now() }, { maxFields: 1, maxBytes: 10 }));
      const events = shapes(recorder.events);
      assert.deepEqual(events, [
        ['start', started('load', 'MemoryStore')],
        ['end', started('load', 'MemoryStore')],
        ['asyncStart', settled('load', 'MemoryStore', 'missing')],
        ['asyncEnd', settled('load', 'MemoryStore', 'missing')],
        ['start', started('create', 'MemoryStore')],
        ['end', started('create', 'MemoryStore')],
        ['asyncStart', settled('create', 'MemoryStore', 'ok')],
        ['asyncEnd', settled('create', 'MemoryStore', 'ok')],
        ['start', started('increment', 'MemoryStore')],
        ['end', started('increment', 'MemoryStore')],
        ['error', settled('increment', 'MemoryStore', 'error', 'LIMIT_EXCEEDED')],
        ['asyncStart', settled('increment', 'MemoryStore', 'error', 'LIMIT_EXCEEDED')],
        ['asyncEnd', settled('increment', 'MemoryStore', 'error', 'LIMIT_EXCEEDED')],
      ]);
      for (const context of recorder.contexts) {
        assert.deepEqual(Object.keys(context).sort(), ['durationMs', 'errorCode', 'operation', 'outcome', 'store'], 'no result, no error');
      }
    } finally {
      recorder.stop();
    }
  });

  it('names a custom store by its class, or "custom", and codes what is not a SessionError as UNKNOWN', async () => {
    const recorder = recordTraces();
    try {
      const failing = { load: () => Promise.reject(new TypeError('boom')) } as unknown as Store;
      await assert.rejects(observeStore(failing).load('x'), TypeError);
      class Throwing extends MemoryStore {
        override destroy(): Promise<void> {
          throw new RangeError('thrown, not rejected');
        }
      }
      assert.throws(() => observeStore(new Throwing()).destroy('x'), RangeError);
      assert.deepEqual(shapes(recorder.events), [
        ['start', started('load', 'custom')],
        ['end', started('load', 'custom')],
        ['error', settled('load', 'custom', 'error', 'UNKNOWN')],
        ['asyncStart', settled('load', 'custom', 'error', 'UNKNOWN')],
        ['asyncEnd', settled('load', 'custom', 'error', 'UNKNOWN')],
        // A store that throws instead of rejecting: error, then end, as traceSync has it.
        ['start', started('destroy', 'Throwing')],
        ['error', settled('destroy', 'Throwing', 'error', 'UNKNOWN')],
        ['end', settled('destroy', 'Throwing', 'error', 'UNKNOWN')],
      ]);
    } finally {
      recorder.stop();
    }
  });

  it('runs the store inside the stores bound to its start channel, so a tracer’s context reaches the store', async () => {
    const storage = new AsyncLocalStorage<string>();
    const trace = diagnostics_channel.tracingChannel(STORE_CHANNEL);
    trace.start.bindStore(storage, (message) => `span of ${(message as StoreTraceContext).operation}`);
    try {
      const seen: Array<string | undefined> = [];
      const inner = new MemoryStore();
      const load = inner.load.bind(inner);
      inner.load = async (id) => {
        seen.push(storage.getStore());
        await new Promise((resolve) => setTimeout(resolve, 1));
        seen.push(storage.getStore());
        return load(id);
      };
      await observeStore(inner).load('x');
      assert.deepEqual(seen, ['span of load', 'span of load']);
      assert.equal(storage.getStore(), undefined, 'and only there');
    } finally {
      trace.start.unbindStore(storage);
    }
  });
});
