// What only the node:http wrapper has: its own error handling. Session behaviour itself is the
// conformance suite's job.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from '../../src/index.js';
import { withSession, type NodeSessionOptions } from '../../src/adapters/node.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Serves one handler on 127.0.0.1, fetches `/` once, and returns what the client saw. */
async function fetchOnce(handler: Handler, options: Omit<NodeSessionOptions, 'store'> = {}): Promise<{ status: number; body: string; headers: Headers } | Error> {
  const server = createServer(withSession({ store: new MemoryStore(), ...options }, handler)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { status: response.status, body: await response.text(), headers: response.headers };
  } catch (error) {
    return error as Error;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('node:http wrapper errors', () => {
  it('answers 500 with no details for an error thrown synchronously', async () => {
    const result = await fetchOnce(() => {
      throw new Error('secret detail');
    });
    assert.ok(!(result instanceof Error));
    assert.equal(result.status, 500);
    assert.equal(result.body, 'Internal Server Error');
  });

  it("uses the status of errors that carry one (http-errors' status, Fastify-style statusCode)", async () => {
    const notFound = await fetchOnce(async () => Promise.reject(Object.assign(new Error('gone'), { status: 404 })));
    assert.ok(!(notFound instanceof Error));
    assert.deepEqual([notFound.status, notFound.body], [404, 'Not Found']);
    const teapot = await fetchOnce(() => {
      throw Object.assign(new Error('short and stout'), { statusCode: 418 });
    });
    assert.ok(!(teapot instanceof Error));
    assert.equal(teapot.status, 418);
    const nonsense = await fetchOnce(() => {
      throw Object.assign(new Error('odd'), { status: 200 });
    });
    assert.ok(!(nonsense instanceof Error));
    assert.equal(nonsense.status, 500, 'a status that is not an error status is ignored');
  });

  it('closes the connection when the headers were already sent', async () => {
    const result = await fetchOnce(async (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      throw new Error('after the headers');
    });
    // The client sees the body cut short: the response does not pretend to be complete.
    assert.ok(result instanceof Error, 'the fetch fails on a truncated body');
  });

  it("hands errors to the app's onError, and closes the connection if that throws too", async () => {
    const seen: unknown[] = [];
    const handled = await fetchOnce(
      async () => {
        throw new Error('for the app');
      },
      { onError: (error, _req, res) => (seen.push(error), res.writeHead(502).end('custom')) },
    );
    assert.ok(!(handled instanceof Error));
    assert.deepEqual([handled.status, handled.body], [502, 'custom']);
    assert.equal((seen[0] as Error).message, 'for the app');

    const broken = await fetchOnce(
      async () => {
        throw new Error('first');
      },
      {
        onError: () => {
          throw new Error('the error handler failed');
        },
      },
    );
    assert.ok(broken instanceof Error, 'the connection was closed without an answer');
  });
});
