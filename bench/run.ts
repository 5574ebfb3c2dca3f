// `npm run bench [-- --quick] [-- --frameworks=express,koa]`: every stack of every framework
// against a private redis-server, driven by autocannon from another process, all on loopback.
// Prints a table per framework and writes BENCHMARKS.md and bench/results.json.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { freePort, startRedis, type RedisServer } from '../test/redis/server.js';
import { COMPAT, COMPETITORS, FRAMEWORKS, type StackKind } from './stacks/index.js';
import type { LoadJob, LoadResult } from './load.js';
import type { CpuSample } from './server.js';
import { REDIS_COST_SETTINGS, renderRedisCost, type MeasureRedisCost } from './redis-cost-report.js';
import { renderMarkdown, renderTable, type FrameworkResult, type Results, type RouteFigures, type StackResult } from './report.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    frameworks: { type: 'string', default: Object.keys(FRAMEWORKS).join(',') },
    out: { type: 'string', default: 'BENCHMARKS.md' },
    // Writes the report again from the raw figures of the last run, without measuring.
    render: { type: 'boolean', default: false },
  },
});

/** The libraries whose versions the report names. */
const LIBRARIES = ['express', 'fastify', 'koa', 'hono', '@hono/node-server', 'redis', 'express-session', 'connect-redis', '@fastify/session', '@fastify/cookie', 'koa-session', 'koa-redis', 'autocannon'];

function versions(): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of LIBRARIES) {
    try {
      found[name] = (JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
    } catch {
      found[name] = 'not installed';
    }
  }
  return found;
}

/** The raw figures go next to the report: bench/results.json for BENCHMARKS.md. */
const json = args.out === 'BENCHMARKS.md' ? 'bench/results.json' : args.out.replace(/(\.md)?$/, '.json');

if (args.render) {
  const results = JSON.parse(readFileSync(json, 'utf8')) as Results;
  results.versions ??= versions();
  writeFileSync(args.out, renderMarkdown(results, json));
  console.log(`wrote ${args.out} from ${json}`);
  process.exit(0);
}

/** How long and how often: `--quick` is a smoke run for CI, about 2 minutes. */
const SETTINGS = args.quick
  ? { duration: 1, warmup: 0, repeats: 1, connections: 16, fillSessions: 100, lostTrials: 3, concurrentWrites: 50, roundTripRequests: 30 }
  : { duration: 3, warmup: 1, repeats: 5, connections: 16, fillSessions: 1000, lostTrials: 3, concurrentWrites: 50, roundTripRequests: 100 };

/**
 * The routes timed under load; /setfield, /dump and /fill10 serve the lost-update and memory checks.
 * /read100 and /write100 are /read and /write on a session of 100 fields (made by /login100).
 */
const TIMED_ROUTES = ['plain', 'login', 'read', 'write', 'incr', 'read100', 'write100'] as const;

/** The route that makes the session a timed route runs on. */
function loginRoute(route: string): string {
  return route.endsWith('100') ? 'login100' : 'login';
}

/** A stack's server process and address. */
interface Running {
  kind: StackKind;
  name: string;
  url: string;
  child: ChildProcess;
}

function stackName(framework: string, kind: StackKind): string {
  if (kind === 'competitor') return COMPETITORS[framework] ?? 'competitor';
  if (kind === 'compat') return COMPAT[framework] ?? 'latchkey (compatible API)';
  if (kind === 'empty') return `bare ${framework} + empty ${framework === 'fastify' ? 'hook' : 'middleware'}`;
  return kind === 'floor' ? `bare ${framework} + 1 Redis command` : 'latchkey';
}

async function startStack(framework: string, kind: StackKind, redisUrl: string): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/server.ts', framework, kind], {
    // latchkey from dist/, as users run it (see tsconfig.bench-run.json).
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port), REDIS_URL: redisUrl, TSX_TSCONFIG_PATH: 'tsconfig.bench-run.json' },
    // The IPC channel carries the CPU samples (see bench/server.ts), outside the measured HTTP path.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${framework}/${kind} did not start in 30 s`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${framework}/${kind} exited with ${code}`))));
  });
  return { kind, name: stackName(framework, kind), url: `http://127.0.0.1:${port}`, child };
}

async function stopStack(stack: Running): Promise<void> {
  if (stack.child.exitCode !== null) return;
  const exited = once(stack.child, 'exit');
  stack.child.kill('SIGTERM');
  const timer = setTimeout(() => stack.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The stack's CPU time and requests received so far. */
async function sampleCpu(stack: Running): Promise<CpuSample> {
  const reply = once(stack.child, 'message', { signal: AbortSignal.timeout(10_000) });
  stack.child.send('cpu');
  const [sample] = (await reply) as [CpuSample];
  return sample;
}

/** The load generator process, one job at a time. */
class Loader {
  readonly #child = fork('bench/load.ts', [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  readonly ready = once(this.#child, 'message');

  async run(job: LoadJob): Promise<LoadResult> {
    this.#child.send(job);
    const [reply] = (await once(this.#child, 'message')) as [{ ok: boolean; result?: LoadResult; error?: string }];
    if (!reply.ok || !reply.result) throw new Error(`load run failed: ${reply.error}`);
    return reply.result;
  }

  stop(): void {
    this.#child.kill();
  }
}

/** The Cookie header that carries every cookie a response set. */
function cookieHeader(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ');
}

async function login(stack: Running, route = 'login'): Promise<string> {
  const response = await fetch(`${stack.url}/${route}`);
  await response.text();
  const cookie = cookieHeader(response);
  if (!response.ok || cookie === '') throw new Error(`${stack.name}: /${route} gave ${response.status} and no cookie`);
  return cookie;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Times `route` on every stack, repeats interleaved so that drift on a shared machine hits all alike. */
async function timeRoute(stacks: Running[], route: string, redis: RedisServer, loader: Loader): Promise<Map<Running, RouteFigures>> {
  // /login runs without a cookie (each request logs in anew); the others on a logged-in session.
  const headers = new Map<Running, Record<string, string>>();
  for (const stack of stacks) headers.set(stack, route === 'login' ? {} : { cookie: await login(stack, loginRoute(route)) });
  const runs = new Map<Running, Array<LoadResult & { commands: number; cpu: number }>>(stacks.map((stack) => [stack, []]));
  for (const stack of SETTINGS.warmup > 0 ? stacks : []) {
    await loader.run({ url: `${stack.url}/${route}`, headers: headers.get(stack) ?? {}, duration: SETTINGS.warmup, connections: SETTINGS.connections });
  }
  for (let repeat = 0; repeat < SETTINGS.repeats; repeat++) {
    for (const stack of stacks) {
      await redis.resetStats();
      const before = await sampleCpu(stack);
      const result = await loader.run({ url: `${stack.url}/${route}`, headers: headers.get(stack) ?? {}, duration: SETTINGS.duration, connections: SETTINGS.connections });
      const after = await sampleCpu(stack);
      // Per request the server received over the run, so that CPU and requests cover the same span.
      const cpu = (after.user + after.system - before.user - before.system) / Math.max(after.requests - before.requests, 1);
      runs.get(stack)?.push({ ...result, commands: (await redis.commandTotal()) / Math.max(result.requests, 1), cpu });
    }
  }
  const figures = new Map<Running, RouteFigures>();
  for (const [stack, results] of runs) {
    const roundTrips = await countRoundTrips(stack, route, redis);
    figures.set(stack, {
      roundTrips,
      rps: median(results.map((r) => r.rps)),
      p50: median(results.map((r) => r.p50)),
      p99: median(results.map((r) => r.p99)),
      non2xx: results.reduce((sum, r) => sum + r.non2xx + r.errors, 0),
      commands: median(results.map((r) => r.commands)),
      cpu: median(results.map((r) => r.cpu)),
      repeats: results.map((r) => r.rps),
      cpuRepeats: results.map((r) => r.cpu),
    });
  }
  return figures;
}

/** Round trips to Redis per request: commands clients sent (MONITOR), scripts' inner calls left out. */
async function countRoundTrips(stack: Running, route: string, redis: RedisServer): Promise<number> {
  const requests = SETTINGS.roundTripRequests;
  // A session logged in just now: the timed runs took longer than touchInterval, and a read of an
  // older session also extends its expiry once (documented apart from the one round trip).
  const headers: Record<string, string> = route === 'login' ? {} : { cookie: await login(stack, loginRoute(route)) };
  const monitor = await redis.monitor();
  for (let i = 0; i < requests; i++) await (await fetch(`${stack.url}/${route}`, { headers })).text();
  return (await monitor.stop()) / requests;
}

/** 50 concurrent /setfield/i on one session, then counts the fields that survived, per trial. */
async function lostUpdates(stack: Running): Promise<number[]> {
  const kept: number[] = [];
  for (let trial = 0; trial < SETTINGS.lostTrials; trial++) {
    const cookie = await login(stack);
    const writes = Array.from({ length: SETTINGS.concurrentWrites }, (_, i) =>
      fetch(`${stack.url}/setfield/${i}`, { headers: { cookie } }).then((response) => response.text()),
    );
    await Promise.all(writes);
    const dump = (await (await fetch(`${stack.url}/dump`, { headers: { cookie } })).json()) as Record<string, unknown>;
    kept.push(Array.from({ length: SETTINGS.concurrentWrites }, (_, i) => `f${i}`).filter((field) => field in dump).length);
  }
  return kept;
}

/** Redis memory per session holding 10 fields of 20 characters: average growth, and MEMORY USAGE of one. */
async function bytesPerSession(stack: Running, redis: RedisServer): Promise<{ average: number; memoryUsage: number }> {
  await redis.command('FLUSHALL');
  const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(String(await redis.command('INFO', 'memory')))?.[1]);
  const before = await usedMemory();
  const total = SETTINGS.fillSessions;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      const response = await fetch(`${stack.url}/fill10`);
      await response.text();
      if (!response.ok) throw new Error(`${stack.name}: /fill10 gave ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const after = await usedMemory();
  const [, keys] = (await redis.command('SCAN', '0', 'COUNT', '100')) as [string, string[]];
  const key = keys[0];
  const memoryUsage = key === undefined ? 0 : Number(await redis.command('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
  const stored = Number(await redis.command('DBSIZE'));
  if (stored !== total) throw new Error(`${stack.name}: ${total} /fill10 requests left ${stored} keys`);
  return { average: (after - before) / total, memoryUsage };
}

async function benchFramework(framework: string, kinds: readonly StackKind[], redis: RedisServer, loader: Loader): Promise<FrameworkResult> {
  const started = Date.now();
  const stacks: Running[] = [];
  try {
    // Started side by side: loading a stack is most of the wait, and nothing is timed yet.
    const starting = await Promise.allSettled(kinds.map((kind) => startStack(framework, kind, redis.url)));
    for (const outcome of starting) if (outcome.status === 'fulfilled') stacks.push(outcome.value);
    const failed = starting.find((outcome) => outcome.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const phase = (name: string): void => void process.stdout.write(` [${name} ${((Date.now() - started) / 1000).toFixed(0)} s]`);
    phase('started');
    const results = new Map<Running, StackResult>(stacks.map((stack) => [stack, { name: stack.name, kind: stack.kind, routes: {} }]));
    for (const route of TIMED_ROUTES) {
      await redis.command('FLUSHALL');
      // The empty middleware only tells what mounting one costs: it is timed on /plain alone.
      const timed = route === 'plain' ? stacks : stacks.filter((stack) => stack.kind !== 'empty');
      const figures = await timeRoute(timed, route, redis, loader);
      for (const [stack, figure] of figures) (results.get(stack) as StackResult).routes[route] = figure;
      process.stdout.write('.');
    }
    phase('timed');
    for (const stack of stacks.filter((candidate) => candidate.kind !== 'empty')) {
      const result = results.get(stack) as StackResult;
      result.lostUpdates = await lostUpdates(stack);
      result.memory = await bytesPerSession(stack, redis);
    }
    phase('checked');
    return { framework, stacks: [...results.values()] };
  } finally {
    for (const stack of stacks) await stopStack(stack);
  }
}

const started = Date.now();
const redis = await startRedis();
const loader = new Loader();
try {
  await loader.ready;
  const frameworks: FrameworkResult[] = [];
  const serverInfo = (await redis.command('INFO', 'server')) as string;
  // Loaded by path: it needs connect-redis, whose types clash with latchkey's (tsconfig.bench.json).
  const redisCostModule: string = './redis-cost.ts';
  const { measureRedisCost } = (await import(redisCostModule)) as { measureRedisCost: MeasureRedisCost };
  const redisCostSettings = args.quick ? REDIS_COST_SETTINGS.quick : REDIS_COST_SETTINGS.full;
  process.stdout.write('Redis CPU per operation ');
  const redisCost = { settings: redisCostSettings, result: await measureRedisCost(redis, redisCostSettings) };
  process.stdout.write('\n' + renderRedisCost(redisCost.result, false) + '\n\n');
  for (const framework of args.frameworks.split(',')) {
    const kinds = FRAMEWORKS[framework];
    if (!kinds) throw new Error(`unknown framework ${framework}; known: ${Object.keys(FRAMEWORKS).join(', ')}`);
    process.stdout.write(`${framework} `);
    const result = await benchFramework(framework, kinds, redis, loader);
    frameworks.push(result);
    process.stdout.write('\n' + renderTable(result) + '\n\n');
  }
  const results: Results = {
    date: new Date().toISOString(),
    quick: args.quick,
    settings: SETTINGS,
    redisVersion: /redis_version:(\S+)/.exec(serverInfo)?.[1] ?? 'unknown',
    seconds: Math.round((Date.now() - started) / 1000),
    versions: versions(),
    frameworks,
    redisCost,
  };
  writeFileSync(json, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(args.out, renderMarkdown(results, json));
  console.log(`wrote ${args.out} and ${json} in ${results.seconds} s`);
} finally {
  loader.stop();
  await redis.stop();
}
