#!/usr/bin/env node
// `npx latchkey`: sessions by user for operators (list, revoke, count, inspect), on the Redis and
// key prefix the app uses. It names sessions by handle (what `session.id` shows) and never prints
// a token or a storage id; the app's values only with --values, as they may be personal data.
import { parseArgs } from 'node:util';
import { SessionAdmin, type SessionInfo, type SessionInspection } from './core/admin.js';
import { isSessionError } from './core/errors.js';
import { RedisStore } from './stores/redis.js';
import { installed, type RedisClientLike, type RedisLibrary } from './stores/redis-client.js';

const OK = 0;
const NOT_FOUND = 1;
const FAILED = 2;

/** How long connecting and each command may take: an operator waits for the answer. */
const TIMEOUT_MS = 2000;

const DEFAULT_URL = 'redis://localhost:6379/0';
const DEFAULT_PREFIX = 'session:';

const USAGE = `Usage: latchkey sessions <command> [options]

Sessions of users, as latchkey keeps them in Redis. Sessions are named by their handle (what
session.id shows), never by their token.

Commands:
  sessions list --user ID                        the user's sessions, oldest first
  sessions revoke --user ID --session HANDLE     ends one session of the user
  sessions revoke --user ID --all                ends every session of the user
  sessions count                                 how many live sessions there are (walks them all)
  sessions inspect --session HANDLE [--user ID]  a session's metadata, and its keys with their sizes;
                   [--values]                    with --values, their values too (may be personal data);
                                                 without --user, every session is searched
  help                                           this text

Connection:
  --redis URL        redis:// or rediss:// URL; default $REDIS_URL, else ${DEFAULT_URL}
  --cluster NODES    Redis Cluster nodes, host:port,host:port; default $REDIS_CLUSTER.
                     A node may be a redis:// or rediss:// URL: the user, password and TLS
                     of the first node apply to every node.
  --prefix PREFIX    the key prefix the app's sessions use; default ${DEFAULT_PREFIX}
  The client library is node-redis if installed, else ioredis; $LATCHKEY_REDIS_CLIENT
  (redis or ioredis) picks one.

Output:
  --json             JSON on stdout, for scripts (dates as ISO 8601 strings)
  -h, --help         this text

Exit status: 0 done, 1 no such session, 2 usage, connection or Redis error.
`;

const OPTIONS = {
  redis: { type: 'string' },
  cluster: { type: 'string' },
  prefix: { type: 'string' },
  user: { type: 'string' },
  session: { type: 'string' },
  all: { type: 'boolean' },
  values: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Values = { [Name in OptionName]?: (typeof OPTIONS)[Name]['type'] extends 'string' ? string : boolean };

/** Options every command takes. */
const COMMON: readonly OptionName[] = ['redis', 'cluster', 'prefix', 'json', 'help'];

const COMMANDS = {
  list: { options: ['user'], required: ['user'] },
  revoke: { options: ['user', 'session', 'all'], required: ['user'] },
  count: { options: [], required: [] },
  inspect: { options: ['session', 'user', 'values'], required: ['session'] },
} as const satisfies Record<string, { options: readonly OptionName[]; required: readonly OptionName[] }>;

type Command = keyof typeof COMMANDS;

/** A wrong command line: exit 2, with a pointer to the usage. */
class UsageError extends Error {}

/** A session or user that is not there: exit 1. */
class NotFoundError extends Error {}

/** Redis could not be reached or used: exit 2. */
class RedisFailure extends Error {}

interface Invocation {
  readonly command: Command;
  readonly values: Values;
}

/** The command line, checked; `undefined` when it asks for the usage. */
function parse(args: readonly string[]): Invocation | undefined {
  // Not strict: parseArgs' own errors are long and name its API; these are checked below instead.
  const { values, positionals, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const given = new Set<OptionName>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (!Object.hasOwn(OPTIONS, token.name)) throw new UsageError(`unknown option ${token.rawName}`);
    const name = token.name as OptionName;
    if (given.has(name)) throw new UsageError(`${token.rawName} is given twice`);
    given.add(name);
    if (OPTIONS[name].type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`);
    } else if (token.value === undefined || token.value === '' || (!token.inlineValue && (token.value.startsWith('--') || token.value === '-h'))) {
      // A following option was taken as the value; a value that starts with '--' can be given as --name=value.
      throw new UsageError(`${token.rawName} needs a value`);
    }
  }
  if (values.help === true || positionals[0] === 'help') return undefined;
  const [group, name, ...extra] = positionals;
  if (group === undefined) throw new UsageError('no command given');
  if (group !== 'sessions') throw new UsageError(`unknown command '${group}'`);
  if (name === undefined) throw new UsageError('sessions needs a command: list, revoke, count or inspect');
  if (!Object.hasOwn(COMMANDS, name)) throw new UsageError(`unknown command 'sessions ${name}'`);
  const command = name as Command;
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const spec = COMMANDS[command];
  const allowed: readonly OptionName[] = [...COMMON, ...spec.options];
  for (const option of given) {
    if (!allowed.includes(option)) throw new UsageError(`sessions ${command} takes no --${option}`);
  }
  for (const option of spec.required) {
    if (!given.has(option)) throw new UsageError(`sessions ${command} needs --${option} ${option === 'user' ? 'ID' : 'HANDLE'}`);
  }
  if (command === 'revoke' && given.has('session') === given.has('all')) {
    throw new UsageError('sessions revoke needs either --session HANDLE or --all');
  }
  return { command, values: values as Values };
}

// ---------------------------------------------------------------------------------------------
// Connection

/** One node of a cluster, as given in --cluster. */
interface Seed {
  readonly host: string;
  readonly port: number;
  readonly url: string;
}

/** Where the sessions are, and how messages name that (`Redis at <url>`, password hidden). */
type Target =
  | { readonly kind: 'url'; readonly url: string; readonly shown: string }
  | {
      readonly kind: 'cluster';
      readonly seeds: readonly Seed[];
      /** The user and password of the first node's URL, for every node. */
      readonly credentials: { readonly username?: string; readonly password?: string };
      /** Whether the first node's URL is rediss://: TLS to every node. */
      readonly tls: boolean;
      readonly shown: string;
    };

/** `url` with its password replaced by `***`, for messages. */
function hidePassword(url: URL): string {
  if (url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}

function parseUrl(text: string, option: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${option} must be a URL such as ${DEFAULT_URL}, got '${text}'`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageError(`${option} must start with redis:// or rediss://, got '${url.protocol}'`);
  }
  return url;
}

function parseSeeds(list: string, option: string): Target {
  const seeds: Seed[] = [];
  let first: URL | undefined;
  for (const entry of list.split(',').map((part) => part.trim())) {
    let url: URL;
    if (/^rediss?:\/\//.test(entry)) {
      url = parseUrl(entry, option);
    } else {
      const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/@[\]]+):(\d{1,5})$/.exec(entry);
      if (match === null) throw new UsageError(`${option} takes host:port,host:port; got '${entry}'`);
      if (Number(match[2]) > 65535) throw new UsageError(`${option}: port out of range in '${entry}'`);
      url = new URL(`redis://${match[1]}:${match[2]}`);
    }
    const port = Number(url.port || 6379);
    if (port === 0) throw new UsageError(`${option}: port out of range in '${entry}'`);
    first ??= url;
    seeds.push({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, url: `redis://${url.host}` });
  }
  if (first === undefined) throw new UsageError(`${option} needs at least one host:port`);
  return {
    kind: 'cluster',
    seeds,
    credentials: {
      ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
      ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
    },
    tls: first.protocol === 'rediss:',
    shown: `Redis Cluster at ${seeds.map((seed) => `${seed.host}:${seed.port}`).join(',')}`,
  };
}

/** --redis and --cluster, else $REDIS_URL and $REDIS_CLUSTER, else the default URL. */
function targetOf(values: Values, env: NodeJS.ProcessEnv): Target {
  if (values.redis !== undefined && values.cluster !== undefined) throw new UsageError('give --redis or --cluster, not both');
  if (values.cluster !== undefined) return parseSeeds(values.cluster, '--cluster');
  let url = values.redis;
  if (url === undefined) {
    const fromEnv = env.REDIS_URL || undefined;
    const cluster = env.REDIS_CLUSTER || undefined;
    if (fromEnv !== undefined && cluster !== undefined) {
      throw new UsageError('both REDIS_URL and REDIS_CLUSTER are set: pick one with --redis or --cluster');
    }
    if (cluster !== undefined) return parseSeeds(cluster, 'REDIS_CLUSTER');
    url = fromEnv ?? DEFAULT_URL;
  }
  const parsed = parseUrl(url, values.redis === undefined && env.REDIS_URL ? 'REDIS_URL' : '--redis');
  return { kind: 'url', url, shown: `Redis at ${hidePassword(parsed)}` };
}

function libraryOf(env: NodeJS.ProcessEnv): RedisLibrary {
  const chosen = env.LATCHKEY_REDIS_CLIENT || undefined;
  if (chosen !== undefined) {
    if (chosen !== 'redis' && chosen !== 'ioredis') throw new UsageError(`LATCHKEY_REDIS_CLIENT must be redis or ioredis, got '${chosen}'`);
    if (!installed(chosen)) throw new RedisFailure(`LATCHKEY_REDIS_CLIENT is ${chosen}, which is not installed`);
    return chosen;
  }
  if (installed('redis')) return 'redis';
  if (installed('ioredis')) return 'ioredis';
  throw new RedisFailure('no Redis client is installed: npm install redis (or ioredis)');
}

/** The parts of node-redis the CLI uses. */
interface NodeRedisModule {
  createClient(options: object): NodeRedisConnection;
  createCluster(options: object): NodeRedisConnection;
}

interface NodeRedisConnection {
  on(event: 'error', listener: (error: unknown) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
}

/** The parts of ioredis the CLI uses. */
interface IoRedisModule {
  Redis: new (url: string, options: object) => IoRedisConnection;
  Cluster: new (nodes: object[], options: object) => IoRedisConnection;
}

interface IoRedisConnection {
  on(event: 'error', listener: (error: unknown) => void): unknown;
  connect(): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
  readonly status: string;
}

/** A connected client and how to let it go. */
interface Connection {
  readonly client: RedisClientLike;
  close(): Promise<void>;
  /** Drops the connection at once. */
  destroy(): void;
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^latchkey: /, '');
}

/**
 * Connects without retrying: for a one-off command, a refused connection is the answer, and the
 * error the client gave (say, ECONNREFUSED) is what the operator needs to see.
 */
async function connect(target: Target, library: RedisLibrary): Promise<Connection> {
  let lastError: unknown;
  const remember = (error: unknown): void => void (lastError = error);
  let connection: Connection;
  let connecting: Promise<unknown>;
  if (library === 'redis') {
    const mod = (await import('redis')) as unknown as NodeRedisModule;
    const socket = { connectTimeout: TIMEOUT_MS, reconnectStrategy: false };
    const client =
      target.kind === 'url'
        ? mod.createClient({ url: target.url, disableOfflineQueue: true, socket })
        : mod.createCluster({
            rootNodes: target.seeds.map((seed) => ({ url: seed.url })),
            defaults: { ...target.credentials, socket: { ...socket, ...(target.tls ? { tls: true } : {}) } },
          });
    client.on('error', remember);
    connecting = client.connect();
    connection = {
      client: client as unknown as RedisClientLike,
      close: async () => void (await client.close()),
      destroy: () => client.destroy(),
    };
  } else {
    const mod = (await import('ioredis')) as unknown as IoRedisModule;
    const options = { connectTimeout: TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null };
    const client =
      target.kind === 'url'
        ? new mod.Redis(target.url, { ...options, lazyConnect: true, enableOfflineQueue: false })
        : new mod.Cluster(
            target.seeds.map(({ host, port }) => ({ host, port })),
            {
              lazyConnect: true,
              clusterRetryStrategy: () => null,
              redisOptions: { ...options, ...target.credentials, ...(target.tls ? { tls: {} } : {}) },
            },
          );
    client.on('error', remember);
    connecting = client.connect();
    connection = {
      client: client as unknown as RedisClientLike,
      close: async () => void (client.status === 'ready' ? await client.quit() : client.disconnect()),
      destroy: () => client.disconnect(),
    };
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`not connected within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  try {
    await Promise.race([connecting, timeout]);
    return connection;
  } catch (error) {
    connection.destroy();
    // The clients' connect() errors can be vague ("Connection is closed"); their error events say why.
    const reason = messageOf(error);
    const detail = lastError === undefined ? '' : messageOf(lastError);
    throw new RedisFailure(`cannot reach ${target.shown}: ${detail === '' || reason.includes(detail) ? reason : `${reason} (${detail})`}`);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

/**
 * `text` safe to print on a terminal: user agents come from clients and keys and values from the
 * app, so control characters (an escape sequence could rewrite the screen) and bidirectional
 * overrides (which reorder what is shown) are printed as \u escapes.
 */
function printable(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}

const UNPRINTABLE = /[\p{Cc}\p{Bidi_Control}]/gu;

function escape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Rows under a header, each column as wide as its widest cell. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
}

/** JSON for scripts; the escapes of {@link printable} for what JSON.stringify leaves as is. */
function json(value: unknown): string {
  // JSON.stringify escapes C0 controls itself; the line breaks left are its indentation's.
  return `${JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\p{Bidi_Control}]/gu, escape)}\n`;
}

/** Longest user agent shown in a table; --json gives it whole. */
const AGENT_WIDTH = 60;

function sessionRow(session: SessionInfo): string[] {
  return [
    session.handle,
    session.createdAt.toISOString(),
    session.lastSeenAt.toISOString(),
    session.userAgent === undefined ? '-' : shorten(printable(session.userAgent), AGENT_WIDTH),
    session.ip === undefined ? '-' : printable(session.ip),
  ];
}

function metadata(session: SessionInfo): Record<string, unknown> {
  return {
    handle: session.handle,
    userId: session.userId ?? null,
    createdAt: session.createdAt.toISOString(),
    lastSeenAt: session.lastSeenAt.toISOString(),
    userAgent: session.userAgent ?? null,
    ip: session.ip ?? null,
  };
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function inspection(session: SessionInspection, values: boolean): string {
  const details = table(
    ['handle', session.handle],
    [
      ['user', session.userId === undefined ? '- (not signed in)' : printable(session.userId)],
      ['created', session.createdAt.toISOString()],
      ['last seen', session.lastSeenAt.toISOString()],
      ['user agent', session.userAgent === undefined ? '-' : printable(session.userAgent)],
      ['ip', session.ip === undefined ? '-' : printable(session.ip)],
    ],
  );
  if (session.fields.length === 0) return `${details}\nno keys\n`;
  const rows = session.fields.map((field) => [
    printable(field.key),
    String(field.bytes),
    ...(values ? [printable(JSON.stringify(field.value) ?? String(field.value))] : []),
  ]);
  const bytes = session.fields.reduce((sum, field) => sum + field.bytes, 0);
  const summary = `${plural(session.fields.length, 'key')}, ${plural(bytes, 'byte')}${values ? '' : '; --values shows the values'}\n`;
  return `${details}\n${table(['KEY', 'BYTES', ...(values ? ['VALUE'] : [])], rows)}${summary}`;
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Runs the command and returns what to print on stdout; throws {@link NotFoundError} for a missing session. */
async function run(admin: SessionAdmin, { command, values }: Invocation): Promise<string> {
  const asJson = values.json === true;
  // parse() saw to the options each command requires.
  const user = values.user as string;
  const handle = values.session as string;
  switch (command) {
    case 'list': {
      const sessions = await admin.listUserSessions(user);
      if (asJson) return json(sessions.map(metadata));
      if (sessions.length === 0) return `no sessions for user ${printable(user)}\n`;
      return table(['HANDLE', 'CREATED', 'LAST SEEN', 'USER AGENT', 'IP'], sessions.map(sessionRow));
    }
    case 'revoke': {
      if (values.all === true) {
        const count = await admin.revokeUserSessions(user);
        if (asJson) return json({ revoked: count });
        if (count === 0) return `no sessions for user ${printable(user)}; nothing revoked\n`;
        return `revoked ${plural(count, 'session')} of user ${printable(user)}\n`;
      }
      if (!(await admin.revokeSession(user, handle))) throw new NotFoundError(`user ${printable(user)} has no session ${printable(handle)}`);
      return asJson ? json({ revoked: 1 }) : `revoked session ${printable(handle)} of user ${printable(user)}\n`;
    }
    case 'count': {
      const count = await admin.countSessions();
      return asJson ? json({ count }) : `${plural(count, 'session')}\n`;
    }
    case 'inspect': {
      const shown = values.values === true;
      const found = await admin.inspectSession(handle, { ...(values.user === undefined ? {} : { userId: user }), values: shown });
      if (found === undefined) {
        throw new NotFoundError(values.user === undefined ? `no session ${printable(handle)}` : `user ${printable(user)} has no session ${printable(handle)}`);
      }
      if (!asJson) return inspection(found, shown);
      return json({ ...metadata(found), fields: found.fields.map((field) => (shown ? { ...field } : { key: field.key, bytes: field.bytes })) });
    }
  }
}

/** What to tell the operator about `error`, in one line, and the exit status. */
function failure(error: unknown, target: Target | undefined): { message: string; status: number } {
  if (error instanceof UsageError) return { message: `${error.message} (see 'latchkey --help')`, status: FAILED };
  if (error instanceof NotFoundError) return { message: error.message, status: NOT_FOUND };
  if (error instanceof RedisFailure) return { message: error.message, status: FAILED };
  const where = target?.shown ?? 'Redis';
  if (isSessionError(error)) {
    const reason = messageOf(error.cause ?? error);
    if (error.code === 'STORE_UNAVAILABLE') return { message: `cannot reach ${where}: ${reason}`, status: FAILED };
    if (error.code === 'STORE_ERROR') return { message: `${where} answered with an error: ${reason}`, status: FAILED };
  }
  return { message: messageOf(error), status: FAILED };
}

function oneLine(text: string): string {
  return printable(text.replace(/\s*\n\s*/g, ' '));
}

async function main(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let target: Target | undefined;
  let connection: Connection | undefined;
  try {
    const invocation = parse(args);
    if (invocation === undefined) {
      process.stdout.write(USAGE);
      return OK;
    }
    target = targetOf(invocation.values, env);
    const library = libraryOf(env);
    const prefix = invocation.values.prefix ?? DEFAULT_PREFIX;
    connection = await connect(target, library);
    const admin = new SessionAdmin({ store: new RedisStore({ redis: connection.client, prefix, commandTimeout: TIMEOUT_MS }) });
    process.stdout.write(await run(admin, invocation));
    return OK;
  } catch (error) {
    const { message, status } = failure(error, target);
    process.stderr.write(`latchkey: ${oneLine(message)}\n`);
    return status;
  } finally {
    await closeQuietly(connection);
  }
}

/** Closes the connection, or drops it if Redis does not answer the goodbye in time. */
async function closeQuietly(connection: Connection | undefined): Promise<void> {
  if (connection === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([connection.close(), new Promise((_resolve, reject) => (timer = setTimeout(reject, TIMEOUT_MS)))]);
  } catch {
    connection.destroy();
  } finally {
    clearTimeout(timer);
  }
}

// Output piped into a program that stops reading (`| head`) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? OK);
  throw error;
});

process.exitCode = await main(process.argv.slice(2), process.env);
// Exit rather than wait for the event loop to empty: a client library may keep a timer or a
// socket of a failed connection for seconds. Pipes are asynchronous on some systems, so the
// output is flushed first.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit();
