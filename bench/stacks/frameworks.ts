// One app skeleton per framework, the same for every stack of that framework: /plain answers
// without touching anything, every other route goes to the stack's handler. Only the session
// layer differs between stacks of one framework.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { getRequestListener } from '@hono/node-server';
import Koa from 'koa';
import type { Served } from './index.js';

/** A route handler: the route name (`read`, `setfield`...), its parameter, and the framework's own objects. */
export type Handle<Native> = (route: string, param: string | undefined, native: Native) => Promise<string>;

export function expressApp(
  middleware: express.RequestHandler | undefined,
  handle: Handle<{ req: express.Request; res: express.Response }>,
): Served {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  if (middleware) app.use(middleware);
  app.get('/plain', (_req, res) => void res.send('ok'));
  app.get('/:route{/:param}', async (req, res) => {
    res.send(await handle(req.params.route as string, req.params.param, { req, res }));
  });
  return app;
}

export async function fastifyApp(
  setup: (app: FastifyInstance) => Promise<void>,
  handle: Handle<{ request: FastifyRequest; reply: FastifyReply }>,
): Promise<Served> {
  const app = Fastify();
  await setup(app);
  app.get('/plain', async () => 'ok');
  app.get<{ Params: { route: string; param?: string } }>('/:route/:param?', async (request, reply) =>
    handle(request.params.route, request.params.param, { request, reply }),
  );
  await app.ready();
  return app;
}

export function koaApp(setup: (app: Koa) => void, handle: Handle<Koa.Context>): Served {
  const app = new Koa();
  app.silent = true;
  setup(app);
  app.use(async (ctx) => {
    const [, route = '', param] = ctx.path.split('/');
    ctx.body = route === 'plain' ? 'ok' : await handle(route, param, ctx);
  });
  return app.callback();
}

export function honoApp(middleware: MiddlewareHandler | undefined, handle: Handle<Context>): Served {
  const app = new Hono();
  if (middleware) app.use(middleware);
  app.get('/plain', (c) => c.text('ok'));
  app.get('/:route/:param?', async (c) => c.text(await handle(c.req.param('route'), c.req.param('param'), c)));
  return getRequestListener(app.fetch);
}

/** A plain node:http handler; `extra` is what a wrapper hands in (latchkey's session). */
export function nodeApp<Extra>(handle: Handle<{ req: IncomingMessage; res: ServerResponse; extra: Extra }>) {
  return async (req: IncomingMessage, res: ServerResponse, extra: Extra): Promise<void> => {
    const [, route = '', param] = (req.url ?? '/').split('?')[0]!.split('/');
    if (route === 'plain') return void res.end('ok');
    try {
      res.end(await handle(route, param, { req, res, extra }));
    } catch (error) {
      res.statusCode = (error as { status?: number }).status ?? 500;
      res.end(String(error));
    }
  };
}
