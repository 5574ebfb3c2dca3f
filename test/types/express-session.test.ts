// latchkey/express-session's types as an app migrating from express-session sees them: scratch app
// projects compiled against the built package (dist/), strict, with `skipLibCheck: false`. With
// @types/express-session still installed (and Passport's types), `req.session` must be that
// package's own type, or TypeScript refuses both declarations (TS2717) as it does for
// latchkey/express; without it, `req.session` gets latchkey's type.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertBuilt, createConsumerProject, repoRoot, type ConsumerProject } from './consumer-project.js';

const EXPECT = `
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export function is<Expected>() {
  return <Actual>(actual: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : ['type differs']): Actual => actual;
}
`;

/** An app as it was with express-session, its import changed to latchkey/express-session. */
const MIGRATED = `
import { is } from './expect.js';
import express from 'express';
import passport from 'passport';
import session, { MemoryStore } from 'latchkey/express-session';

declare module 'express-session' {
  interface SessionData {
    views: number;
    cart: { items: string[] };
  }
}

const app = express();
app.use(session({ secret: 'a secret of at least thirty-two characters', resave: false, saveUninitialized: false, store: new MemoryStore(), cookie: { maxAge: 60_000, secure: 'auto', sameSite: 'lax' } }));
app.use(passport.session());

app.get('/', (req, res) => {
  is<number | undefined>()(req.session.views);
  req.session.views = (req.session.views ?? 0) + 1;
  req.session.cart ??= { items: [] };
  req.session.cart.items.push('book');
  is<string>()(req.sessionID);
  is<string>()(req.session.id);
  // @ts-expect-error a value of the wrong type
  req.session.views = 'many';
  req.session.cookie.maxAge = 30 * 86_400_000;
  req.session.save((error) => {
    if (error) throw error;
    res.send(String(req.session.views));
  });
});

app.post('/login', passport.authenticate('local'), (req, res) => {
  req.session.regenerate((error) => {
    if (error) return res.sendStatus(500);
    req.logout((error) => (error ? res.sendStatus(500) : res.redirect('/')));
  });
});

app.post('/logout', (req, res) => {
  req.session.destroy(() => res.redirect('/'));
});
`;

/** An app without @types/express-session: latchkey's own types. */
const FRESH = `
import express from 'express';
import { session } from 'latchkey/express-session';
import { is } from './expect.js';

declare module 'latchkey' {
  interface SessionData {
    views: number;
  }
}

const app = express();
const sessions = session({ redis: 'redis://localhost:6379', cookie: { maxAge: 60_000 } });
app.use(sessions);

app.get('/', async (req, res) => {
  is<number | undefined>()(req.session.views);
  req.session.views = (req.session.views ?? 0) + 1;
  is<string>()(req.sessionID);
  is<number | null>()(req.session.cookie.maxAge);
  is<Promise<void>>()(req.session.save());
  await req.session.regenerate();
  // @ts-expect-error a value of the wrong type
  req.session.views = 'many';
  // @ts-expect-error genid is refused
  session({ genid: () => 'id' });
  res.send(String(req.session.views));
  await sessions.manager.admin.listUserSessions('42');
});
`;

/** The same app with latchkey/express: two declarations of req.session that disagree. */
const NATIVE = `
import express from 'express';
import { session } from 'latchkey/express';

const app = express();
app.use(session({ redis: 'redis://localhost:6379' }));
`;

describe('latchkey/express-session types in an app (strict, skipLibCheck: false)', () => {
  const projects: ConsumerProject[] = [];
  const project = (packages: string[], app: string): ConsumerProject => {
    const created = createConsumerProject({ packages: ['@types/node', 'express', '@types/express', ...packages], files: { 'expect.ts': EXPECT, 'app.ts': app } });
    projects.push(created);
    return created;
  };
  before(() => assertBuilt());
  after(() => {
    for (const created of projects) created.remove();
  });

  it('compiles an app that keeps @types/express-session, its SessionData and Passport', async () => {
    // tsc in full: TypeScript may report a TS2717 at either declaration, @types/express-session's included.
    const { status, output } = await project(['@types/express-session', 'passport', '@types/passport'], MIGRATED).tsc();
    assert.equal(output, '');
    assert.equal(status, 0);
  });

  it("types req.session with latchkey's SessionData when @types/express-session is not installed", () => {
    const errors = project([], FRESH).typeErrors();
    assert.equal(errors, '');
  });

  it('compiles examples/express-session-passport.ts as the app it is (Passport, passport-local, connect-flash, @types/express-session)', async () => {
    const example = (name: string): string => readFileSync(join(repoRoot, 'examples', name), 'utf8');
    const packages = ['@types/express-session', 'passport', '@types/passport', 'passport-local', '@types/passport-local', 'connect-flash', '@types/connect-flash', 'redis', '@redis/client'];
    const created = createConsumerProject({
      packages: ['@types/node', 'express', '@types/express', ...packages],
      files: { 'app.ts': example('express-session-passport.ts'), 'redis.ts': example('redis.ts'), 'address.ts': example('address.ts') },
    });
    projects.push(created);
    const { status, output } = await created.tsc();
    assert.equal(output, '');
    assert.equal(status, 0);
  });

  it('where latchkey/express fails with @types/express-session installed (TS2717): the test can fail', async () => {
    const { status, output } = await project(['@types/express-session'], NATIVE).tsc();
    assert.match(output, /TS2717/);
    assert.notEqual(status, 0);
  });
});
