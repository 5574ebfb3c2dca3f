// "Log out everywhere" racing everything else the user's browsers do at that moment: new logins,
// reads, writes, regenerations and logins on the sessions being revoked, in one process and
// across two (two managers, each with a Redis client of its own). Once revokeUserSessions()
// resolves, no session of the user that existed when it was called can be used again, nor any id
// one of them was moved to meanwhile.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Session, SessionManager } from '../../src/index.js';
import { heldUnder, isGone, loginVisitor, notAnonymous, STORE_KINDS, succeed, turns, useDeployment, visit, whoIs, type Deployment, type Visit } from './harness.js';

/** Rounds per store; each is one user, one revocation and what races it. */
const ROUNDS = 200;
/** Sessions the user has before the revocation. */
const SESSIONS = 3;
/** Most event-loop turns an operation waits before it starts, drawn at random per operation. */
const MAX_DELAY = 12;

/** What a racing request does, on which existing session (by index), if any. */
type Kind = 'login-new' | 'read' | 'set' | 'incr' | 'set-blind' | 'regenerate' | 'relogin' | 'relogin-blind';

/** Every kind once a round; the existing session each works on rotates with the round. */
const KINDS: readonly Kind[] = ['login-new', 'login-new', 'read', 'set', 'incr', 'set-blind', 'regenerate', 'relogin', 'relogin-blind'];

/** A random number of event-loop turns, up to {@link MAX_DELAY}. */
function delay(): number {
  return Math.floor(Math.random() * (MAX_DELAY + 1));
}

/**
 * What a request of each kind does with its session. Those that read first wait a few turns
 * between the read and the write, as a request does that works between the two, so that the
 * revocation also lands in between.
 */
function work(kind: Kind, user: string): (session: Session) => Promise<unknown> {
  const loaded = async (session: Session): Promise<void> => {
    await session.load();
    await turns(delay());
  };
  switch (kind) {
    case 'login-new':
    case 'relogin-blind':
      return (session) => session.login(user);
    case 'read':
      return (session) => session.get('cart');
    case 'set':
      return async (session) => {
        await loaded(session);
        await session.set('late', true);
      };
    case 'set-blind':
      return (session) => session.set('blind', true);
    case 'incr':
      return async (session) => {
        await loaded(session);
        return session.incr('n');
      };
    case 'regenerate':
      return async (session) => {
        await loaded(session);
        await session.regenerate();
      };
    case 'relogin':
      return async (session) => {
        await loaded(session);
        await session.login(user);
      };
  }
}

/** Outcomes over all rounds, to show the races happened both ways. */
interface Tally {
  /** Regenerations and re-logins that moved the session, whose new id the revocation then ended too. */
  moved: number;
  /** Re-logins that found the session gone and started a new one (a new login like any other). */
  freshLogins: number;
  /** Regenerations that found the session gone before they began (and did nothing). */
  foundGone: number;
  /** Regenerations and re-logins refused with SESSION_GONE. */
  movesRefused: number;
  /** Writes refused with SESSION_GONE. */
  writesRefused: number;
  /** Writes applied. */
  writesApplied: number;
  writesStartedNew: number;
  /** Reads that still saw the session. */
  readsSaw: number;
  /** New logins that raced the revocation and were still signed in when it was over. */
  newLoginsKept: number;
  /** Revocations run by the second manager (another process). */
  fromOther: number;
  /** What went wrong, per round. */
  wrong: string[];
}

interface Racer {
  readonly kind: Kind;
  readonly manager: SessionManager;
  readonly cookie: string | undefined;
  readonly result: Promise<Visit<unknown>>;
}

async function round(deployment: Deployment, i: number, tally: Tally): Promise<void> {
  const { a, b } = deployment;
  const pick = (j: number): SessionManager => ((i + j) % 2 === 0 ? a : b);
  const user = `user-${i}`;
  const wrong = (what: string): void => void tally.wrong.push(`round ${i}: ${what}`);

  // The user's sessions before the revocation, each holding data from before its login.
  const existing = await Promise.all(
    Array.from({ length: SESSIONS }, async (_, j) => {
      const made = await succeed(pick(j), undefined, async (session) => {
        await session.set({ cart: 'socks', n: 0 });
        await session.login(user);
      });
      assert.ok(made.cookie);
      return made.cookie;
    }),
  );

  const racers: Racer[] = KINDS.map((kind, k) => {
    const manager = pick(k + 1);
    const cookie = kind === 'login-new' ? undefined : existing[(i + k) % SESSIONS];
    const wait = delay();
    return { kind, manager, cookie, result: turns(wait).then(() => visit(manager, cookie, work(kind, user))) };
  });
  const admin = pick(0).admin;
  if (pick(0) === b) tally.fromOther++;
  const revoked = await turns(delay()).then(() => admin.revokeUserSessions(user));

  // Checked at once, while requests of the race may still be under way.
  for (const cookie of existing) {
    const why = (await notAnonymous(pick(1), cookie)) ?? (await heldUnder(deployment, cookie));
    if (why !== undefined) wrong(`a session from before the revocation is still usable when it resolves: ${why}`);
  }
  if (revoked < SESSIONS) wrong(`revokeUserSessions counted ${revoked} sessions, not at least ${SESSIONS}`);
  // A login that starts now is not touched by the revocation, whatever is still under way.
  const later = loginVisitor(pick(1), user);

  const outcomes = await Promise.all(racers.map(async (racer) => ({ racer, visit: await racer.result })));
  const dead = [...existing];
  const newLogins: string[] = [];
  for (const { racer, visit: result } of outcomes) {
    const { kind } = racer;
    const issued = result.cookie !== racer.cookie ? result.cookie : undefined;
    if (!result.ok && !isGone(result.error)) {
      wrong(`${kind} failed with ${String(result.error)}`);
      continue;
    }
    switch (kind) {
      case 'login-new':
        if (!result.ok) wrong(`a new visitor's login failed with ${String(result.error)}`);
        else if (issued === undefined) wrong('a new visitor logged in without a cookie');
        else newLogins.push(issued);
        break;
      case 'read':
        if (!result.ok) wrong(`a read failed with ${String(result.error)}`);
        else if (result.value === 'socks') tally.readsSaw++;
        else if (result.value !== undefined) wrong(`a read saw ${JSON.stringify(result.value)}`);
        if (issued !== undefined) wrong('a read issued a cookie');
        break;
      case 'set':
      case 'set-blind':
      case 'incr':
        if (!result.ok) tally.writesRefused++;
        else if (issued === undefined) tally.writesApplied++;
        else {
          // A request that began after the revocation finds no session, as the revoked browser's
          // next request does, and its write starts a new one: anonymous, holding none of the
          // revoked session's data. Requests under way fail instead (writesRefused).
          const seen = await whoIs(pick(0), issued);
          if (seen.user !== undefined || 'cart' in seen.data) wrong(`a ${kind} started a session that reads ${JSON.stringify(seen)}`);
          else tally.writesStartedNew++;
        }
        if (!result.ok && result.lines.length > 0) wrong(`a ${kind} refused with SESSION_GONE answered Set-Cookie ${JSON.stringify(result.lines)}`);
        break;
      case 'regenerate':
      case 'relogin':
      case 'relogin-blind':
        if (!result.ok) {
          tally.movesRefused++;
          if (result.lines.length > 0) wrong(`a ${kind} refused with SESSION_GONE answered Set-Cookie ${JSON.stringify(result.lines)}`);
        } else if (issued === undefined) {
          // It found the session gone before it began: a regeneration then does nothing.
          if (kind !== 'regenerate') wrong(`a ${kind} resolved without a new cookie`);
          tally.foundGone++;
        } else {
          // The new id is the revoked session moved (it must be dead), or, for a login that found
          // the session already gone, a new session of the user with none of the old one's data:
          // a login like any other that raced the revocation.
          const seen = await whoIs(pick(0), issued);
          if (seen.handle === undefined) {
            tally.moved++;
            dead.push(issued);
          } else if (kind !== 'regenerate' && seen.user === user && Object.keys(seen.data).length === 0) {
            tally.freshLogins++;
            newLogins.push(issued);
          } else wrong(`the new id of a ${kind} that raced the revocation is usable: ${JSON.stringify(seen)}`);
        }
        break;
    }
  }
  const fresh = await later;

  // Now that every request is over: the revoked sessions and every id they moved to are dead.
  for (const cookie of dead) {
    const why = (await notAnonymous(pick(0), cookie)) ?? (await heldUnder(deployment, cookie));
    if (why !== undefined) wrong(`${existing.includes(cookie) ? 'a revoked session' : 'the new id of a regeneration or login that raced the revocation'} is usable: ${why}`);
  }
  const kept: string[] = [];
  for (const cookie of [fresh.cookie, ...newLogins]) {
    const seen = await whoIs(pick(0), cookie);
    if (seen.user === user) kept.push(seen.handle as string);
    else if (cookie === fresh.cookie) wrong(`the login that started after the revocation reads ${JSON.stringify(seen)}`);
    else if (seen.user !== undefined || seen.handle !== undefined) wrong(`a racing new login reads ${JSON.stringify(seen)}`);
  }
  tally.newLoginsKept += kept.length - 1;
  // The user's index lists exactly the sessions that are still signed in.
  const listed = (await pick(1).admin.listUserSessions(user)).map((session) => session.handle);
  if (JSON.stringify([...listed].sort()) !== JSON.stringify([...kept].sort())) {
    wrong(`listUserSessions shows ${listed.length} sessions, ${kept.length} are signed in (${JSON.stringify(listed)} vs ${JSON.stringify(kept)})`);
  }
}

for (const kind of STORE_KINDS) {
  describe(`revokeUserSessions racing the user's requests, ${kind}`, () => {
    const deployment = useDeployment(kind);

    it(`${ROUNDS} rounds: nothing from before the revocation survives it, a login after it does`, async (t) => {
      const tally: Tally = { moved: 0, freshLogins: 0, foundGone: 0, movesRefused: 0, writesRefused: 0, writesApplied: 0, writesStartedNew: 0, readsSaw: 0, newLoginsKept: 0, fromOther: 0, wrong: [] };
      const started = performance.now();
      for (let i = 0; i < ROUNDS; i++) await round(deployment(), i, tally);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      t.diagnostic(
        `${ROUNDS} rounds in ${seconds} s; ${tally.fromOther} revocations from the other manager; regenerations and logins on a revoked session: ` +
          `${tally.moved} moved (new id revoked too), ${tally.movesRefused} refused, ${tally.foundGone} found it gone, ` +
          `${tally.freshLogins} logins started a new session; writes: ${tally.writesApplied} applied before, ` +
          `${tally.writesRefused} refused, ${tally.writesStartedNew} began after it and started an anonymous session; ${tally.readsSaw} reads saw the session; ${tally.newLoginsKept} racing new logins kept`,
      );
      assert.deepEqual(tally.wrong.slice(0, 10), [], `${tally.wrong.length} problems`);
      // The races must have gone both ways, or the rounds prove little.
      assert.ok(tally.moved > 0 && tally.movesRefused > 0, `regenerations and logins: ${tally.moved} moved, ${tally.movesRefused} refused`);
      assert.ok(tally.writesApplied > 0 && tally.writesRefused > 0, `writes: ${tally.writesApplied} applied, ${tally.writesRefused} refused`);
    });
  });
}
