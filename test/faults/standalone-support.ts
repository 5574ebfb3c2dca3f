// Helpers of the standalone fault tests: the app's Redis clients as a production user configures
// them, a session app in a child process, and HTTP requests that record what the user saw.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import type { RedisClientLike } from '../../src/stores/redis-client.js';
import { cleanUpOnExit } from '../redis/server.js';

// The next two functions hold the client set-ups the README's "Running in production" quotes:
// an 'error' listener, and at most 500 ms between reconnection attempts, so service resumes within
// about half a second of Redis doing so.

/** The app's own node-redis client. */
export async function connectNodeRedis(url: string) {
  const redis = createClient({
    url,
    socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 500) },
  });
  redis.on('error', (error) => console.error(`Redis: ${error.message}`));
  await redis.connect();
  return redis;
}

/** The app's own ioredis client. */
export async function connectIoredis(url: string) {
  const redis = new Redis(url, {
    retryStrategy: (times) => Math.min(50 * 2 ** times, 500),
    // What was in flight when the connection dropped failed: don't run it later.
    autoResendUnfulfilledCommands: false,
  });
  redis.on('error', (error) => console.error(`Redis: ${error.message}`));
  // Not needed by an app (commands wait for the first connection); the tests start from a connected client.
  await once(redis, 'ready');
  return redis;
}

/** How an app reaches Redis: its own client of either library, or a URL latchkey makes a client from. */
export type ClientKind = 'node-redis' | 'ioredis' | 'url';

/** Every {@link ClientKind}, in the order the tests run them. */
export const CLIENT_KINDS: readonly ClientKind[] = ['node-redis', 'ioredis', 'url'];

/** What to pass as latchkey's `redis` option (a client, or the URL itself), and how to close it. */
export async function redisFor(kind: ClientKind, url: string): Promise<{ redis: RedisClientLike | string; close(): void }> {
  switch (kind) {
    case 'node-redis': {
      const client = await connectNodeRedis(url);
      return { redis: client, close: () => client.destroy() };
    }
    case 'ioredis': {
      const client = await connectIoredis(url);
      return { redis: client, close: () => client.disconnect() };
    }
    case 'url':
      return { redis: url, close: () => {} };
  }
}

/** What one request saw: when it was sent and answered (ms, `performance.now()`), its status and body. */
export interface Outcome {
  readonly sent: number;
  readonly answered: number;
  /** 0 when no HTTP answer came (connection error or the request's own timeout). */
  readonly status: number;
  readonly body: string;
  readonly setCookie: string[];
  /** The error when no HTTP answer came. */
  readonly error?: string;
}

/**
 * Sends one GET to `base + path` with the session cookie `cookie` (if any), giving up after
 * `timeoutMs`; never rejects, so a load loop records every request.
 */
export async function hit(base: string, path: string, cookie: string | undefined, timeoutMs = 5000): Promise<Outcome> {
  const sent = performance.now();
  try {
    const response = await fetch(base + path, {
      headers: cookie === undefined ? {} : { cookie: `session=${cookie}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    return { sent, answered: performance.now(), status: response.status, body, setCookie: response.headers.getSetCookie() };
  } catch (error) {
    return { sent, answered: performance.now(), status: 0, body: '', setCookie: [], error: String(error) };
  }
}

/** The session cookie's value a response set, if it set one (and did not clear it). */
export function sessionCookie(outcome: Outcome): string | undefined {
  for (const line of outcome.setCookie) {
    const [pair = ''] = line.split(';');
    const eq = pair.indexOf('=');
    if (pair.slice(0, eq) === 'session' && !/max-age=0/i.test(line)) return pair.slice(eq + 1);
  }
  return undefined;
}

/** The line the child app prints to stderr when a promise rejection goes unhandled or an exception uncaught. */
export const CRASH_MARKER = 'FAULT-TEST-CRASH';

/** The session app in a child process (test/faults/standalone-app.ts). */
export interface ChildApp {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly process: ChildProcess;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** Stops the child (SIGTERM, then SIGKILL after 2 s) and waits for it to exit. */
  stop(): Promise<void>;
}

const APP = fileURLToPath(new URL('./standalone-app.ts', import.meta.url));

/**
 * Starts the session app (`node --import tsx standalone-app.ts`) with `kind` of Redis client on
 * `redisUrl`, and waits (at most 20 s) until it prints the port it listens on.
 */
export async function startChildApp(kind: ClientKind, redisUrl: string): Promise<ChildApp> {
  const child = spawn(process.execPath, ['--import', 'tsx', APP], {
    env: { ...process.env, REDIS_URL: redisUrl, FAULT_CLIENT: kind, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forget = cleanUpOnExit(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  let stdout = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app did not start within 20 s; stderr:\n${stderr}`)), 20_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /^listening (\d+)$/m.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the app exited with ${code ?? signal} before listening; stderr:\n${stderr}`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    forget();
    throw error;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      forget();
    },
  };
}

/** The largest of `values`, or 0 for none. */
export function max(values: readonly number[]): number {
  return values.reduce((a, b) => Math.max(a, b), 0);
}
