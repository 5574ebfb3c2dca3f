import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before } from 'node:test';

/** A redis-server process of the test's own, on a free loopback port. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Sends one command over a fresh connection and returns the reply, parsed (RESP2). */
  command(...args: string[]): Promise<unknown>;
  /** Total calls per command since the last reset (INFO commandstats), without INFO/CONFIG themselves. */
  commandCounts(): Promise<Map<string, number>>;
  /** Sum of {@link RedisServer.commandCounts}. */
  commandTotal(): Promise<number>;
  /** Resets the command statistics. */
  resetStats(): Promise<void>;
  /**
   * Watches every command clients send (MONITOR) until `stop()`, which resolves how many arrived
   * from clients, not counting the commands scripts ran: the number of round trips.
   */
  monitor(): Promise<{ stop(): Promise<number> }>;
  /** Kills the process (SIGKILL) and waits until it is gone. */
  kill(): Promise<void>;
  /** Starts the process again on the same port, and waits for PING; empty unless `persist` was asked for. */
  restart(): Promise<void>;
  /** Stops the process and removes its directory. */
  stop(): Promise<void>;
}

/** Kills every server this process started if a test run ends without stopping them. */
const running = new Set<() => void>();
process.once('exit', () => {
  // Last registered first: processes die before the directories they write into are removed.
  for (const cleanUp of [...running].reverse()) cleanUp();
});

/**
 * Runs `cleanUp` (synchronously) when the test process exits, unless the returned function is
 * called first: for processes and directories a test may leave behind when it fails early.
 */
export function cleanUpOnExit(cleanUp: () => void): () => void {
  running.add(cleanUp);
  return () => void running.delete(cleanUp);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Encodes a command in RESP. */
function encode(args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

/** Parses one RESP2 reply from `buffer` at `offset`; `undefined` when incomplete. */
function parse(buffer: Buffer, offset: number): { value: unknown; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[offset] as number);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new Error(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: unknown[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, at);
        if (item === undefined) return undefined;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`unexpected RESP type ${type}`);
  }
}

/** Sends one command to 127.0.0.1:`port` and resolves its reply; rejects on error replies. */
export async function sendCommand(port: number, args: string[], timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on port ${port} did not answer ${args[0]} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      const reply = parse(data, 0);
      if (reply === undefined) return;
      clearTimeout(timer);
      socket.end();
      if (reply.value instanceof Error) reject(reply.value);
      else resolve(reply.value);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Options of {@link spawnRedis}. */
export interface SpawnRedisOptions {
  /** The process's own directory: config file, log and data. It outlives restarts; the caller removes it. */
  readonly dir: string;
  /** Config directives, one per line, after `port`, `bind 127.0.0.1`, `dir`, and no persistence (not for Sentinels). */
  readonly config?: readonly string[];
  /** Runs the process as a Sentinel (`redis-server <conf> --sentinel`). @default false */
  readonly sentinel?: boolean;
  /**
   * Picks the port. A pick that turns out to be taken by the time redis-server binds it is replaced
   * by another. @default {@link freePort}
   */
  readonly pickPort?: () => Promise<number>;
  /** How long one start may take to answer. @default 10000 */
  readonly timeoutMs?: number;
}

/** A redis-server process on a loopback port, which can be killed and started again on that port. */
export interface RedisProcess {
  readonly port: number;
  readonly dir: string;
  /** Whether the process is running (it has not exited). */
  readonly alive: boolean;
  /** Starts it again, on the same port with the same (possibly rewritten) config file, and waits until it answers. */
  start(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it (default SIGTERM), waits, and forgets it for the exit clean-up. The directory stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** The last `lines` lines of its log (redis-server's stdout and stderr). */
  logTail(lines?: number): string;
}

const LOG_FILE = 'redis.log';
const CONFIG_FILE = 'redis.conf';

/** The last `lines` lines of `file`, from byte `from` on. */
function tail(file: string, lines: number, from = 0): string {
  try {
    return readFileSync(file).subarray(from).toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `redis-server on port ${port} exited with ${child.exitCode ?? child.signalCode}; the end of its log:\n${log()}`,
      );
    }
    try {
      // A PONG could come from someone else's server on that port: ours must answer with our pid.
      const info = String(await sendCommand(port, ['INFO', 'server'], 1000));
      if (new RegExp(`^process_id:${child.pid}\r?$`, 'm').test(info)) return;
    } catch {
      // not listening yet
    }
    await sleep(20);
  }
  throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms; the end of its log:\n${log()}`);
}

/**
 * Spawns `redis-server` (or a Sentinel) with a config file in `dir`, on 127.0.0.1 only, and waits
 * until it answers (INFO, so an answer from someone else's server on that port does not count).
 * The process is killed if the test process exits without stopping it.
 * @throws when it does not come up within the timeout (after trying other ports), with the end of its log
 */
export async function spawnRedis(options: SpawnRedisOptions): Promise<RedisProcess> {
  const { dir, config = [], sentinel = false, pickPort = freePort, timeoutMs = 10_000 } = options;
  const configFile = join(dir, CONFIG_FILE);
  const logFile = join(dir, LOG_FILE);
  // Never the machine's own Redis.
  const pick = async (): Promise<number> => {
    const picked = await pickPort();
    return picked === 6379 ? pickPort() : picked;
  };
  let port = await pick();
  let child: ChildProcess | undefined;

  const writeConfig = (): void => {
    const lines = [`port ${port}`, 'bind 127.0.0.1', `dir "${dir}"`];
    if (!sentinel) lines.push('save ""', 'appendonly no');
    writeFileSync(configFile, `${[...lines, ...config].join('\n')}\n`);
  };

  const launch = async (samePort: boolean): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (!samePort) writeConfig();
      const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
      const out = openSync(logFile, 'a');
      try {
        child = spawn('redis-server', sentinel ? [configFile, '--sentinel'] : [configFile], {
          cwd: dir,
          stdio: ['ignore', out, out],
        });
      } finally {
        closeSync(out);
      }
      try {
        await waitForPing(port, child, timeoutMs, () => tail(logFile, 20, logStart));
        return;
      } catch (error) {
        child.kill('SIGKILL');
        // Someone took the port (or, for a cluster node, its bus port) between picking it and the
        // spawn: try another. Anything else would fail again.
        if (attempt >= 3 || !tail(logFile, 20, logStart).includes('Address already in use')) throw error;
        if (!samePort) port = await pick();
      }
    }
  };

  const isAlive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child === undefined || !isAlive()) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  };

  const forget = cleanUpOnExit(() => void child?.kill('SIGKILL'));
  try {
    await launch(false);
  } catch (error) {
    forget();
    throw error;
  }

  return {
    get port() {
      return port;
    },
    dir,
    get alive() {
      return isAlive();
    },
    async start() {
      await kill();
      await launch(true);
    },
    kill,
    async stop(signal = 'SIGTERM') {
      await kill(signal);
      forget();
    },
    logTail: (lines = 20) => tail(logFile, lines),
  };
}

/**
 * Starts `redis-server` on a free loopback port (never 6379) and waits until it answers PING.
 * Without `persist` it keeps nothing on disk; with it, every write goes to an append-only file
 * before Redis answers, so what was written survives a kill and comes back on restart.
 */
export async function startRedis(options: { readonly persist?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  let redis: RedisProcess;
  try {
    redis = await spawnRedis({ dir, config: ['loglevel warning', ...(options.persist ? ['appendonly yes', 'appendfsync always'] : [])] });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const port = redis.port;

  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    command: (...args) => sendCommand(port, args),
    async commandCounts() {
      const info = String(await sendCommand(port, ['INFO', 'commandstats']));
      const counts = new Map<string, number>();
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        const name = match[1] as string;
        if (/^(info|config)(\||$)/.test(name)) continue;
        counts.set(name, Number(match[2]));
      }
      return counts;
    },
    async commandTotal() {
      let total = 0;
      for (const count of (await server.commandCounts()).values()) total += count;
      return total;
    },
    async resetStats() {
      await sendCommand(port, ['CONFIG', 'RESETSTAT']);
    },
    async monitor() {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => void (text += chunk.toString('latin1')));
      await once(socket, 'connect');
      socket.write(encode(['MONITOR']));
      // MONITOR answers +OK before it streams commands.
      while (!text.startsWith('+OK\r\n')) await once(socket, 'data');
      return {
        async stop() {
          // A PING over the watched connection marks the end: everything before it has been seen.
          await sendCommand(port, ['PING']);
          while (!text.includes('"PING"') && !text.includes('"ping"')) await once(socket, 'data');
          socket.destroy();
          const lines = text.split('\r\n').slice(1, -1).filter((line) => line.startsWith('+'));
          // Lines of commands a script ran say "[<db> lua]" where clients' say "[<db> <address>]".
          return lines.filter((line) => !/^\+\S+ \[\d+ lua\]/.test(line) && !/"ping"$/i.test(line)).length;
        },
      };
    },
    kill: () => redis.kill(),
    restart: () => redis.start(),
    async stop() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * Registers, in the calling describe block, hooks that start a redis-server of its own before its
 * tests and stop it after them. The server it returns stands for that one, from the first test on.
 */
export function useRedis(options: { readonly persist?: boolean } = {}): RedisServer {
  let started: RedisServer | undefined;
  before(async () => {
    started = await startRedis(options);
  });
  after(async () => {
    await started?.stop();
  });
  const server = (): RedisServer => {
    if (started === undefined) throw new Error('redis-server starts in before()');
    return started;
  };
  return {
    get port() {
      return server().port;
    },
    get url() {
      return server().url;
    },
    command: (...args) => server().command(...args),
    commandCounts: () => server().commandCounts(),
    commandTotal: () => server().commandTotal(),
    resetStats: () => server().resetStats(),
    monitor: () => server().monitor(),
    kill: () => server().kill(),
    restart: () => server().restart(),
    stop: () => server().stop(),
  };
}
