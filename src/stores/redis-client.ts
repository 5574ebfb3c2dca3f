import { getEventListeners, setMaxListeners } from 'node:events';
import { createRequire } from 'node:module';
import { SessionError } from '../core/errors.js';

/** What latchkey needs of a node-redis (v5+) client made by `createClient()`. */
export interface NodeRedisClientLike {
  sendCommand(args: readonly string[], options?: NodeRedisCommandOptions): Promise<unknown>;
  readonly isReady: boolean;
  /** node-redis' event emitter; latchkey listens for `reconnecting` (see {@link toSendCommand}). */
  on?(event: 'reconnecting', listener: () => void): unknown;
  /** The options the client was created with; latchkey reads `commandOptions.timeout` (see {@link clientTimeout}). */
  readonly options?: unknown;
}

/** What latchkey needs of a node-redis (v5+) cluster client made by `createCluster()`. */
export interface NodeRedisClusterLike {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: NodeRedisCommandOptions,
  ): Promise<unknown>;
  getSlotMaster(slot: number): unknown;
}

/** What latchkey needs of a node-redis (v5+) Sentinel client made by `createSentinel()`. */
export interface NodeRedisSentinelLike {
  sendCommand(isReadonly: boolean | undefined, args: string[], options?: NodeRedisCommandOptions): Promise<unknown>;
  use(fn: (client: unknown) => Promise<unknown>): Promise<unknown>;
}

/** What latchkey needs of an ioredis (v5+) client: `new Redis(...)` or `new Cluster(...)`. */
export interface IoRedisLike {
  call(command: string, ...args: Array<string | Buffer>): Promise<unknown>;
  readonly status: string;
  /** The connection of a standalone client (none on a cluster client). */
  readonly stream?: { readonly writable: boolean };
  /** ioredis' event emitter; latchkey listens for `close` (see {@link toSendCommand}). */
  on?(event: 'close', listener: () => void): unknown;
}

/** Any Redis client latchkey can use: node-redis (client, cluster, Sentinel) or ioredis. */
export type RedisClientLike = NodeRedisClientLike | NodeRedisClusterLike | NodeRedisSentinelLike | IoRedisLike;

/** Where a Redis server is, for a client latchkey creates itself. */
export interface RedisConnectionOptions {
  /** @default 'localhost' */
  host?: string;
  /** @default 6379 */
  port?: number;
  /** Database number. @default 0 */
  db?: number;
  /** ACL user name; unset for the default user. */
  username?: string;
  /** Password (AUTH); unset when the server needs none. */
  password?: string;
}

/**
 * One Redis command sender for every client: `key` is the key the command works on, so cluster
 * clients can route it; `args` is the whole raw command.
 */
export type SendCommand = ((key: string, args: readonly string[], signal?: AbortSignal) => Promise<unknown>) & {
  /**
   * Whether a command can wait in the client's own queue after latchkey gave up on it (node-redis
   * Sentinel and Cluster clients queue commands while they switch nodes, a standalone node-redis
   * client before its first connection), so that the caller should pass a `signal` and abort it
   * on timeout: node-redis then drops the command instead of running a write the app was told
   * had failed. It can change from one command to the next: read it for each. `'scripts'`: only
   * scripts need it (ioredis, which sends a command again after a reconnection or a failover; its
   * scripts are withdrawn on abort, see {@link withdrawable}, and its other commands are reads or
   * idempotent).
   */
  readonly abortable?: boolean | 'scripts';
};

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function');
}

/** Whether `value` looks like a node-redis or ioredis client. */
export function isRedisClient(value: unknown): value is RedisClientLike {
  return isObject(value) && (typeof value.call === 'function' || typeof value.sendCommand === 'function');
}

/**
 * Checks the `redis` option of the middleware and of {@link RedisStore}: a client, a URL string or
 * connection options (their details are checked when the URL is built).
 * @throws {@link SessionError} `INVALID_OPTIONS` for anything else
 */
export function checkRedisOption(value: unknown): asserts value is RedisClientLike | string | RedisConnectionOptions {
  if (typeof value === 'string' || isRedisClient(value)) return;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return;
  throw new SessionError(
    'INVALID_OPTIONS',
    `redis must be a node-redis or ioredis client, a redis:// URL or { host, port, db, password }, got ${Array.isArray(value) ? 'an array' : String(value)}`,
  );
}

/**
 * Turns any supported client into one raw-command function, so node-redis and ioredis behave
 * the same: same arguments, same replies (RESP2 shapes), routing by key on clusters.
 */
export function toSendCommand(client: RedisClientLike): SendCommand {
  if ('call' in client && typeof client.call === 'function') {
    const io = client;
    const lost = connectionLoss(io);
    const send = failFast(
      // Once the connection has ended and until it closes, ioredis still says 'ready' but keeps
      // commands for the next connection, which would run them after latchkey gave up on them.
      () => io.status === 'ready' && io.stream?.writable !== false,
      (_key, [command, ...rest], signal) => {
        if (command !== 'EVALSHA' && command !== 'EVAL') return Promise.race([io.call(command as string, ...rest), lost()]);
        const script = withdrawable(command, rest[0] as string, signal);
        // Given up on when the connection closes too, as the race below does.
        return Promise.race([io.call(command, script.arg, ...rest.slice(1)), lost()]).catch((error: unknown) => {
          script.withdraw();
          throw error;
        });
      },
    );
    return Object.assign(send, { abortable: 'scripts' as const });
  }
  const isReady = (): boolean => (client as { isReady?: boolean }).isReady !== false;
  if ('getSlotMaster' in client) {
    const cluster = client;
    const send = failFast(isReady, (key, args, signal) => cluster.sendCommand(key, false, [...args], optionsFor(args, signal)));
    return Object.assign(send, { abortable: true });
  }
  if ('use' in client) {
    const sentinel = client;
    const send = failFast(isReady, (_key, args, signal) => sentinel.sendCommand(false, [...args], optionsFor(args, signal)));
    return Object.assign(send, { abortable: true });
  }
  return nodeRedisSend(client as NodeRedisClientLike);
}

/**
 * The senders of each primary of the client's deployment, for commands that work on a node rather
 * than a key (SCAN): one per primary of a cluster, the client's own for anything else.
 */
export function primariesOf(client: RedisClientLike, send: SendCommand): () => Promise<SendCommand[]> {
  const record = client as unknown as Record<string, unknown>;
  if (typeof record.nodes === 'function' && 'call' in client) {
    const cluster = client as unknown as { nodes(role: 'master'): IoRedisLike[] };
    return () => Promise.resolve(cluster.nodes('master').map((node) => toSendCommand(node)));
  }
  if ('getSlotMaster' in client && Array.isArray(record.masters)) {
    const cluster = client as unknown as { readonly masters: unknown[]; nodeClient(node: unknown): Promise<NodeRedisClientLike> };
    return async () => Promise.all(cluster.masters.map(async (node) => toSendCommand(await cluster.nodeClient(node))));
  }
  return () => Promise.resolve([send]);
}

/** Per node-redis client: its state as {@link nodeRedisSend} sees it, shared by every store using it. */
interface NodeRedisLink {
  /** Whether the client has been ready once. */
  connected: boolean;
  /** The options of commands sent while the client is ready: they carry the current signal. */
  plain: NodeRedisCommandOptions | undefined;
  hgetall: NodeRedisCommandOptions;
  /** Commands sent with the current signal. */
  sent: number;
  /** Moves on to a new signal. */
  renew(): void;
}

/**
 * Commands per signal. node-redis adds a listener to a command's signal, and adding one costs as
 * much as the signal has listeners already; but making a signal costs several microseconds (as
 * much as adding a few hundred listeners), so that sharing one among 64 commands costs each the
 * least (a third of what it did among 8).
 */
const COMMANDS_PER_SIGNAL = 64;

const links = new WeakMap<NodeRedisClientLike, NodeRedisLink>();

/**
 * The state of a node-redis client, with one `reconnecting` listener per client however many
 * stores share it. A command sent while the client is ready waits in the client's queue until
 * the next write; if the connection drops first (node-redis still reports itself ready once the
 * socket has ended and until it has closed), node-redis keeps the command in its offline queue:
 * it would wait for the command timeout and run when Redis comes back, though latchkey had
 * answered with an error. Such commands carry a signal that is aborted when the client starts
 * reconnecting, so node-redis drops them and they fail at once.
 */
function linkOf(client: NodeRedisClientLike): NodeRedisLink {
  const known = links.get(client);
  if (known) return known;
  const timeout = clientTimeout(client);
  const link: NodeRedisLink = {
    connected: client.isReady,
    plain: timeout,
    hgetall: { ...NODE_REDIS_OPTIONS, ...timeout },
    sent: 0,
    renew: () => void (link.sent = 0),
  };
  if (typeof client.on === 'function') {
    // The signals of commands that may still wait to be written, oldest first. node-redis writes
    // commands in order and removes their listeners as it does, so the oldest empty first.
    let pending: AbortController[] = [];
    link.renew = () => {
      while (pending.length > 0 && getEventListeners((pending[0] as AbortController).signal, 'abort').length === 0) pending.shift();
      const controller = new AbortController();
      // Node warns of a leak past 10 listeners; this signal expects as many as it has commands.
      setMaxListeners(COMMANDS_PER_SIGNAL, controller.signal);
      pending.push(controller);
      link.plain = { ...timeout, abortSignal: controller.signal };
      link.hgetall = { ...NODE_REDIS_OPTIONS, ...timeout, abortSignal: controller.signal };
      link.sent = 0;
    };
    link.renew();
    client.on('reconnecting', () => {
      for (const controller of pending) controller.abort();
      pending = [];
      link.renew();
    });
  }
  links.set(client, link);
  return link;
}

/**
 * The command timeout latchkey's commands ask node-redis for. node-redis gives each command a
 * timer of its own (an `AbortSignal.timeout()`, 5 s by default), which costs the app more CPU than
 * the rest of a session read. The store bounds every operation by its own `commandTimeout`, so
 * unless the app chose a command timeout for its client (`commandOptions.timeout`, which then
 * applies to latchkey's commands as to its own), they ask for none.
 */
function clientTimeout(client: NodeRedisClientLike): NodeRedisCommandOptions | undefined {
  const { options } = client;
  if (typeof options !== 'object' || options === null) return undefined;
  const { commandOptions } = options as { commandOptions?: { timeout?: unknown } };
  return commandOptions?.timeout === undefined ? NO_CLIENT_TIMEOUT : undefined;
}

/** node-redis starts no timer for a command whose timeout is 0. */
const NO_CLIENT_TIMEOUT: NodeRedisCommandOptions = { timeout: 0 };

/**
 * A standalone node-redis client's sender. Commands fail at once while a client that was
 * connected is reconnecting (see {@link failFast}), and those the connection dropped before
 * writing them fail at once too (see {@link linkOf}). Before the first connection, a command
 * waits in the client's offline queue with the caller's signal, so that it is dropped when the
 * caller gives up on it.
 */
function nodeRedisSend(client: NodeRedisClientLike): SendCommand {
  const link = linkOf(client);
  const send: SendCommand = (_key, args, signal) => {
    if (client.isReady) {
      link.connected = true;
      // Renewing resets the count; the command that asked for it is the new signal's first.
      if (link.sent >= COMMANDS_PER_SIGNAL) link.renew();
      link.sent++;
      return client.sendCommand(args, args[0] === 'HGETALL' ? link.hgetall : link.plain);
    }
    if (link.connected) return Promise.reject(new Error(RECONNECTING));
    return client.sendCommand(args, optionsFor(args, signal));
  };
  return Object.defineProperty(send, 'abortable', { get: () => !link.connected });
}

const RECONNECTING = 'the connection to Redis is down and the client is reconnecting';

/** Per ioredis client: the promise that rejects when its current connection closes. */
const losses = new WeakMap<IoRedisLike, () => Promise<never>>();

/** What a script's SHA-1 becomes once latchkey gave up on it: a script no Redis holds (NOSCRIPT). */
const WITHDRAWN_SHA = 0x30;
/** What a script's source becomes once latchkey gave up on it: blanks, a script that does nothing. */
const WITHDRAWN_SOURCE = 0x20;

/**
 * A script's SHA-1 (EVALSHA) or source (EVAL) for ioredis, as a Buffer that {@link withdraw}
 * overwrites once latchkey has given up on the command (its timeout, through `signal`, or the
 * connection closing): ioredis sends a command again after a reconnection or, on a Cluster,
 * after a failover, and would then apply a write the app was told had failed. It writes a Buffer
 * argument as the Buffer holds it at each send, so, sent again, EVALSHA names a script no Redis
 * holds (NOSCRIPT) and EVAL runs an empty one. (A command already on its way to Redis when
 * latchkey gives up may still run: its outcome is unknown, as with any timeout.)
 */
function withdrawable(command: 'EVALSHA' | 'EVAL', arg: string, signal: AbortSignal | undefined): { readonly arg: Buffer; withdraw(): void } {
  const script = Buffer.from(arg);
  const withdraw = (): void => {
    script.fill(command === 'EVALSHA' ? WITHDRAWN_SHA : WITHDRAWN_SOURCE);
  };
  signal?.addEventListener('abort', withdraw, { once: true });
  return { arg: script, withdraw };
}

/**
 * A function giving a promise that rejects when the client's current connection closes. ioredis
 * keeps the commands that were in flight and sends them again after reconnecting, failing them
 * only after many attempts; raced against this, latchkey's own commands fail when the connection
 * does, as with node-redis; the scripts ioredis then sends again are withdrawn (see
 * {@link withdrawable}). One listener per client, however many stores share it.
 */
function connectionLoss(client: IoRedisLike): () => Promise<never> {
  const known = losses.get(client);
  if (known) return known;
  let current = new Promise<never>(() => {});
  if (typeof client.on === 'function') {
    let fail: (error: Error) => void = () => {};
    const renew = (): void => {
      current = new Promise<never>((_resolve, reject) => (fail = reject));
      current.catch(() => {});
    };
    renew();
    client.on('close', () => {
      fail(new Error('the connection to Redis closed before it answered'));
      renew();
    });
  }
  const lost = (): Promise<never> => current;
  losses.set(client, lost);
  return lost;
}

/**
 * Makes commands fail at once while a client that was connected is reconnecting. The app's own
 * client usually keeps an offline queue: commands would wait there until the command timeout,
 * and a write the app was told had failed could still run when Redis comes back. Before the
 * first connection, commands do wait (bounded by the timeout), so an app may start serving while
 * its client connects.
 */
function failFast(isReady: () => boolean, send: SendCommand): SendCommand {
  let connected = false;
  return (key, args, signal) => {
    if (isReady()) connected = true;
    else if (connected) return Promise.reject(new Error(RECONNECTING));
    return send(key, args, signal);
  };
}

/** Options only where they matter: node-redis handles a command with options more slowly. */
function optionsFor(args: readonly string[], signal?: AbortSignal): NodeRedisCommandOptions | undefined {
  const options = args[0] === 'HGETALL' ? NODE_REDIS_OPTIONS : undefined;
  return signal === undefined ? options : { ...options, abortSignal: signal };
}

/**
 * node-redis speaks RESP3, where HGETALL answers a map that it turns into a plain object by
 * default, and a field named `__proto__` would become that object's prototype. Asking for maps
 * as `Map` (RESP3 type '%', code 37) keeps every field name as data. Script replies are arrays,
 * never maps, so only HGETALL needs it.
 */
const NODE_REDIS_OPTIONS: NodeRedisCommandOptions = { typeMapping: { 37: Map } };

/** The options of every command on a node-redis client latchkey created. */
const OWNED_CLIENT_OPTIONS: NodeRedisCommandOptions = { ...NODE_REDIS_OPTIONS, ...NO_CLIENT_TIMEOUT };

/** The per-command options of node-redis latchkey uses. */
export interface NodeRedisCommandOptions {
  typeMapping?: Record<number, unknown>;
  abortSignal?: AbortSignal;
  timeout?: number;
}

const REPLY_ERROR_CLASSES = new Set(['ErrorReply', 'SimpleError', 'BlobError', 'ReplyError']);

/**
 * The error code Redis put in front of an error reply (`ERR`, `NOSCRIPT`, `WRONGTYPE`...), or
 * `undefined` when `error` is not a reply from the server (a connection or timeout error).
 */
export function replyErrorCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || !REPLY_ERROR_CLASSES.has(error.constructor.name)) return undefined;
  return /^([A-Z][A-Z_]*)\b/.exec(error.message)?.[1];
}

/** Error replies that mean "not now" rather than "wrong": the server is loading, failing over, full or busy. */
const TRANSIENT_REPLIES = new Set(['LOADING', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'OOM', 'BUSY', 'NOREPLICAS']);

/** Wraps anything a Redis command rejected with into a {@link SessionError}. */
export function toSessionError(error: unknown, what: string): SessionError {
  if (error instanceof SessionError) return error;
  const code = replyErrorCode(error);
  if (code === undefined || TRANSIENT_REPLIES.has(code)) {
    const reason = error instanceof Error ? error.message : String(error);
    return new SessionError('STORE_UNAVAILABLE', `Redis is unavailable (${what}: ${reason})`, { cause: error });
  }
  return new SessionError('STORE_ERROR', `Redis answered ${what} with an error: ${(error as Error).message}`, { cause: error });
}

/**
 * `promise`, failing with a `STORE_UNAVAILABLE` {@link SessionError} when it takes longer than `ms`
 * (after calling `onTimeout`); whatever it rejects with becomes a {@link SessionError} too (see
 * {@link toSessionError}).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new SessionError('STORE_UNAVAILABLE', `Redis did not answer ${what} within ${ms} ms`));
    }, ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(toSessionError(error, what));
      },
    );
  });
}

/** The Redis client library latchkey uses when it creates a client itself. */
export type RedisLibrary = 'redis' | 'ioredis';

/** A client latchkey created (and so must close), with a promise of its first connection. */
export interface OwnedClient {
  readonly send: SendCommand;
  /** Settles when the first connection attempt has succeeded; rejects if it failed. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** Whether the package `name` can be loaded from here (a Redis client library the app installed). */
export function installed(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Which library to create a client with: `redis` (node-redis) when installed, else `ioredis`.
 * @throws {@link SessionError} `INVALID_OPTIONS` when neither is installed
 */
export function pickRedisLibrary(): RedisLibrary {
  if (installed('redis')) return 'redis';
  if (installed('ioredis')) return 'ioredis';
  throw new SessionError(
    'INVALID_OPTIONS',
    "to connect to Redis from a URL, install a client ('npm install redis' or 'npm install ioredis'), or pass store: new MemoryStore()",
  );
}

function checkPort(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535)) {
    throw new SessionError('INVALID_OPTIONS', `redis.${name} must be an integer from 0 to 65535, got ${String(value)}`);
  }
}

/**
 * The `redis://` URL for a URL string or {@link RedisConnectionOptions}.
 * @throws {@link SessionError} `INVALID_OPTIONS` when the URL or an option is not usable
 */
export function toRedisUrl(spec: string | RedisConnectionOptions): string {
  if (typeof spec === 'string') {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw new SessionError('INVALID_OPTIONS', `redis must be a URL such as 'redis://localhost:6379/0', got ${JSON.stringify(spec)}`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new SessionError('INVALID_OPTIONS', `redis URL must start with redis:// or rediss://, got ${JSON.stringify(spec)}`);
    }
    return spec;
  }
  const { host = 'localhost', port = 6379, db = 0, username, password } = spec;
  const unknown = Object.keys(spec).filter((key) => !['host', 'port', 'db', 'username', 'password'].includes(key));
  if (unknown.length > 0) {
    throw new SessionError('INVALID_OPTIONS', `redis options take host, port, db, username and password; unknown: ${unknown.join(', ')}`);
  }
  if (typeof host !== 'string' || host.length === 0) throw new SessionError('INVALID_OPTIONS', 'redis.host must be a host name such as localhost');
  checkPort(port, 'port');
  checkPort(db, 'db');
  for (const [name, value] of [['username', username], ['password', password]] as const) {
    if (value !== undefined && typeof value !== 'string') throw new SessionError('INVALID_OPTIONS', `redis.${name} must be a string`);
  }
  const url = new URL('redis://');
  url.hostname = host;
  url.port = String(port);
  url.pathname = `/${db}`;
  if (username !== undefined) url.username = encodeURIComponent(username);
  if (password !== undefined) url.password = encodeURIComponent(password);
  return url.toString();
}

/** Waits at most this long between reconnection attempts, so service resumes soon after Redis does. */
const MAX_RECONNECT_DELAY_MS = 500;

interface NodeRedisModule {
  createClient(options: object): NodeRedisClientLike & {
    on(event: 'error', listener: (error: unknown) => void): unknown;
    connect(): Promise<unknown>;
    close(): Promise<void>;
    destroy(): void;
    ref(): void;
    unref(): void;
    readonly isOpen: boolean;
  };
}

interface IoRedisModule {
  Redis: new (url: string, options: object) => IoRedisLike & {
    on(event: 'error', listener: (error: unknown) => void): unknown;
    on(event: 'connect', listener: () => void): unknown;
    connect(): Promise<void>;
    quit(): Promise<unknown>;
    disconnect(): void;
    /** The current connection's socket; ioredis makes a new one for each connection. */
    readonly stream?: { ref(): void; unref(): void };
  };
}

/**
 * Keeps the process alive only while a client latchkey created has work in flight, as Node's own
 * servers and timers do: once the app's server has closed and no command is pending, the process
 * can exit without `close()`. `hold()` and `release()` count the pending work; `apply` refs or
 * unrefs the client's socket when the count leaves or reaches zero.
 */
class Holds {
  #count = 1; // The first connection attempt is pending work: a script awaiting it must not exit.
  readonly #apply: (busy: boolean) => void;

  constructor(apply: (busy: boolean) => void) {
    this.#apply = apply;
  }

  get busy(): boolean {
    return this.#count > 0;
  }

  hold(): void {
    if (this.#count++ === 0) this.#apply(true);
  }

  release(): void {
    if (--this.#count === 0) this.#apply(false);
  }
}

/**
 * Creates a client for `url` with `library`, tuned for a session store: commands fail at once
 * while the connection is down (no offline queue that would run stale writes later), and the
 * client keeps reconnecting in the background. Connection errors are not emitted as unhandled
 * `error` events; they reach callers as rejected commands. The connection keeps the process
 * alive only while a command or the first connection attempt is pending (see {@link Holds}).
 */
export function createOwnedClient(url: string, library: RedisLibrary, connectTimeoutMs: number): OwnedClient {
  if (library === 'redis') {
    const loaded = (import('redis') as Promise<unknown> as Promise<NodeRedisModule>).then((mod) => {
      const client = mod.createClient({
        url,
        disableOfflineQueue: true,
        socket: {
          connectTimeout: connectTimeoutMs,
          reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
        },
      });
      client.on('error', () => {});
      // node-redis applies ref/unref to every socket it opens, reconnections included.
      return { client, holds: new Holds((busy) => (busy ? client.ref() : client.unref())) };
    });
    const ready = loaded.then(async ({ client, holds }) => {
      try {
        await client.connect();
      } finally {
        holds.release();
      }
    });
    ready.catch(() => {});
    return {
      // The store's commandTimeout bounds every command (see clientTimeout).
      send: async (_key, args) => {
        const { client, holds } = await loaded;
        holds.hold();
        try {
          return await client.sendCommand(args, OWNED_CLIENT_OPTIONS);
        } finally {
          holds.release();
        }
      },
      ready,
      close: async () => {
        const { client } = await loaded;
        if (client.isOpen) await client.close();
        else client.destroy();
      },
    };
  }
  const loaded = (import('ioredis') as Promise<unknown> as Promise<IoRedisModule>).then((mod) => {
    const client = new mod.Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: connectTimeoutMs,
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, MAX_RECONNECT_DELAY_MS),
    });
    client.on('error', () => {});
    const apply = (busy: boolean): void => (busy ? client.stream?.ref() : client.stream?.unref());
    const holds = new Holds(apply);
    // Each reconnection opens a new socket, referenced by default.
    client.on('connect', () => apply(holds.busy));
    return { client, holds };
  });
  const ready = loaded.then(async ({ client, holds }) => {
    try {
      await client.connect();
    } finally {
      holds.release();
    }
  });
  ready.catch(() => {});
  return {
    send: async (_key, [command, ...rest]) => {
      const { client, holds } = await loaded;
      holds.hold();
      try {
        return await client.call(command as string, ...rest);
      } finally {
        holds.release();
      }
    },
    ready,
    close: async () => {
      const { client } = await loaded;
      if (client.status === 'ready') await client.quit();
      else client.disconnect();
    },
  };
}
