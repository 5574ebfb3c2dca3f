// What an app subscribed to latchkey's diagnostics channels sees while browsers use sessions over
// HTTP, on every adapter, with a RedisStore on a redis-server of the test's own: the documented
// payloads, and never a token, an id, a key name or a value.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { createClient } from 'redis';
import { RedisStore, SESSION_CHANNEL, STORE_CHANNEL, type SessionEvent, type SessionOptions, type StoreTraceContext } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { ADAPTERS, Browser, handleOf, param, type Route } from '../conformance/harness.js';
import { useRedis } from '../redis/server.js';
import { idOf, signed } from '../security/support.js';

const SECRET = 'diagnostics test secret, 32 chars or more';
const COLOUR_KEY = 'favourite_colour_k7';
const PET_KEY = 'pet_name_k7';
const VISITS_KEY = 'visit_count_k7';
const EXTRA_KEY = 'one_key_too_many_k7';
const COLOUR = 'teal-value-9c2e1b';
const PET = 'ferret-value-51d0a3';

const routes: Record<string, Route> = {
  write: async (session, query) => void (await session.set(param(query, 'key'), param(query, 'value'))),
  read: async (session, query) => (await session.get(param(query, 'key'))) ?? null,
  incr: (session, query) => session.incr(param(query, 'key') as never),
  regenerate: (session) => session.regenerate(),
  destroy: (session) => session.destroy(),
};

type Trace = { readonly channel: string; readonly context: StoreTraceContext };

/** Everything published on latchkey's channels: each message as it was then, and the objects themselves. */
const heard = { events: [] as SessionEvent[], traces: new Map<object, Trace[]>(), raw: new Set<unknown>() };
const onEvent = (message: unknown): void => {
  heard.raw.add(message);
  heard.events.push({ ...(message as SessionEvent) });
};
/** A handler for one of the tracing channel's channels: keeps the message as it is now. */
function traceHandler(channel: string): (message: unknown) => void {
  return (message) => {
    heard.raw.add(message);
    const traces = heard.traces.get(message as object) ?? [];
    heard.traces.set(message as object, traces);
    traces.push({ channel, context: { ...(message as StoreTraceContext) } });
  };
}
const traceHandlers = {
  start: traceHandler('start'),
  end: traceHandler('end'),
  asyncStart: traceHandler('asyncStart'),
  asyncEnd: traceHandler('asyncEnd'),
  error: traceHandler('error'),
};

/**
 * The store operations traced, in the order they started, each as `[operation, outcome,
 * errorCode]` once it is checked that it went through the channels in order with the documented
 * context at each step.
 */
function operations(): Array<[string, string | undefined, string | undefined]> {
  return [...heard.traces.values()].map((traces) => {
    const [first, second] = traces;
    assert.ok(first && second);
    const last = traces.at(-1)!.context;
    const { operation, store } = first.context;
    assert.equal(store, 'RedisStore');
    assert.deepEqual(first.context, { operation, store, outcome: undefined, errorCode: undefined, durationMs: undefined }, 'start: the operation only');
    assert.deepEqual(second.context, first.context, 'end: the same, the call made');
    const failed = last.outcome === 'error';
    assert.deepEqual(
      traces.map((trace) => trace.channel),
      failed ? ['start', 'end', 'error', 'asyncStart', 'asyncEnd'] : ['start', 'end', 'asyncStart', 'asyncEnd'],
    );
    for (const trace of traces.slice(2)) assert.deepEqual(trace.context, last, 'settled before error and asyncStart');
    assert.equal(typeof last.durationMs, 'number');
    assert.ok(last.durationMs! >= 0 && last.durationMs! < 5000, `a duration in ms: ${last.durationMs}`);
    assert.deepEqual(Object.keys(last).sort(), ['durationMs', 'errorCode', 'operation', 'outcome', 'store']);
    return [operation, last.outcome, last.errorCode];
  });
}

describe('diagnostics channels over HTTP, with Redis', () => {
  const redis = useRedis();
  const storeChannel = diagnostics_channel.tracingChannel(STORE_CHANNEL);
  before(() => {
    diagnostics_channel.subscribe(SESSION_CHANNEL, onEvent);
    storeChannel.subscribe(traceHandlers);
  });
  after(() => {
    diagnostics_channel.unsubscribe(SESSION_CHANNEL, onEvent);
    storeChannel.unsubscribe(traceHandlers);
  });

  for (const adapter of ADAPTERS) {
    it(`publishes the documented events and traces, and no secret, on ${adapter.name}`, async () => {
      const client = createClient({ url: redis.url, socket: { reconnectStrategy: () => 50 } });
      client.on('error', () => {});
      await client.connect();
      const options: SessionOptions = {
        store: new RedisStore({ redis: client, commandTimeout: 1000 }),
        secrets: SECRET,
        limits: { maxKeys: 3, maxValueBytes: 100 },
      };
      const app = await adapter.start(options, routes);
      heard.events.length = 0;
      heard.traces.clear();
      heard.raw.clear();
      const cookies = new Set<string>();
      try {
        const browser = new Browser(app.url);
        const get = async (path: string, status = 200, cookie?: string): Promise<void> => {
          const response = await browser.get(path, cookie === undefined ? {} : { headers: { cookie } });
          assert.equal(response.status, status, `${path}: ${response.body}`);
          if (browser.cookie !== undefined) cookies.add(browser.cookie);
        };
        await get(`/write?key=${COLOUR_KEY}&value=${COLOUR}`);
        await get(`/read?key=${COLOUR_KEY}`);
        await get(`/write?key=${PET_KEY}&value=${PET}`);
        await get(`/incr?key=${VISITS_KEY}`);
        await get('/regenerate');
        await get(`/write?key=${PET_KEY}&value=${'x'.repeat(200)}`, 413);
        await get(`/write?key=${EXTRA_KEY}&value=1`, 413);
        // Everything Redis holds now, to look for it in the payloads.
        const stored: string[] = [];
        for (const key of (await redis.command('KEYS', '*')) as string[]) {
          stored.push(key);
          const flat = (await redis.command('HGETALL', key)) as string[];
          // User keys and values; not latchkey's metadata, nor a value as short as the count's
          // '1', which any number in a payload contains.
          for (let i = 0; i < flat.length; i += 2) {
            if (!flat[i]!.startsWith(':')) stored.push(...[flat[i]!, flat[i + 1]!].filter((text) => text.length >= 6));
          }
        }
        const ended = browser.cookie!;
        await get('/destroy');
        await get(`/read?key=${COLOUR_KEY}`, 200, `session=${ended}`);
        await get(`/read?key=${COLOUR_KEY}`, 200, 'session=not-an-id');
        const forged = signed(idOf(ended), 'another secret of 32 characters....');
        await get(`/read?key=${COLOUR_KEY}`, 200, `session=${forged}`);
        await get(`/read?key=${COLOUR_KEY}`, 200, `session=${ended}; session=${forged}`);
        await get(`/write?key=${COLOUR_KEY}&value=${COLOUR}`);
        await redis.kill();
        await get(`/read?key=${COLOUR_KEY}`, 503);

        // No payload carries a cookie's token, its id, the id's hash (the Redis key), the public
        // handle, a key name or a value, however deep one looks.
        cookies.add(browser.cookie!);
        const secrets = new Set<string>([COLOUR_KEY, PET_KEY, VISITS_KEY, EXTRA_KEY, COLOUR, PET, forged, ...stored]);
        for (const cookie of cookies) {
          const id = idOf(cookie);
          for (const secret of [cookie, id, cookie.slice(id.length + 1), storageId(id), `session:${storageId(id)}`, handleOf(cookie)]) secrets.add(secret);
        }
        assert.ok(cookies.size >= 3 && stored.length >= 5, 'the run made sessions and stored data to look for');
        for (const message of heard.raw) {
          const text = `${inspect(message, { depth: Infinity, showHidden: true })}\n${JSON.stringify(message)}`;
          for (const secret of secrets) assert.ok(!text.includes(secret), `a payload carries ${secret}: ${text}`);
          assert.ok(!('result' in (message as object)) && !('error' in (message as object)), `no result or error: ${text}`);
        }

        assert.deepEqual(heard.events, [
          { event: 'created' },
          { event: 'regenerated' },
          { event: 'limit-exceeded', limit: 'maxValueBytes' },
          { event: 'limit-exceeded', limit: 'session' },
          { event: 'destroyed' },
          { event: 'cookie-refused', reason: 'expired' },
          { event: 'cookie-refused', reason: 'malformed' },
          { event: 'cookie-refused', reason: 'bad-signature' },
          { event: 'cookie-refused', reason: 'duplicate' },
          { event: 'created' },
          { event: 'store-unavailable', operation: 'load', store: 'RedisStore' },
        ]);
        assert.deepEqual(operations(), [
          ['create', 'ok', undefined],
          ['load', 'ok', undefined],
          ['update', 'ok', undefined],
          ['increment', 'ok', undefined],
          ['move', 'ok', undefined],
          ['update', 'error', 'LIMIT_EXCEEDED'],
          ['destroy', 'ok', undefined],
          ['load', 'missing', undefined],
          ['create', 'ok', undefined],
          ['load', 'error', 'STORE_UNAVAILABLE'],
        ]);
      } finally {
        await app.close();
        client.destroy();
        await redis.restart();
      }
    });
  }
});
