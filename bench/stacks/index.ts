// The stacks the benchmark compares, per framework: latchkey, the session library people use with
// that framework today, and a floor (the bare framework, one raw Redis command per route).
import type { RequestListener } from 'node:http';

/** A started stack: a request listener to serve, or a server that listens by itself (Fastify). */
export type Served = RequestListener | { listen(options: { port: number; host: string }): Promise<unknown> };

/** Connects a stack to the Redis at `redisUrl` and builds its app. */
export type StackStarter = (redisUrl: string) => Promise<Served>;

/** What a stack is: latchkey, the framework's usual session library, or the floor. */
export type StackKind = 'latchkey' | 'competitor' | 'floor';

/** The frameworks, each with the kinds of stack it has, in table order. */
export const FRAMEWORKS: Record<string, readonly StackKind[]> = {
  express: ['latchkey', 'competitor', 'floor'],
  fastify: ['latchkey', 'competitor', 'floor'],
  koa: ['latchkey', 'competitor', 'floor'],
  hono: ['latchkey', 'floor'],
  node: ['latchkey', 'floor'],
};

/** The session library each framework's users reach for today, with a Redis store. */
export const COMPETITORS: Record<string, string> = {
  express: 'express-session + connect-redis',
  fastify: '@fastify/session + connect-redis',
  koa: 'koa-session + koa-redis',
};

const MODULES: Record<StackKind, string> = { latchkey: './latchkey.ts', competitor: './competitors.ts', floor: './floors.ts' };

/** Loads the starter of the `kind` stack on `framework`. */
export async function loadStack(framework: string, kind: StackKind): Promise<StackStarter> {
  const module = (await import(MODULES[kind])) as { stacks: Record<string, StackStarter> };
  const starter = module.stacks[framework];
  if (!starter) throw new Error(`no ${kind} stack for ${framework}`);
  return starter;
}
