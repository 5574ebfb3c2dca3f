// MemoryStore's defaults must fit a small process: a client that opens many sessions, each near the
// default session limit, must not be able to exhaust the heap of an app that keeps its sessions in
// memory (the demo does when no Redis answers).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { DEFAULT_MEMORY_STORE_OPTIONS } from '../../src/stores/memory.js';

const HEAP_MIB = 128;
/** Sessions the client opens: held in full, they would take one and a half times the app's heap. */
const SESSIONS = 400;
/** Requests in flight at once. */
const CONCURRENCY = 4;

/**
 * Four values of 60,000 characters, 60,003 bytes as JSON (under limits.maxValueBytes, 65536), so a
 * session is about 240 kB (under limits.maxSessionBytes, 262144). One character beyond Latin-1
 * makes V8 keep each of them at two bytes a character: 480 kB of heap a session.
 */
const NOTES = JSON.stringify(Object.fromEntries(['a', 'b', 'c', 'd'].map((key) => [key, 'ā' + key.repeat(59_999)])));

interface Heap {
  heapUsed: number;
  sessions: number;
  bytes: number;
}

describe('MemoryStore with its defaults under a small heap', () => {
  it(`keeps an app with --max-old-space-size=${HEAP_MIB} answering while a client opens ${SESSIONS} sessions of 240 kB`, async () => {
    const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MIB}`, '--expose-gc', '--import', 'tsx', 'test/store/memory-heap-app.ts'], {
      env: { ...process.env, NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    const exited = once(child, 'exit');
    try {
      const port = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the app did not start within 20 s:\n${output}`)), 20_000);
        child.stdout.on('data', () => {
          const match = /listening on (\d+)/.exec(output);
          if (match) resolve((clearTimeout(timer), match[1] as string));
        });
        void exited.then(([code]) => reject(new Error(`the app exited with ${String(code)}:\n${output}`)));
      });
      const origin = `http://127.0.0.1:${port}`;
      const heap = async (): Promise<Heap> => (await (await fetch(`${origin}/heap`)).json()) as Heap;
      const start = await heap();

      const cookies: string[] = [];
      const failures: string[] = [];
      let next = 0;
      const client = async (): Promise<void> => {
        while (next < SESSIONS && failures.length === 0) {
          const index = next++;
          try {
            const response = await fetch(`${origin}/notes`, { method: 'POST', body: NOTES, signal: AbortSignal.timeout(10_000) });
            const body = await response.text();
            if (response.status !== 200 || body !== 'stored') failures.push(`session ${index}: ${response.status} ${body}`);
            cookies[index] = (response.headers.get('set-cookie') ?? '').split(';')[0] as string;
          } catch (error) {
            failures.push(`session ${index}: ${String(error)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, client));
      assert.deepEqual(failures, [], `the app stopped answering:\n${output}`);
      assert.equal(child.exitCode, null, output);

      const end = await heap();
      const { maxBytes } = DEFAULT_MEMORY_STORE_OPTIONS;
      assert.ok(end.bytes <= maxBytes, `the store counts ${end.bytes} bytes, over its maxBytes ${maxBytes}`);
      assert.ok(
        end.heapUsed - start.heapUsed <= maxBytes * 1.25,
        `the heap grew by ${end.heapUsed - start.heapUsed} bytes holding ${end.sessions} sessions; maxBytes is ${maxBytes}`,
      );
      const notesOf = async (cookie: string | undefined): Promise<unknown> =>
        (await fetch(`${origin}/notes`, { headers: { cookie: cookie as string } })).json();
      assert.deepEqual(await notesOf(cookies.at(-1)), ['a', 'b', 'c', 'd'], 'the newest session is kept');
      assert.deepEqual(await notesOf(cookies[0]), [], 'the oldest session was evicted');
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});

describe('what MemoryStore counts against maxBytes', () => {
  it('is at least the heap its sessions take, and not more than two and a half times it, whatever their shape', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/store/memory-heap-measure.ts']);
    const shapes = stdout.trim().split('\n').map((line) => JSON.parse(line) as { shape: string; heapPerSession: number; countedPerSession: number });
    assert.ok(shapes.length >= 10, stdout);
    for (const { shape, heapPerSession, countedPerSession } of shapes) {
      assert.ok(heapPerSession <= countedPerSession, `${shape}: a session takes ${heapPerSession} bytes of heap but counts ${countedPerSession}`);
      assert.ok(heapPerSession * 2.5 >= countedPerSession, `${shape}: a session counts ${countedPerSession} bytes but takes only ${heapPerSession} of heap`);
    }
  });
});
