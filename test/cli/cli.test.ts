// The operator CLI (`npx latchkey sessions ...`) on a standalone Redis of the test's own, run as
// a process with sessions latchkey itself made: what it prints, its exit status, and what Redis
// holds afterwards. test/cli/cluster.test.ts runs it on Redis Cluster.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { freePort, useRedis } from '../redis/server.js';
import { assertFailed, assertNoSecrets, assertOk, latchkey, LIST_TITLES, sessionsOn, tableOf, type ListedJson, type Result } from './support.js';

describe('latchkey sessions, on a standalone Redis', () => {
  const redis = useRedis();
  let client: ReturnType<typeof createClient>;
  before(async () => {
    client = createClient({ url: redis.url });
    client.on('error', () => {});
    await client.connect();
  });
  after(() => {
    if (client.isOpen) client.destroy();
  });
  /** --redis and --prefix for the test's own prefix. */
  const on = (prefix: string): string[] => ['--redis', redis.url, '--prefix', prefix];

  it('prints the usage on -h (--help) and help, with exit status 0', async () => {
    const results = await Promise.all([['help'], ['sessions', 'list', '-h']].map((args) => latchkey(args)));
    for (const result of results) {
      const usage = assertOk(result);
      assert.match(usage, /^Usage: latchkey sessions <command>/);
      for (const command of ['sessions list --user ID', 'sessions revoke --user ID --session HANDLE', 'sessions revoke --user ID --all', 'sessions count', 'sessions inspect --session HANDLE']) {
        assert.ok(usage.includes(command), `the usage names ${command}`);
      }
    }
  });

  it('answers a wrong command line with one line and exit status 2, without connecting', async () => {
    // The Redis named is the test's own: an error about it instead would mean the CLI connected.
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['users'], /unknown command 'users'/],
      [['sessions', 'lst'], /unknown command 'sessions lst'/],
      [['sessions', 'list', '--user', 'alice', '--bogus'], /unknown option --bogus/],
      [['sessions', 'list'], /sessions list needs --user ID/],
      [['sessions', 'list', '--user', '--json'], /--user needs a value/],
      [['sessions', 'list', '--user', 'alice', '--user', 'bob'], /--user is given twice/],
      [['sessions', 'list', '--user', 'alice', '--json=yes'], /--json takes no value/],
      [['sessions', 'list', '--user', 'alice', 'extra'], /unexpected argument 'extra'/],
      [['sessions', 'count', '--user', 'alice'], /sessions count takes no --user/],
      [['sessions', 'revoke', '--user', 'alice', '--all', '--session', 'x'], /sessions revoke needs either --session HANDLE or --all/],
      [['sessions', 'count', '--redis', 'http://127.0.0.1:1'], /--redis must start with redis:\/\/ or rediss:\/\//],
      [['sessions', 'count', '--redis', redis.url, '--cluster', '127.0.0.1:1'], /give --redis or --cluster, not both/],
      [['sessions', 'count', '--cluster', '127.0.0.1'], /--cluster takes host:port,host:port; got '127.0.0.1'/],
    ];
    // A few processes at a time: the machine may have two cores.
    const results: Result[] = [];
    for (let at = 0; at < cases.length; at += 4) {
      results.push(...(await Promise.all(cases.slice(at, at + 4).map(([args]) => latchkey(args, { REDIS_URL: redis.url })))));
    }
    results.forEach((result, i) => {
      const [args, pattern] = cases[i] as [string[], RegExp];
      assertFailed(result, 2, pattern);
      assert.match(result.stderr, /\(see 'latchkey --help'\)\n$/, `a hint for: latchkey ${args.join(' ')}`);
    });
    const [bothSet, noSuchClient] = await Promise.all([
      latchkey(['sessions', 'count'], { REDIS_URL: redis.url, REDIS_CLUSTER: '127.0.0.1:1' }),
      latchkey(['sessions', 'count'], { REDIS_URL: redis.url, LATCHKEY_REDIS_CLIENT: 'redis4' }),
    ]);
    assertFailed(bothSet, 2, /both REDIS_URL and REDIS_CLUSTER are set/);
    assertFailed(noSuchClient, 2, /LATCHKEY_REDIS_CLIENT must be redis or ioredis, got 'redis4'/);
  });

  it('fails in one line with exit status 2 when Redis is not there, hiding the password', async () => {
    const port = await freePort();
    const url = `redis://operator:pa55word@127.0.0.1:${port}/0`;
    const [nodeRedis, ioredis, fromEnv] = await Promise.all([
      latchkey(['sessions', 'count', '--redis', url], { LATCHKEY_REDIS_CLIENT: 'redis' }),
      latchkey(['sessions', 'count', '--redis', url], { LATCHKEY_REDIS_CLIENT: 'ioredis' }),
      latchkey(['sessions', 'list', '--user', 'alice'], { REDIS_URL: `redis://127.0.0.1:${port}/0` }),
    ]);
    for (const result of [nodeRedis, ioredis]) {
      assertFailed(result, 2, new RegExp(`^latchkey: cannot reach Redis at redis://operator:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED`));
      assert.ok(!result.stderr.includes('pa55word'), result.stderr);
    }
    assertFailed(fromEnv, 2, new RegExp(`^latchkey: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED`));
  });

  it('lists a user\'s sessions oldest first, as a table and as JSON, and nothing of other users or prefixes', async () => {
    const sessions = sessionsOn(client, 'list:');
    const started = Date.now();
    const first = await sessions.login('alice', { userAgent: 'Firefox/130.0 (Linux)', ip: '192.0.2.10' });
    const second = await sessions.login('alice', { userAgent: 'Safari/17.4 (iPhone)', ip: '2001:db8::7' });
    await sessions.login('bob', { userAgent: 'curl/8.0', ip: '192.0.2.99' });
    await sessions.anonymous();
    const ended = Date.now();

    const [table, json, otherPrefix, nobody, nobodyJson] = await Promise.all([
      latchkey(['sessions', 'list', '--user', 'alice', ...on('list:')]),
      latchkey(['sessions', 'list', '--user', 'alice', '--json', ...on('list:')]),
      latchkey(['sessions', 'list', '--user', 'alice', '--redis', redis.url]),
      latchkey(['sessions', 'list', '--user', 'nobody', ...on('list:')]),
      latchkey(['sessions', 'list', '--user', 'nobody', '--json'], { REDIS_URL: redis.url }),
    ]);

    const listed = JSON.parse(assertOk(json)) as ListedJson[];
    assert.deepEqual(
      listed.map(({ handle, userId, userAgent, ip }) => ({ handle, userId, userAgent, ip })).sort((a, b) => a.handle.localeCompare(b.handle)),
      [
        { handle: first.handle, userId: 'alice', userAgent: 'Firefox/130.0 (Linux)', ip: '192.0.2.10' },
        { handle: second.handle, userId: 'alice', userAgent: 'Safari/17.4 (iPhone)', ip: '2001:db8::7' },
      ].sort((a, b) => a.handle.localeCompare(b.handle)),
    );
    for (const session of listed) {
      for (const date of [session.createdAt, session.lastSeenAt]) {
        assert.equal(new Date(date).toISOString(), date, 'dates are ISO 8601');
        assert.ok(Date.parse(date) >= started - 1 && Date.parse(date) <= ended + 1, `${date} is when the test made the session`);
      }
    }
    assert.ok(Date.parse((listed[0] as ListedJson).createdAt) <= Date.parse((listed[1] as ListedJson).createdAt), 'oldest first');

    const rows = tableOf(assertOk(table), LIST_TITLES);
    assert.deepEqual(
      rows,
      listed.map((session) => [session.handle, session.createdAt, session.lastSeenAt, session.userAgent, session.ip]),
      'the table shows what --json does, in the same order, each cell under its title',
    );

    assert.equal(assertOk(otherPrefix), 'no sessions for user alice\n', 'the default prefix session: holds none of them');
    assert.equal(assertOk(nobody), 'no sessions for user nobody\n');
    assert.deepEqual(JSON.parse(assertOk(nobodyJson)), []);
    assertNoSecrets(sessions.made, table.stdout, json.stdout);
  });

  it('counts every live session under the prefix, signed in or not', async () => {
    const sessions = sessionsOn(client, 'count:');
    await sessions.login('alice');
    await sessions.login('alice');
    await sessions.login('bob');
    await sessions.anonymous();
    await sessions.anonymous();
    const [table, json, empty] = await Promise.all([
      latchkey(['sessions', 'count', ...on('count:')]),
      latchkey(['sessions', 'count', '--json', ...on('count:')]),
      latchkey(['sessions', 'count', ...on('count-none:')]),
    ]);
    assert.equal(assertOk(table), '5 sessions\n');
    assert.deepEqual(JSON.parse(assertOk(json)), { count: 5 });
    assert.equal(assertOk(empty), '0 sessions\n');
  });

  it('inspects a session: its keys and their sizes, the values only with --values', async () => {
    const sessions = sessionsOn(client, 'inspect:');
    const alice = await sessions.login('alice', { userAgent: 'Firefox/130.0', ip: '192.0.2.10' }, { name: 'Ada Lovelace', cart: ['analytical engine'] });
    await sessions.login('bob');
    // What Redis holds for each key: the sizes must be those of the stored values.
    const stored = new Map<string, string>();
    for (const key of ['name', 'cart']) stored.set(key, String(await redis.command('HGET', alice.key, key)));
    const bytes = (key: string): string => String(Buffer.byteLength(key) + Buffer.byteLength(stored.get(key) as string));

    const [hidden, shown, byUser, json, jsonValues] = await Promise.all([
      latchkey(['sessions', 'inspect', '--session', alice.handle, ...on('inspect:')]),
      latchkey(['sessions', 'inspect', '--session', alice.handle, '--values', ...on('inspect:')]),
      latchkey(['sessions', 'inspect', '--session', alice.handle, '--user', 'alice', ...on('inspect:')]),
      latchkey(['sessions', 'inspect', '--session', alice.handle, '--json', ...on('inspect:')]),
      latchkey(['sessions', 'inspect', '--session', alice.handle, '--json', '--values', ...on('inspect:')]),
    ]);

    const text = assertOk(hidden);
    assert.equal(assertOk(byUser), text, 'with --user, the same session is found');
    const [details = '', keys = ''] = text.split('\n\n');
    assert.deepEqual(tableOf(details, ['handle', alice.handle]).slice(0, 5).map(([name]) => name), ['user', 'created', 'last seen', 'user agent', 'ip']);
    assert.match(details, /^user +alice$/m);
    assert.match(details, /^user agent +Firefox\/130\.0$/m);
    assert.match(details, /^ip +192\.0\.2\.10$/m);
    const keyRows = tableOf(keys.split('\n').slice(0, 3).join('\n'), ['KEY', 'BYTES']);
    assert.deepEqual(new Map(keyRows.map(([key, size]) => [key, size])), new Map([['name', bytes('name')], ['cart', bytes('cart')]]));
    assert.ok(!text.includes('Ada Lovelace') && !text.includes('analytical engine'), `values shown without --values:\n${text}`);
    assert.match(text, /--values shows the values/);

    const withValues = assertOk(shown);
    const valueRows = tableOf(withValues.split('\n\n')[1]?.split('\n').slice(0, 3).join('\n') ?? '', ['KEY', 'BYTES', 'VALUE']);
    assert.deepEqual(
      new Map(valueRows.map(([key, , value]) => [key, value])),
      new Map([['name', '"Ada Lovelace"'], ['cart', '["analytical engine"]']]),
    );

    const inspected = JSON.parse(assertOk(json)) as { handle: string; userId: string; userAgent: string; ip: string; fields: unknown[] };
    assert.equal(inspected.handle, alice.handle);
    assert.equal(inspected.userId, 'alice');
    assert.equal(inspected.userAgent, 'Firefox/130.0');
    assert.equal(inspected.ip, '192.0.2.10');
    assert.deepEqual(
      new Set(inspected.fields.map((field) => JSON.stringify(field))),
      new Set([JSON.stringify({ key: 'name', bytes: Number(bytes('name')) }), JSON.stringify({ key: 'cart', bytes: Number(bytes('cart')) })]),
    );
    const withJsonValues = JSON.parse(assertOk(jsonValues)) as { fields: { key: string; value: unknown }[] };
    assert.deepEqual(new Map(withJsonValues.fields.map((field) => [field.key, field.value])), new Map<string, unknown>([['name', 'Ada Lovelace'], ['cart', ['analytical engine']]]));
    assertNoSecrets(sessions.made, hidden.stdout, shown.stdout, json.stdout, jsonValues.stdout);
  });

  it('inspecting a handle that is not there, or not the user\'s, exits with 1', async () => {
    const sessions = sessionsOn(client, 'inspect-missing:');
    const alice = await sessions.login('alice');
    await sessions.login('bob');
    const [unknown, otherUser] = await Promise.all([
      latchkey(['sessions', 'inspect', '--session', 'AAAAAAAAAAAAAAAAAAAAAA', '--json', ...on('inspect-missing:')]),
      latchkey(['sessions', 'inspect', '--session', alice.handle, '--user', 'bob', ...on('inspect-missing:')]),
    ]);
    assertFailed(unknown, 1, /^latchkey: no session AAAAAAAAAAAAAAAAAAAAAA\n$/);
    assertFailed(otherUser, 1, new RegExp(`^latchkey: user bob has no session ${alice.handle}\\n$`));
  });

  it('prints what clients and apps stored with control characters escaped, so they cannot drive the terminal', async () => {
    const sessions = sessionsOn(client, 'escape:');
    const evil = await sessions.login('mallory', { userAgent: 'Mozilla\u001b]0;pwned\u0007\u009b31m\u202eevil' }, { 'note\u001b[2J': 'x\u001b[31my' });
    const [list, inspect, json] = await Promise.all([
      latchkey(['sessions', 'list', '--user', 'mallory', ...on('escape:')]),
      latchkey(['sessions', 'inspect', '--session', evil.handle, '--values', ...on('escape:')]),
      latchkey(['sessions', 'inspect', '--session', evil.handle, '--values', '--json', ...on('escape:')]),
    ]);
    for (const output of [assertOk(list), assertOk(inspect), assertOk(json)]) {
      assert.doesNotMatch(output, /[^\P{Cc}\n]|\p{Bidi_Control}/u, `a control character reached the terminal:\n${JSON.stringify(output)}`);
    }
    assert.ok(list.stdout.includes('Mozilla\\u001b]0;pwned\\u0007\\u009b31m\\u202eevil'), list.stdout);
    assert.ok(inspect.stdout.includes('note\\u001b[2J'), inspect.stdout);
    const parsed = JSON.parse(json.stdout) as { userAgent: string; fields: { key: string; value: unknown }[] };
    assert.equal(parsed.userAgent, 'Mozilla\u001b]0;pwned\u0007\u009b31m\u202eevil', 'the JSON still decodes to what was stored');
    assert.deepEqual(parsed.fields.map(({ key, value }) => [key, value]), [['note\u001b[2J', 'x\u001b[31my']]);
  });

  it('revokes one session by handle: it is gone from Redis and its next request is anonymous', async () => {
    const sessions = sessionsOn(client, 'revoke:');
    const phone = await sessions.login('alice', { userAgent: 'Safari (iPhone)' });
    const laptop = await sessions.login('alice', { userAgent: 'Firefox (Linux)' });
    const bob = await sessions.login('bob');

    const revoked = await latchkey(['sessions', 'revoke', '--user', 'alice', '--session', phone.handle, ...on('revoke:')]);
    assert.equal(assertOk(revoked), `revoked session ${phone.handle} of user alice\n`);
    // Ended sessions keep only latchkey's ended mark, for a while; the user's index forgets them.
    assert.match(JSON.stringify(await redis.command('HGETALL', phone.key)), /^\[":x","r[0-9]+"\]$/, 'revoked: only the mark, r and when');
    const indexed = (await redis.command('HKEYS', 'revoke:user:alice')) as string[];
    assert.deepEqual(indexed, [laptop.key.slice('revoke:'.length)]);
    assert.deepEqual(await sessions.nextRequest(phone), { user: undefined, isNew: true });
    assert.deepEqual(await sessions.nextRequest(laptop), { user: 'alice', isNew: false });

    const [again, othersSession, list, json] = await Promise.all([
      latchkey(['sessions', 'revoke', '--user', 'alice', '--session', phone.handle, ...on('revoke:')]),
      latchkey(['sessions', 'revoke', '--user', 'alice', '--session', bob.handle, ...on('revoke:')]),
      latchkey(['sessions', 'list', '--user', 'alice', '--json', ...on('revoke:')]),
      latchkey(['sessions', 'revoke', '--user', 'alice', '--session', laptop.handle, '--json', ...on('revoke:')]),
    ]);
    assertFailed(again, 1, new RegExp(`^latchkey: user alice has no session ${phone.handle}\\n$`));
    assertFailed(othersSession, 1, new RegExp(`^latchkey: user alice has no session ${bob.handle}\\n$`));
    assert.deepEqual(await sessions.nextRequest(bob), { user: 'bob', isNew: false }, "another user's session is not revoked by its handle");
    // The listing ran before or after the last revocation: either way the phone is not in it.
    assert.ok(!(JSON.parse(assertOk(list)) as ListedJson[]).some((session) => session.handle === phone.handle));
    assert.deepEqual(JSON.parse(assertOk(json)), { revoked: 1 });
    assert.deepEqual(await sessions.nextRequest(laptop), { user: undefined, isNew: true });
    assertNoSecrets(sessions.made, revoked.stdout, again.stderr, json.stdout);
  });

  it('revokes every session of a user with --all, and none of other users', async () => {
    const sessions = sessionsOn(client, 'revoke-all:');
    const alices = [await sessions.login('alice'), await sessions.login('alice'), await sessions.login('alice')];
    const bob = await sessions.login('bob');
    const visitor = await sessions.anonymous();

    assert.equal(assertOk(await latchkey(['sessions', 'revoke', '--user', 'alice', '--all', ...on('revoke-all:')])), 'revoked 3 sessions of user alice\n');
    for (const alice of alices) {
      assert.match(JSON.stringify(await redis.command('HGETALL', alice.key)), /^\[":x","r[0-9]+"\]$/, 'revoked: only the mark, r and when');
      assert.deepEqual(await sessions.nextRequest(alice), { user: undefined, isNew: true });
    }
    assert.equal(await redis.command('HLEN', 'revoke-all:user:alice'), 0);
    assert.deepEqual(await sessions.nextRequest(bob), { user: 'bob', isNew: false });
    assert.equal(await sessions.nextRequest(visitor).then(({ isNew }) => isNew), false);

    const [list, again, againJson, count] = await Promise.all([
      latchkey(['sessions', 'list', '--user', 'alice', ...on('revoke-all:')]),
      latchkey(['sessions', 'revoke', '--user', 'alice', '--all', ...on('revoke-all:')]),
      latchkey(['sessions', 'revoke', '--user', 'alice', '--all', '--json', ...on('revoke-all:')]),
      latchkey(['sessions', 'count', ...on('revoke-all:')]),
    ]);
    assert.equal(assertOk(list), 'no sessions for user alice\n');
    assert.equal(assertOk(again), 'no sessions for user alice; nothing revoked\n');
    assert.deepEqual(JSON.parse(assertOk(againJson)), { revoked: 0 });
    assert.equal(assertOk(count), '2 sessions\n', "bob's and the visitor's");
  });
});

