import { isExecutable, withoutTool } from '../process.js';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * The flags every test browser starts with. Besides headless without sandbox or GPU (which a
 * container has neither of), they stop everything Chromium would fetch on its own, so that the
 * only traffic is the test's own.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where the Chromium to test with is, or why there is none. */
export type ChromiumLookup = { readonly path: string } | { readonly missing: string };

/**
 * Finds the Chromium to test with: `CHROMIUM_PATH` when set, else Debian's `/usr/bin/chromium`.
 * @throws when `CHROMIUM_PATH` names no executable: a setting that is wrong is not a reason to skip
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): ChromiumLookup {
  const configured = env.CHROMIUM_PATH;
  if (configured !== undefined && configured !== '') {
    if (!isExecutable(configured)) throw new Error(`CHROMIUM_PATH=${configured} is not an executable file`);
    return { path: configured };
  }
  if (isExecutable(DEBIAN_CHROMIUM)) return { path: DEBIAN_CHROMIUM };
  return {
    missing:
      `needs Chromium, not found at ${DEBIAN_CHROMIUM}: install it with \`apt-get install chromium\` ` +
      '(Debian), or set CHROMIUM_PATH to a Chromium executable',
  };
}

/** Options of {@link describeInChromium}. */
export interface ChromiumSuiteOptions {
  /**
   * Host names that resolve to 127.0.0.1 in the browser, in Chromium's `--host-resolver-rules`
   * pattern syntax: `'*.latchkey.test'` maps www.latchkey.test, app.latchkey.test and so on, so that
   * cookies with a Domain attribute can be tested against a server on loopback. Every other name
   * but `localhost` fails to resolve. @default []
   */
  readonly hosts?: readonly string[];
}

/** What each test gets: a context of its own (an empty cookie jar and storage) and a page in it. */
export interface BrowserFixture {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
}

/** The suite {@link describeInChromium} hands its body. */
export interface ChromiumSuite {
  /**
   * Declares a test that runs with a fresh context and page, closed after it. Where Chromium is
   * missing the test is skipped with the reason and how to install it; with `CI=true` it fails.
   */
  test(name: string, fn: (fixture: BrowserFixture) => Promise<void>): void;
}

/** How long one Playwright action (a navigation, a click) may take before the test fails. */
const ACTION_TIMEOUT_MS = 20_000;

/** `--host-resolver-rules` for `hosts`: those names to loopback, every other name unresolvable. */
export function hostResolverRules(hosts: readonly string[]): string {
  for (const host of hosts) {
    if (!/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host)) {
      throw new Error(`host pattern must look like '*.example.test' or 'www.example.test', got ${JSON.stringify(host)}`);
    }
  }
  // The catch-all keeps a test that names a host nobody mapped on this machine instead of on the
  // internet; the rules apply to IP literals too, hence the loopback exclusions.
  return [...hosts.map((host) => `MAP ${host} 127.0.0.1`), 'MAP * ~NOTFOUND', 'EXCLUDE localhost', 'EXCLUDE 127.0.0.1'].join(', ');
}

/**
 * A `describe` whose tests run in one headless Chromium, launched before the first test (a fresh
 * profile of its own, which Playwright removes on close) and closed after the last.
 *
 * ```ts
 * describeInChromium('cookies', { hosts: ['*.latchkey.test'] }, (chromium) => {
 *   chromium.test('keeps the session', async ({ page }) => { ... });
 * });
 * ```
 */
export function describeInChromium(name: string, options: ChromiumSuiteOptions, body: (suite: ChromiumSuite) => void): void {
  const found = findChromium();
  describe(name, () => {
    if ('missing' in found) {
      body({ test: (testName) => it(testName, ...withoutTool(found.missing)) });
      return;
    }

    let browser: Browser | undefined;
    before(async () => {
      browser = await chromium.launch({
        executablePath: found.path,
        args: [...CHROMIUM_ARGS, `--host-resolver-rules=${hostResolverRules(options.hosts ?? [])}`],
        timeout: 30_000,
      });
    });
    after(async () => {
      await browser?.close();
    });

    body({
      test: (testName, fn) =>
        it(testName, async () => {
          if (browser === undefined) throw new Error('Chromium did not start');
          const context = await browser.newContext();
          try {
            context.setDefaultTimeout(ACTION_TIMEOUT_MS);
            const page = await context.newPage();
            await fn({ browser, context, page });
          } finally {
            await context.close();
          }
        }),
    });
  });
}
