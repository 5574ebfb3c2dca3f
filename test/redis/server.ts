import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

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
  /** Starts the process again on the same port, empty, and waits for PING. */
  restart(): Promise<void>;
  /** Stops the process and removes its directory. */
  stop(): Promise<void>;
}

/** Kills every server this process started if a test run ends without stopping them. */
const running = new Set<() => void>();
process.once('exit', () => {
  for (const kill of running) kill();
});

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

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    try {
      if ((await sendCommand(port, ['PING'], 1000)) === 'PONG') return;
    } catch {
      // not listening yet
    }
    await sleep(20);
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

/**
 * Starts `redis-server` on a free loopback port (never 6379), with no persistence, and waits
 * until it answers PING.
 */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  let port = await freePort();
  let child: ChildProcess;

  const launch = async (samePort: boolean): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'],
        { stdio: 'ignore' },
      );
      try {
        await waitForPing(port, child);
        return;
      } catch (error) {
        child.kill('SIGKILL');
        if (attempt >= 3) throw error;
        // Someone took the port between freePort() and the spawn: try another.
        if (!samePort) port = await freePort();
      }
    }
  };
  await launch(false);
  running.add(() => child.kill('SIGKILL'));

  const killChild = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  };

  const server: RedisServer = {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
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
    kill: () => killChild('SIGKILL'),
    async restart() {
      await killChild('SIGKILL');
      await launch(true);
    },
    async stop() {
      await killChild('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
