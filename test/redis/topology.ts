import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanUpOnExit, sendCommand, spawnRedis, type RedisProcess } from './server.js';

/** One redis-server process of a topology. */
export interface RedisNode {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Sends one command over a fresh connection and returns the reply, parsed (RESP2); rejects on error replies. */
  command(...args: string[]): Promise<unknown>;
  /** Kills the process (SIGKILL) and waits until it is gone. */
  kill(): Promise<void>;
  /**
   * Starts the process again on the same port with the same directory and config file, and waits
   * for PING. Its data is gone (no persistence), but a cluster node keeps its `nodes.conf` and
   * rejoins, and a Sentinel-managed node keeps the role Sentinel last wrote into its config.
   */
  restart(): Promise<void>;
  /** Whether the process is running. */
  readonly alive: boolean;
}

/** Redis Sentinel: one primary, one replica and three sentinels on loopback. */
export interface SentinelTopology {
  /** The name the sentinels monitor the primary under: `latchkey`. */
  readonly masterName: string;
  /** The data nodes: [initial primary, initial replica]. */
  readonly nodes: readonly RedisNode[];
  /** The three sentinels, for `sentinelRootNodes` (node-redis) or `sentinels` (ioredis). */
  readonly sentinels: readonly { host: string; port: number }[];
  /** The node the sentinels name as master now (SENTINEL get-master-addr-by-name, first sentinel that answers). */
  primary(): Promise<RedisNode>;
  /**
   * Waits until every sentinel names the same master, not the one on `notPort` (the primary that was
   * killed), and that node answers ROLE as master.
   * @param timeoutMs default 20000
   * @throws when that does not happen in time, with the end of the sentinels' logs
   */
  waitForPrimary(notPort?: number, timeoutMs?: number): Promise<RedisNode>;
  /** Kills every process and removes the directories. */
  stop(): Promise<void>;
}

/** Options of {@link startSentinel}. */
export interface SentinelOptions {
  /** `sentinel down-after-milliseconds`. @default 1000 */
  downAfterMs?: number;
  /** `sentinel failover-timeout`. @default 5000 */
  failoverTimeoutMs?: number;
}

/** Redis Cluster: three primaries with one replica each, on loopback. */
export interface ClusterTopology {
  /** The six nodes, in start order (which of them are primaries now: {@link ClusterTopology.primaries}). */
  readonly nodes: readonly RedisNode[];
  /** Every node's address, for `createCluster({ rootNodes })` (as `url`s) or `new Cluster(rootNodes)`. */
  readonly rootNodes: readonly { host: string; port: number }[];
  /** The masters holding slots, as the first live node sees them (after a fault, call waitForState() first). */
  primaries(): Promise<RedisNode[]>;
  /** The master serving `key`'s slot (CLUSTER KEYSLOT), as the first live node sees it. */
  primaryForKey(key: string): Promise<RedisNode>;
  /**
   * Waits until every live node reports `cluster_state:ok` and `cluster_slots_ok:16384`, and they all
   * map the 16384 slots to the same live, non-failing masters.
   * @param timeoutMs default 20000
   * @throws when that does not happen in time, with the reason and the end of the nodes' logs
   */
  waitForState(timeoutMs?: number): Promise<void>;
  /** Kills every process and removes the directories. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** `cluster-node-timeout`: how long a node may be unreachable before it counts as failing. @default 1000 */
  nodeTimeoutMs?: number;
  /**
   * `cluster-require-full-coverage`. Off by default so the other shards keep serving while one shard
   * has no master (between a primary's death and its replica's promotion).
   * @default false
   */
  requireFullCoverage?: boolean;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 20_000;
const SLOTS = 16384;
/** Lines of each process's log quoted in an error. */
const LOG_LINES = 15;
const MASTER_NAME = 'latchkey';
/** Data nodes start full syncs at once instead of waiting 5 s for more replicas. */
const DATA_NODE_CONFIG = ['repl-diskless-sync-delay 0'];

function toNode(server: RedisProcess): RedisNode {
  return {
    port: server.port,
    url: `redis://${HOST}:${server.port}`,
    command: (...args) => sendCommand(server.port, args),
    kill: () => server.kill(),
    restart: () => server.start(),
    get alive() {
      return server.alive;
    },
  };
}

function logs(processes: readonly RedisProcess[]): string {
  return processes
    .map((server) => `--- port ${server.port} (${server.dir}):\n${server.logTail(LOG_LINES)}`)
    .join('\n');
}

/**
 * Calls `check` every 50 ms until it resolves, and resolves its value. `check` throws to say why it
 * is not there yet; the last reason and `logs()` make the timeout error.
 */
async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T>, logsOf: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let reason: string;
    try {
      return await check();
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${reason})\n${logsOf()}`);
    await sleep(50);
  }
}

/** `INFO <section>` (or CLUSTER INFO) text as a map. */
function fields(text: unknown): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of String(text).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) map.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return map;
}

/** A flat [key, value, key, value ...] reply (SENTINEL master, SENTINEL replicas) as a map. */
function pairs(reply: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(reply)) return map;
  for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), String(reply[i + 1]));
  return map;
}

function ask(port: number, ...args: string[]): Promise<unknown> {
  return sendCommand(port, args, 1000);
}

/** Kills the processes (SIGKILL) and removes `root`; usable while some are still starting. */
async function tearDown(processes: readonly RedisProcess[], root: string, forgetRoot: () => void): Promise<void> {
  await Promise.all(processes.map((server) => server.stop('SIGKILL')));
  rmSync(root, { recursive: true, force: true });
  forgetRoot();
}

/** Starts `count` processes in parallel; if one fails, the ones that came up are stopped too. */
async function spawnAll(count: number, spawnOne: (index: number) => Promise<RedisProcess>): Promise<RedisProcess[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, index) => spawnOne(index)));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed === undefined) return results.map((result) => (result as PromiseFulfilledResult<RedisProcess>).value);
  await Promise.all(results.map((result) => (result.status === 'fulfilled' ? result.value.stop('SIGKILL') : undefined)));
  throw failed.reason;
}

function makeDir(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  return dir;
}

/**
 * Starts Redis Sentinel on loopback: a primary, a replica (`replicaof`) and three sentinels
 * monitoring it as `latchkey` with quorum 2, and waits until the replica is in sync and every
 * sentinel knows the master, the replica and the two other sentinels.
 * @throws when something does not come up within 20 s, with the end of the logs
 */
export async function startSentinel(options: SentinelOptions = {}): Promise<SentinelTopology> {
  const downAfterMs = options.downAfterMs ?? 1000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 5000;
  const root = mkdtempSync(join(tmpdir(), 'latchkey-sentinel-'));
  const forgetRoot = cleanUpOnExit(() => rmSync(root, { recursive: true, force: true }));
  const processes: RedisProcess[] = [];
  const stop = (): Promise<void> => tearDown(processes, root, forgetRoot);
  const allLogs = (): string => logs(processes);

  try {
    const primary = await spawnRedis({
      dir: makeDir(root, 'primary'),
      config: DATA_NODE_CONFIG,
      timeoutMs: START_TIMEOUT_MS,
    });
    processes.push(primary);
    const replica = await spawnRedis({
      dir: makeDir(root, 'replica'),
      config: [...DATA_NODE_CONFIG, `replicaof ${HOST} ${primary.port}`],
      timeoutMs: START_TIMEOUT_MS,
    });
    processes.push(replica);
    // Sentinels find the replica in the primary's INFO, so it must be attached before they start.
    await waitFor(
      `replica on port ${replica.port} syncing from ${primary.port}`,
      START_TIMEOUT_MS,
      async () => {
        const status = fields(await ask(replica.port, 'INFO', 'replication')).get('master_link_status');
        if (status !== 'up') throw new Error(`master_link_status:${status}`);
      },
      allLogs,
    );

    const sentinelProcesses = await spawnAll(3, (index) =>
      spawnRedis({
        dir: makeDir(root, `sentinel-${index}`),
        sentinel: true,
        timeoutMs: START_TIMEOUT_MS,
        config: [
          'protected-mode no',
          'sentinel resolve-hostnames no',
          `sentinel monitor ${MASTER_NAME} ${HOST} ${primary.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${downAfterMs}`,
          `sentinel failover-timeout ${MASTER_NAME} ${failoverTimeoutMs}`,
        ],
      }),
    );
    processes.push(...sentinelProcesses);
    await waitFor(
      'every sentinel knowing the master, the replica and the other sentinels',
      START_TIMEOUT_MS,
      async () => {
        for (const sentinel of sentinelProcesses) {
          const master = pairs(await ask(sentinel.port, 'SENTINEL', 'MASTER', MASTER_NAME));
          const others = master.get('num-other-sentinels');
          if (master.get('flags') !== 'master' || others !== '2') {
            throw new Error(`sentinel ${sentinel.port}: master flags ${master.get('flags')}, ${others} other sentinels`);
          }
          const replicas = (await ask(sentinel.port, 'SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[];
          const known = replicas.map(pairs);
          if (known.length !== 1 || known[0]?.get('flags') !== 'slave' || known[0].get('master-link-status') !== 'ok') {
            throw new Error(`sentinel ${sentinel.port}: replicas ${JSON.stringify(known.map((r) => Object.fromEntries(r)))}`);
          }
        }
      },
      allLogs,
    );

    const nodes = [primary, replica].map(toNode);
    const sentinels = sentinelProcesses.map((sentinel) => ({ host: HOST, port: sentinel.port }));
    const nodeAt = (port: number): RedisNode => {
      const node = nodes.find((candidate) => candidate.port === port);
      if (node === undefined) throw new Error(`the sentinels name 127.0.0.1:${port} as master, which is not a node of this topology`);
      return node;
    };
    const masterPort = async (sentinelPort: number): Promise<number> => {
      const address = await ask(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME);
      if (!Array.isArray(address)) throw new Error(`sentinel ${sentinelPort} knows no master ${MASTER_NAME}`);
      return Number(address[1]);
    };

    return {
      masterName: MASTER_NAME,
      nodes,
      sentinels,
      async primary() {
        let lastError: unknown;
        for (const sentinel of sentinelProcesses) {
          try {
            return nodeAt(await masterPort(sentinel.port));
          } catch (error) {
            lastError = error;
          }
        }
        throw new Error('no sentinel named a master', { cause: lastError });
      },
      waitForPrimary(notPort, timeoutMs = START_TIMEOUT_MS) {
        return waitFor(
          `the sentinels agreeing on a master${notPort === undefined ? '' : ` other than port ${notPort}`}`,
          timeoutMs,
          async () => {
            const ports = await Promise.all(sentinelProcesses.filter((s) => s.alive).map((s) => masterPort(s.port)));
            const port = ports[0];
            if (port === undefined) throw new Error('no sentinel is running');
            if (ports.some((other) => other !== port)) throw new Error(`the sentinels name ports ${ports.join(', ')}`);
            if (port === notPort) throw new Error(`the sentinels still name port ${port}`);
            const node = nodeAt(port);
            const role = (await node.command('ROLE')) as unknown[];
            if (role[0] !== 'master') throw new Error(`port ${port} answers ROLE ${String(role[0])}`);
            return node;
          },
          allLogs,
        );
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A parsed line of CLUSTER NODES. */
interface ClusterNodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string;
  slots: [number, number][];
}

function parseClusterNodes(reply: unknown): ClusterNodeLine[] {
  return String(reply)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', masterId = '', , , , , ...slots] = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(address)?.[1]);
      return {
        id,
        port,
        flags: flags.split(','),
        masterId,
        // "[slot->-id]" and "[slot-<-id]" entries are migrations, not ownership.
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot): [number, number] => {
            const [start, end = start] = slot.split('-').map(Number) as [number, number?];
            return [start, end];
          }),
      };
    });
}

function failing(line: ClusterNodeLine): boolean {
  return line.flags.includes('fail') || line.flags.includes('fail?') || line.flags.includes('noaddr');
}

/** Ports reserved by this process for cluster nodes: a node needs `port` and its bus port `port + 10000`. */
const reservedPorts = new Set<number>();

async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** A port in 20000–39999 where both it and its cluster bus port (+10000) can be bound on 127.0.0.1. */
async function clusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ([port - 10_000, port, port + 10_000].some((taken) => reservedPorts.has(taken))) continue;
    if ((await canBind(port)) && (await canBind(port + 10_000))) {
      reservedPorts.add(port);
      reservedPorts.add(port + 10_000);
      return port;
    }
  }
  throw new Error('found no port in 20000-39999 with its cluster bus port (+10000) free on 127.0.0.1');
}

/** Runs a command to completion and resolves its output; rejects with the end of the output. */
async function run(command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (code === 0) return output;
    const how = signal === null ? `exited with ${code}` : `was killed (${signal}) after ${timeoutMs} ms`;
    throw new Error(`${command} ${args.join(' ')} ${how}:\n${output.trimEnd().split('\n').slice(-LOG_LINES).join('\n')}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts Redis Cluster on loopback: six nodes made into three primaries with one replica each by
 * `redis-cli --cluster create`, and waits until every node reports `cluster_state:ok`, all slots are
 * served and every replica is in sync.
 * @throws when something does not come up within 20 s, with the end of the logs
 */
export async function startCluster(options: ClusterOptions = {}): Promise<ClusterTopology> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const requireFullCoverage = options.requireFullCoverage ?? false;
  const root = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
  const forgetRoot = cleanUpOnExit(() => rmSync(root, { recursive: true, force: true }));
  const processes: RedisProcess[] = [];
  const stop = (): Promise<void> => tearDown(processes, root, forgetRoot);
  const allLogs = (): string => logs(processes);

  try {
    processes.push(
      ...(await spawnAll(6, (index) =>
        spawnRedis({
          dir: makeDir(root, `node-${index}`),
          pickPort: clusterPort,
          timeoutMs: START_TIMEOUT_MS,
          config: [
            ...DATA_NODE_CONFIG,
            'cluster-enabled yes',
            'cluster-config-file nodes.conf',
            `cluster-node-timeout ${nodeTimeoutMs}`,
            `cluster-require-full-coverage ${requireFullCoverage ? 'yes' : 'no'}`,
          ],
        }),
      )),
    );
    const nodes = processes.map(toNode);
    const addresses = processes.map((server) => `${HOST}:${server.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'], START_TIMEOUT_MS);

    const firstLive = (): RedisNode => {
      const node = nodes.find((candidate) => candidate.alive);
      if (node === undefined) throw new Error('no node of the cluster is running');
      return node;
    };
    const nodeAt = (port: number): RedisNode => {
      const node = nodes.find((candidate) => candidate.port === port);
      if (node === undefined) throw new Error(`the cluster names 127.0.0.1:${port}, which is not a node of this topology`);
      return node;
    };
    const view = async (node: RedisNode): Promise<ClusterNodeLine[]> =>
      parseClusterNodes(await sendCommand(node.port, ['CLUSTER', 'NODES'], 1000));

    /** Throws why the cluster is not serving every slot from the same live masters on every live node. */
    const checkState = async (): Promise<ClusterNodeLine[]> => {
      let reference: string | undefined;
      let referenceView: ClusterNodeLine[] = [];
      for (const node of nodes.filter((candidate) => candidate.alive)) {
        const info = fields(await sendCommand(node.port, ['CLUSTER', 'INFO'], 1000));
        if (info.get('cluster_state') !== 'ok') throw new Error(`port ${node.port}: cluster_state:${info.get('cluster_state')}`);
        if (info.get('cluster_slots_ok') !== String(SLOTS)) {
          throw new Error(`port ${node.port}: cluster_slots_ok:${info.get('cluster_slots_ok')}`);
        }
        const lines = await view(node);
        const ranges: string[] = [];
        let served = 0;
        for (const line of lines) {
          if (line.slots.length === 0) continue;
          if (!nodeAt(line.port).alive || failing(line) || !line.flags.includes('master')) {
            const state = nodeAt(line.port).alive ? 'running' : 'down';
            throw new Error(`port ${node.port}: slots served by ${line.port} (${line.flags.join(',')}, ${state})`);
          }
          for (const [start, end] of line.slots) {
            served += end - start + 1;
            ranges.push(`${start}-${end}:${line.port}`);
          }
        }
        if (served !== SLOTS) throw new Error(`port ${node.port}: ${served} slots served`);
        const signature = ranges.sort().join(' ');
        if (reference === undefined) {
          reference = signature;
          referenceView = lines;
        } else if (signature !== reference) {
          throw new Error(`port ${node.port} maps slots differently: ${signature} vs ${reference}`);
        }
      }
      return referenceView;
    };

    await waitFor(
      'the new cluster serving every slot with a replica in sync for every primary',
      START_TIMEOUT_MS,
      async () => {
        const lines = await checkState();
        const masters = lines.filter((line) => line.slots.length > 0);
        const replicas = lines.filter((line) => line.flags.includes('slave') && !failing(line));
        for (const master of masters) {
          const replica = replicas.find((line) => line.masterId === master.id);
          if (replica === undefined) throw new Error(`primary ${master.port} has no replica yet`);
          const status = fields(await ask(replica.port, 'INFO', 'replication')).get('master_link_status');
          if (status !== 'up') throw new Error(`replica ${replica.port}: master_link_status:${status}`);
        }
      },
      allLogs,
    );

    return {
      nodes,
      rootNodes: nodes.map((node) => ({ host: HOST, port: node.port })),
      async primaries() {
        const lines = await view(firstLive());
        return lines.filter((line) => line.slots.length > 0).map((line) => nodeAt(line.port));
      },
      async primaryForKey(key) {
        const node = firstLive();
        const slot = Number(await node.command('CLUSTER', 'KEYSLOT', key));
        const owner = (await view(node)).find((line) => line.slots.some(([start, end]) => start <= slot && slot <= end));
        if (owner === undefined) throw new Error(`port ${node.port} knows no master for slot ${slot} (key ${key})`);
        return nodeAt(owner.port);
      },
      async waitForState(timeoutMs = START_TIMEOUT_MS) {
        await waitFor('every live cluster node serving all slots from live masters', timeoutMs, checkState, allLogs);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
