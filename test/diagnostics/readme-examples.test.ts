// The README's two examples of "Observing sessions", run as an app would: subscribed once, at
// start-up, then serving browsers over HTTP with sessions in a redis-server of the test's own.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { createClient } from 'redis';
import { RedisStore, type SessionEvent, type StoreTraceContext } from '../../src/index.js';
import { ADAPTERS, Browser, param, type Route } from '../conformance/harness.js';
import { useRedis } from '../redis/server.js';

// The part of @opentelemetry/api the OpenTelemetry example uses, recording the spans it makes:
// the project installs no OpenTelemetry. Same names, same shapes, same status code.
type AttributeValue = string | number | boolean;
interface Span {
  setAttribute(key: string, value: AttributeValue): Span;
  setStatus(status: { code: number; message?: string }): Span;
  end(): void;
}
const SpanStatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;
interface RecordedSpan {
  name: string;
  attributes: Record<string, AttributeValue>;
  status: { code: number; message?: string };
  ended: boolean;
}
const recorded: RecordedSpan[] = [];
const tracer = {
  startSpan(name: string, options: { attributes?: Record<string, AttributeValue> } = {}): Span {
    const record: RecordedSpan = { name, attributes: { ...options.attributes }, status: { code: SpanStatusCode.UNSET }, ended: false };
    recorded.push(record);
    const span: Span = {
      setAttribute: (key, value) => ((record.attributes[key] = value), span),
      setStatus: (status) => ((record.status = status), span),
      end: () => void (record.ended = true),
    };
    return span;
  },
};

// Counts session events by kind, e.g. for a metrics endpoint.
const sessionEvents = new Map<string, number>();
diagnostics_channel.subscribe('latchkey:session', (message) => {
  const event = message as SessionEvent;
  const kind = event.event === 'cookie-refused' ? `cookie-refused:${event.reason}` : event.event;
  sessionEvents.set(kind, (sessionEvents.get(kind) ?? 0) + 1);
});

// One span per store operation, in the trace of the request that made it.
const storeTrace = diagnostics_channel.tracingChannel('latchkey:store');
const spans = new WeakMap<object, Span>();
storeTrace.start.subscribe((message) => {
  const { operation, store } = message as StoreTraceContext;
  spans.set(message as object, tracer.startSpan(`session ${operation}`, { attributes: { 'latchkey.store': store } }));
});
storeTrace.asyncEnd.subscribe((message) => {
  const { outcome, errorCode } = message as StoreTraceContext;
  const span = spans.get(message as object);
  if (span === undefined) return;
  span.setAttribute('latchkey.outcome', String(outcome));
  if (errorCode !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
  span.end();
});

const routes: Record<string, Route> = {
  login: async (session, query) => {
    await session.regenerate();
    await session.set('user', param(query, 'user'));
  },
  whoami: async (session) => (await session.get('user')) ?? null,
  logout: (session) => session.destroy(),
};

describe("the README's examples of observing sessions", () => {
  const redis = useRedis();

  it('count session events and make one span per store operation', async () => {
    const client = createClient({ url: redis.url, socket: { reconnectStrategy: () => 50 } });
    client.on('error', () => {});
    await client.connect();
    const adapter = ADAPTERS.find((each) => each.name === 'hono');
    assert.ok(adapter);
    const app = await adapter.start({ store: new RedisStore({ redis: client, commandTimeout: 1000 }) }, routes);
    try {
      const browser = new Browser(app.url);
      await browser.json('/login?user=ada');
      assert.equal((await browser.get('/whoami')).body, 'ada');
      await browser.json('/login?user=grace');
      await browser.json('/logout');
      assert.equal((await browser.get('/whoami', { headers: { cookie: 'session=forged' } })).body, 'null');
      await browser.json('/login?user=ada');
      await redis.kill();
      assert.equal((await browser.get('/whoami')).status, 503);

      assert.deepEqual(Object.fromEntries(sessionEvents), {
        created: 2,
        regenerated: 1,
        destroyed: 1,
        'cookie-refused:malformed': 1,
        'store-unavailable': 1,
      });
      const ok = (name: string) => ({ name, attributes: { 'latchkey.store': 'RedisStore', 'latchkey.outcome': 'ok' }, status: { code: 0 }, ended: true });
      assert.deepEqual(recorded, [
        // A login without a session has nothing to regenerate: its write creates one.
        ok('session create'),
        ok('session load'),
        ok('session move'),
        ok('session update'),
        ok('session destroy'),
        ok('session create'),
        {
          name: 'session load',
          attributes: { 'latchkey.store': 'RedisStore', 'latchkey.outcome': 'error' },
          status: { code: SpanStatusCode.ERROR, message: 'STORE_UNAVAILABLE' },
          ended: true,
        },
      ]);
    } finally {
      await app.close();
      client.destroy();
    }
  });
});
