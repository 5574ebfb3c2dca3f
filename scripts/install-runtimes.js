// Installs the Bun and Deno versions that test/runtimes runs the conformance suite on into .runtimes/
// (gitignored), from their npm packages, which ship the binaries: `node scripts/install-runtimes.js`.
// The tests find them there before any on PATH. .ci/run calls this after `npm ci`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The tested versions: README's "Runtimes" names them too. */
const VERSIONS = { bun: '1.4.5', deno: '2.9.6' };
const DIR = '.runtimes';

function installed(name) {
  try {
    return JSON.parse(readFileSync(join(DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function run(command, args) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1' } });
  if (result.status !== 0) {
    process.stdout.write(result.stdout ?? '');
    throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal})`);
  }
  return result.stdout.trim();
}

const wanted = Object.entries(VERSIONS).filter(([name, version]) => installed(name) !== version);
if (wanted.length > 0) {
  // The packages' postinstall scripts put the platform's binary in place of their bin stub.
  const specs = wanted.map(([name, version]) => `${name}@${version}`);
  console.log(`installing ${specs.join(' ')} into ${DIR}/`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  run(npm, ['install', '--prefix', DIR, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', ...specs]);
}
for (const name of Object.keys(VERSIONS)) {
  const bin = join(DIR, 'node_modules', '.bin', name);
  console.log(`${bin} --version: ${run(bin, ['--version']).split('\n')[0]}`);
}
