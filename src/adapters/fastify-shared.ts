// What latchkey's two Fastify plugins share: the type of `request.session`, and how a failed
// request's error body is kept free of details. Not a public entry point.
import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SessionManager } from '../core/manager.js';
import type { SessionHandle } from '../core/session.js';
import { isSessionError, type SessionError } from '../core/errors.js';

/**
 * The type each of latchkey's Fastify plugins gives `request.session`, by plugin: `latchkey/fastify`
 * adds `native`, `latchkey/fastify-session` adds `plain`. Both declare `FastifyRequest.session` as
 * {@link FastifyRequestSession}, so a program that loads both (latchkey's own, or an app with one
 * plugin per encapsulated context) compiles instead of failing with TS2717; there the native
 * session's type wins.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by the plugins' declarations
export interface FastifySessionTypes {}

/** The type of `request.session`: the one plugin's that is loaded, the native one's when both are. */
export type FastifyRequestSession = FastifySessionTypes extends { native: infer Native }
  ? Native
  : FastifySessionTypes extends { plain: infer Plain }
    ? Plain
    : unknown;

/** The latchkey error each failed request met first, as its onError hook saw it. */
const failures = new WeakMap<FastifyRequest, SessionError>();

/**
 * The body Fastify makes of an error it serializes itself (its default error handler, or an error
 * handler that sends the error on): field for field what its error serializer writes.
 */
function fastifyErrorBody(statusCode: number, code: string, message: string): string {
  return JSON.stringify({ statusCode, code, error: STATUS_CODES[statusCode], message });
}

/**
 * Adds the onError hook that notes a request's latchkey error. Not setErrorHandler: in the app's
 * context (fastify-plugin) it would clash with the app's own. The app's handler and Fastify's logger
 * get the error untouched; only the body changes, through {@link withoutDetails} in onSend.
 */
export function noteFailures(fastify: FastifyInstance): void {
  fastify.addHook('onError', (request, _reply, error, next) => {
    if (isSessionError(error)) failures.set(request, error);
    next();
  });
}

/**
 * `payload` with the error's message replaced by the status' reason phrase when it is Fastify's own
 * serialization of the request's latchkey error, which ignores `expose` and would show clients what
 * is meant for logs (a Redis reply, the start of a session key). Any other body was chosen by the
 * app: kept as it is.
 */
export function withoutDetails(request: FastifyRequest, payload: unknown, statusCode: number): unknown {
  const error = failures.get(request);
  if (error === undefined || payload !== fastifyErrorBody(statusCode, error.code, error.message)) return payload;
  return fastifyErrorBody(statusCode, error.code, STATUS_CODES[statusCode] ?? 'Error');
}

/** Opens the session of a Fastify request: what the core needs to know of it, as Fastify resolves it. */
export function openFastifySession<Data extends object>(manager: SessionManager<Data>, request: FastifyRequest, reply: FastifyReply): SessionHandle<Data> {
  return manager.open({
    cookieHeader: () => request.headers.cookie,
    // request.protocol, hostname and ip honour the app's trustProxy setting.
    isSecure: () => request.protocol === 'https',
    target: () => ({ path: request.url, host: request.hostname }),
    headersSent: () => reply.sent || reply.raw.headersSent,
    client: () => ({ userAgent: request.headers['user-agent'], ip: request.ip }),
    request,
  });
}
