import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, SessionError, SessionManager, type RequestContext, type Session } from '../../src/index.js';
import { checkCsrf, csrfToken, CSRF_KEY, verifyCsrf } from '../../src/core/csrf.js';
import { addFlash, FLASH_PREFIX, takeFlashes } from '../../src/core/flash.js';

function context(overrides: Partial<RequestContext> = {}): RequestContext {
  return { cookieHeader: () => undefined, isSecure: () => false, headersSent: () => false, ...overrides };
}

/** A manager on a real MemoryStore that records the name of every store operation. */
function setup() {
  const memory = new MemoryStore();
  const calls: string[] = [];
  const store = new Proxy(memory, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function' || property === 'close') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const manager = new SessionManager({ store });
  return { memory, calls, manager };
}

/** A browser at core level: sends its cookie with each request and keeps the one it gets back. */
class Visitor {
  cookie: string | undefined;
  constructor(readonly manager: SessionManager) {}

  async request<T>(handler: (session: Session) => Promise<T>): Promise<{ result: T; setCookie: string | undefined }> {
    const handle = this.manager.open(context({ cookieHeader: () => (this.cookie === undefined ? undefined : `session=${this.cookie}`) }));
    const result = await handler(handle.session);
    const [setCookie] = handle.setCookies();
    if (setCookie !== undefined) {
      const value = (setCookie.split(';')[0] as string).slice('session='.length);
      this.cookie = /max-age=0/i.test(setCookie) ? undefined : value;
    }
    return { result, setCookie };
  }

  async run<T>(handler: (session: Session) => Promise<T>): Promise<T> {
    return (await this.request(handler)).result;
  }
}

/** A visitor whose session exists (holding `a: 1`), with the operation log cleared. */
async function withSession(manager: SessionManager, calls: string[]): Promise<Visitor> {
  const visitor = new Visitor(manager);
  await visitor.run((s) => s.set('a', 1));
  assert.ok(visitor.cookie);
  calls.length = 0;
  return visitor;
}

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

function mismatch(error: unknown): boolean {
  return error instanceof SessionError && error.code === 'CSRF_MISMATCH' && error.status === 403 && /^latchkey: CSRF check failed: /.test(error.message);
}

describe('csrfToken', () => {
  it('makes a 43-character base64url token on first use, starting a session, and gives the same one after', async () => {
    const { memory, manager } = setup();
    const visitor = new Visitor(manager);
    const first = await visitor.request(async (s) => [await csrfToken(s), await csrfToken(s)]);
    const [token, again] = first.result;
    assert.match(token as string, TOKEN);
    assert.equal(again, token);
    assert.ok(first.setCookie, 'the visitor got a session');
    assert.equal(memory.size, 1);
    assert.equal(await visitor.run((s) => s.get(CSRF_KEY)), token);
    assert.equal(await visitor.run((s) => csrfToken(s)), token);
  });

  it('gives every session a token of its own', async () => {
    const { manager } = setup();
    const tokens = new Set<string>();
    for (let i = 0; i < 20; i++) tokens.add(await new Visitor(manager).run((s) => csrfToken(s)));
    assert.equal(tokens.size, 20);
  });

  it('neither accepts nor keeps a stored value that is not a token', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    await visitor.run((s) => s.set(CSRF_KEY, 42));
    assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', 42)), false);
    await visitor.run((s) => s.set(CSRF_KEY, 'x'));
    assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', 'x')), false, 'a guessable value is no token');
    const token = await visitor.run((s) => csrfToken(s));
    assert.match(token, TOKEN);
    assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', token)), true);
  });

  it('gets a new token when the session is regenerated (the flashes move along)', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    const token = await visitor.run(async (s) => {
      await addFlash(s, 'welcome');
      return csrfToken(s);
    });
    const before = visitor.cookie;
    await visitor.run((s) => s.regenerate());
    assert.notEqual(visitor.cookie, before);
    assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', token)), false, 'whoever planted the old session knew its token');
    const fresh = await visitor.run((s) => csrfToken(s));
    assert.notEqual(fresh, token);
    assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', fresh)), true);
    assert.deepEqual(await visitor.run((s) => takeFlashes(s)), [{ category: 'info', message: 'welcome' }]);
    const stale = new Visitor(manager);
    stale.cookie = before;
    assert.equal(await stale.run((s) => verifyCsrf(s, 'POST', token)), false, 'the old id has no session, so no token');
  });
});

describe('verifyCsrf and checkCsrf', () => {
  it('let safe methods through, in any letter case, without a token and without a store call', async () => {
    const { calls, manager } = setup();
    const visitor = await withSession(manager, calls);
    for (const who of [visitor, new Visitor(manager)]) {
      for (const method of ['GET', 'get', 'HEAD', 'Options', 'tRaCe']) {
        const { result, setCookie } = await who.request(async (s) => {
          await checkCsrf(s, method, undefined);
          return verifyCsrf(s, method, 'anything');
        });
        assert.equal(result, true, method);
        assert.equal(setCookie, undefined);
      }
    }
    assert.deepEqual(calls, []);
  });

  it('treats every other method, and look-alikes of safe ones, as unsafe', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    const token = await visitor.run((s) => csrfToken(s));
    const methods = ['POST', 'post', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'PROPFIND', 'OPTIONſ', 'GET ', ' GET', 'GET\n', 'GETS', '', 'x'.repeat(100_000)];
    for (const method of methods) {
      const label = JSON.stringify(method.slice(0, 12));
      assert.equal(await visitor.run((s) => verifyCsrf(s, method, undefined)), false, label);
      assert.equal(await visitor.run((s) => verifyCsrf(s, method, token)), true, label);
    }
    for (const method of [undefined, null, 7, ['GET'], { toUpperCase: () => 'GET' }]) {
      assert.equal(await visitor.run((s) => verifyCsrf(s, method as string, undefined)), false, String(method));
    }
  });

  it('pass an unsafe request only with the exact token, and never throw for a bad one', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    const other = await new Visitor(manager).run((s) => csrfToken(s));
    const token = await visitor.run((s) => csrfToken(s));
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const wrong: unknown[] = [
      undefined,
      null,
      '',
      'x',
      other,
      `${token.slice(0, -1)}${last}`,
      token.slice(0, -1),
      `${token}A`,
      ` ${token}`,
      token.toLowerCase() === token ? token.toUpperCase() : token.toLowerCase(),
      `é${token.slice(1)}`,
      '\u{1F600}'.repeat(21) + 'A',
      'A'.repeat(10_000_000),
      42,
      true,
      [token],
      { toString: () => token },
      Buffer.from(token),
      new String(token),
    ];
    for (const bad of wrong) {
      const label = typeof bad === 'string' ? JSON.stringify(bad.slice(0, 50)) : String(bad).slice(0, 50);
      assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', bad)), false, label);
      await assert.rejects(visitor.run((s) => checkCsrf(s, 'POST', bad)), mismatch, label);
    }
    for (const method of ['POST', 'put', 'PATCH', 'DELETE']) {
      assert.equal(await visitor.run((s) => verifyCsrf(s, method, token)), true, method);
      await visitor.run((s) => checkCsrf(s, method, token));
    }
  });

  it('fail for a session without a token and for a visitor without a session, creating nothing', async () => {
    const { memory, calls, manager } = setup();
    const anonymous = new Visitor(manager);
    const token = await new Visitor(manager).run((s) => csrfToken(s));
    calls.length = 0;
    const { result, setCookie } = await anonymous.request((s) => verifyCsrf(s, 'POST', token));
    assert.equal(result, false);
    assert.equal(setCookie, undefined);
    assert.deepEqual(calls, [], 'no cookie: nothing to look up');
    assert.equal(memory.size, 1);

    const visitor = await withSession(manager, calls);
    assert.equal(await visitor.run((s) => verifyCsrf(s, 'POST', token)), false);
    assert.deepEqual(calls, ['load'], 'one read, no write');
    assert.equal(await visitor.run((s) => s.has(CSRF_KEY)), false);
  });

  it('say in the error what went wrong and what to do', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    await visitor.run((s) => s.set('a', 1));
    await assert.rejects(visitor.run((s) => checkCsrf(s, 'POST', undefined)), /carried no CSRF token.*csrfToken\(session\)/);
    await assert.rejects(visitor.run((s) => checkCsrf(s, 'POST', 'x'.repeat(43))), /session has no CSRF token.*Call csrfToken\(session\)/);
    await visitor.run((s) => csrfToken(s));
    await assert.rejects(visitor.run((s) => checkCsrf(s, 'POST', 'x'.repeat(43))), /does not match this session's/);
  });

  it('reject a call without a session as INVALID_ARGUMENT', async () => {
    for (const session of [undefined, null, {}, 'session']) {
      await assert.rejects(csrfToken(session as never), { code: 'INVALID_ARGUMENT', message: /session middleware installed/ });
      await assert.rejects(verifyCsrf(session as never, 'GET', undefined), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(checkCsrf(session as never, 'POST', 'x'), { code: 'INVALID_ARGUMENT' });
    }
  });
});

describe('flash messages', () => {
  it('come back once, in the order they were added, with their JSON type', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    const messages = ['saved', { text: 'check the form', field: 'email' }, 3, null, [1, 'two'], ''];
    await visitor.run(async (s) => {
      for (const message of messages) await addFlash(s, message);
    });
    await visitor.run(async (s) => {
      for (let i = 0; i < 30; i++) await addFlash(s, i, 'many');
    });
    const taken = await visitor.run((s) => takeFlashes(s));
    assert.deepEqual(taken, [
      ...messages.map((message) => ({ category: 'info', message })),
      ...Array.from({ length: 30 }, (_, i) => ({ category: 'many', message: i })),
    ]);
    assert.deepEqual(await visitor.run((s) => takeFlashes(s)), []);
    assert.deepEqual(await visitor.run((s) => s.all()), {}, 'every flash key is gone');
  });

  it('can be taken by category, leaving the others for later', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    await visitor.run(async (s) => {
      await addFlash(s, 'a');
      await addFlash(s, 'b', 'error');
      await addFlash(s, 'c', 'info');
      await addFlash(s, 'd', 'error');
      await s.set('keep', true);
    });
    assert.deepEqual(await visitor.run((s) => takeFlashes(s, 'error')), [
      { category: 'error', message: 'b' },
      { category: 'error', message: 'd' },
    ]);
    assert.deepEqual(await visitor.run((s) => takeFlashes(s, 'error')), []);
    assert.deepEqual(await visitor.run((s) => takeFlashes(s, 'warning')), []);
    assert.deepEqual(await visitor.run((s) => takeFlashes(s)), [
      { category: 'info', message: 'a' },
      { category: 'info', message: 'c' },
    ]);
    assert.deepEqual(await visitor.run((s) => s.all()), { keep: true });
  });

  it('cost one read and no write for a session without messages', async () => {
    const { calls, manager } = setup();
    const visitor = await withSession(manager, calls);
    const { result, setCookie } = await visitor.request((s) => takeFlashes(s));
    assert.deepEqual(result, []);
    assert.deepEqual(calls, ['load']);
    assert.equal(setCookie, undefined);
  });

  it('are none for a visitor without a session: no store call, no cookie, no session', async () => {
    const { memory, calls, manager } = setup();
    const { result, setCookie } = await new Visitor(manager).request((s) => takeFlashes(s));
    assert.deepEqual(result, []);
    assert.deepEqual(calls, []);
    assert.equal(setCookie, undefined);
    assert.equal(memory.size, 0);

    const unknown = new Visitor(manager);
    unknown.cookie = 'A'.repeat(43);
    const stale = await unknown.request((s) => takeFlashes(s));
    assert.deepEqual(stale.result, []);
    assert.deepEqual(calls, ['load'], 'an id the store does not know: one read, nothing created');
    assert.equal(memory.size, 0);
  });

  it('start a session for a visitor without one, with one write per message', async () => {
    const { memory, calls, manager } = setup();
    const visitor = new Visitor(manager);
    const { setCookie } = await visitor.request(async (s) => {
      await addFlash(s, 'one');
      await addFlash(s, 'two');
    });
    assert.ok(setCookie);
    assert.deepEqual(calls, ['create', 'update']);
    assert.equal(memory.size, 1);
    const keys = await visitor.run((s) => s.keys());
    assert.equal(keys.length, 2);
    for (const key of keys) assert.match(key, /^_flash\.[0-9a-z]{13}[A-Za-z0-9_-]{8}$/);
    assert.ok(keys.every((key) => key.startsWith(FLASH_PREFIX)));
  });

  it('keep every one of 20 messages added by concurrent requests to one session', async () => {
    const { manager, calls } = setup();
    const visitor = await withSession(manager, calls);
    // 20 requests at once, each with the same cookie: a read-modify-write of one list would lose some.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const request = new Visitor(manager);
        request.cookie = visitor.cookie;
        return request.run((s) => addFlash(s, i));
      }),
    );
    // And 20 calls within one request, not awaited one by one.
    await visitor.run((s) => Promise.all(Array.from({ length: 20 }, (_, i) => addFlash(s, 20 + i))));
    const taken = await visitor.run((s) => takeFlashes(s));
    assert.deepEqual(
      taken.map((flash) => flash.message),
      Array.from({ length: 40 }, (_, i) => i),
    );
  });

  it('are not shown by a request whose session another request regenerated meanwhile, but by the next one', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    await visitor.run((s) => addFlash(s, 'hello'));
    const cookie = `session=${visitor.cookie}`;
    const slow = manager.open(context({ cookieHeader: () => cookie }));
    await slow.session.load();
    await visitor.run((s) => s.regenerate());
    await assert.rejects(takeFlashes(slow.session), { code: 'SESSION_GONE' });
    assert.deepEqual(await visitor.run((s) => takeFlashes(s)), [{ category: 'info', message: 'hello' }]);
    assert.deepEqual(await visitor.run((s) => takeFlashes(s)), []);
  });

  it('reject messages JSON cannot hold, and categories that are not strings, storing nothing', async () => {
    const { memory, manager } = setup();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const visitor = new Visitor(manager);
    for (const message of [undefined, () => 1, Symbol('s'), 10n, cyclic]) {
      await assert.rejects(visitor.run((s) => addFlash(s, message)), { code: 'INVALID_ARGUMENT', message: /addFlash\(\)/ });
    }
    await assert.rejects(visitor.run((s) => addFlash(s, 'x', 5 as unknown as string)), { code: 'INVALID_ARGUMENT', message: /string category/ });
    await assert.rejects(visitor.run((s) => takeFlashes(s, 5 as unknown as string)), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(addFlash(undefined as never, 'x'), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(takeFlashes(null as never), { code: 'INVALID_ARGUMENT' });
    assert.equal(memory.size, 0);
  });

  it('leave keys under the prefix that addFlash() did not write alone', async () => {
    const { manager } = setup();
    const visitor = new Visitor(manager);
    await visitor.run(async (s) => {
      await s.set(`${FLASH_PREFIX}mine`, 'not a flash');
      await s.set(`${FLASH_PREFIX}other`, { category: 7, message: 'x' });
      await addFlash(s, 'real');
    });
    assert.deepEqual(await visitor.run((s) => takeFlashes(s)), [{ category: 'info', message: 'real' }]);
    assert.deepEqual((await visitor.run((s) => s.keys())).sort(), [`${FLASH_PREFIX}mine`, `${FLASH_PREFIX}other`]);
  });
});
