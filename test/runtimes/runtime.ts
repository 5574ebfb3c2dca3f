// The conformance suite against apps that run in Bun or Deno: the test (Node) starts redis-server
// and the runtime's process (app.ts), and drives the apps over HTTP on loopback.
import { spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { Observed } from '../conformance/app.js';
import type { AppHost, HostedApp } from '../conformance/harness.js';
import { conformance } from '../conformance/suite.js';
import { isExecutable, spawnProgram, waitForOutput, withoutTool, type Program } from '../process.js';
import { cleanUpOnExit } from '../redis/server.js';
import type { StartRequest } from './app.js';

/** A JavaScript runtime besides Node that latchkey supports. */
export type RuntimeName = 'bun' | 'deno';

/** A runtime executable found on this machine. */
export interface Runtime {
  readonly name: RuntimeName;
  readonly path: string;
  /** What `--version` says, e.g. `1.4.5`. */
  readonly version: string;
}

/** The runtime to test with, or why there is none. */
export type RuntimeLookup = { readonly runtime: Runtime } | { readonly missing: string };

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where `node scripts/install-runtimes.js` installs the pinned versions (gitignored). */
export const RUNTIMES_DIR = join(ROOT, '.runtimes');
const APP = fileURLToPath(new URL('app.ts', import.meta.url));

/**
 * Keeps the runtimes quiet on the network: no update check (Deno), no crash reports or telemetry
 * (Bun), never a permission prompt (Deno). The apps' only traffic is to the test on loopback.
 */
const QUIET_ENV: Record<string, string> = {
  DENO_NO_UPDATE_CHECK: '1',
  DENO_NO_PROMPT: '1',
  DO_NOT_TRACK: '1',
  BUN_ENABLE_CRASH_REPORTING: '0',
};

function identify(name: RuntimeName, path: string): Runtime {
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...QUIET_ENV } });
  // Bun says `1.4.5`, Deno `deno 2.9.6 (stable, release, ...)`.
  const version = result.status === 0 ? /\d+\.\d+\.\d+\S*/.exec(result.stdout)?.[0] : undefined;
  if (version === undefined) throw new Error(`${path} --version failed (${result.status ?? result.signal}): ${result.stdout}${result.stderr}${result.error ?? ''}`);
  return { name, path, version };
}

/**
 * Finds `name`: `BUN_PATH` or `DENO_PATH` when set, else the version `node scripts/install-runtimes.js`
 * installed in .runtimes/, else the first on `PATH`.
 * @throws when the variable names no executable, or the executable found does not run: a broken
 *   setting or install is not a reason to skip
 */
export function findRuntime(name: RuntimeName, env: NodeJS.ProcessEnv = process.env): RuntimeLookup {
  const variable = `${name.toUpperCase()}_PATH`;
  const configured = env[variable];
  if (configured !== undefined && configured !== '') {
    if (!isExecutable(configured)) throw new Error(`${variable}=${configured} is not an executable file`);
    return { runtime: identify(name, configured) };
  }
  const onPath = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, name));
  const found = [join(RUNTIMES_DIR, 'node_modules', '.bin', name), ...onPath].find(isExecutable);
  if (found !== undefined) return { runtime: identify(name, found) };
  return {
    missing:
      `needs ${name}, found neither in ${RUNTIMES_DIR} nor on PATH: install the tested version from npm with ` +
      `\`node scripts/install-runtimes.js\`, or set ${variable} to a ${name} executable`,
  };
}

/** The command line that runs app.ts with the runtime. */
function commandLine(runtime: Runtime, redisUrl: string): string[] {
  if (runtime.name === 'bun') return ['--no-install', '--no-env-file', APP, redisUrl];
  return [
    'run',
    // npm packages from the project's node_modules, as npm installed them; .js specifiers of .ts files.
    '--node-modules-dir=manual',
    '--sloppy-imports',
    '--no-lock',
    '--no-prompt',
    '--allow-net=127.0.0.1',
    `--allow-read=${join(ROOT, 'test', 'fixtures')}`,
    // node-redis reads its environment (REDIS_DEBUG_MAINTENANCE and the like).
    '--allow-env',
    APP,
    redisUrl,
  ];
}

/** The runtime's process and its control server. */
interface Started {
  readonly program: Program;
  readonly control: string;
  readonly forget: () => void;
}

/**
 * The host that starts apps with `adapter` (Hono on the runtime's own server, or node:http) in one
 * process of `runtime`, started with the first app against the suite's Redis and stopped by `close()`.
 */
export function runtimeHost(runtime: Runtime, adapter: StartRequest['adapter']): AppHost {
  let started: Started | undefined;

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!started) throw new Error(`${runtime.name} is not running`);
    const { program, control } = started;
    let response: Response;
    try {
      response = await fetch(control + path, { method, ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    } catch (error) {
      throw new Error(`${runtime.name}: ${method} ${path} failed; the app printed:\n${program.output()}`, { cause: error });
    }
    const text = await response.text();
    if (!response.ok) throw new Error(`${runtime.name}: ${method} ${path}: HTTP ${response.status} ${text}\nThe app printed:\n${program.output()}`);
    return JSON.parse(text) as T;
  }

  /** Starts the runtime's process once; a failure to start fails every later start at once. */
  let starting: Promise<Started> | undefined;
  async function launch(redisUrl: string): Promise<Started> {
    const program = spawnProgram(runtime.path, commandLine(runtime, redisUrl), QUIET_ENV);
    const forget = cleanUpOnExit(() => program.child.kill('SIGKILL'));
    try {
      const [, control] = await waitForOutput(program, /control (http:\/\/127\.0\.0\.1:\d+)\n/, `the app in ${runtime.name}`, 30_000);
      return (started = { program, control: control as string, forget });
    } catch (error) {
      await program.stop();
      forget();
      throw error;
    }
  }

  return {
    name: `${adapter} on ${runtime.name} ${runtime.version}`,
    async start(sut, spec, tls = false): Promise<HostedApp> {
      if (!sut.redis) throw new Error(`an app in ${runtime.name} needs a store on Redis, not ${sut.name}`);
      await (starting ??= launch(sut.redis.url));
      const request: StartRequest = { adapter, spec, tls };
      const { id, url } = await call<{ id: string; url: string }>('POST', '/apps', request);
      return {
        url,
        observed: () => call<Observed>('GET', `/apps/${id}/observed`),
        resetStoreOps: () => call<null>('POST', `/apps/${id}/reset-store-ops`).then(() => {}),
        gate(name) {
          const reached = call<null>('GET', `/apps/${id}/gates/${encodeURIComponent(name)}/reached`).then(() => {});
          // Awaited by the test that asked for the gate; a failure must not also be unhandled.
          reached.catch(() => {});
          return { reached, release: () => call<null>('POST', `/apps/${id}/gates/${encodeURIComponent(name)}/release`).then(() => {}) };
        },
        close: () => call<null>('DELETE', `/apps/${id}`).then(() => {}),
      };
    },
    async close() {
      await starting?.catch(() => {});
      starting = undefined;
      if (!started) return;
      const { program, forget } = started;
      started = undefined;
      await program.stop();
      forget();
    },
  };
}

/**
 * Runs the conformance suite with the store on Redis (node-redis) against apps with `adapters` in
 * the runtime `name`. Where the runtime is missing, the suite is skipped with the reason and how to
 * install it; with `CI=true` it fails.
 */
export function conformanceOn(name: RuntimeName, adapters: ReadonlyArray<StartRequest['adapter']>): void {
  const found = findRuntime(name);
  if ('missing' in found) {
    describe(`conformance on ${name}`, () => it('runs', ...withoutTool(found.missing)));
    return;
  }
  conformance(
    'redis (node-redis)',
    adapters.map((adapter) => runtimeHost(found.runtime, adapter)),
  );
}
