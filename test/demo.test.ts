import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Browser } from './conformance/harness.js';
import { freePort, startRedis, type RedisServer } from './redis/server.js';

/** Starts the demo as `npm start` does and resolves once it says where it listens. */
async function startDemo(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start within 20 s:\n${output}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('latchkey demo on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
  });
  await listening;
  return { child, output: () => output, url: `http://127.0.0.1:${port}` };
}

async function stopDemo(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The README's walk through the demo: greeting, name, visitor counter. */
async function walkThrough(url: string): Promise<void> {
  const browser = new Browser(url);
  assert.equal((await browser.get('/')).body, "I don't recognize you.");
  assert.equal((await browser.get('/set/Chris')).body, 'I recognize you now.');
  assert.equal((await browser.get('/')).body, 'Hello, Chris');
  assert.match((await browser.get('/visit')).body, /^You are visitor 1, your last visit was on never$/);
  assert.match((await browser.get('/visit')).body, /^You are visitor 2, your last visit was on \d{4}-\d\d-\d\dT/);
  assert.equal((await new Browser(url).get('/')).body, "I don't recognize you.");
}

describe('npm start (the demo)', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it('serves the seed examples with sessions and the counter in Redis', async () => {
    const demo = await startDemo({ REDIS_URL: redis.url });
    try {
      assert.match(demo.output(), /sessions in Redis at redis:\/\/127\.0\.0\.1/);
      await walkThrough(demo.url);
      assert.equal(await redis.command('GET', 'latchkey-demo:visitors'), '2');
      const keys = (await redis.command('KEYS', 'session:*')) as string[];
      assert.equal(keys.length, 1, 'one session: the visitor without a cookie only read');
    } finally {
      await stopDemo(demo.child);
    }
  });

  it('says in one line that no Redis answered and runs on MemoryStore', async () => {
    const demo = await startDemo({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      const lines = demo.output().trim().split('\n');
      assert.equal(lines.length, 2, demo.output());
      assert.match(lines[0] as string, /^latchkey demo: no Redis at redis:\/\/127\.0\.0\.1:\d+ \(.+\); sessions are kept in memory/);
      await walkThrough(demo.url);
    } finally {
      await stopDemo(demo.child);
    }
  });
});
