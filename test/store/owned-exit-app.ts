// A program that uses a Redis connection latchkey opened itself and never calls close(): run by
// owned-exit.test.ts, which requires it to finish its work and then exit on its own.
//   app <url>                 an http server with withSession({ redis: url }): one request writes
//                             the session, one reads it back, then the server closes
//   client <library> <url>    commands straight through the owned client, awaited at top level
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { withSession } from '../../src/adapters/node.js';
import { createOwnedClient, type RedisLibrary } from '../../src/stores/redis-client.js';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'app') {
  const [url = ''] = args;
  const server = createServer(
    withSession({ redis: url }, async (req, res, session) => {
      if (req.url === '/set') await session.set('name', 'Chris');
      res.end(`name=${String(await session.get('name'))}`);
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const set = await fetch(`${base}/set`);
  const cookie = (set.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  console.log(`set: ${await set.text()}`);
  console.log(`get: ${await (await fetch(`${base}/`, { headers: { cookie } })).text()}`);
  server.close();
  server.closeAllConnections();
  console.log('server closed');
} else if (mode === 'client') {
  const [library, url = ''] = args;
  const client = createOwnedClient(url, library as RedisLibrary, 2000);
  await client.ready;
  await client.send('owned-exit', ['SET', 'owned-exit', library ?? '']);
  // A command Redis answers only 0.3 s later: the process must wait for its answer.
  await client.send('owned-exit:empty', ['BLPOP', 'owned-exit:empty', '0.3']);
  console.log(`got ${String(await client.send('owned-exit', ['GET', 'owned-exit']))}`);
} else {
  throw new Error(`unknown mode ${String(mode)}`);
}
