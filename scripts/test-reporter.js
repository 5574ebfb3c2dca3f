// The default reporter of `npm test` (a node:test custom reporter): one line per top-level suite
// as it ends, then every failure in full, every skipped test with its reason, and the totals.
// `node scripts/run-tests.js --reporter=tap` (or spec, dot) gives Node's own reporters instead.
import { relative } from 'node:path';
import { inspect } from 'node:util';

const useColor = process.stdout.isTTY === true && !('NO_COLOR' in process.env);
const paint = (code, text) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
const red = (text) => paint(31, text);
const green = (text) => paint(32, text);
const yellow = (text) => paint(33, text);
const dim = (text) => paint(2, text);

/** `ms` as people read it: 850 ms, 4.2 s, 3 min 12 s. */
function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function fileOf(data) {
  return data.file === undefined ? '(no file)' : relative(process.cwd(), data.file);
}

/** What a failure says: the assertion or error itself (node:test wraps it), with its stack. */
function describeError(error) {
  const cause = error?.code === 'ERR_TEST_FAILURE' && error.cause !== undefined ? error.cause : error;
  const text = cause instanceof Error ? (cause.stack ?? String(cause)) : inspect(cause, { depth: 4 });
  return text
    .split('\n')
    .filter((line) => !/\(node:|node_modules\/tsx\//.test(line))
    .map((line) => `      ${line}`)
    .join('\n');
}

/** The skip reason node:test gives tests that --test-name-pattern leaves out. */
const FILTERED_OUT = 'test name does not match pattern';

/** Counts under one test: leaf tests, and how many of them failed or were skipped. */
const zero = () => ({ tests: 0, failed: 0, skipped: 0 });

function add(into, counts) {
  into.tests += counts.tests;
  into.failed += counts.failed;
  into.skipped += counts.skipped;
}

// node:test loads a custom reporter from the default export.
// eslint-disable-next-line no-restricted-syntax
export default async function* report(source) {
  // Per file: the names of the tests open at each depth, and what their finished descendants add
  // up to. node:test names the file a test is declared in, which for a test declared by a helper
  // is not its suite's: the run's totals therefore count tests as they end.
  const files = new Map();
  const all = zero();
  const failures = [];
  const skips = [];
  let totalMs = 0;
  for await (const { type, data } of source) {
    if (type === 'test:stdout' || type === 'test:stderr') {
      yield data.message;
      continue;
    }
    if (type === 'test:diagnostic') {
      // The run's own figures come as diagnostics without a file; its duration is one of them.
      const match = data.file === undefined ? /^duration_ms ([\d.]+)$/.exec(data.message) : null;
      if (match) totalMs = Number(match[1]);
      continue;
    }
    if (type !== 'test:start' && type !== 'test:pass' && type !== 'test:fail') continue;
    // Tests left out by --test-name-pattern are not news.
    if (data.skip === FILTERED_OUT) continue;
    const file = fileOf(data);
    let state = files.get(file);
    if (!state) files.set(file, (state = { names: [], counts: [] }));
    const depth = data.nesting;
    if (type === 'test:start') {
      state.names[depth] = data.name;
      state.counts[depth + 1] = zero();
      continue;
    }
    state.names[depth] = data.name;
    const below = state.counts[depth + 1] ?? zero();
    state.counts[depth + 1] = zero();
    // A suite (describe) is never a test itself, even when all its tests were left out.
    const isLeaf = below.tests === 0 && data.details?.type !== 'suite';
    const path = [file, ...state.names.slice(0, depth + 1).filter((name) => name !== undefined)].join(' › ');
    const mine = isLeaf
      ? { tests: 1, failed: type === 'test:fail' ? 1 : 0, skipped: data.skip !== undefined && data.skip !== false ? 1 : 0 }
      : below;
    if (type === 'test:fail') {
      // A suite fails because of its tests (listed already), or by itself: a hook, or a file that
      // did not load, which counts as one failure. Tests cancelled by that are counted, not listed.
      const why = data.details?.error?.failureType;
      if (!isLeaf && why !== 'subtestsFailed' && below.failed === 0) mine.failed = mine.tests = Math.max(mine.tests, 1);
      if (isLeaf ? why !== 'cancelledByParent' : why !== 'subtestsFailed') failures.push({ path, error: data.details?.error });
    }
    if (isLeaf || (type === 'test:fail' && mine.failed > below.failed)) add(all, isLeaf ? mine : { tests: 1, failed: 1, skipped: 0 });
    if (isLeaf && mine.skipped) skips.push({ path, reason: typeof data.skip === 'string' ? data.skip : 'skipped' });
    add((state.counts[depth] ??= zero()), mine);
    if (depth === 0) {
      const mark = mine.failed > 0 ? red('✖') : green('✔');
      const parts = [`${mine.tests} test${mine.tests === 1 ? '' : 's'}`];
      if (mine.failed > 0) parts.push(red(`${mine.failed} failed`));
      if (mine.skipped > 0) parts.push(yellow(`${mine.skipped} skipped`));
      const where = data.name === file || data.file === undefined ? file : `${file} › ${data.name}`;
      if (mine.tests > 0) yield `${mark} ${where} ${dim(`(${parts.join(', ')}; ${duration(data.details?.duration_ms ?? 0)})`)}\n`;
    }
  }
  if (skips.length > 0) {
    yield `\n${yellow(`Skipped (${skips.length}):`)}\n`;
    for (const { path, reason } of skips) yield `  - ${path}\n      ${reason}\n`;
  }
  if (failures.length > 0) {
    yield `\n${red(`Failures (${failures.length}):`)}\n`;
    for (const [index, { path, error }] of failures.entries()) yield `\n  ${index + 1}) ${path}\n${describeError(error)}\n`;
  }
  const passed = all.tests - all.failed - all.skipped;
  const line = [
    `tests ${all.tests}`,
    (all.failed > 0 ? red : green)(`pass ${passed}`),
    ...(all.failed > 0 ? [red(`fail ${all.failed}`)] : []),
    ...(all.skipped > 0 ? [yellow(`skipped ${all.skipped}`)] : []),
    duration(totalMs),
  ];
  yield `\n${line.join(' · ')}\n`;
}
