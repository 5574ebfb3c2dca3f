// The demo behind `npm start`: a small Hono app that shows what latchkey does, in plain
// server-rendered HTML (no front-end build).
//   /             "Hello, NAME" or "I don't recognize you." (bottle-session's example)
//   /set/:name    remembers your name in the session
//   /visit        a visitor counter in the same Redis the sessions use, plus your last visit
//   /login        sign in under any user name (no password): session.login() gives a new session id
//   /account      who you are signed in as; sign out
//   /devices      "Your devices": the user's live sessions, sign out one, or everywhere else
// Every form carries the session's CSRF token (403 without it); each action leaves a flash message.
// A Redis outage answers with a 503 page; the session comes back with Redis.
//
// Environment:
//   REDIS_URL              Redis for sessions and the counter (default redis://localhost:6379); with
//                          no Redis there, the demo says so in one line and keeps sessions in memory
//   HOST, PORT             where to listen (default 127.0.0.1 and 8888; see examples/address.ts)
//   DEMO_SESSION_LIFETIME  the idle timeout in seconds (default 1800): the browser tests set 2
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { createClient } from 'redis';
import { MemoryStore, SessionError, addFlash, checkCsrf, csrfToken, isSessionError, takeFlashes } from 'latchkey';
import { host, origin, port } from './address.js';
import { session, type SessionEnv } from 'latchkey/hono';

interface Demo {
  name: string;
  visit: string;
}
type App = Context<SessionEnv<Demo>>;

const redisUrl = process.env.REDIS_URL ?? 'redis://localhost:6379';
const lifetime = Number(process.env.DEMO_SESSION_LIFETIME ?? 1800);
if (!Number.isInteger(lifetime) || lifetime < 1) {
  console.error(`latchkey demo: DEMO_SESSION_LIFETIME must be a whole number of seconds, got ${process.env.DEMO_SESSION_LIFETIME}`);
  process.exit(1);
}

/** The app's own Redis client, shared with latchkey; `undefined` when no Redis answers. */
async function connectRedis() {
  let connected = false;
  const client = createClient({
    url: redisUrl,
    socket: {
      connectTimeout: 1000,
      // Give up at once if Redis is not there at start; once connected, keep reconnecting.
      reconnectStrategy: (retries) => (connected ? Math.min(retries * 50, 500) : new Error('no Redis')),
    },
  });
  client.on('error', (error: Error) => {
    if (connected) console.error(`latchkey demo: Redis error: ${error.message}`);
  });
  try {
    await client.connect();
    connected = true;
    return client;
  } catch (error) {
    const reason = error instanceof Error && error.message !== 'no Redis' ? error.message : 'connection refused';
    console.log(`latchkey demo: no Redis at ${redisUrl} (${reason}); sessions are kept in memory and lost when the demo stops.`);
    return undefined;
  }
}

const redis = await connectRedis();
let memoryVisitors = 0;
// recordClient keeps each session's user agent and IP address, for "Your devices".
const sessions = session<Demo>({ ...(redis ? { redis } : { store: new MemoryStore() }), cookieLifetime: lifetime, recordClient: true });
const admin = sessions.manager.admin;

// ---- HTML: every interpolated value is escaped unless it is already HTML ----

/** A piece of HTML that `html` inserts as it is. */
class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}
type Part = Html | string | number | undefined | null | false | readonly Part[];

function escape(part: Part): string {
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(escape).join('');
  if (part === undefined || part === null || part === false) return '';
  return String(part).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** A tagged template for HTML: `html\`<p>${name}</p>\`` escapes `name`, and nests. */
function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  return new Html(strings.reduce((out, text, i) => out + text + (i < parts.length ? escape(parts[i] as Part) : ''), ''));
}

const STYLE = `
body { font: 1rem/1.5 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f6f7f9; }
header, main { max-width: 46rem; margin: 0 auto; padding: 0 1rem; }
header nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: .75rem 0; border-bottom: 1px solid #d5d8dd; }
a { color: #0b57d0; } a:focus-visible, button:focus-visible, input:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
h1 { font-size: 1.6rem; margin: 1.25rem 0 .75rem; }
.flash { padding: .6rem .9rem; border-radius: .4rem; background: #e3f2e5; border: 1px solid #9bc9a2; }
.flash.error { background: #fde8e8; border-color: #e3a0a0; }
button { font: inherit; padding: .35rem .9rem; border-radius: .4rem; border: 1px solid #0b57d0; background: #0b57d0; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #0b57d0; }
input[type=text] { font: inherit; padding: .35rem .5rem; border: 1px solid #8a8f98; border-radius: .4rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .5rem; border-bottom: 1px solid #e1e4e8; vertical-align: top; }
time { white-space: nowrap; } form { margin: 1rem 0; } td form { margin: 0; }
.this { font-weight: 600; color: #1e7b34; white-space: nowrap; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 34rem) { thead { display: none; } tr, td { display: block; } td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; } }`;

/** A whole page: one h1, the navigation, the flash messages, and `body` in the main landmark. */
async function page(c: App, title: string, body: Html, status: 200 | 403 | 404 | 500 | 503 = 200, signedIn?: boolean) {
  const flashes = signedIn === undefined ? [] : await takeFlashes(c.get('session'));
  const nav = signedIn === undefined ? html`<a href="/">Home</a>` : [
    html`<a href="/">Home</a> <a href="/visit">Visitor counter</a>`,
    signedIn ? html` <a href="/account">Your account</a> <a href="/devices">Your devices</a>` : html` <a href="/login">Sign in</a>`,
  ];
  return c.html(
    html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · latchkey demo</title><style>${new Html(STYLE)}</style></head>
<body><header><nav aria-label="Main">${nav}</nav></header>
<main><h1>${title}</h1>
${flashes.map((flash) => html`<p class="flash ${flash.category}" role="status">${String(flash.message)}</p>`)}
${body}</main></body></html>`.text,
    status,
  );
}

/** The page for a signed-in user or a visitor, after reading who it is. */
async function userPage(c: App, title: string, body: (userId: string | undefined) => Html | Promise<Html>) {
  const userId = await c.get('session').userId();
  return page(c, title, await body(userId), 200, userId !== undefined);
}

/** A form that posts to `action` with the session's CSRF token. */
async function form(c: App, action: string, fields: Html | string, button: Html | string, secondary = false) {
  const token = await csrfToken(c.get('session'));
  return html`<form method="post" action="${action}">${new Html(String(fields))}<input type="hidden" name="_csrf" value="${token}"><button${new Html(secondary ? ' class="secondary"' : '')}>${button}</button></form>`;
}

/** Checks a posted form's CSRF token (a 403 page otherwise) and gives back its fields. */
async function posted(c: App): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  await checkCsrf(c.get('session'), c.req.method, body._csrf);
  return Object.fromEntries(Object.entries(body).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

/** "Chrome on Linux" from a user agent, for the device list: a few common cases, no dependency. */
function describeClient(userAgent: string | undefined): { browser: string; system: string } {
  const ua = userAgent ?? '';
  const browser =
    [[/Edg\//, 'Edge'], [/OPR\//, 'Opera'], [/Firefox\//, 'Firefox'], [/HeadlessChrome\//, 'Headless Chrome'], [/Chrome\//, 'Chrome'],
      [/Version\/[\d.]+.*Safari\//, 'Safari'], [/^curl\//, 'curl']].find(([pattern]) => (pattern as RegExp).test(ua))?.[1] ?? 'Unknown browser';
  const system =
    [[/Android/, 'Android'], [/iPhone|iPad|iPod/, 'iOS'], [/Windows/, 'Windows'], [/Mac OS X|Macintosh/, 'macOS'], [/CrOS/, 'ChromeOS'],
      [/Linux/, 'Linux']].find(([pattern]) => (pattern as RegExp).test(ua))?.[1] ?? 'unknown system';
  return { browser: browser as string, system: system as string };
}

/** A time for people, in UTC: "2026-12-02 05:30 UTC", in a <time> element. */
const when = (date: Date) => html`<time datetime="${date.toISOString()}">${date.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;

/**
 * Counts a visitor in the Redis the sessions use. While that Redis is out, the same 503 page as
 * for sessions, within latchkey's command timeout (2 s): the app's own client would wait for ever.
 */
async function countVisitor(client: NonNullable<typeof redis>): Promise<number> {
  const unavailable = (cause?: unknown) => new SessionError('STORE_UNAVAILABLE', 'the visitor counter could not reach Redis', { cause });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(unavailable()), 2000)));
  try {
    return await Promise.race([client.incr('latchkey-demo:visitors'), timeout]);
  } catch (error) {
    throw isSessionError(error) ? error : unavailable(error);
  } finally {
    clearTimeout(timer);
  }
}

// ---- The app ----

const app = new Hono<SessionEnv<Demo>>();
app.use(sessions);

app.get('/', (c) =>
  userPage(c, 'latchkey demo', async (userId) => {
    const name = await c.get('session').get('name');
    return html`<p id="greeting">${name !== undefined ? `Hello, ${name}` : "I don't recognize you."}</p>
<p>${userId !== undefined ? html`You are signed in as <strong>${userId}</strong>.` : html`You are not signed in. <a href="/login">Sign in</a> under any name.`}</p>
<p>Try <a href="/set/Chris">/set/Chris</a>, then come back here; or count visitors on <a href="/visit">/visit</a>.</p>`;
  }),
);

app.get('/set/:name', async (c) => {
  await c.get('session').set('name', c.req.param('name'));
  return userPage(c, 'Name stored', () => html`<p>I recognize you now. <a href="/">Back home</a>.</p>`);
});

app.get('/visit', async (c) => {
  const lastVisit = await c.get('session').get('visit', 'never');
  const visitor = redis ? await countVisitor(redis) : ++memoryVisitors;
  await c.get('session').set('visit', new Date().toISOString());
  return userPage(c, 'Visitor counter', () => html`<p id="visits">You are visitor ${visitor}, your last visit was on ${lastVisit}</p>`);
});

app.get('/login', async (c) =>
  userPage(c, 'Sign in', async (userId) =>
    html`${userId !== undefined ? html`<p>You are signed in as <strong>${userId}</strong>; signing in again switches user.</p>` : ''}
<p>Any name will do: this demo has no passwords.</p>
${await form(c, '/login', html`<p><label for="user">User name</label><br><input type="text" id="user" name="user" required maxlength="64" autocomplete="username"></p>`, 'Sign in')}`,
  ),
);

app.post('/login', async (c) => {
  const user = (await posted(c)).user?.trim() ?? '';
  if (user === '' || user.length > 64) {
    await addFlash(c.get('session'), 'Enter a user name of 1 to 64 characters.', 'error');
    return c.redirect('/login', 303);
  }
  // A new session id (no session fixation), recorded in the user's index for "Your devices".
  await c.get('session').login(user);
  await c.get('session').set('name', user);
  await addFlash(c.get('session'), `Signed in as ${user}.`);
  return c.redirect('/account', 303);
});

app.get('/account', (c) =>
  userPage(c, 'Your account', async (userId) =>
    userId === undefined
      ? html`<p id="who">You are not signed in.</p><p><a href="/login">Sign in</a></p>`
      : html`<p id="who">Signed in as <strong>${userId}</strong>.</p>
<p><a href="/devices">Your devices</a> lists where else you are signed in.</p>${await form(c, '/logout', '', 'Sign out', true)}`,
  ),
);

app.post('/logout', async (c) => {
  await posted(c);
  await c.get('session').logout();
  await addFlash(c.get('session'), 'You are signed out.');
  return c.redirect('/login', 303);
});

app.get('/devices', async (c) => {
  const userId = await c.get('session').userId();
  if (userId === undefined) {
    await addFlash(c.get('session'), 'Sign in to see your devices.', 'error');
    return c.redirect('/login', 303);
  }
  const devices = await admin.listUserSessions(userId, { current: c.get('session') });
  const rows = await Promise.all(
    devices.map(async (device) => {
      const { browser, system } = describeClient(device.userAgent);
      const action = device.current
        ? html`<span class="this">This device</span>`
        : await form(c, `/devices/${encodeURIComponent(device.handle)}/sign-out`, '', html`Sign out<span class="sr"> ${browser} on ${system}</span>`, true);
      return html`<tr><td data-label="Device">${browser} on ${system}${device.ip ? html`<br><small>${device.ip}</small>` : ''}</td>
<td data-label="Signed in">${when(device.createdAt)}</td><td data-label="Last seen">${when(device.lastSeenAt)}</td><td>${action}</td></tr>`;
    }),
  );
  const others = devices.length > 1 ? await form(c, '/devices/sign-out-others', '', 'Sign out everywhere else') : html`<p>This is your only device.</p>`;
  return page(c, 'Your devices', html`<p>Where <strong>${userId}</strong> is signed in now, oldest first.</p>
<table><thead><tr><th scope="col">Device</th><th scope="col">Signed in</th><th scope="col">Last seen</th><th scope="col"><span class="sr">Action</span></th></tr></thead>
<tbody>${rows}</tbody></table>${others}`, 200, true);
});

app.post('/devices/:handle/sign-out', async (c) => {
  await posted(c);
  const userId = await c.get('session').userId();
  // A handle of another user's session ends nothing.
  const ended = userId !== undefined && (await admin.revokeSession(userId, c.req.param('handle')));
  await addFlash(c.get('session'), ended ? 'That device is signed out.' : 'That device was signed out already.');
  return c.redirect('/devices', 303);
});

app.post('/devices/sign-out-others', async (c) => {
  await posted(c);
  const userId = await c.get('session').userId();
  const ended = userId === undefined ? 0 : await admin.revokeUserSessions(userId, { except: c.get('session') });
  await addFlash(c.get('session'), `Signed out everywhere else (${ended} ${ended === 1 ? 'device' : 'devices'}).`);
  return c.redirect('/devices', 303);
});

app.notFound((c) => page(c, 'Page not found', html`<p>There is no page here. <a href="/">Home</a></p>`, 404));

// Errors get a page of their own, never a stack: the message is for the log.
app.onError((error, c) => {
  if (isSessionError(error, 'STORE_UNAVAILABLE')) {
    c.header('Retry-After', '1');
    return page(c, 'Sessions are unavailable', html`<p>Sessions are unavailable right now, try again in a moment.</p><p><a href="">Try again</a></p>`, 503);
  }
  if (isSessionError(error, 'CSRF_MISMATCH')) {
    return page(c, 'Form refused', html`<p>This form had no valid security token, so nothing was changed. Go back, reload the page and try again.</p><p><a href="/">Home</a></p>`, 403);
  }
  console.error('latchkey demo:', error);
  return page(c, 'Something went wrong', html`<p>Something went wrong on our side. <a href="/">Home</a></p>`, 500);
});

const server = serve({ fetch: app.fetch, port, hostname: host }, () => {
  console.log(`latchkey demo on ${origin} (try /set/Chris, then /, /visit, /login and /devices) — sessions in ${redis ? `Redis at ${redisUrl}` : 'memory'}`);
});

async function shutdown(): Promise<void> {
  server.close();
  await sessions.close();
  await redis?.close();
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
