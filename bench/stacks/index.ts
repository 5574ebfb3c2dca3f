// The stacks the benchmark compares, per framework: latchkey, the session library people use with
// that framework today, and a floor (the bare framework, one raw Redis command per route).
import type { RequestListener, Server } from 'node:http';

/** A started stack: a request listener to serve, or a server that listens by itself (Fastify). */
export type Served = RequestListener | { listen(options: { port: number; host: string }): Promise<unknown>; readonly server: Server };

/** Connects a stack to the Redis at `redisUrl` and builds its app. */
export type StackStarter = (redisUrl: string) => Promise<Served>;

/**
 * What a stack is: latchkey, latchkey's mode that speaks the usual library's API (compat), the
 * framework's usual session library, the floor, or the floor with an empty middleware (timed on
 * /plain only: what mounting any middleware costs the framework).
 */
export type StackKind = 'latchkey' | 'compat' | 'competitor' | 'floor' | 'empty';

/** The frameworks, each with the kinds of stack it has, in table order. */
export const FRAMEWORKS: Record<string, readonly StackKind[]> = {
  express: ['latchkey', 'compat', 'competitor', 'floor', 'empty'],
  fastify: ['latchkey', 'compat', 'competitor', 'floor', 'empty'],
  koa: ['latchkey', 'compat', 'competitor', 'floor', 'empty'],
  hono: ['latchkey', 'floor', 'empty'],
  node: ['latchkey', 'floor'],
};

/** The session library each framework's users reach for today, with a Redis store. */
export const COMPETITORS: Record<string, string> = {
  express: 'express-session + connect-redis',
  fastify: '@fastify/session + connect-redis',
  koa: 'koa-session + koa-redis',
};

/** latchkey's mode that speaks each usual library's API, by framework. */
export const COMPAT: Record<string, string> = {
  express: 'latchkey/express-session',
  fastify: 'latchkey/fastify-session',
  koa: 'latchkey/koa-session',
};

const MODULES: Record<StackKind, string> = {
  latchkey: './latchkey.ts',
  compat: './compat.ts',
  competitor: './competitors.ts',
  floor: './floors.ts',
  empty: './floors.ts',
};

/** Loads the starter of the `kind` stack on `framework`. */
export async function loadStack(framework: string, kind: StackKind): Promise<StackStarter> {
  const module = (await import(MODULES[kind])) as { stacks: Record<string, StackStarter>; withEmptyMiddleware?: Record<string, StackStarter> };
  const starter = kind === 'empty' ? module.withEmptyMiddleware?.[framework] : module.stacks[framework];
  if (!starter) throw new Error(`no ${kind} stack for ${framework}`);
  return starter;
}
