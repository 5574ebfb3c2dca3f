// The load generator, in a process of its own so that it does not share an event loop with the
// runner: receives jobs over IPC, runs autocannon against loopback, sends back the figures.
import autocannon from 'autocannon';

/** One load run. */
export interface LoadJob {
  url: string;
  headers: Record<string, string>;
  /** Seconds. */
  duration: number;
  connections: number;
}

/** What a load run measured. */
export interface LoadResult {
  /** Requests per second over the run. */
  rps: number;
  /** Requests completed. */
  requests: number;
  /** Latency percentiles in ms. */
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function run(job: LoadJob): Promise<LoadResult> {
  if (!/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)[:/]/.test(job.url)) throw new Error(`loopback only, not ${job.url}`);
  const result = await autocannon({ url: job.url, headers: job.headers, duration: job.duration, connections: job.connections, pipelining: 1 });
  return {
    // Over the whole run: autocannon's per-second average misleads for short runs.
    rps: result.requests.total / Math.max(result.duration, 0.001),
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

process.on('message', (job: LoadJob) => {
  run(job).then(
    (result) => process.send?.({ ok: true, result }),
    (error: unknown) => process.send?.({ ok: false, error: String(error) }),
  );
});
process.send?.({ ready: true });
