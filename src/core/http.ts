import type { IncomingMessage, ServerResponse } from 'node:http';
import onHeaders from 'on-headers';
import type { SessionManager } from './manager.js';
import type { SessionHandle } from './session.js';

/**
 * Opens the session of a request served by `node:http` (directly, or through Express or Koa).
 * The Set-Cookie header is added at the moment the response headers are written, whoever writes
 * them: the handler, a redirect, an error handler. Nothing is hooked until the session is used.
 *
 * @param isSecure - whether the request came over HTTPS, for `secure: 'auto'`
 */
export function openNodeSession<Data extends object>(
  manager: SessionManager<Data>,
  req: IncomingMessage,
  res: ServerResponse,
  isSecure: () => boolean,
): SessionHandle<Data> {
  const handle: SessionHandle<Data> = manager.open({
    cookieHeader: () => req.headers.cookie,
    isSecure,
    headersSent: () => res.headersSent,
    onActive: () =>
      onHeaders(res, () => {
        const cookie = handle.setCookie();
        if (cookie !== undefined) res.appendHeader('Set-Cookie', cookie);
      }),
  });
  return handle;
}
