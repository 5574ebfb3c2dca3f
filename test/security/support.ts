import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { storageId } from '../../src/core/id.js';
import { parseSetCookie, type StoreUnderTest } from '../conformance/harness.js';

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

/** Collects unhandled rejections while a suite runs. */
export function watchUnhandled(): { start(): void; stop(): unknown[] } {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void seen.push(reason);
  return {
    start: () => void process.on('unhandledRejection', onUnhandled),
    stop: () => {
      process.off('unhandledRejection', onUnhandled);
      return seen.splice(0);
    },
  };
}
