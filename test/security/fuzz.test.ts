// Generated Cookie headers against the running middleware, over real HTTP, with a real Redis.
// Every header is written byte for byte on a raw socket, so CR/LF/NUL, invalid UTF-8 and
// oversized values reach Node's HTTP parser exactly as an attacker would send them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { createClient } from 'redis';
import { RedisStore, type InvalidCookieReason } from '../../src/index.js';
import { sessionHandle } from '../../src/core/id.js';
import { ADAPTERS, parseSetCookie, watchUnhandled, type App, type Route } from '../conformance/harness.js';
import { startRedis, type RedisServer } from '../redis/server.js';

/** The seed of every generated case; set LATCHKEY_FUZZ_SEED to explore others. */
const SEED = Number(process.env.LATCHKEY_FUZZ_SEED ?? 52_605);
/** Headers generated per configuration; four configurations. */
const PER_CONFIG = 3000;
/** Requests in flight at once. */
const CONCURRENCY = 16;
/** Requests between two looks at Redis' command counters. */
const BATCH = 500;
/** Sessions created up front, whose ids the generators embed in valid and invalid forms. */
const KNOWN_SESSIONS = 8;
/** Share of requests (in %) sent to the route that writes, for cases that have no session. */
const WRITE_PERCENT = 15;
const PREFIX = 'session:';
const CURRENT = 'current-secret-0123456789abcdefghij';
const PREVIOUS = 'previous-secret-0123456789abcdefghi';
const OTHER = 'another-apps-secret-0123456789abcde';

interface Config {
  readonly adapter: 'node' | 'hono';
  readonly cookieName: string;
  readonly secrets: readonly string[];
}

// Both adapters, both cookie names, signed and unsigned; `secure: true` throughout, as `__Host-` requires.
const CONFIGS: readonly Config[] = [
  { adapter: 'node', cookieName: 'session', secrets: [] },
  { adapter: 'node', cookieName: '__Host-sid', secrets: [CURRENT, PREVIOUS] },
  { adapter: 'hono', cookieName: '__Host-sid', secrets: [] },
  { adapter: 'hono', cookieName: 'session', secrets: [CURRENT, PREVIOUS] },
];

/**
 * What the middleware must make of a header: no cookie by that name (`none`), a cookie refused
 * before Redis (`malformed`, `bad-signature`; `duplicate` when the name comes twice, which also
 * clears the copies), a well-formed id Redis does not hold (`unknown`), or one of the known
 * sessions (`honored`). Random headers may or may not contain the name.
 */
type Outcome = 'none' | 'malformed' | 'bad-signature' | 'none-or-malformed' | 'duplicate' | 'unknown' | 'honored';

interface Case {
  readonly category: string;
  /** Cookie header lines, as raw bytes. */
  readonly lines: readonly Buffer[];
  readonly outcome: Outcome;
  /** For `honored`: the id the session must have. */
  readonly known?: string;
  /** For `honored`: signed with the previous secret, which is accepted as it is. */
  readonly resign?: boolean;
  readonly write: boolean;
}

interface Reply {
  readonly status: number;
  readonly setCookies: readonly string[];
  readonly body: string;
}

interface Context {
  readonly config: Config;
  readonly known: readonly string[];
}

// --- an oracle of what the middleware should accept, written from the spec, not from src/ ---

const hmac = (secret: string, id: string): string => createHmac('sha256', secret).update(id).digest('base64url');
const sha256 = (id: string): string => createHash('sha256').update(id).digest('base64url');

/** Whether `value` is 32 bytes in canonical unpadded base64url, which is all an id can be. */
function isCanonicalId(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value) && Buffer.from(value, 'base64url').toString('base64url') === value;
}

/** RFC 6265 parsers (and browsers) drop spaces and tabs around names and values. */
const trimWsp = (value: string): string => value.replace(/^[ \t]+|[ \t]+$/g, '');

/** The cookie value that carries `id` in this configuration, signed with `secret` when signing. */
function cookieValue(context: Context, id: string, secret = context.config.secrets[0]): string {
  return secret === undefined ? id : `${id}.${hmac(secret, id)}`;
}

/** The outcome of a single session cookie whose value (as the server reads it, latin1) is `raw`. */
function judge(context: Context, raw: string): Pick<Case, 'outcome' | 'known' | 'resign'> {
  const value = trimWsp(raw);
  const { secrets } = context.config;
  const dot = secrets.length === 0 ? -1 : value.indexOf('.');
  const id = dot < 0 ? value : value.slice(0, dot);
  if (!isCanonicalId(id)) return { outcome: 'malformed' };
  let resign = false;
  if (secrets.length > 0) {
    const signature = dot < 0 ? '' : value.slice(dot + 1);
    const signer = secrets.findIndex((secret) => hmac(secret, id) === signature);
    if (signer < 0) return { outcome: 'bad-signature' };
    resign = signer > 0;
  }
  return context.known.includes(id) ? { outcome: 'honored', known: id, resign } : { outcome: 'unknown' };
}

// --- generators ---

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const randomId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64url'));

/** Unrelated cookies around the session cookie; some contain its name without being it. */
function fillerOf(name: string): fc.Arbitrary<string[]> {
  return fc.array(fc.constantFrom('theme=dark', 'lang=en', '_ga=GA1.2.3.4', 'csrf=x', `${name}2=1`, `x${name}=1`, 'flag', 'a='), { maxLength: 3 });
}

/** Joins the pairs the way browsers do, or in one of the ways other clients do. */
const separator = fc.constantFrom('; ', '; ', '; ', ';', ';\t', ' ; ');

function around(name: string, pair: fc.Arbitrary<string>): fc.Arbitrary<{ header: string; padded: boolean }> {
  return fc.tuple(fillerOf(name), pair, fillerOf(name), separator).map(([before, middle, later, sep]) => ({
    header: [...before, middle, ...later].join(sep),
    // A tab separator puts a tab before the name: a look-alike only a trimming parser reads as it.
    padded: before.length > 0 && sep === ';\t',
  }));
}

function caseArbitrary(context: Context): fc.Arbitrary<Omit<Case, 'write'>> {
  const { cookieName: name, secrets } = context.config;
  const signed = secrets.length > 0;
  const knownId = fc.constantFrom(...context.known);
  const anyId = fc.oneof(randomId, knownId);
  const knownValue = knownId.map((id) => cookieValue(context, id));
  const single = (category: string, value: string): Omit<Case, 'write'> => ({
    category,
    lines: [latin1(`${name}=${value}`)],
    ...judge(context, value),
  });

  // Random printable and control ASCII, CR/LF/NUL included, as the whole header.
  const randomAscii = fc.string({ unit: 'binary-ascii', maxLength: 300 }).map((text): Omit<Case, 'write'> => ({
    category: 'random-ascii',
    lines: [latin1(text)],
    outcome: text.includes(name) ? 'none-or-malformed' : 'none',
  }));

  // Random Unicode as the value, sent as UTF-8.
  const randomUnicode = fc.string({ unit: 'grapheme', maxLength: 120 }).map((text): Omit<Case, 'write'> => ({
    category: 'random-unicode',
    lines: [Buffer.concat([latin1(`${name}=`), utf8(text)])],
    outcome: 'malformed',
  }));

  // Bytes that are not UTF-8: in the value, inside an otherwise valid id, or glued to the name.
  const invalidUtf8 = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes): Omit<Case, 'write'> => ({
      category: 'invalid-utf8',
      lines: [Buffer.concat([latin1(`${name}=`), Buffer.from(bytes), Buffer.from([0xc3, 0x28, 0xff])])],
      outcome: 'malformed',
    })),
    fc.tuple(anyId, fc.nat(42), fc.constantFrom(0x80, 0xc0, 0xff, 0xfe, 0xed)).map(([id, at, byte]): Omit<Case, 'write'> => {
      const value = latin1(cookieValue(context, id));
      value[at] = byte;
      return { category: 'invalid-utf8', lines: [Buffer.concat([latin1(`${name}=`), value])], outcome: 'malformed' };
    }),
    fc.tuple(knownValue, fc.constantFrom([0xff], [0xc0, 0xaf], [0xe2, 0x80], [0x80])).map(([value, bytes]): Omit<Case, 'write'> => ({
      category: 'invalid-utf8',
      lines: [Buffer.concat([Buffer.from(bytes), latin1(`${name}=${value}`)])],
      outcome: 'none',
    })),
  );

  // Long values, up to and past Node's 16 KB header limit (which answers 431 itself).
  const oversized = fc.oneof(
    fc.tuple(fc.oneof(fc.integer({ min: 4000, max: 17_000 }), fc.constant(16_384)), fc.constantFrom('A', 'x', '.', '%41')).map(([length, unit]) =>
      single('oversized', unit.repeat(Math.ceil(length / unit.length)).slice(0, length)),
    ),
    fc.tuple(fc.integer({ min: 4000, max: 17_000 }), anyId).map(([length, id]) => single('oversized', cookieValue(context, id).repeat(Math.ceil(length / 43)))),
    fc.tuple(fc.integer({ min: 4000, max: 17_000 }), knownValue).map(([length, value]): Omit<Case, 'write'> => ({
      category: 'oversized',
      lines: [latin1(`pad=${'p'.repeat(length)}; ${name}=${value}`)],
      ...judge(context, value),
    })),
  );

  // The name more than once: in one header, or in two Cookie header lines.
  const dupValue = fc.oneof(knownValue, randomId.map((id) => cookieValue(context, id)), fc.constantFrom('', 'x', '""'));
  const duplicate = fc.oneof(
    fc
      .tuple(fillerOf(name), dupValue, dupValue, fc.boolean(), separator)
      .map(([filler, first, second, same, sep]): Omit<Case, 'write'> => ({
        category: 'duplicate',
        lines: [latin1([`${name}=${first}`, ...filler, `${name}=${same ? first : second}`].join(sep))],
        outcome: 'duplicate',
      })),
    fc.tuple(dupValue, dupValue).map(([first, second]): Omit<Case, 'write'> => ({
      category: 'duplicate',
      lines: [latin1(`${name}=${first}`), latin1(`a=1; ${name}=${second}`)],
      outcome: 'duplicate',
    })),
  );

  // Names that look like the cookie's but are not it; the value is a live session's, so honouring
  // the look-alike would show. Unicode whitespace goes as UTF-8, as a browser would store it.
  const lookalikeNames = [
    name.replace(/_/g, '%5F'),
    name.replace('_', '%5f'),
    name.replace('-', '%2D'),
    [...name].map((char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`).join(''),
    name.toLowerCase(),
    name.toUpperCase(),
    name.charAt(0).toUpperCase() + name.slice(1),
    name.replace('Host', 'HOST'),
    name.replace(/-/g, '_'),
    `$${name}`,
    `${name}$`,
    `"${name}"`,
    `${name}.`,
    ...['\u00a0', '\u2000', '\u2002', '\u200b', '\u3000', '\ufeff', '\u0085', '\u1680', '\uff3f'].flatMap((ws) => [`${ws}${name}`, `${name}${ws}`]),
    name.replace('o', '\u043e'),
    name.replace('-', '\u2010'),
  ].filter((lookalike) => lookalike !== name);
  const lookalike = fc.oneof(
    fc.tuple(fc.constantFrom(...lookalikeNames), knownValue).map(([lookalikeName, value]): Omit<Case, 'write'> => ({
      category: 'lookalike-name',
      lines: [utf8(`${lookalikeName}=${value}`)],
      outcome: 'none',
    })),
    fc.tuple(fc.constantFrom(0xa0, 0x85, 0x0b, 0x0c), fc.boolean(), knownValue).map(([byte, first, value]): Omit<Case, 'write'> => ({
      category: 'lookalike-name',
      lines: [first ? Buffer.concat([Buffer.from([byte]), latin1(`${name}=${value}`)]) : Buffer.concat([latin1(name), Buffer.from([byte]), latin1(`=${value}`)])],
      outcome: 'none',
    })),
  );

  // Whitespace around the name that a trimming parser drops: such a cookie is not the session
  // cookie to the browser (which applies the __Host- rules to the name as written), so it must
  // not become one on the server. Only the separator's own single space, and the whitespace Node
  // strips from the start of the header, are not part of the name.
  const paddedName = fc
    .tuple(
      knownValue,
      fc.constantFrom<[string, boolean]>(
        [`theme=dark;${name} =`, true],
        [`theme=dark; ${name}\t=`, true],
        [`theme=dark;\t${name}=`, true],
        [`theme=dark;  ${name}=`, true],
        [`theme=dark;\t ${name}=`, true],
        [`${name} =`, true],
        [`${name}\t=`, true],
        [`theme=dark; ${name}=`, false],
        [`theme=dark;${name}=`, false],
        [`theme=dark ; ${name}=`, false],
        [` ${name}=`, false],
        [`\t${name}=`, false],
      ),
    )
    .map(([value, [start, padded]]): Omit<Case, 'write'> => ({
      category: 'padded-name',
      lines: [latin1(start + value)],
      ...(padded ? { outcome: 'malformed' } : judge(context, value)),
    }));

  // Near misses of real cookie values.
  const nearMiss = fc
    .tuple(fc.oneof(randomId, knownId).map((id) => cookieValue(context, id)), fc.nat(200), fc.nat(200), fc.constantFrom(...BASE64URL, '+', '/', '=', '.', ' ', '"', '%', ',', '\\', '*'))
    .chain(([value, a, b, char]) => {
      const at = a % value.length;
      const to = b % value.length;
      const mutations: Record<string, () => string> = {
        changed: () => value.slice(0, at) + (value[at] === char ? (char === 'A' ? 'B' : 'A') : char) + value.slice(at + 1),
        truncated: () => value.slice(0, at),
        extended: () => value + char.repeat(1 + (b % 3)),
        quoted: () => `"${value}"`,
        'single-quoted': () => `'${value}'`,
        padded: () => `${value}${'='.repeat(1 + (b % 2))}`,
        'inner-space': () => `${value.slice(0, at)} ${value.slice(at)}`,
        'outer-space': () => (a % 2 === 0 ? ` ${value}\t` : `\t ${value}`),
        'percent-encoded': () => `${value.slice(0, at)}%${value.charCodeAt(at).toString(16)}${value.slice(at + 1)}`,
        'standard-base64': () => value.replace(/-/g, '+').replace(/_/g, '/'),
        'case-flipped': () => value.slice(0, at) + (value[at] === value[at]?.toUpperCase() ? value[at]?.toLowerCase() : value[at]?.toUpperCase()) + value.slice(at + 1),
        swapped: () => {
          const chars = [...value];
          [chars[at], chars[to]] = [chars[to] as string, chars[at] as string];
          return chars.join('');
        },
        prefixed: () => `${['s:', 'v1.', 'Bearer ', '.', '0'][b % 5]}${value}`,
      };
      return fc.constantFrom(...Object.keys(mutations)).map((kind) => single('near-miss', (mutations[kind] as () => string)()));
    });

  // Signatures: missing, empty, truncated, extended, flipped, another secret's, another id's.
  const signature = fc
    .tuple(anyId, randomId, fc.nat(41), fc.constantFrom(...BASE64URL))
    .chain(([id, otherId, at, char]) => {
      const good = hmac(CURRENT, id);
      const variants: string[] = [
        id,
        `${id}.`,
        `${id}..${good}`,
        `${id}.${good.slice(0, at)}`,
        `${id}.${good}${char}`,
        `${id}.${good.slice(0, at)}${good[at] === char ? (char === 'A' ? 'B' : 'A') : char}${good.slice(at + 1)}`,
        `${id}.${hmac(OTHER, id)}`,
        `${id}.${hmac(CURRENT, otherId)}`,
        `${id}.${createHmac('sha256', CURRENT).update(id).digest('base64')}`,
        `${id}.${createHmac('sha256', CURRENT).update(id).digest('hex')}`,
        `${id}.${createHmac('sha1', CURRENT).update(id).digest('base64url')}`,
        `${id}.${good}.${good}`,
        `${id}.${good.toUpperCase()}`,
        `${otherId}.${good}`,
        `${id}.${hmac(CURRENT, id)}`,
        `${id}.${hmac(PREVIOUS, id)}`,
      ];
      return fc.constantFrom(...variants).map((value) => single('signature', value));
    });

  const validUnknown = fc.tuple(randomId, fc.constantFrom(...(signed ? secrets : [undefined]))).map(([id, secret]) =>
    single('valid-unknown', cookieValue(context, id, secret)),
  );
  const validKnown = fc
    .tuple(knownId, fc.constantFrom(...(signed ? secrets : [undefined])))
    .chain(([id, secret]) =>
      around(name, fc.constant(`${name}=${cookieValue(context, id, secret)}`)).map(({ header, padded }): Omit<Case, 'write'> => ({
        category: 'valid-known',
        lines: [latin1(header)],
        ...(padded ? { outcome: 'malformed' } : judge(context, cookieValue(context, id, secret))),
      })),
    );

  // A control character inside an otherwise valid header; Node refuses most of them itself.
  const control = fc
    .tuple(knownValue, fc.nat(200), fc.constantFrom('\r', '\n', '\r\n', '\0', '\x01', '\x1b', '\x7f', '\x08'))
    .map(([value, at, char]): Omit<Case, 'write'> => {
      const header = `${name}=${value}`;
      const where = 1 + (at % (header.length - 1));
      return { category: 'control', lines: [latin1(header.slice(0, where) + char + header.slice(where))], outcome: 'none-or-malformed' };
    });

  const categories: Array<{ weight: number; arbitrary: fc.Arbitrary<Omit<Case, 'write'>> }> = [
    { weight: 3, arbitrary: randomAscii },
    { weight: 2, arbitrary: randomUnicode },
    { weight: 2, arbitrary: invalidUtf8 },
    { weight: 1, arbitrary: oversized },
    { weight: 2, arbitrary: duplicate },
    { weight: 2, arbitrary: lookalike },
    { weight: 1, arbitrary: paddedName },
    { weight: 4, arbitrary: nearMiss },
    { weight: 3, arbitrary: signature },
    { weight: 1, arbitrary: validUnknown },
    { weight: 1, arbitrary: validKnown },
    { weight: 1, arbitrary: control },
  ];
  return fc.oneof(...categories);
}

// --- HTTP on a raw socket ---

const HEAD_END = Buffer.from('\r\n\r\n');

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (let guard = 0; guard < 10_000 && at < body.length; guard++) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(body.toString('latin1', at, lineEnd), 16);
    if (!(size > 0)) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function parseReply(data: Buffer): Reply {
  const end = data.indexOf(HEAD_END);
  if (end < 0) return { status: 0, setCookies: [], body: data.toString('latin1') };
  const [statusLine = '', ...headerLines] = data.toString('latin1', 0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const setCookies: string[] = [];
  let chunked = false;
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const field = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (field === 'set-cookie') setCookies.push(value);
    if (field === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
  }
  const body = data.subarray(end + HEAD_END.length);
  return { status, setCookies, body: (chunked ? dechunk(body) : body).toString('utf8') };
}

/** One request on its own connection (`Connection: close`), the Cookie lines written as given. */
function request(port: number, path: string, tag: string, lines: readonly Buffer[]): Promise<Reply> {
  const head = Buffer.concat([
    latin1(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fuzz: ${tag}\r\nConnection: close\r\n`),
    ...lines.flatMap((line) => [latin1('Cookie: '), line, latin1('\r\n')]),
    latin1('\r\n'),
  ]);
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer to request ${tag} within 10 s`)), 10_000);
    socket.on('connect', () => socket.write(head));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseReply(Buffer.concat(chunks)));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may close on a request it refused while the request was still being written.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Runs `work` over `items`, at most {@link CONCURRENCY} at a time, keeping the order of results. */
async function pool<T, R>(items: readonly T[], work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return results;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

const show = (lines: readonly Buffer[]): string => lines.map((line) => JSON.stringify(line.toString('latin1')).slice(0, 160)).join(' + ');

/** The `X-Fuzz` tag of the request object onInvalidCookie was given: Hono's Context or node's request. */
function tagOf(request: unknown): string | undefined {
  const holder = request as { req?: { header?: (name: string) => string | undefined }; headers?: Record<string, unknown> };
  if (typeof holder.req?.header === 'function') return holder.req.header('x-fuzz');
  const tag = holder.headers?.['x-fuzz'];
  return typeof tag === 'string' ? tag : undefined;
}

const count = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + 1);
const table = (map: Map<string, number>): string => [...map].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `${key} ${n}`).join(', ');

describe('fuzzing the Cookie header against the running middleware (real HTTP, real Redis)', () => {
  let redis: RedisServer;
  let client: ReturnType<typeof createClient>;
  let store: RedisStore;
  let unhandled: ReturnType<typeof watchUnhandled>;

  before(async () => {
    unhandled = watchUnhandled();
    redis = await startRedis();
    client = createClient({ url: redis.url });
    client.on('error', () => {});
    await client.connect();
    store = new RedisStore({ redis: client, prefix: PREFIX });
  });

  after(async () => {
    unhandled?.stop();
    if (client?.isOpen) await client.close();
    await redis?.stop();
  });

  it(`${CONFIGS.length * PER_CONFIG} generated Cookie headers: no 5xx, no Redis command for a refused id, no key outside the prefix`, async (t) => {
    const started = Date.now();
    t.diagnostic(`seed ${SEED} (LATCHKEY_FUZZ_SEED to change), ${PER_CONFIG} headers per configuration, ${CONCURRENCY} in flight`);

    const failures: string[] = [];
    const fail = (message: string): void => void (failures.length < 30 && failures.push(message));
    const byCategory = new Map<string, number>();
    const byOutcome = new Map<string, number>();
    const byStatus = new Map<string, number>();
    const refusedByNode = new Map<string, number>();
    const byReason = new Map<string, number>();
    const refusedBatches = { batches: 0, requests: 0, commands: 0 };
    const lookups = { requests: 0, unknown: 0, known: 0, resigned: 0, roundTrips: 0 };
    const writes = { requests: 0, roundTrips: 0 };
    const knownKeys = new Set<string>();
    const createdKeys = new Set<string>();
    const sentTokens = new Set<string>();
    const appErrors: unknown[] = [];

    for (const [index, config] of CONFIGS.entries()) {
      const label = `${config.adapter} ${config.cookieName} ${config.secrets.length > 0 ? 'signed' : 'unsigned'}`;
      const reports = new Map<string, InvalidCookieReason[]>();
      const routes: Record<string, Route> = {
        seed: async (session) => {
          await session.set('x', 'seeded');
          return { id: session.id ?? null };
        },
        read: async (session) => ({ x: (await session.get('x')) ?? null, id: session.id ?? null }),
        write: async (session) => {
          await session.set('fuzz', 1);
          return { id: session.id ?? null };
        },
      };
      const adapter = ADAPTERS.find((candidate) => candidate.name === config.adapter);
      assert.ok(adapter, config.adapter);
      const app: App = await adapter.start(
        {
          store,
          cookieName: config.cookieName,
          secure: true,
          ...(config.secrets.length > 0 && { secrets: config.secrets }),
          onInvalidCookie: (reason, request) => {
            const tag = tagOf(request) ?? 'untagged';
            reports.set(tag, [...(reports.get(tag) ?? []), reason]);
          },
        },
        routes,
      );
      try {
        const port = Number(new URL(app.url).port);
        /** The session cookie a reply sets, leaving out lines that clear copies of a duplicated one. */
        const sessionCookie = (reply: Reply): string | undefined => {
          const lines = reply.setCookies.map(parseSetCookie).filter((cookie) => cookie.name === config.cookieName && cookie.value !== '');
          if (lines.length > 1) throw new Error(`${lines.length} session cookies in one response`);
          return lines[0]?.value;
        };
        const clearing = (reply: Reply): number =>
          reply.setCookies.map(parseSetCookie).filter((cookie) => cookie.name === config.cookieName && cookie.value === '' && cookie.attributes.get('max-age') === '0').length;
        const idOf = (value: string): string => (config.secrets.length > 0 ? value.slice(0, value.indexOf('.')) : value);

        // Live sessions, whose ids the generators embed.
        const known: string[] = [];
        for (let i = 0; i < KNOWN_SESSIONS; i++) {
          const reply = await request(port, '/seed', `seed-${index}-${i}`, []);
          const value = sessionCookie(reply);
          assert.equal(reply.status, 200, reply.body);
          assert.ok(value);
          known.push(idOf(value));
          knownKeys.add(PREFIX + sha256(idOf(value)));
        }
        const context: Context = { config, known };
        // Loads each Lua script into Redis, so counting starts with none missing.
        for (const path of ['/read', '/write']) {
          const warm = cookieValue(context, Buffer.alloc(32, index + 1).toString('base64url'));
          const reply = await request(port, path, `warm-${index}${path}`, [latin1(`${config.cookieName}=${warm}`)]);
          assert.equal(reply.status, 200, reply.body);
          const value = sessionCookie(reply);
          if (value) createdKeys.add(PREFIX + sha256(idOf(value)));
        }

        const cases = fc
          .sample(fc.tuple(caseArbitrary(context), fc.nat(99)), { numRuns: PER_CONFIG, seed: SEED + index })
          .map(([generated, roll]): Case => ({ ...generated, write: generated.outcome !== 'honored' && roll < WRITE_PERCENT }));
        for (const item of cases) {
          count(byCategory, item.category);
          count(byOutcome, item.outcome);
          for (const line of item.lines) for (const token of line.toString('latin1').match(/[A-Za-z0-9_-]{43}/g) ?? []) sentTokens.add(token);
        }

        const refused = cases.filter((item) => !item.write && item.outcome !== 'unknown' && item.outcome !== 'honored');
        const oneLookup = cases.filter((item) => !item.write && (item.outcome === 'unknown' || item.outcome === 'honored'));
        const writing = cases.filter((item) => item.write);
        const unknownReason: InvalidCookieReason = config.secrets.length > 0 ? 'expired' : 'unknown-id';

        /** Checks one reply against its case; returns the Redis round trips it should have cost. */
        const check = (item: Case, tag: string, reply: Reply): number => {
          count(byStatus, String(reply.status));
          const got = reports.get(tag) ?? [];
          for (const reason of got) count(byReason, reason);
          const where = `[${label}] ${item.category} ${item.write ? 'write' : 'read'} ${show(item.lines)}`;
          const printable = item.lines.every((line) => !line.some((byte) => (byte < 0x20 && byte !== 0x09) || byte === 0x7f));
          const small = item.lines.reduce((sum, line) => sum + line.length, 0) < 16_000;
          if (reply.status >= 500) fail(`${where}: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
          if (reply.status !== 200) {
            count(refusedByNode, `${item.category} ${reply.status}`);
            if (printable && small) fail(`${where}: HTTP ${reply.status} for a header Node should accept`);
            if (reply.status === 0) fail(`${where}: the connection closed without an answer`);
            if (got.length > 0) fail(`${where}: HTTP ${reply.status}, yet onInvalidCookie was called (${got.join(', ')})`);
            return 0;
          }
          const expected: Record<Outcome, ReadonlyArray<readonly InvalidCookieReason[]>> = {
            none: [[]],
            malformed: [['malformed']],
            'bad-signature': [['bad-signature']],
            'none-or-malformed': [[], ['malformed']],
            // Duplicates with a separator a trimming parser would also accept read as malformed.
            duplicate: [['duplicate'], ['malformed']],
            unknown: [[unknownReason]],
            honored: [[]],
          };
          if (!expected[item.outcome].some((reasons) => reasons.join() === got.join())) {
            fail(`${where}: expected ${item.outcome}, onInvalidCookie got [${got.join(', ')}]`);
          }
          let body: { x?: unknown; id?: unknown };
          try {
            body = JSON.parse(reply.body) as typeof body;
          } catch {
            fail(`${where}: body is not JSON: ${reply.body.slice(0, 200)}`);
            return 0;
          }
          const cookie = sessionCookie(reply);
          const cleared = clearing(reply);
          if (got.includes('duplicate') ? cleared === 0 : cleared > 0) fail(`${where}: ${cleared} lines clearing copies of the cookie, reported [${got.join(', ')}]`);
          if (item.write) {
            // No session came from the header, so the write must have started a new one.
            const id = cookie === undefined ? undefined : idOf(cookie);
            if (id === undefined || !isCanonicalId(id) || body.id !== sessionHandle(sha256(id))) {
              fail(`${where}: the write did not start a session with a fresh id (cookie ${cookie}, body ${reply.body})`);
              return 1;
            }
            if (cookie !== cookieValue(context, id)) fail(`${where}: the new cookie ${cookie} is not signed with the current secret`);
            if (item.lines.some((line) => line.includes(id)) || known.includes(id)) fail(`${where}: the new id ${id} came from the request`);
            createdKeys.add(PREFIX + sha256(id));
            return item.outcome === 'unknown' ? 2 : 1;
          }
          if (item.outcome === 'honored') {
            if (body.x !== 'seeded' || body.id !== sessionHandle(sha256(item.known as string))) fail(`${where}: the known session was not honoured: ${reply.body}`);
            lookups.known++;
            if (item.resign) lookups.resigned++;
            if (cookie !== undefined) fail(`${where}: a read of a live session sent its cookie again (${item.resign ? 'signed with the previous secret' : 'current'}): ${cookie}`);
            return 1;
          }
          if (body.x !== null || body.id !== null) fail(`${where}: expected no session, got ${reply.body}`);
          if (cookie !== undefined) fail(`${where}: a read without a session set the cookie ${cookie}`);
          if (item.outcome !== 'unknown') return 0;
          lookups.unknown++;
          return 1;
        };

        const run = (batch: readonly Case[], offset: string): Promise<number[]> =>
          pool(batch, async (item, i) => {
            const tag = `${index}-${offset}-${i}`;
            return check(item, tag, await request(port, item.write ? '/write' : '/read', tag, item.lines));
          });

        for (const [b, batch] of chunks(refused, BATCH).entries()) {
          await redis.resetStats();
          await run(batch, `r${b}`);
          const commands = await redis.commandTotal();
          refusedBatches.batches++;
          refusedBatches.requests += batch.length;
          refusedBatches.commands += commands;
          if (commands !== 0) fail(`[${label}] refused batch ${b}: ${commands} Redis commands (${table(await redis.commandCounts())})`);
        }
        for (const [b, batch] of chunks(oneLookup, BATCH).entries()) {
          const monitor = await redis.monitor();
          const expected = (await run(batch, `l${b}`)).reduce((sum, n) => sum + n, 0);
          const roundTrips = await monitor.stop();
          lookups.requests += expected;
          lookups.roundTrips += roundTrips;
          if (roundTrips !== expected) fail(`[${label}] lookup batch ${b}: ${roundTrips} Redis round trips for ${expected} well-formed ids`);
        }
        for (const [b, batch] of chunks(writing, BATCH).entries()) {
          const monitor = await redis.monitor();
          const expected = (await run(batch, `w${b}`)).reduce((sum, n) => sum + n, 0);
          const roundTrips = await monitor.stop();
          writes.requests += batch.length;
          writes.roundTrips += roundTrips;
          if (roundTrips !== expected) fail(`[${label}] write batch ${b}: ${roundTrips} Redis round trips, expected ${expected}`);
        }
        const untagged = reports.get('untagged');
        if (untagged) fail(`[${label}] onInvalidCookie was given a request without its tag ${untagged.length} times`);
      } finally {
        appErrors.push(...app.errors);
        await app.close();
      }
    }

    // What Redis holds: the seeded sessions and the ones the writes started, nothing else.
    const keys = (await redis.command('KEYS', '*')) as string[];
    const outside = keys.filter((key) => !key.startsWith(PREFIX));
    const tokensIn = (text: string): string[] => (text.match(/[A-Za-z0-9_-]{43}/g) ?? []).filter((token) => sentTokens.has(token));
    const fromInput = keys.filter((key) => tokensIn(key).length > 0);
    const stray = keys.filter((key) => !knownKeys.has(key) && !createdKeys.has(key));
    const missing = [...knownKeys, ...createdKeys].filter((key) => !keys.includes(key));
    const hashedSent = new Set([...sentTokens].map((token) => PREFIX + sha256(token)));
    const stored: string[] = [];
    for (const key of keys) {
      for (const [field, value] of Object.entries(await client.hGetAll(key))) stored.push(field, value);
    }
    const storedFromInput = stored.filter((text) => tokensIn(text).length > 0);

    const total = CONFIGS.length * PER_CONFIG;
    t.diagnostic(`${total} headers in ${((Date.now() - started) / 1000).toFixed(1)} s over ${CONFIGS.length} configurations (node and hono; session and __Host-sid; unsigned and signed)`);
    t.diagnostic(`by category: ${table(byCategory)}`);
    t.diagnostic(`by expected outcome: ${table(byOutcome)}`);
    t.diagnostic(`HTTP status: ${table(byStatus)} (400/431 come from Node's own parser: CR/LF/NUL/control bytes, headers over 16 KB)`);
    t.diagnostic(`not 200, by category: ${table(refusedByNode)}`);
    t.diagnostic(`onInvalidCookie: ${table(byReason)}`);
    t.diagnostic(`refused ids (read): ${refusedBatches.requests} requests in ${refusedBatches.batches} batches, ${refusedBatches.commands} Redis commands`);
    t.diagnostic(`well-formed ids (read): ${lookups.unknown} unknown (reported 'unknown-id' unsigned, 'expired' signed) + ${lookups.known} live sessions (${lookups.resigned} signed with the previous secret) = ${lookups.requests} lookups, ${lookups.roundTrips} Redis round trips (MONITOR, not counting commands inside scripts)`);
    t.diagnostic(`writes: ${writes.requests} requests, ${writes.roundTrips} Redis round trips, ${createdKeys.size} new sessions`);
    t.diagnostic(`Redis keys: ${keys.length} (${knownKeys.size} seeded, ${createdKeys.size} created), ${outside.length} outside '${PREFIX}', ${fromInput.length} named after input, ${stray.length} unexplained`);
    t.diagnostic(`5xx: ${[...byStatus].filter(([status]) => Number(status) >= 500).reduce((sum, [, n]) => sum + n, 0)}, unhandled rejections: ${unhandled.rejections.length}, app errors: ${appErrors.length}`);

    assert.deepEqual(failures, []);
    assert.deepEqual(unhandled.rejections, []);
    assert.deepEqual(appErrors, []);
    assert.equal(refusedBatches.commands, 0);
    // Each kind of case reached the checks made for it, so their passing means something.
    assert.ok(refusedBatches.requests > 0 && lookups.requests > 0 && writes.requests > 0);
    assert.ok(lookups.known > 0 && lookups.unknown > 0 && lookups.resigned > 0, `live ${lookups.known}, unknown ${lookups.unknown}, signed with the previous secret ${lookups.resigned}`);
    assert.equal(lookups.roundTrips, lookups.requests);
    assert.equal(lookups.unknown + lookups.known, lookups.requests);
    assert.deepEqual(outside, []);
    assert.deepEqual(fromInput, []);
    assert.deepEqual(keys.filter((key) => hashedSent.has(key) && !knownKeys.has(key)), []);
    assert.deepEqual(stray, []);
    assert.deepEqual(missing, []);
    assert.deepEqual(storedFromInput, []);
  });
});
