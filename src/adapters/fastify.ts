import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { SessionManager } from '../core/manager.js';
import type { SessionOptions } from '../core/options.js';
// Session from the package's root, not core/: so an app that imports only this adapter still
// loads the module that `declare module 'latchkey'` augments (see SessionData).
import type { Session, SessionAdmin, SessionHandle } from '../index.js';
import { noteFailures, openFastifySession, withoutDetails, type FastifyRequestSession } from './fastify-shared.js';

declare module './fastify-shared.js' {
  interface FastifySessionTypes {
    native: Session;
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The session of this request, set by latchkey's `session` plugin: a {@link Session} (the
     * type is declared through {@link FastifyRequestSession}, shared with `latchkey/fastify-session`).
     */
    session: FastifyRequestSession;
  }
  interface FastifyInstance {
    /**
     * Sessions by user (list, revoke) on the plugin's store, set by latchkey's `session` plugin;
     * under `${keyword}Admin` for another keyword.
     */
    sessionAdmin: SessionAdmin;
  }
}

/** A request as the plugin sees it: the session under its keyword, its handle under a symbol. */
type Decorated = FastifyRequest & Record<string, Session> & Record<symbol, SessionHandle | null>;

// Async, so that a wrong option rejects app.register() / app.ready() instead of throwing out of the boot loop.
const plugin: FastifyPluginAsync<SessionOptions<FastifyRequest>> = async (fastify, options) => {
  const manager = new SessionManager(options);
  const keyword = manager.options.keyword;
  // One symbol per registration, so two session plugins (other cookie, other keyword) can coexist.
  const handleKey = Symbol('latchkey.handle');
  try {
    fastify.decorateRequest(keyword, null);
    fastify.decorateRequest(handleKey, null);
    fastify.decorate(`${keyword}Admin`, manager.admin);
  } catch (error) {
    // Registered twice in one context (or the keyword is taken): don't leave a connection open.
    await manager.close();
    throw error;
  }
  fastify.addHook('onRequest', (request, reply, next) => {
    const handle = openFastifySession(manager, request, reply);
    (request as Decorated)[keyword] = handle.session;
    (request as Decorated)[handleKey] = handle;
    next();
  });
  noteFailures(fastify);
  fastify.addHook('onSend', (request, reply, payload, next) => {
    payload = withoutDetails(request, payload, reply.statusCode);
    (request as Decorated)[handleKey]?.writeHeaders({
      get: (name) => reply.getHeader(name),
      set: (name, value) => void reply.header(name, value),
      // Fastify adds each Set-Cookie as a header of its own.
      appendSetCookie: (value) => void reply.header('set-cookie', value),
    });
    next(null, payload);
  });
  fastify.addHook('onClose', (_instance, next) => {
    manager.close().then(() => next(), next);
  });
};

/**
 * Session plugin for Fastify 5. Register it once, at the root or in the encapsulated context
 * that needs sessions; handlers there get the session as `request.session` (or
 * `request[keyword]`). A `SessionError` thrown by a handler reaches your error handler (or
 * Fastify's default one, which logs it) as it is; Fastify's default answer keeps its JSON shape and
 * the error's `status` (503 for `STORE_UNAVAILABLE`, with `Retry-After: 1`), but the plugin puts
 * the reason phrase in place of the message, which is for logs. Closing the app closes the Redis
 * connection the plugin created itself (a client or store you passed stays open).
 *
 * ```ts
 * await app.register(session, { redis: client });
 * app.get('/', async (request) => `Hello, ${await request.session.get('name')}`);
 * ```
 *
 * @throws {@link SessionError} `INVALID_OPTIONS` when an option is wrong (at registration)
 */
export const session = fastifyPlugin(plugin, { fastify: '5.x', name: 'latchkey' });
