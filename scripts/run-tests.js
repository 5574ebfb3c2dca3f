// Runs test files with Node's test runner and tsx (Node 20 cannot glob *.ts).
//   node scripts/run-tests.js [--reporter=NAME] [--test-name-pattern=REGEX] [file or folder...]
// With no files it runs every test under test/ but the fault tests (minutes of killing and
// restarting Redis), which `npm run test:faults` runs. The default reporter prints one line per
// suite, the failures in full and the skipped tests with their reasons; --reporter=tap (or spec,
// dot) gives Node's own reporters.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { requireTools } from './preflight.js';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return find(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const { values, positionals } = parseArgs({
  options: { reporter: { type: 'string' }, 'test-name-pattern': { type: 'string', multiple: true } },
  allowPositionals: true,
});
requireTools();

const FAULTS = join('test', 'faults');
const files =
  positionals.length > 0
    ? positionals.flatMap((arg) => (statSync(arg).isDirectory() ? find(arg).sort() : [arg]))
    : find('test').filter((file) => !file.startsWith(FAULTS)).sort();
const reporter = values.reporter ?? new URL('./test-reporter.js', import.meta.url).pathname;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout',
    ...(values['test-name-pattern'] ?? []).map((pattern) => `--test-name-pattern=${pattern}`), ...files],
  // NODE_ENV=test keeps Express' default error handler from printing every expected 500/503.
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
