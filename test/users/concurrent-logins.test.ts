// One user signing in from many browsers at the same moment: every login lands in the user's
// index, whether the logins go through one app process or two.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loginVisitor, PREFIX, STORE_KINDS, useStore, whoIs, type Deployment } from './harness.js';

/** Logins at once. */
const LOGINS = 100;

/** `LOGINS` new visitors log in as `user` at once, through `managers` in turn; every one lands in the index. */
async function loginAtOnce(deployment: Deployment, user: string, split: boolean): Promise<void> {
  const managers = split ? [deployment.a, deployment.b] : [deployment.a];
  const logins = await Promise.all(Array.from({ length: LOGINS }, (_, i) => loginVisitor(managers[i % managers.length]!, user)));
  const handles = logins.map((login) => login.handle);
  assert.equal(new Set(handles).size, LOGINS, 'every login has a session of its own');

  const listed = await deployment.b.admin.listUserSessions(user);
  assert.equal(listed.length, LOGINS);
  assert.deepEqual(listed.map((session) => session.handle).sort(), [...handles].sort());
  assert.ok(listed.every((session) => session.userId === user && !session.current));
  // Each browser is signed in as the user, and the index agrees with what the store holds.
  for (const login of logins.slice(0, 10)) assert.equal((await whoIs(deployment.a, login.cookie)).user, user);
  if (deployment.redis !== undefined) assert.equal(await deployment.redis.command('HLEN', `${PREFIX}user:${user}`), LOGINS);
  assert.equal(await deployment.a.admin.countSessions(), LOGINS);
}

for (const kind of STORE_KINDS) {
  describe(`${LOGINS} concurrent logins of one user, ${kind}`, () => {
    const store = useStore(kind);

    it(`through one manager: ${LOGINS} sessions listed, each with its own handle`, async () => {
      const deployment = await store.deploy();
      try {
        await loginAtOnce(deployment, 'crowd', false);
      } finally {
        await deployment.close();
      }
    });

    it(`split across two managers${kind === 'MemoryStore' ? '' : ' with a client each'}: ${LOGINS} sessions listed`, async () => {
      const deployment = await store.deploy();
      try {
        await loginAtOnce(deployment, 'crowd', true);
      } finally {
        await deployment.close();
      }
    });
  });
}
