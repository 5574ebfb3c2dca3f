// maxSessionsPerUser: a login beyond the limit revokes the user's oldest sessions, one after
// another or many at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { loginVisitor, notAnonymous, PREFIX, STORE_KINDS, useDeployment, whoIs, type Deployment } from './harness.js';

const MAX = 3;
/** Sequential logins of the first case. */
const LOGINS = 5;
/** Logins at once of the second case. */
const AT_ONCE = 12;

/** How many entries the user's index holds in Redis; `undefined` for a MemoryStore. */
async function indexSize(deployment: Deployment, user: string): Promise<number | undefined> {
  return deployment.redis === undefined ? undefined : Number(await deployment.redis.command('HLEN', `${PREFIX}user:${user}`));
}

/** Resolves once the clock has moved past `since` (ms): sessions are ordered by creation time. */
async function nextMillisecond(since: number): Promise<void> {
  for (let i = 0; i < 100 && Date.now() <= since; i++) await sleep(1);
}

for (const kind of STORE_KINDS) {
  describe(`maxSessionsPerUser: ${MAX}, ${kind}`, () => {
    const deployment = useDeployment(kind, { maxSessionsPerUser: MAX });

    it(`${LOGINS} logins one after another: the ${LOGINS - MAX} oldest are revoked, the newest ${MAX} listed`, async () => {
      const d = deployment();
      const user = 'serial';
      const logins = [];
      for (let i = 0; i < LOGINS; i++) {
        logins.push(await loginVisitor(i % 2 === 0 ? d.a : d.b, user));
        // Created-at has millisecond resolution, taken during the login: the next login must start
        // after the millisecond this one finished in to be newer.
        await nextMillisecond(Date.now());
      }
      for (const login of logins.slice(0, LOGINS - MAX)) assert.equal(await notAnonymous(d.a, login.cookie), undefined, 'an oldest session is revoked');
      for (const login of logins.slice(LOGINS - MAX)) assert.equal((await whoIs(d.b, login.cookie)).user, user);
      const listed = await d.a.admin.listUserSessions(user);
      assert.deepEqual(
        listed.map((session) => session.handle),
        logins.slice(LOGINS - MAX).map((login) => login.handle),
        'the newest sessions, oldest first',
      );
      assert.equal(await indexSize(d, user), kind === 'MemoryStore' ? undefined : MAX);
    });

    it(`${AT_ONCE} logins at once settle at ${MAX} or fewer, and the next login brings it to ${MAX} with itself`, async () => {
      const d = deployment();
      const user = 'crowd';
      const logins = await Promise.all(Array.from({ length: AT_ONCE }, (_, i) => loginVisitor(i % 2 === 0 ? d.a : d.b, user)));
      const signedIn: string[] = [];
      for (const login of logins) if ((await whoIs(d.a, login.cookie)).user === user) signedIn.push(login.handle);
      const listed = (await d.b.admin.listUserSessions(user)).map((session) => session.handle);
      assert.ok(listed.length >= 1 && listed.length <= MAX, `${listed.length} sessions listed`);
      assert.deepEqual([...listed].sort(), [...signedIn].sort(), 'exactly the sessions still signed in are listed');

      await nextMillisecond(Date.now());
      const last = await loginVisitor(d.a, user);
      const after = (await d.b.admin.listUserSessions(user)).map((session) => session.handle);
      assert.equal(after.length, Math.min(MAX, listed.length + 1));
      assert.equal(after.at(-1), last.handle, 'the newest login is listed last');
      assert.equal(await indexSize(d, user), kind === 'MemoryStore' ? undefined : after.length);
    });
  });
}
