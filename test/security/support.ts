import { after, afterEach, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { storageId } from '../../src/core/id.js';
import type { SessionOptions } from '../../src/index.js';
import { parseSetCookie, STORES, watchUnhandled, type AdapterHarness, type App, type Route, type StoreUnderTest, type Tls } from '../conformance/harness.js';

export { Gate, param } from '../conformance/harness.js';

/** The id part of a cookie value (`<id>` or, signed, `<id>.<signature>`). */
export function idOf(cookie: string): string {
  const dot = cookie.indexOf('.');
  return dot < 0 ? cookie : cookie.slice(0, dot);
}

/** The Redis key the session with this cookie id is stored under. */
export function redisKey(id: string): string {
  return `session:${storageId(id)}`;
}

/** `id` signed with `secret`, as latchkey writes it in the cookie. */
export function signed(id: string, secret: string): string {
  return `${id}.${createHmac('sha256', secret).update(id).digest('base64url')}`;
}

/** The Set-Cookie lines of the cookie `name`. */
export function linesOf(setCookie: readonly string[], name = 'session'): string[] {
  return setCookie.filter((line) => parseSetCookie(line).name === name);
}

/** The user's fields of a stored hash: metadata (`:c`, `:s`) left out. */
export function userFields(hash: Map<string, string> | null): Map<string, string> {
  return new Map([...(hash ?? [])].filter(([field]) => !field.startsWith(':') || field.startsWith('::')));
}

/** Bytes of a stored hash as the limits count them: every field name and value. */
export function storedBytes(hash: Map<string, string> | null): number {
  let total = 0;
  for (const [field, value] of hash ?? []) total += Buffer.byteLength(field) + Buffer.byteLength(value);
  return total;
}

/** Every key in Redis with its hash, to look for a field anywhere. */
export async function everyHash(sut: StoreUnderTest): Promise<Map<string, Map<string, string>>> {
  const redis = sut.redis;
  assert.ok(redis, 'these tests need a Redis behind the store');
  const all = new Map<string, Map<string, string>>();
  for (const key of await sut.keys()) {
    const flat = (await redis.command('HGETALL', key)) as string[];
    const hash = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) hash.set(flat[i] as string, flat[i + 1] as string);
    all.set(key, hash);
  }
  return all;
}

/** What the tests of one adapter share: a Redis of their own, and apps started per test. */
export interface AdapterFixture {
  /** The store on the describe block's own redis-server, emptied before each test. */
  readonly sut: StoreUnderTest;
  /** The app the running test started last. */
  readonly app: App | undefined;
  /** Starts an app on the adapter with the store and `options`; closed when the test ends. */
  start(options: SessionOptions, routes: Record<string, Route>, tls?: Tls): Promise<App>;
}

/**
 * Registers, in the calling describe block, the hooks every per-adapter security suite needs:
 * a RedisStore (node-redis) on a redis-server of its own, emptied before each test, the apps a
 * test started closed after it, and no unhandled rejection in the whole block.
 */
export function adapterFixture(adapter: AdapterHarness): AdapterFixture {
  const makeStore = STORES['redis (node-redis)'];
  assert.ok(makeStore);
  let store: StoreUnderTest | undefined;
  const apps: App[] = [];
  let unhandled: ReturnType<typeof watchUnhandled> | undefined;
  const closeApps = async (): Promise<void> => {
    for (const app of apps.splice(0)) await app.close();
  };
  before(async () => {
    store = await makeStore();
    unhandled = watchUnhandled();
  });
  after(async () => {
    await closeApps();
    await store?.close();
    assert.deepEqual(unhandled?.stop(), [], 'no unhandled rejections');
  });
  beforeEach(async () => {
    await store?.reset();
  });
  afterEach(closeApps);
  const fixture: AdapterFixture = {
    get sut() {
      assert.ok(store, 'the store starts in before()');
      return store;
    },
    get app() {
      return apps.at(-1);
    },
    async start(options, routes, tls) {
      const app = await adapter.start({ ...fixture.sut.options, ...options }, routes, tls);
      apps.push(app);
      return app;
    },
  };
  return fixture;
}
