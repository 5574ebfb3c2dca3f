import { createHash } from 'node:crypto';
import {
  createOwnedClient,
  checkRedisOption,
  isRedisClient,
  pickRedisLibrary,
  primariesOf,
  replyErrorCode,
  toRedisUrl,
  toSendCommand,
  withTimeout,
  type OwnedClient,
  type RedisClientLike,
  type RedisConnectionOptions,
  type SendCommand,
} from './redis-client.js';

/** A Lua script, with the SHA-1 that EVALSHA runs it by. */
export class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

/**
 * What the Redis stores share: one client (the app's, or one created and owned), commands and
 * cached scripts run within the command timeout, failures turned into `SessionError`s.
 */
export class RedisRunner {
  readonly send: SendCommand;
  /** The senders of each primary, for SCAN. */
  readonly primaries: () => Promise<SendCommand[]>;
  /** Milliseconds a command may take. */
  readonly timeout: number;
  readonly #owned: OwnedClient | undefined;
  #firstConnection: Promise<void> | undefined;

  /**
   * @throws {@link SessionError} `INVALID_OPTIONS` when `redis` is not usable
   */
  constructor(redis: RedisClientLike | string | RedisConnectionOptions, timeout: number) {
    this.timeout = timeout;
    checkRedisOption(redis);
    if (isRedisClient(redis)) {
      this.send = toSendCommand(redis);
      this.primaries = primariesOf(redis, this.send);
    } else {
      const url = toRedisUrl(redis);
      this.#owned = createOwnedClient(url, pickRedisLibrary(), timeout);
      this.send = this.#owned.send;
      const send = this.send;
      this.primaries = () => Promise.resolve([send]);
      // Commands wait for the first connection, but never longer than one timeout: if Redis is
      // down at start-up, later commands fail at once instead of each waiting in turn.
      const settled = (): void => {
        this.#firstConnection = undefined;
      };
      this.#firstConnection = withTimeout(this.#owned.ready, timeout, 'connect').then(settled, settled);
    }
  }

  /**
   * Runs `operation` once the first connection (if any) is settled, within the command timeout;
   * whatever it fails with becomes a {@link SessionError}.
   */
  run(what: string, operation: (signal?: AbortSignal) => Promise<unknown>, script = false): Promise<unknown> {
    // Only for clients that may still run a command after the timeout; it costs the others.
    const { abortable } = this.send;
    const controller = abortable === true || (script && abortable === 'scripts') ? new AbortController() : undefined;
    let pending: Promise<unknown>;
    try {
      const first = this.#firstConnection;
      pending = first ? first.then(() => operation(controller?.signal)) : operation(controller?.signal);
    } catch (error) {
      pending = Promise.reject(error);
    }
    const abort = controller && (() => controller.abort());
    return withTimeout(pending, this.timeout, what, abort);
  }

  command(what: string, key: string, args: readonly string[]): Promise<unknown> {
    return this.run(what, (signal) => this.send(key, args, signal));
  }

  /** Runs a cached script, loading it into Redis the first time (or after a restart or failover). */
  script(what: string, script: Script, key: string, args: readonly string[]): Promise<unknown> {
    return this.run(what, (signal) =>
      this.send(key, ['EVALSHA', script.sha, '1', key, ...args], signal).catch((error: unknown) => {
        // A script withdrawn after the timeout (see redis-client.ts) answers NOSCRIPT when sent again: not loaded again.
        if (replyErrorCode(error) !== 'NOSCRIPT' || signal?.aborted === true) throw error;
        return this.send(key, ['EVAL', script.source, '1', key, ...args], signal);
      }),
      true,
    );
  }

  /** Closes the client if this runner created it; a client that was passed in is left open. */
  async close(): Promise<void> {
    await this.#owned?.close();
  }
}

/** Whether every field name and value of `map` is a string. */
function isStringMap(map: Map<unknown, unknown>): map is Map<string, string> {
  for (const [field, value] of map) if (typeof field !== 'string' || typeof value !== 'string') return false;
  return true;
}

/**
 * Reads a hash reply in any shape the clients give: a flat array (RESP2), a Map or an object
 * (RESP3). A Map of strings (node-redis', made for this reply alone) is taken as it is.
 */
export function toFieldMap(reply: unknown): Map<string, string> | null {
  if (reply instanceof Map && isStringMap(reply)) return reply.size === 0 ? null : reply;
  const fields = new Map<string, string>();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]));
  } else if (reply instanceof Map) {
    for (const [field, value] of reply) fields.set(String(field), String(value));
  } else if (reply !== null && typeof reply === 'object') {
    for (const [field, value] of Object.entries(reply)) fields.set(field, String(value));
  }
  return fields.size === 0 ? null : fields;
}
