// The app's own Redis client, which every framework example shares with latchkey, as
// bottle-session shared bottle-redis' connection pool. It connects to REDIS_URL (default
// redis://localhost:6379); when nothing answers there, it says so and the example exits.
import { connect } from 'node:net';
import { createClient } from 'redis';
import { host, origin, port } from './address.js';

const url = new URL(process.env.REDIS_URL ?? 'redis://localhost:6379');

/** Resolves once something accepts connections at the Redis URL; says how to fix it and exits otherwise. */
async function reachable(): Promise<void> {
  await new Promise<void>((resolve) => {
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379), timeout: 2000 });
    const fail = (reason: string): void => {
      socket.destroy();
      console.error(`latchkey example: no Redis at ${url.href} (${reason}). Start redis-server, or set REDIS_URL.`);
      process.exit(1);
    };
    socket.once('connect', () => (socket.end(), resolve()));
    socket.once('timeout', () => fail('timed out'));
    socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
  });
}

await reachable();

const redis = createClient({ url: process.env.REDIS_URL });
redis.on('error', (error) => console.error(`Redis: ${error.message}`));
await redis.connect();

/** Says where the example listens, in the line the tests wait for, with what to try there. */
function listening(framework: string, hint = 'try /set/Chris, then /, then /visit'): void {
  console.log(`latchkey ${framework} example on ${origin} (${hint})`);
}

export { redis, host, port, listening };
