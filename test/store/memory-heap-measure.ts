// How much heap MemoryStore's sessions take against what they count towards maxBytes, for sessions
// of several shapes. Prints one JSON line a shape; test/store/memory-heap.test.ts checks that no
// shape takes more than it counts. By hand:
//   node --expose-gc --import tsx test/store/memory-heap-measure.ts
import { createHash, randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/stores/memory.js';
import type { StoreField } from '../../src/stores/store.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run this with node --expose-gc');

/** The heap in use after full collections. */
function heapUsed(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

/** A storage id as latchkey makes them: SHA-256 of a random id, base64url. */
const storageId = (): string => createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
const metadata = (): StoreField[] => [[':c', String(Date.now())], [':s', String(Date.now())]];
const json = (value: string): string => JSON.stringify(value);
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
/** `count` fields with fresh names and short values; many fields make a Map's table double. */
const small = (count: number, i: number): StoreField[] => Array.from({ length: count }, (_, j) => [`d:key${j}`, json(`value${i}`)] as const);
/** Four values of about 60,000 bytes as JSON, each of `text` repeated, then `end`, made unique. */
const large = (text: string, end = ''): StoreField[] =>
  ['a', 'b', 'c', 'd'].map((key) => [`d:${key}`, json(text.repeat(60_000 / Buffer.byteLength(text) - 16) + hex(8) + end)] as const);

/** Shape name → how many sessions to measure, and a session's fields. */
export const SHAPES: Record<string, [sessions: number, fields: (i: number) => StoreField[]]> = {
  'metadata only': [20_000, () => metadata()],
  'a user id and a CSRF token': [20_000, (i) => [...metadata(), ['d:user', String(i)], ['d:csrf', json(randomBytes(32).toString('base64url'))]]],
  '10 small fields': [10_000, (i) => [...metadata(), ...small(10, i)]],
  '63 small fields (65 entries: a half-empty table)': [2_000, (i) => [...metadata(), ...small(63, i)]],
  '127 small fields (129 entries)': [1_000, (i) => [...metadata(), ...small(127, i)]],
  '3 kB in two values': [5_000, () => [...metadata(), ['d:a', json(hex(750))], ['d:b', json(hex(750))]]],
  '240 kB of ASCII': [100, () => [...metadata(), ...large('x')]],
  '240 kB of ASCII and one ā a value': [100, () => [...metadata(), ...large('x', 'ā')]],
  '240 kB of é': [100, () => [...metadata(), ...large('é')]],
  '240 kB of CJK': [100, () => [...metadata(), ...large('中')]],
};

for (const [shape, [sessions, fields]] of Object.entries(SHAPES)) {
  const store = new MemoryStore({ maxSessions: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER });
  const before = heapUsed();
  // The store keeps the strings it is given, so making them counts: what is left after a
  // collection is what the store holds.
  for (let i = 0; i < sessions; i++) await store.create(storageId(), fields(i), 600_000);
  const heap = heapUsed() - before;
  console.log(JSON.stringify({ shape, sessions, heapPerSession: Math.round(heap / sessions), countedPerSession: Math.round(store.bytes / sessions) }));
}
