// One stack in a process of its own: `node --import tsx bench/server.ts <framework> <kind>`, with
// REDIS_URL and PORT. Prints "ready" once it listens on 127.0.0.1.
//
// Spawned with an IPC channel, it answers the message 'cpu' with its CPU time so far and the
// requests it has received: the runner samples both around each timed run, outside the HTTP path,
// so that taking the measure costs no request anything.
import { createServer, type Server } from 'node:http';
import { loadStack, type StackKind } from './stacks/index.js';

/** The reply to 'cpu': process.cpuUsage() in µs (all threads), and requests received so far. */
export interface CpuSample {
  user: number;
  system: number;
  requests: number;
}

const [framework = '', kind = ''] = process.argv.slice(2);
const port = Number(process.env.PORT);
const redisUrl = process.env.REDIS_URL ?? '';

const served = await (await loadStack(framework, kind as StackKind))(redisUrl);
let server: Server;
if (typeof served === 'function') {
  server = createServer(served);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
} else {
  await served.listen({ port, host: '127.0.0.1' });
  server = served.server;
}
let requests = 0;
server.on('request', () => void requests++);
process.on('message', (message) => {
  if (message !== 'cpu') return;
  const { user, system } = process.cpuUsage();
  process.send?.({ user, system, requests } satisfies CpuSample);
});
console.log('ready');
// The runner stops this process with SIGTERM; exit at once, whatever is still open.
process.once('SIGTERM', () => process.exit(0));
