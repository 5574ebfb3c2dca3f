// One stack in a process of its own: `node --import tsx bench/server.ts <framework> <kind>`, with
// REDIS_URL and PORT. Prints "ready" once it listens on 127.0.0.1.
import { createServer } from 'node:http';
import { loadStack, type StackKind } from './stacks/index.js';

const [framework = '', kind = ''] = process.argv.slice(2);
const port = Number(process.env.PORT);
const redisUrl = process.env.REDIS_URL ?? '';

const served = await (await loadStack(framework, kind as StackKind))(redisUrl);
if (typeof served === 'function') {
  const server = createServer(served);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
} else {
  await served.listen({ port, host: '127.0.0.1' });
}
console.log('ready');
// The runner stops this process with SIGTERM; exit at once, whatever is still open.
process.once('SIGTERM', () => process.exit(0));
