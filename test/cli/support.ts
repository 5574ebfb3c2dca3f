// Running the operator CLI (`npx latchkey sessions ...`) as a process, the way an operator runs
// it (with tsx, on the sources, so no build is needed), and making sessions for it to find the way
// an app makes them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisStore, SessionManager, type RedisClientLike } from '../../src/index.js';
import { storageId } from '../../src/core/id.js';
import { context, cookieOf } from '../manager.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(root, 'src', 'cli.ts');

export interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Variables the CLI reads, and the test runner's context: the machine's must not reach it. */
const OWN_VARIABLES = new Set(['REDIS_URL', 'REDIS_CLUSTER', 'LATCHKEY_REDIS_CLIENT', 'NODE_TEST_CONTEXT']);

/** Runs `latchkey ...args` with `env` added to an environment without any Redis variable of the machine's. */
export async function latchkey(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !OWN_VARIABLES.has(name)));
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [status, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  assert.equal(signal, null, `latchkey ${args.join(' ')} was killed (${signal}) after 30 s:\n${stdout}${stderr}`);
  return { status, stdout, stderr };
}

/** Asserts the CLI failed with `status` and one line on stderr matching `pattern`, nothing on stdout, no stack trace. */
export function assertFailed(result: Result, status: number, pattern: RegExp): void {
  const shown = `stdout: ${result.stdout}\nstderr: ${result.stderr}`;
  assert.equal(result.status, status, shown);
  assert.equal(result.stdout, '', shown);
  assert.match(result.stderr, /^latchkey: [^\n]+\n$/, `one line on stderr\n${shown}`);
  assert.match(result.stderr, pattern);
}

/** Asserts the CLI succeeded, printing nothing on stderr; returns its stdout. */
export function assertOk(result: Result): string {
  assert.equal(result.status, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
  assert.equal(result.stderr, '');
  return result.stdout;
}

/**
 * The cells of each line of a table, cut at the columns where the header's titles start: so a
 * cell that is not under its title (a table out of line) comes out wrong.
 */
export function tableOf(output: string, titles: readonly string[]): string[][] {
  const [header = '', ...rows] = output.trimEnd().split('\n');
  const starts = titles.map((title) => header.indexOf(title));
  assert.ok(starts.every((start, i) => start >= 0 && (i === 0 || start > (starts[i - 1] as number))), `header: ${header}`);
  return rows.map((row) => starts.map((start, i) => row.slice(start, starts[i + 1]).trim()));
}

/** A session the test made. */
export interface Login {
  /** The cookie's `name=value`. */
  readonly cookie: string;
  /** The session's handle, as `session.id` shows it. */
  readonly handle: string;
  /** The session's Redis key. */
  readonly key: string;
  /** What must never be printed: the cookie's token and the storage id. */
  readonly secrets: readonly string[];
}

/** Sessions of one app, under one prefix. */
export interface Sessions {
  /** Every session made so far. */
  readonly made: readonly Login[];
  /** Signs a new visitor in as `user`, from the `client` given (for `recordClient`), and stores `data`. */
  login(user: string, client?: { userAgent?: string; ip?: string }, data?: Record<string, unknown>): Promise<Login>;
  /** A visitor's session that nobody signed in to. */
  anonymous(): Promise<Login>;
  /** The user the next request with the session's cookie is signed in as, and whether it starts a new session. */
  nextRequest(login: Login): Promise<{ user: string | undefined; isNew: boolean }>;
}

/** Sessions made by latchkey, as an app makes them (recording the client), under `prefix`. */
export function sessionsOn(client: RedisClientLike, prefix: string): Sessions {
  const manager = new SessionManager({ store: new RedisStore({ redis: client, prefix }), recordClient: true });
  const made: Login[] = [];
  const remember = (cookie: string, handle: string | undefined): Login => {
    assert.ok(handle !== undefined, 'the session has a handle');
    const token = cookie.slice(cookie.indexOf('=') + 1);
    const id = storageId(token);
    const login = { cookie, handle, key: prefix + id, secrets: [token, id] };
    made.push(login);
    return login;
  };
  return {
    made,
    async login(user, client = {}, data = { name: user }) {
      const handle = manager.open({ ...context(), client: () => client });
      await handle.session.login(user);
      await handle.session.set(data);
      return remember(cookieOf(handle), handle.session.id);
    },
    async anonymous() {
      const handle = manager.open(context());
      await handle.session.set('visits', 1);
      return remember(cookieOf(handle), handle.session.id);
    },
    async nextRequest(login) {
      const { session } = manager.open(context(login.cookie));
      const user = await session.userId();
      return { user, isNew: session.isNew };
    },
  };
}

/** Asserts no output shows a token or a storage id of any session made. */
export function assertNoSecrets(made: readonly Login[], ...outputs: string[]): void {
  for (const output of outputs) {
    for (const { secrets } of made) for (const secret of secrets) assert.ok(!output.includes(secret), `printed a token or storage id:\n${output}`);
  }
}

/** The titles of `sessions list`'s table. */
export const LIST_TITLES = ['HANDLE', 'CREATED', 'LAST SEEN', 'USER AGENT', 'IP'];

/** A session as `sessions list --json` prints it. */
export interface ListedJson {
  handle: string;
  userId: string | null;
  createdAt: string;
  lastSeenAt: string;
  userAgent: string | null;
  ip: string | null;
}

