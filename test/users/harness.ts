// What the sessions-per-user tests share: the three stores they run on (MemoryStore, RedisStore
// with node-redis, RedisStore with ioredis), each as two SessionManagers on the same sessions (for
// Redis, each with a client of its own: two app processes), and requests driven through a manager
// as an adapter drives them, without HTTP.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { isSessionError, MemoryStore, SessionManager, type Session, type SessionOptions } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { context } from '../manager.js';
import { ioredisReady } from '../redis/client.js';
import { useRedis, type RedisServer } from '../redis/server.js';

/** The stores every test of this folder runs on. */
export const STORE_KINDS = ['MemoryStore', 'RedisStore (node-redis)', 'RedisStore (ioredis)'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** The key prefix the tests' managers use (the default). */
export const PREFIX = 'session:';

/** Two managers on the same sessions, and what is needed to look at the store behind them. */
export interface Deployment {
  readonly a: SessionManager;
  readonly b: SessionManager;
  /** The redis-server behind a RedisStore; `undefined` for MemoryStore. */
  readonly redis: RedisServer | undefined;
  /** The MemoryStore both managers share; `undefined` for Redis. */
  readonly memory: MemoryStore | undefined;
  close(): Promise<void>;
}

/** A connected client of one library, and how to close it. */
interface Client {
  readonly client: NonNullable<SessionOptions['redis']>;
  close(): Promise<void>;
}

async function connectNodeRedis(url: string): Promise<Client> {
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  return { client, close: async () => void client.destroy() };
}

async function connectIoredis(url: string): Promise<Client> {
  const client = new Redis(url);
  client.on('error', () => {});
  await ioredisReady(client);
  return { client, close: async () => void client.disconnect() };
}

/**
 * Registers, in the calling describe block, the redis-server a Redis kind needs (none for
 * MemoryStore), and returns how to make deployments on it. Each deployment's managers get
 * `options`; Redis deployments start from an empty database.
 */
export function useStore(kind: StoreKind): { deploy(options?: SessionOptions): Promise<Deployment> } {
  if (kind === 'MemoryStore') {
    return {
      async deploy(options = {}) {
        const memory = new MemoryStore({ maxSessions: 100_000 });
        const a = new SessionManager({ ...options, store: memory });
        const b = new SessionManager({ ...options, store: memory });
        return { a, b, redis: undefined, memory, close: () => memory.close() };
      },
    };
  }
  const redis = useRedis();
  const connect = kind === 'RedisStore (node-redis)' ? connectNodeRedis : connectIoredis;
  return {
    async deploy(options = {}) {
      await redis.command('FLUSHALL');
      const [one, two] = (await Promise.all([connect(redis.url), connect(redis.url)])) as [Client, Client];
      const a = new SessionManager({ ...options, redis: one.client });
      const b = new SessionManager({ ...options, redis: two.client });
      return { a, b, redis, memory: undefined, close: async () => void (await Promise.all([one.close(), two.close()])) };
    },
  };
}

/** Registers before/after hooks that make one deployment for the calling describe block. */
export function useDeployment(kind: StoreKind, options: SessionOptions = {}): () => Deployment {
  const store = useStore(kind);
  let deployment: Deployment | undefined;
  before(async () => {
    deployment = await store.deploy(options);
  });
  after(async () => {
    await deployment?.close();
  });
  return () => {
    assert.ok(deployment, 'the deployment is made in before()');
    return deployment;
  };
}

/** What one request did: its result or error, and the cookie the browser holds after it. */
export interface Visit<T> {
  readonly ok: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
  /** The Set-Cookie lines of the response. */
  readonly lines: readonly string[];
  /** The `session=<id>` pair the browser holds afterwards: a new one, the one it sent, or none if cleared. */
  readonly cookie: string | undefined;
  /** The session's handle (`session.id`) when the request ended. */
  readonly handle: string | undefined;
}

/**
 * One request of a browser holding `cookie` (a `session=<id>` pair, or none): runs `use` on its
 * session, then takes the Set-Cookie lines as an adapter does just before the headers go out.
 */
export async function visit<T>(manager: SessionManager, cookie: string | undefined, use: (session: Session) => Promise<T>): Promise<Visit<T>> {
  const handle = manager.open(context(cookie));
  let ok = true;
  let value: T | undefined;
  let error: unknown;
  try {
    value = await use(handle.session);
  } catch (caught) {
    ok = false;
    error = caught;
  }
  const lines = handle.setCookies();
  let next = cookie;
  for (const line of lines) {
    const [pair = ''] = line.split(';');
    if (!pair.startsWith('session=')) continue;
    next = /;\s*max-age=0(;|$)/i.test(line) ? undefined : pair;
  }
  return { ok, value, error, lines, cookie: next, handle: handle.session.id };
}

/** Like {@link visit}, but the request must succeed; resolves its value and the browser's cookie. */
export async function succeed<T>(manager: SessionManager, cookie: string | undefined, use: (session: Session) => Promise<T>): Promise<Visit<T> & { readonly value: T }> {
  const result = await visit(manager, cookie, use);
  if (!result.ok) throw result.error;
  return result as Visit<T> & { readonly value: T };
}

/** A new visitor (no cookie) logs in as `user`; resolves its cookie and handle. */
export async function loginVisitor(manager: SessionManager, user: string): Promise<{ cookie: string; handle: string }> {
  const result = await succeed(manager, undefined, (session) => session.login(user));
  assert.ok(result.cookie !== undefined && result.handle !== undefined, 'a login of a new visitor sets a cookie');
  return { cookie: result.cookie, handle: result.handle };
}

/** Whether `error` is a SessionError with code SESSION_GONE. */
export function isGone(error: unknown): boolean {
  return isSessionError(error, 'SESSION_GONE');
}

/** What a browser holding `cookie` sees on its next request: its user, data and handle. */
export async function whoIs(manager: SessionManager, cookie: string): Promise<{ user: string | undefined; data: Record<string, unknown>; handle: string | undefined; lines: readonly string[] }> {
  const result = await succeed(manager, cookie, async (session) => ({ user: await session.userId(), data: await session.all() }));
  return { ...result.value, handle: result.handle, lines: result.lines };
}

/** Why the browser holding `cookie` is not anonymous on its next request, or `undefined` when it is. */
export async function notAnonymous(manager: SessionManager, cookie: string): Promise<string | undefined> {
  const seen = await whoIs(manager, cookie);
  // A response may clear the cookie; it must not give the browser a session.
  const issued = seen.lines.filter((line) => !/;\s*max-age=0(;|$)/i.test(line));
  if (seen.user === undefined && Object.keys(seen.data).length === 0 && seen.handle === undefined && issued.length === 0) return undefined;
  return `user ${String(seen.user)}, data ${JSON.stringify(seen.data)}, handle ${String(seen.handle)}, Set-Cookie ${JSON.stringify(seen.lines)}`;
}

/** The storage id (the Redis key after the prefix) of the session a `session=<id>` cookie names. */
export function storageOf(cookie: string): string {
  return storageId(cookie.slice('session='.length));
}

/**
 * Why the store still holds something usable under the id of `cookie`, or `undefined` when it
 * does not: in Redis the key is gone or holds only the mark that the id ended or was revoked (`:x`); in a
 * MemoryStore there is no session under it.
 */
export async function heldUnder(deployment: Deployment, cookie: string): Promise<string | undefined> {
  const sid = storageOf(cookie);
  if (deployment.redis !== undefined) {
    const fields = (await deployment.redis.command('HGETALL', PREFIX + sid)) as string[];
    if (fields.length === 0) return undefined;
    if (fields.length === 2 && fields[0] === ':x' && /^(?:e(?::.+)?|r[0-9]+)$/.test(fields[1] as string)) return undefined;
    return `the key holds ${JSON.stringify(fields)}`;
  }
  const held = deployment.memory?.inspect(sid);
  return held === undefined ? undefined : `the store holds ${JSON.stringify([...held.fields])}`;
}

/** Resolves after `count` turns of the event loop: spreads concurrent operations over each other's round trips. */
export async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}
