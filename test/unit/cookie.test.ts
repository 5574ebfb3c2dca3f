import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createCookieWriter, readSessionCookie } from '../../src/core/cookie.js';
import { createSessionId, isSessionId } from '../../src/core/id.js';
import { MemoryStore, resolveOptions } from '../../src/index.js';

const id = createSessionId();
const options = resolveOptions({ store: new MemoryStore() });

describe('session ids', () => {
  it('are 43 base64url characters from 32 random bytes, and only those pass the format check', () => {
    const ids = new Set(Array.from({ length: 10_000 }, createSessionId));
    assert.equal(ids.size, 10_000);
    for (const value of ids) {
      assert.ok(isSessionId(value), value);
      assert.equal(Buffer.from(value, 'base64url').length, 32);
    }
    for (const bad of ['', 'a', `${id}=`, `${id.slice(0, 42)}B`, `${id}A`, id.replace(/.$/, '+'), ` ${id.slice(1)}`]) {
      assert.equal(isSessionId(bad), false, bad);
    }
  });
});

describe('reading the session cookie', () => {
  it('finds a well-formed id right after a separator, with or without its space', () => {
    for (const header of [`session=${id}`, `a=1;session=${id}`, `a=1; session=${id}; b=2`, `mysession=1; session=${id}`, `session=${id}; b=session`]) {
      assert.equal(readSessionCookie(header, 'session').id, id, header);
    }
  });

  it('finds a well-formed id among other cookies', () => {
    assert.deepEqual(readSessionCookie(`theme=dark; session=${id}; lang=en`, 'session'), { present: true, id, invalid: undefined });
  });

  it('reads anything else as no id, without throwing', () => {
    for (const header of [
      undefined,
      '',
      'session',
      'session=',
      `session="${id}"`,
      `session=${id}%`,
      `session=%${id.charCodeAt(0).toString(16)}${id.slice(1)}`,
      `Session=${id}`,
      `xsession=${id}`,
      '=;=;;;==',
      `session=${'\u00ff'.repeat(50)}`,
      `session=${'x'.repeat(20_000)}`,
      `a=1;  session=${id}`,
      `a=1; session =${id}`,
      `a=1;\tsession=${id}`,
      `a=1; session=x; session =${id}`,
    ]) {
      assert.equal(readSessionCookie(header, 'session').id, undefined, String(header).slice(0, 60));
    }
    assert.equal(readSessionCookie(`session=${id}; session=${id}`, 'session').present, true);
  });

  it('reads a cookie sent twice as a duplicate, and a look-alike name as malformed', () => {
    for (const header of [`session=${id}; session=${createSessionId()}`, `session=${id};session=${id}`, `a=1; session=${id}; b=2; session=x`]) {
      assert.deepEqual(readSessionCookie(header, 'session'), { present: true, id: undefined, invalid: 'duplicate' }, header);
    }
    for (const header of [`a=1; session =${id}`, `session =${id}; session=${id}`, `a=1;\tsession=${id}`]) {
      assert.equal(readSessionCookie(header, 'session').invalid, 'malformed', header);
    }
  });
});

describe('signed cookies', () => {
  const current = 'c'.repeat(32);
  const previous = 'p'.repeat(32);
  const signed = (secret: string): string =>
    createCookieWriter(resolveOptions({ store: new MemoryStore(), secrets: [secret] })).session(id, false, 1800).split(';')[0] as string;

  it('carry the id and its HMAC-SHA256, and read back with the secret that signed them', () => {
    const pair = signed(current);
    const [, value = ''] = pair.split('=');
    const [cookieId, signature = ''] = value.split('.');
    assert.equal(cookieId, id);
    assert.equal(signature, createHmac('sha256', current).update(id).digest('base64url'));
    assert.deepEqual(readSessionCookie(pair, 'session', [current, previous]), { present: true, id, invalid: undefined });
  });

  it('signed with a previous secret are accepted as they are', () => {
    assert.deepEqual(readSessionCookie(signed(previous), 'session', [current, previous]), { present: true, id, invalid: undefined });
    assert.equal(readSessionCookie(signed(previous), 'session', [current]).invalid, 'bad-signature', 'not once the secret is dropped');
  });

  it('with a bad, missing, truncated or foreign signature are refused as bad-signature', () => {
    const good = signed(current).split('=')[1] as string;
    const flipped = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.at(-1);
    for (const value of [id, `${id}.`, `${id}.x`, flipped, good.slice(0, -1), `${good}A`, signed('o'.repeat(32)).split('=')[1] as string]) {
      assert.deepEqual(
        readSessionCookie(`session=${value}`, 'session', [current, previous]),
        { present: true, id: undefined, invalid: value.startsWith(id) ? 'bad-signature' : 'malformed' },
        value,
      );
    }
  });

  it('whose id part is not an id are malformed, and unsigned readers refuse signed values', () => {
    const good = signed(current).split('=')[1] as string;
    assert.equal(readSessionCookie(`session=x${good}`, 'session', [current]).invalid, 'malformed');
    assert.equal(readSessionCookie(`session=${good}`, 'session').invalid, 'malformed');
  });
});

describe('writing the session cookie', () => {
  it('serialises the id with the configured attributes', () => {
    const cookies = createCookieWriter(options);
    assert.equal(cookies.session(id, false, 86400), `session=${id}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`);
    assert.equal(cookies.session(id, true, 17), `session=${id}; Max-Age=17; Path=/; HttpOnly; Secure; SameSite=Lax`);
    const browser = resolveOptions({ store: new MemoryStore(), cookieLifetime: null, domain: 'example.com' });
    assert.equal(createCookieWriter(browser).session(id, false, undefined), `session=${id}; Domain=example.com; Path=/; HttpOnly; SameSite=Lax`);
    const named = resolveOptions({ store: new MemoryStore(), cookieName: '__Host-sid', secure: true, sameSite: 'strict' });
    assert.equal(createCookieWriter(named).session(id, true, 86400), `__Host-sid=${id}; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Strict`);
  });

  it('expires the cookie with the same attributes', () => {
    assert.equal(
      createCookieWriter(options).cleared(false),
      'session=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax',
    );
  });
});

describe('clearing copies of a duplicated cookie', () => {
  /** Path and Domain of each clearing line, as `path|domain`. */
  const scopes = (lines: string[]): string[] =>
    lines.map((line) => {
      assert.match(line, /^session=; Max-Age=0;/);
      const path = /; Path=([^;]*)/.exec(line)?.[1] ?? '';
      const domain = /; Domain=([^;]*)/.exec(line)?.[1] ?? '';
      return `${path}|${domain}`;
    });

  it('covers every Path the request path matches and every Domain its host matches', () => {
    const cookies = createCookieWriter(options);
    const lines = cookies.clearedCopies(false, { path: '/shop/cart/items?x=1', host: 'www.example.com:8443' }, false);
    assert.deepEqual(scopes(lines).sort(), [
      '/|', '/|example.com', '/|www.example.com',
      '/shop|', '/shop|example.com', '/shop|www.example.com',
      '/shop/|', '/shop/|example.com', '/shop/|www.example.com',
      '/shop/cart|', '/shop/cart|example.com', '/shop/cart|www.example.com',
      '/shop/cart/|', '/shop/cart/|example.com', '/shop/cart/|www.example.com',
      '/shop/cart/items|', '/shop/cart/items|example.com', '/shop/cart/items|www.example.com',
    ].sort());
  });

  it('stops a few segments deep, and takes no Domain from an IP address or a bare name', () => {
    const cookies = createCookieWriter(options);
    assert.deepEqual(scopes(cookies.clearedCopies(false, { path: '/a/b/c/d/e', host: '127.0.0.1:3000' }, false)), ['/|', '/a|', '/a/|', '/a/b|', '/a/b/|', '/a/b/c|', '/a/b/c/|']);
    assert.deepEqual(scopes(cookies.clearedCopies(false, { path: '/', host: 'localhost' }, false)), ['/|']);
    assert.deepEqual(scopes(cookies.clearedCopies(false, { path: '/', host: '[::1]:80' }, false)), ['/|']);
  });

  it("leaves out the app's own Path and Domain when the response sets a new cookie there, and keeps them otherwise", () => {
    const cookies = createCookieWriter(resolveOptions({ store: new MemoryStore(), path: '/app', domain: 'example.com' }));
    const target = { path: '/app/x', host: 'example.com' };
    assert.ok(scopes(cookies.clearedCopies(true, target, false)).includes('/app|example.com'));
    assert.ok(!scopes(cookies.clearedCopies(true, target, true)).includes('/app|example.com'));
    assert.ok(cookies.clearedCopies(true, target, false).every((line) => line.includes('; Secure')));
    assert.deepEqual(scopes(cookies.clearedCopies(false, undefined, false)), ['/app|example.com'], 'without a target, only its own');
  });

  it('skips what cannot be written: a Path with a semicolon or control characters, a host with odd characters', () => {
    const cookies = createCookieWriter(options);
    for (const target of [{ path: '/a;b/c', host: 'x"y' }, { path: '/\u0000/x', host: undefined }]) {
      const lines = cookies.clearedCopies(false, target, false);
      for (const line of lines) assert.ok(!line.includes('\u0000') && !line.includes('"') && !line.includes('a;b'), line);
      assert.ok(scopes(lines).includes('/|'));
    }
  });
});
