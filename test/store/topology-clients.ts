// The four clients of a Redis Sentinel or Cluster that RedisStore accepts, configured as an app in
// production would: an 'error' listener (an unhandled 'error' event would end the process) and
// reconnection delays capped at 500 ms, so service resumes soon after a failover. Each is one short
// block, for the README's "Running in production".
import { Cluster, Redis } from 'ioredis';
import { createCluster, createSentinel } from 'redis';
import type { RedisClientLike } from '../../src/stores/redis-client.js';
import { ioredisReady } from '../redis/client.js';

/** Where the sentinels are and the name they monitor the primary under. */
export interface SentinelAddress {
  readonly name: string;
  readonly sentinels: readonly { host: string; port: number }[];
}

/** Some nodes of the cluster (three are enough for the clients to find the rest). */
export type ClusterAddress = readonly { host: string; port: number }[];

/** A connected client, whatever its library, and how to close it. */
export interface TopologyClient {
  readonly client: RedisClientLike;
  close(): Promise<void>;
}

/** The client libraries and topologies the tests run every property against. */
export const SENTINEL_CLIENTS = {
  'node-redis createSentinel': connectNodeRedisSentinel,
  'ioredis Sentinel': connectIoredisSentinel,
} as const;

export const CLUSTER_CLIENTS = {
  'node-redis createCluster': connectNodeRedisCluster,
  'ioredis Cluster': connectIoredisCluster,
} as const;

const ignore = (): void => {};

export async function connectNodeRedisSentinel({ name, sentinels }: SentinelAddress): Promise<TopologyClient> {
  const client = createSentinel({
    name,
    sentinelRootNodes: [...sentinels],
    nodeClientOptions: { socket: { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 500) } },
  });
  client.on('error', ignore);
  await client.connect();
  return { client, close: async () => client.destroy() };
}

export async function connectIoredisSentinel({ name, sentinels }: SentinelAddress): Promise<TopologyClient> {
  const client = new Redis({
    name,
    sentinels: [...sentinels],
    retryStrategy: (times: number) => Math.min(50 * 2 ** times, 500),
  });
  client.on('error', ignore);
  await ioredisReady(client);
  return { client, close: async () => client.disconnect() };
}

export async function connectNodeRedisCluster(nodes: ClusterAddress): Promise<TopologyClient> {
  const client = createCluster({
    rootNodes: nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
    defaults: { socket: { reconnectStrategy: () => 200 } },
    topologyRefreshOnReconnectionAttemptStrategy: 500,
  });
  client.on('error', ignore);
  await client.connect();
  return { client, close: async () => client.destroy() };
}

export async function connectIoredisCluster(nodes: ClusterAddress): Promise<TopologyClient> {
  const client = new Cluster([...nodes], {
    clusterRetryStrategy: (times: number) => Math.min(50 * 2 ** times, 500),
  });
  client.on('error', ignore);
  await ioredisReady(client);
  return { client, close: async () => client.disconnect() };
}
