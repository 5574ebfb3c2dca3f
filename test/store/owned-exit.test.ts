// A process that used a Redis connection latchkey opened itself exits on its own once its server
// has closed and no command is pending, as with Node's own servers and timers; and it does not
// exit early while a command it awaits is in flight (Node would exit with code 13).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startRedis, type RedisServer } from '../redis/server.js';

const APP = fileURLToPath(new URL('./owned-exit-app.ts', import.meta.url));
const EXIT_WITHIN_MS = 8000;

/** Runs the program to its end; fails if it is still running after EXIT_WITHIN_MS. */
async function runToExit(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', APP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  assert.equal(signal, null, `the process did not exit within ${EXIT_WITHIN_MS / 1000} s on its own:\n${output}`);
  return { code, output };
}

describe("a process with latchkey's own Redis connection", () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it('exits once its server has closed, without close()', async () => {
    const { code, output } = await runToExit(['app', redis.url]);
    assert.equal(code, 0, output);
    assert.match(output, /set: name=Chris\nget: name=Chris\nserver closed\n/);
  });

  for (const library of ['redis', 'ioredis']) {
    it(`waits for the commands it awaits, then exits (${library})`, async () => {
      const { code, output } = await runToExit(['client', library, redis.url]);
      assert.equal(code, 0, output);
      assert.equal(output, `got ${library}\n`);
    });
  }
});
