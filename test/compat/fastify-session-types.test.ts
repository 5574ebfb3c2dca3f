// An app that imports only latchkey/fastify-session, with @fastify/session's declaration of its
// keys (`declare module 'fastify' { interface Session { ... } }`), compiled against the built
// package (dist/) under `strict` and `skipLibCheck: false`, @fastify/session's types not loaded.
// A misspelt key and a value of the wrong type must not compile (`@ts-expect-error` fails when
// there is no error).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertBuilt, createConsumerProject, type ConsumerProject } from '../types/consumer-project.js';

const APP = `import Fastify from 'fastify';
import fastifyPassport from '@fastify/passport';
import fastifySession, { MemoryStore } from 'latchkey/fastify-session';

declare module 'fastify' {
  interface Session {
    user?: { name: string };
    visits?: number;
  }
}

export async function app(): Promise<void> {
  const app = Fastify();
  await app.register(fastifySession, { secret: 'a secret with minimum length of 32 characters', cookie: { secure: 'auto', maxAge: 86_400_000 }, store: new MemoryStore() });
  await app.register(fastifyPassport.initialize());
  await app.register(fastifyPassport.secureSession());
  app.get('/', async (request) => {
    const visits: number | undefined = request.session.visits;
    request.session.visits = (visits ?? 0) + 1;
    request.session.set('user', { name: 'alice' });
    const user: { name: string } | undefined = request.session.get('user');
    // @ts-expect-error misspelt key
    request.session.get('usr');
    // @ts-expect-error a value of the wrong type
    request.session.set('visits', 'many');
    await request.session.regenerate(['user']);
    request.session.regenerate((error) => void error);
    await request.session.save();
    await request.session.reload();
    request.session.cookie.maxAge = 30 * 24 * 3600 * 1000;
    const modified: boolean = request.session.isModified();
    await request.session.destroy();
    return { user, modified, id: request.session.sessionId };
  });
  await app.sessionAdmin.listUserSessions('alice');
}
`;

/** Both of latchkey's Fastify plugins in one program: no TS2717, and the native session's type. */
const BOTH = `import Fastify from 'fastify';
import { session } from 'latchkey/fastify';
import fastifySession from 'latchkey/fastify-session';

export async function app(): Promise<void> {
  const app = Fastify();
  await app.register(session);
  void fastifySession;
  app.get('/', async (request) => {
    const value: Promise<unknown> = request.session.get('anything');
    return value;
  });
}
`;

describe('latchkey/fastify-session types in an app (strict, skipLibCheck: false)', () => {
  const projects = new Map<string, ConsumerProject>();
  before(() => {
    assertBuilt();
    projects.set('app', createConsumerProject({ packages: ['@types/node', 'fastify', '@fastify/passport'], files: { 'app.ts': APP } }));
    projects.set('both', createConsumerProject({ packages: ['@types/node', 'fastify'], files: { 'app.ts': BOTH } }));
  });
  after(() => {
    for (const project of projects.values()) project.remove();
  });

  it("types request.session from the app's declaration of fastify's Session, @fastify/session's types not loaded", () => {
    assert.equal(projects.get('app')?.typeErrors(), '');
  });

  it('the checks can fail: without the declaration, the expected errors are missing', () => {
    const project = createConsumerProject({
      packages: ['@types/node', 'fastify', '@fastify/passport'],
      files: { 'app.ts': APP.replace(/^declare module 'fastify' \{[\s\S]*?^\}$/m, '') },
    });
    try {
      assert.match(project.typeErrors(), /Unused '@ts-expect-error' directive|does not exist on type/);
    } finally {
      project.remove();
    }
  });

  it('compiles with latchkey/fastify loaded as well (no TS2717); request.session is then the native Session', () => {
    assert.equal(projects.get('both')?.typeErrors(), '');
  });
});
