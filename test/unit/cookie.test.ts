import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse } from 'cookie';
import fc from 'fast-check';
import { createCookieWriter, readSessionCookie, type InboundCookie } from '../../src/core/cookie.js';
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

/** The seed of the generated headers; set LATCHKEY_FUZZ_SEED to explore others. */
const SEED = Number(process.env.LATCHKEY_FUZZ_SEED ?? 52_605);

/**
 * readSessionCookie as it was when it parsed the whole header with the `cookie` package and then
 * looked for look-alikes and copies by splitting it, kept as the oracle for the scan that replaced
 * it. Only what `name` reads as must stay the same, not how.
 */
function parsedSessionCookie(header: string | undefined, name: string, secrets: readonly string[]): InboundCookie {
  const MALFORMED: InboundCookie = { present: true, id: undefined, invalid: 'malformed' };
  if (!header) return { present: false, id: undefined, invalid: undefined };
  const value = parse(header, { decode: (text) => text })[name];
  if (value === undefined) return { present: false, id: undefined, invalid: undefined };
  const at = header.indexOf(name);
  if (at === header.lastIndexOf(name) && (at === 0 || header[at - 1] === ';' || header.startsWith('; ', at - 2))) {
    if (header[at + name.length] !== '=') return MALFORMED;
  } else {
    let seen = 0;
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const raw = pair.slice(0, eq);
      if (raw.trim() !== name) continue;
      if (raw !== name && raw !== ` ${name}`) return MALFORMED;
      seen++;
    }
    if (seen > 1) return { present: true, id: undefined, invalid: 'duplicate' };
  }
  if (secrets.length === 0) return isSessionId(value) ? { present: true, id: value, invalid: undefined } : MALFORMED;
  const dot = value.indexOf('.');
  const cookieId = dot < 0 ? value : value.slice(0, dot);
  if (!isSessionId(cookieId)) return MALFORMED;
  const signature = dot < 0 ? '' : value.slice(dot + 1);
  const given = Buffer.from(signature, 'base64url');
  const signed = (secret: string): boolean => timingSafeEqual(createHmac('sha256', secret).update(cookieId).digest(), given);
  if (!/^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/.test(signature) || !secrets.some(signed)) return { present: true, id: undefined, invalid: 'bad-signature' };
  return { present: true, id: cookieId, invalid: undefined };
}

describe('reading the session cookie out of a long header', () => {
  const secret = 's'.repeat(32);
  const other = createSessionId();
  const signature = createHmac('sha256', secret).update(id).digest('base64url');

  /**
   * Headers glued from pairs and loose pieces that sit on every edge of the cookie grammar: the
   * name, names that trim to it or hold it, `=`, `;`, quotes, spaces, tabs and other whitespace,
   * ids and signatures.
   */
  const headerOf = (name: string): fc.Arbitrary<string> => {
    const names = [name, name, name, ` ${name}`, `  ${name}`, `${name} `, `\t${name}`, `\u00a0${name}`, `x${name}`, `${name}x`, name.slice(0, -1), name.slice(1), 'a', ''];
    const values = [id, id, other, `${id}.${signature}`, `${id}.${signature}`, ` ${id}\t`, `"${id}"`, `${id}.`, signature, '', 'x', `${name}=1`, ` ${name}=`];
    const pair = fc
      .tuple(fc.constantFrom(...names), fc.constantFrom('=', '=', ''), fc.constantFrom(...values), fc.constantFrom('; ', '; ', ';', ' ; ', ';\t', ';  ', ''))
      .map((parts) => parts.join(''));
    const loose = fc.constantFrom(...names, ...values, '=', ';', '; ', ' ', '\t', '"', '.', '\n', '\u3000', 'b=1');
    return fc.array(fc.oneof({ arbitrary: pair, weight: 3 }, { arbitrary: loose, weight: 1 }), { maxLength: 6 }).map((parts) => parts.join(''));
  };

  it('reads generated headers exactly as parsing every pair did', () => {
    const cases = fc.oneof(
      ...['session', '__Host-sid', 'aa'].map((name) =>
        fc.record({ header: headerOf(name), name: fc.constant(name), secrets: fc.constantFrom([], [secret], [other, secret]) }),
      ),
    );
    fc.assert(
      fc.property(cases, ({ header, name, secrets }) => {
        assert.deepEqual(readSessionCookie(header, name, secrets), parsedSessionCookie(header, name, secrets));
      }),
      { numRuns: 30_000, seed: SEED },
    );
  });

  const FOUND: InboundCookie = { present: true, id, invalid: undefined };
  const ABSENT: InboundCookie = { present: false, id: undefined, invalid: undefined };
  const MALFORMED: InboundCookie = { present: true, id: undefined, invalid: 'malformed' };
  /** Checks that each header reads as `expected`, now and as parsing every pair read it. */
  const readsAs = (expected: InboundCookie, headers: readonly string[], name = 'session'): void => {
    for (const header of headers) {
      assert.deepEqual(readSessionCookie(header, name), expected, JSON.stringify(header));
      assert.deepEqual(parsedSessionCookie(header, name, []), expected, `oracle: ${JSON.stringify(header)}`);
    }
  };

  it('takes the value with only its spaces and tabs trimmed, quotes and any other whitespace kept', () => {
    readsAs(FOUND, [`session= ${id}\t`, `session=\t ${id} ; a=1`, `a=1;session=${id};`]);
    readsAs(MALFORMED, [`session="${id}"`, `session=\u00a0${id}`, `session=${id}\n`, `session=${id}=`, `session=${id} x`, 'session=']);
  });

  it('passes over the name where it is not a whole pair name: inside other names and values, or without =', () => {
    readsAs(FOUND, [
      `session; session=${id}`,
      `session=${id}; session`,
      `a=session=x; session=${id}`,
      `session=${id}; a=session=x; b= session=y`,
      `xsession=1; session=${id}; sessionx=2; a=b session=c`,
      ` session=${id}`,
      `;session=${id}`,
    ]);
    readsAs(FOUND, [`aaa=1; aa=${id}; aaaa=2`, `aaaa=1;aa=${id}`], 'aa');
    // `parse` trims only spaces and tabs, so these hold no cookie of that name at all.
    readsAs(ABSENT, ['a=session=x', 'xsession=1', 'session', `session${id}`, `\u00a0session=${id}`, `\nsession=${id}`]);
  });

  it('refuses a look-alike padded with any whitespace other parsers trim, even beside the real cookie', () => {
    readsAs(MALFORMED, [
      `  session=${id}`,
      `session\t=${id}`,
      `\tsession=${id}`,
      `session=${id}; \nsession=x`,
      `session=${id}; \u00a0session=x`,
      `\u3000session=x; session=${id}`,
      `session=${id}; session=${id}; session =${id}`,
    ]);
  });

  it('reads the cookie among 1,846 pairs, and a copy at the far end as a duplicate', () => {
    const pairs = Array.from({ length: 1845 }, (_, i) => `c${i.toString(36)}=${i % 97}`);
    const header = [...pairs.slice(0, 900), `session=${id}`, ...pairs.slice(900)].join('; ');
    assert.deepEqual(readSessionCookie(header, 'session'), { present: true, id, invalid: undefined });
    assert.equal(readSessionCookie(`${header}; session=${other}`, 'session').invalid, 'duplicate');
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
