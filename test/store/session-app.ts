// A small node:http app on latchkey's node adapter, and browsers with a cookie jar each, for tests
// that drive sessions over real HTTP against a store (Sentinel, Cluster, faults).
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultErrorHandler, withSession, type NodeSessionOptions } from '../../src/adapters/node.js';
import { storageId } from '../../src/core/id.js';
import type { Store } from '../../src/stores/store.js';

/** What a browser saw: `status` 0 when the request itself failed (connection error or timeout). */
export interface Reply {
  readonly status: number;
  readonly body: string;
  /** How long the request took, in ms. */
  readonly ms: number;
}

/** A browser with a one-cookie jar: sends the session cookie it holds and keeps what Set-Cookie says. */
export interface Browser {
  /** GETs `path` and updates the jar. */
  get(path: string): Promise<Reply>;
  /** The session id in the jar, if any. */
  readonly id: string | undefined;
  /** The Redis key of that session (`session:` + storage id), if any. */
  readonly key: string | undefined;
}

/** The app, listening on 127.0.0.1. */
export interface SessionApp {
  readonly origin: string;
  /** A new browser, empty or holding `cookieId`'s cookie. */
  browser(cookieId?: string): Browser;
  /** Every error the handler threw (answered by the adapter's default error handler). */
  readonly errors: unknown[];
  close(): Promise<void>;
}

/** Options of {@link startSessionApp}. */
export interface SessionAppOptions {
  /** A request still unanswered after this long counts as failed (status 0). @default 10000 */
  requestTimeoutMs?: number;
  /** More options of the session middleware. */
  session?: Omit<NodeSessionOptions, 'store' | 'onError'>;
}

const COOKIE = 'session';

/**
 * Serves sessions from `store` on a free loopback port. Routes, each one session operation whose
 * result is the JSON body: `/set?k=&v=`, `/incr?k=`, `/get?k=`, `/all`, `/regenerate`, `/destroy`.
 */
export async function startSessionApp(store: Store, options: SessionAppOptions = {}): Promise<SessionApp> {
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const errors: unknown[] = [];
  const listener = withSession(
    {
      ...options.session,
      store,
      onError: (error, req, res) => {
        errors.push(error);
        defaultErrorHandler(error, req, res);
      },
    },
    async (req, res, session) => {
      const url = new URL(req.url ?? '/', 'http://app');
      const k = url.searchParams.get('k') ?? 'k';
      let body: unknown;
      switch (url.pathname) {
        case '/set':
          await session.set(k, url.searchParams.get('v'));
          body = 'ok';
          break;
        case '/incr':
          body = await session.incr(k);
          break;
        case '/get':
          body = (await session.get(k)) ?? null;
          break;
        case '/all':
          body = await session.all();
          break;
        case '/regenerate':
          await session.regenerate();
          body = 'ok';
          break;
        case '/destroy':
          await session.destroy();
          body = 'ok';
          break;
        default:
          res.writeHead(404).end();
          return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    },
  );
  const server = createServer(listener).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const browser = (cookieId?: string): Browser => {
    let id = cookieId;
    return {
      get id() {
        return id;
      },
      get key() {
        return id === undefined ? undefined : `session:${storageId(id)}`;
      },
      async get(path) {
        const started = Date.now();
        try {
          const response = await fetch(origin + path, {
            headers: id === undefined ? {} : { cookie: `${COOKIE}=${id}` },
            signal: AbortSignal.timeout(requestTimeoutMs),
          });
          const body = await response.text();
          for (const setCookie of response.headers.getSetCookie()) {
            const match = new RegExp(`^${COOKIE}=([^;]*)`).exec(setCookie);
            if (match === null) continue;
            id = match[1] === '' || /;\s*max-age=0\b/i.test(setCookie) ? undefined : match[1];
          }
          return { status: response.status, body, ms: Date.now() - started };
        } catch (error) {
          return { status: 0, body: error instanceof Error ? `${error.name}: ${error.message}` : String(error), ms: Date.now() - started };
        }
      },
    };
  };

  return {
    origin,
    browser,
    errors,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
