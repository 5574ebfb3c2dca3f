// What `npm test` needs besides npm packages, checked before anything else runs: the tests start
// their own redis-server processes (and create Clusters with redis-cli). Missing, it says in one
// line how to install them and exits with status 1.
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const TOOLS = ['redis-server', 'redis-cli'];

/** The tools of {@link TOOLS} that cannot be run from the PATH. */
export function missingTools() {
  return TOOLS.filter((tool) => {
    const result = spawnSync(tool, ['--version'], { stdio: 'ignore' });
    return result.error !== undefined || result.status !== 0;
  });
}

/** Exits with one line saying how to install what is missing, if anything is. */
export function requireTools() {
  const missing = missingTools();
  if (missing.length === 0) return;
  console.error(
    `latchkey tests: ${missing.join(' and ')} not found on the PATH; install Redis 7 or later (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run npm test again.`,
  );
  process.exit(1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) requireTools();
