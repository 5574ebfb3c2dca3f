// The Redis CPU benchmark's figures, targets and tables (bench/redis-cost.ts measures them). Kept
// apart from the measuring, which needs connect-redis: its express-session types clash with
// latchkey's in one program (see tsconfig.bench.json).

import type { RedisServer } from '../test/redis/server.js';

/** The operations measured, each as the session middleware performs it for one request. */
export const OPERATIONS = ['load', 'refreshing load', 'write', 'incr', 'create', 'regenerate', 'destroy'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** The two sessions measured: the size of a login, and one near latchkey's default limits. */
export const SIZES = {
  small: { fields: 3, valueBytes: 12 },
  large: { fields: 250, valueBytes: 800 },
} as const;
export type Size = keyof typeof SIZES;

/** One operation's cost, medians over the repeats. */
export interface OperationCost {
  /** Redis CPU µs per operation: the commands the client sent, a script's inner calls within its own time. */
  usec: number;
  /**
   * CPU µs of Redis's main thread per operation (INFO cpu, user + sys): the commands and also
   * reading requests and writing replies, so a round trip costs here what it costs a shard.
   */
  cpu: number;
  /** Commands Redis ran per operation, a script's inner calls included. */
  commands: number;
  /** Commands the client sent per operation (round trips). */
  sent: number;
}

/** The costs of every operation, per library and session size. */
export interface RedisCostResult {
  latchkey: Record<Size, Record<Operation, OperationCost>>;
  'connect-redis': Record<Size, Record<Operation, OperationCost>>;
  /**
   * For scale, the floor of a conditional one-field write that issue 12 names: one small script
   * doing EXISTS, HLEN, HGET, HSTRLEN, HSET and PEXPIRE, on the same sessions, in the same phases.
   */
  floorWrite?: Record<Size, OperationCost>;
}

/** How many operations per phase, and how many phases per operation (the median is kept). */
export interface RedisCostSettings {
  iterations: Record<Size, number>;
  repeats: number;
}

export const REDIS_COST_SETTINGS = {
  full: { iterations: { small: 2000, large: 200 }, repeats: 5 },
  quick: { iterations: { small: 200, large: 20 }, repeats: 1 },
} as const satisfies Record<string, RedisCostSettings>;

/** Measures every operation (bench/redis-cost.ts), on the Redis server at `url`. */
export type MeasureRedisCost = (redis: RedisServer, settings: RedisCostSettings) => Promise<RedisCostResult>;

/** A target of issue 12 on Redis CPU, checked against a result. */
export interface RedisCostCheck {
  target: string;
  how: string;
  measured: string;
  met: boolean;
}

const usec = (n: number | undefined): string => (n === undefined ? '—' : `${n.toFixed(n < 10 ? 2 : 1)} µs`);

/** The Redis CPU targets: a small write ≤ 6 µs, a large one ≤ 1.5× that, no small operation over 4× connect-redis. */
export function redisCostChecks(result: RedisCostResult): RedisCostCheck[] {
  const how = 'INFO commandstats: µs of the commands sent, per operation, median of the repeats';
  const small = result.latchkey.small;
  const large = result.latchkey.large;
  const floor = result.floorWrite?.small.usec;
  const checks: RedisCostCheck[] = [
    {
      target: 'one-field write on the small session ≤ 6 µs of Redis CPU',
      how,
      measured: `${usec(small.write.usec)}${floor === undefined ? '' : ` (the floor script in the same run: ${usec(floor)})`}`,
      met: small.write.usec <= 6,
    },
    {
      target: 'one-field write on the large session ≤ 1.5× the small one',
      how,
      measured: `${usec(large.write.usec)} (${(large.write.usec / small.write.usec).toFixed(2)}×)`,
      met: large.write.usec <= 1.5 * small.write.usec,
    },
  ];
  for (const operation of OPERATIONS) {
    const ours = small[operation].usec;
    const theirs = result['connect-redis'].small[operation].usec;
    checks.push({
      target: `${operation}, small session: ≤ 4× connect-redis's Redis CPU`,
      how,
      measured: `${usec(ours)} vs ${usec(theirs)} (${(ours / theirs).toFixed(2)}×)`,
      met: ours <= 4 * theirs,
    });
  }
  return checks;
}

/** The table of Redis CPU per operation, as Markdown (or fixed-width text for the console). */
export function renderRedisCost(result: RedisCostResult, markdown = true): string {
  const header = [
    'operation',
    'session',
    'latchkey µs',
    'connect-redis µs',
    'latchkey ÷ connect-redis',
    'latchkey main-thread µs',
    'connect-redis main-thread µs',
    'latchkey cmds (sent)',
    'connect-redis cmds (sent)',
  ];
  const body: string[][] = [];
  for (const size of Object.keys(SIZES) as Size[]) {
    for (const operation of OPERATIONS) {
      const ours = result.latchkey[size][operation];
      const theirs = result['connect-redis'][size][operation];
      body.push([
        operation,
        `${size} (${SIZES[size].fields} × ${SIZES[size].valueBytes} B)`,
        ours.usec.toFixed(2),
        theirs.usec.toFixed(2),
        `${(ours.usec / theirs.usec).toFixed(2)}×`,
        ours.cpu.toFixed(1),
        theirs.cpu.toFixed(1),
        `${ours.commands.toFixed(1)} (${ours.sent.toFixed(0)})`,
        `${theirs.commands.toFixed(1)} (${theirs.sent.toFixed(0)})`,
      ]);
      const floor = operation === 'write' ? result.floorWrite?.[size] : undefined;
      if (floor) {
        const label = `${size} (${SIZES[size].fields} × ${SIZES[size].valueBytes} B)`;
        body.push(['write: floor script', label, floor.usec.toFixed(2), '', '', floor.cpu.toFixed(1), '', `${floor.commands.toFixed(1)} (${floor.sent.toFixed(0)})`, '']);
      }
    }
  }
  if (markdown) {
    return [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`, ...body.map((row) => `| ${row.join(' | ')} |`)].join('\n');
  }
  const table = [header, ...body];
  const widths = header.map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  return table.map((row) => row.map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ')).join('\n');
}

