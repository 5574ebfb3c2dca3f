// A node:http app that keeps sessions in a MemoryStore with its defaults and the default session
// limits, for test/store/memory-heap.test.ts, which runs it under a small heap. Run it with
// --expose-gc: /heap collects garbage before it reports, so it tells what the store holds on to.
//   POST /notes   stores the JSON object in the body, key by key, in the session
//   GET /notes    the session's keys
//   GET /heap     { heapUsed, sessions, bytes } after a full garbage collection
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withSession } from '../../src/adapters/node.js';
import { MemoryStore } from '../../src/stores/memory.js';

const store = new MemoryStore();
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run this app with node --expose-gc');

const server = createServer(
  withSession({ store }, async (req, res, session) => {
    if (req.url === '/notes' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      for await (const chunk of req) body += chunk as string;
      await session.set(JSON.parse(body) as Record<string, string>);
      res.end('stored');
    } else if (req.url === '/notes') {
      res.end(JSON.stringify(await session.keys()));
    } else if (req.url === '/heap') {
      gc();
      res.end(JSON.stringify({ heapUsed: process.memoryUsage().heapUsed, sessions: store.size, bytes: store.bytes }));
    } else {
      res.writeHead(404).end();
    }
  }),
).listen(0, '127.0.0.1', () => {
  console.log(`listening on ${(server.address() as AddressInfo).port}`);
});
