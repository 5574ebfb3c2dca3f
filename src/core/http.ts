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

/**
 * Opens the session of a request served by `node:http` (directly, or through Express or Koa).
 * The session's headers are added at the moment the response headers are written, whoever
 * writes them: the handler, a redirect, an error handler. Nothing is hooked until the session is
 * used.
 *
 * @param isSecure - whether the request came over HTTPS, for `secure: 'auto'`
 * @param request - the framework's request object, for `onInvalidCookie` (default: `req`)
 */
export function openNodeSession<Data extends object>(
  manager: SessionManager<Data>,
  req: IncomingMessage,
  res: ServerResponse,
  isSecure: () => boolean,
  request: unknown = req,
): SessionHandle<Data> {
  const handle: SessionHandle<Data> = manager.open({
    cookieHeader: () => req.headers.cookie,
    isSecure,
    headersSent: () => res.headersSent,
    request,
    onActive: () => onHeaders(res, () => handle.writeHeaders(headersOf(res))),
  });
  return handle;
}
