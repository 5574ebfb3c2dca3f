// Runs every test file under test/ with Node's test runner and tsx (Node 20 cannot glob *.ts).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return find(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

// `npm test` runs everything but the fault tests (minutes of killing and restarting Redis), which
// `npm run test:faults` runs: node scripts/run-tests.js test/faults. Arguments are files or folders.
const FAULTS = join('test', 'faults');
const files =
  process.argv.length > 2
    ? process.argv.slice(2).flatMap((arg) => (statSync(arg).isDirectory() ? find(arg).sort() : [arg]))
    : find('test').filter((file) => !file.startsWith(FAULTS)).sort();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  // NODE_ENV=test keeps Express' default error handler from printing every expected 500/503.
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
