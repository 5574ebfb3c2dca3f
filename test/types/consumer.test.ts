// Typed session data as an app sees it: the README's declaration of SessionData, compiled in
// scratch app projects against the built package (dist/), under `strict` and `skipLibCheck: false`.
// Each project but one imports one adapter and nothing else of latchkey, so `declare module
// 'latchkey'` must work without the app importing the package's root. In each, a misspelt key, a value of the
// wrong type and `incr` on a key that holds a string must not compile (`@ts-expect-error`, which
// fails when there is no error), and the declared types must come out exactly.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertBuilt, createConsumerProject, repoRoot, TYPE_CHECKED_MARKER, type ConsumerProject, type ConsumerProjectOptions } from './consumer-project.js';

/** The README's code blocks that are type-checked as an app's own code. */
function typeCheckedBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  for (const match of markdown.matchAll(/^(.*)\n```ts\n([\s\S]*?)^```$/gm)) {
    if (match[1]?.trim() === TYPE_CHECKED_MARKER) blocks.push(match[2] ?? '');
  }
  return blocks;
}

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const [readmeBlock = ''] = typeCheckedBlocks(readme);
/** The README's declaration of the app's keys. */
const declaration = /^declare module 'latchkey' \{\n[\s\S]*?^\}$/m.exec(readmeBlock)?.[0] ?? '';

/** `is<T>()(value)` compiles only when `value` has exactly the type `T`. */
const EXPECT = `
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export function is<Expected>() {
  return <Actual>(actual: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : ['type differs']): Actual => actual;
}
`;

/** Uses of the session `s` that follow the README's declaration (name: string, visits: number). */
function checks(s: string): string {
  return `
  is<string | undefined>()(await ${s}.get('name'));
  is<number>()(await ${s}.get('visits', 0));
  is<number>()(await ${s}.incr('visits'));
  is<Array<'name' | 'visits'>>()(await ${s}.keys());
  await ${s}.set('name', 'Chris');
  await ${s}.set({ visits: 2 });
  const all: { name?: string; visits?: number } = await ${s}.all();
  void all;
  // @ts-expect-error misspelt key
  await ${s}.get('nmae');
  // @ts-expect-error misspelt key
  await ${s}.has('nmae');
  // @ts-expect-error misspelt key
  await ${s}.set('nmae', 'Chris');
  // @ts-expect-error misspelt key
  await ${s}.set({ nmae: 'Chris' });
  // @ts-expect-error misspelt key
  await ${s}.delete('nmae');
  // @ts-expect-error incr on a key that holds a string
  await ${s}.incr('name');
  // @ts-expect-error a value of the wrong type
  await ${s}.set('name', 3);
  // @ts-expect-error a value of the wrong type
  await ${s}.set({ visits: 'two' });
`;
}

/** The parts of latchkey that `code` imports. */
function latchkeyImports(code: string): string[] {
  return [...code.matchAll(/from '(latchkey(?:\/[\w-]+)?)'/g)].map((match) => match[1] ?? '');
}

/** A project whose one app file imports `adapter` (and no other part of latchkey) and declares the README's keys. */
function adapterApp(adapter: string, packages: string[], code: string): ConsumerProjectOptions {
  assert.deepEqual(latchkeyImports(code), [`latchkey/${adapter}`]);
  return {
    packages: ['@types/node', ...packages],
    files: { 'expect.ts': EXPECT, 'app.ts': `import { is } from './expect.js';\n${code.replace('DECLARATION', () => declaration)}` },
  };
}

const README = 'the README block (Express): req.session';

const projects: Record<string, ConsumerProjectOptions> = {
  // The README's block as it is, with the checks in a file of their own.
  [README]: {
    packages: ['@types/node', 'express', '@types/express'],
    files: {
      'expect.ts': EXPECT,
      // The README's snippets use the app's own connected client, `redis`.
      'readme.ts': `${readmeBlock}\ndeclare const redis: NonNullable<Parameters<typeof session>[0]>['redis'];\n`,
      'checks.ts': `import type { Request } from 'express';
import { is } from './expect.js';
export async function checks(req: Request): Promise<void> {${checks('req.session')}}
`,
    },
  },
  'Fastify: request.session': adapterApp(
    'fastify',
    ['fastify'],
    `import Fastify from 'fastify';
import { session } from 'latchkey/fastify';
DECLARATION
export async function app(): Promise<void> {
  const app = Fastify();
  await app.register(session);
  app.get('/', async (request) => {${checks('request.session')}
    return 'ok';
  });
}
`,
  ),
  'Koa: ctx.session': adapterApp(
    'koa',
    ['koa', '@types/koa'],
    `import Koa from 'koa';
import { session } from 'latchkey/koa';
DECLARATION
const app = new Koa();
app.use(session());
app.use(async (ctx) => {${checks('ctx.session')}});
new Koa().use(session()).use(async (ctx) => {${checks('ctx.session')}});
`,
  ),
  'koa-session: ctx.session as a plain object': adapterApp(
    'koa-session',
    ['koa', '@types/koa'],
    `import Koa from 'koa';
import session from 'latchkey/koa-session';
DECLARATION
const app = new Koa();
app.keys = ['x'.repeat(32)];
app.use(session({ maxAge: 86_400_000 }, app));
app.use(async (ctx) => {
  is<string | undefined>()(ctx.session.name);
  ctx.session.visits = (ctx.session.visits ?? 0) + 1;
  // @ts-expect-error a value of the wrong type
  ctx.session.name = 2;
  ctx.session.maxAge = 30 * 86_400_000;
  is<boolean>()(ctx.session.isNew);
  await ctx.session.save();
  ctx.session.regenerate(() => {});
  ctx.session = { name: 'ann' };
  ctx.session = null;
});
`,
  ),
  'Hono: c.get(keyword)': adapterApp(
    'hono',
    ['hono'],
    `import { Hono } from 'hono';
import { session, type SessionEnv } from 'latchkey/hono';
DECLARATION
const app = new Hono<SessionEnv>();
app.use(session());
app.get('/', async (c) => {${checks("c.get('session')")}
  return c.text('ok');
});
new Hono().use(session({ keyword: 'visit' })).get('/', async (c) => {${checks("c.get('visit')")}
  return c.text('ok');
});
`,
  ),
  'node:http: the handler\'s session': adapterApp(
    'node',
    [],
    `import { createServer } from 'node:http';
import { withSession } from 'latchkey/node';
DECLARATION
createServer(withSession({}, async (_req, res, session) => {${checks('session')}
  res.end();
}));
`,
  ),
  // An app that also imports the package's root: its helpers take the typed session, and `Session`
  // without a type argument is that session's type.
  'the root and node:http: helpers, and Session': {
    packages: ['@types/node'],
    files: {
      'expect.ts': EXPECT,
      'app.ts': `import { addFlash, checkCsrf, csrfToken, takeFlashes, verifyCsrf, type Session } from 'latchkey';
import { withSession } from 'latchkey/node';
import { is } from './expect.js';
${declaration}
async function greet(session: Session): Promise<string> {${checks('session')}
  return \`Hello, \${(await session.get('name')) ?? 'stranger'}\`;
}
withSession({}, async (req, res, session) => {
  is<Session>()(session);
  const token = await csrfToken(session);
  is<boolean>()(await verifyCsrf(session, req.method ?? 'GET', token));
  await checkCsrf(session, req.method ?? 'GET', token);
  await addFlash(session, 'saved');
  await takeFlashes(session);
  res.end(await greet(session));
});
`,
    },
  },
};

/** The node:http app without the README's declaration. */
const untypedApp: ConsumerProjectOptions = {
  packages: ['@types/node'],
  files: {
    'expect.ts': EXPECT,
    'app.ts': `import { withSession } from 'latchkey/node';
import { is } from './expect.js';
withSession({}, async (_req, res, session) => {${checks('session')}
  res.end();
});
`,
    'untyped.ts': `import { withSession } from 'latchkey/node';
import { is } from './expect.js';
withSession({}, async (_req, res, session) => {
  is<unknown>()(await session.get('anything'));
  is<number>()(await session.incr('anything'));
  res.end();
});
`,
  },
};

describe('typed session data in an app (strict, skipLibCheck: false)', () => {
  const created = new Map<string, ConsumerProject>();
  let readmeTsc: Promise<{ status: number | null; output: string }> | undefined;

  before(() => {
    assertBuilt();
    assert.ok(readmeBlock !== '', `README.md has no code block marked ${TYPE_CHECKED_MARKER}`);
    assert.ok(declaration !== '', `the README block marked ${TYPE_CHECKED_MARKER} has no \`declare module 'latchkey' { ... }\`:\n${readmeBlock}`);
    for (const [name, options] of Object.entries(projects)) created.set(name, createConsumerProject(options));
    // The README's own block also goes through the tsc command, every declaration file checked,
    // in a process of its own while the others are checked here.
    readmeTsc = created.get(README)?.tsc();
  });

  after(async () => {
    await readmeTsc?.catch(() => undefined);
    for (const project of created.values()) project.remove();
  });

  it('the README shows one such block, importing only an adapter', () => {
    assert.equal(typeCheckedBlocks(readme).length, 1);
    assert.deepEqual(latchkeyImports(readmeBlock), ['latchkey/express'], 'the block must import only an adapter: importing the root would hide whether an app that imports only an adapter can declare its keys');
  });

  for (const name of Object.keys(projects)) {
    it(`${name}: the declared keys and types compile, and nothing else`, () => {
      const project = created.get(name);
      assert.ok(project !== undefined);
      assert.equal(project.typeErrors(), '');
    });
  }

  it('the checks can fail: without the declaration, sessions take any key and every expected error is missing', () => {
    const project = createConsumerProject(untypedApp);
    try {
      const errors = project.typeErrors();
      const expected = checks('session').split('\n').filter((line) => line.includes('@ts-expect-error')).length;
      const unused = errors.split('\n').filter((line) => line.includes("Unused '@ts-expect-error' directive"));
      assert.equal(unused.length, expected, errors);
      assert.doesNotMatch(errors, /untyped\.ts/, 'an untyped session gives unknown for any key');
    } finally {
      project.remove();
    }
  });

  it('the README block passes `tsc` with every declaration file checked', async () => {
    assert.ok(readmeTsc !== undefined);
    const { status, output } = await readmeTsc;
    assert.equal(output.trim(), '', `tsc reported:\n${output}`);
    assert.equal(status, 0);
  });
});
