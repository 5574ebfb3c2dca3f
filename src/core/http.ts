import type { IncomingMessage, ServerResponse } from 'node:http';
import onHeaders from 'on-headers';
import type { SessionManager } from './manager.js';
import type { ResponseHeaders } from './headers.js';
import type { SessionHandle } from './session.js';

/** The response's headers, for {@link SessionHandle.writeHeaders}. */
function headersOf(res: ServerResponse): ResponseHeaders {
  return {
    get: (name) => res.getHeader(name),
    set: (name, value) => void res.setHeader(name, value),
    appendSetCookie: (value) => void res.appendHeader('Set-Cookie', value),
  };
}

/** What a framework built on `node:http` tells about a request, beyond the raw `req`. */
export interface NodeRequestInfo {
  /** Whether the request came over HTTPS, for `secure: 'auto'`. */
  isSecure(): boolean;
  /** The host name the request was for, as the framework resolves it (default: the Host header). */
  host?(): string | undefined;
  /** The framework's request object, for `secure` and `onInvalidCookie` (default: `req`). */
  readonly request?: unknown;
  /** The client's IP address as the framework resolves it, for `recordClient` (default: the socket's peer). */
  ip?(): string | undefined;
  /**
   * Whether to add the session's headers when the response headers are written (default: true).
   * An adapter that holds the response until the session is saved passes `false` and calls
   * {@link hookResponseHeaders} itself when it lets the response go.
   */
  readonly hookHeaders?: boolean;
}

/**
 * Adds the session's headers to `res` at the moment its headers are written, whoever writes them,
 * after calling `onWrite`. Call it once per response.
 */
export function hookResponseHeaders(handle: Pick<SessionHandle<object>, 'writeHeaders'>, res: ServerResponse, onWrite?: () => void): void {
  onHeaders(res, () => {
    onWrite?.();
    handle.writeHeaders(headersOf(res));
  });
}

/**
 * Opens the session of a request served by `node:http` (directly, or through Express or Koa).
 * The session's headers are added at the moment the response headers are written, whoever
 * writes them: the handler, a redirect, an error handler. Nothing is hooked until the session is
 * used.
 */
export function openNodeSession<Data extends object>(
  manager: SessionManager<Data>,
  req: IncomingMessage,
  res: ServerResponse,
  info: NodeRequestInfo,
): SessionHandle<Data> {
  const handle: SessionHandle<Data> = manager.open({
    cookieHeader: () => req.headers.cookie,
    isSecure: info.isSecure,
    // Frameworks that route by a prefix rewrite req.url; the browser matched cookie paths against the original.
    target: () => ({ path: (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/', host: info.host ? info.host() : req.headers.host }),
    headersSent: () => res.headersSent,
    client: () => ({ userAgent: req.headers['user-agent'], ip: info.ip ? info.ip() : req.socket.remoteAddress }),
    request: info.request ?? req,
    onActive: info.hookHeaders === false ? undefined : () => hookResponseHeaders(handle, res),
  });
  return handle;
}
