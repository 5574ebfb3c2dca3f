// What a contributor sees: `npm test` without Redis says at once how to install it, the default
// test output is a summary with the failures and skips spelled out (TAP on request), and the
// framework error paths the tests take on purpose print no stack traces into it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SAMPLE = join('test', 'fixtures', 'reporter-sample.ts');

/**
 * Runs `node args...` from the project's root, with `env` in place of this process's environment
 * if given, as a top-level run: without the variable that makes node:test report to a parent runner.
 */
function node(args: string[], { NODE_TEST_CONTEXT: _parent, ...env }: NodeJS.ProcessEnv = process.env) {
  const started = Date.now();
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', env, timeout: 60_000 });
  return { ...result, ms: Date.now() - started, output: result.stdout + result.stderr };
}

/** The path of npm's own CLI script, so it can run under a PATH that has no npm on it. */
function npmCli(): string {
  if (process.env.npm_execpath) return process.env.npm_execpath;
  const found = spawnSync('npm', ['prefix', '-g'], { encoding: 'utf8' });
  return join(found.stdout.trim(), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
}

describe('npm test', () => {
  it('without redis-server fails at once with one line saying how to install it', () => {
    // A PATH with node and sh (which npm runs scripts with) and nothing else.
    const bin = mkdtempSync(join(tmpdir(), 'latchkey-path-'));
    try {
      symlinkSync(process.execPath, join(bin, 'node'));
      symlinkSync('/bin/sh', join(bin, 'sh'));
      const run = node([npmCli(), 'test', '--silent'], { ...process.env, PATH: bin });
      assert.equal(run.status, 1, run.output);
      assert.equal(
        run.stderr,
        'latchkey tests: redis-server and redis-cli not found on the PATH; install Redis 7 or later (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run npm test again.\n',
      );
      assert.equal(run.stdout, '', 'nothing else ran');
      assert.ok(run.ms < 15_000, `it took ${run.ms} ms`);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('prints one line per suite, then the skips with their reasons, the failures in full, and the totals', () => {
    const run = node(['scripts/run-tests.js', SAMPLE]);
    assert.equal(run.status, 1, run.output);
    const lines = run.stdout.split('\n');
    assert.match(lines[0] as string, /^✖ test\/fixtures\/reporter-sample\.ts › sample \(4 tests, 2 failed, 1 skipped; [\d.]+ m?s\)$/);
    const skipped = run.stdout.indexOf('Skipped (1):\n  - test/fixtures/reporter-sample.ts › sample › is skipped\n      no frobnicator here: install one to run this test\n');
    const failures = run.stdout.indexOf('Failures (2):');
    assert.ok(skipped > 0 && failures > skipped, run.stdout);
    const details = run.stdout.slice(failures);
    assert.match(details, /1\) test\/fixtures\/reporter-sample\.ts › sample › compares\n +AssertionError \[ERR_ASSERTION\]: one and one make three\n/);
    assert.match(details, /2 !== 3/);
    assert.match(details, /at .*reporter-sample\.ts:9:12/, 'with the line that failed');
    assert.match(details, /2\) test\/fixtures\/reporter-sample\.ts › sample › throws\n +TypeError: the sample broke\n/);
    assert.doesNotMatch(details, /node:internal/, 'without the test runner in the stacks');
    assert.match(run.stdout, /\ntests 4 · pass 1 · fail 2 · skipped 1 · [\d.]+ m?s\n$/);
    assert.equal(run.stderr, '');
  });

  it('gives Node’s TAP on request', () => {
    const run = node(['scripts/run-tests.js', '--reporter=tap', SAMPLE]);
    assert.equal(run.status, 1, run.output);
    assert.match(run.stdout, /^TAP version 13\n/);
    assert.match(run.stdout, /\n +not ok 2 - compares\n/);
    assert.match(run.stdout, /# SKIP no frobnicator here/);
  });

  it('prints no stack traces for the errors the conformance suite causes on purpose', () => {
    // A handler that throws, and a secure() that throws, in every framework.
    const run = node([
      'scripts/run-tests.js',
      "--test-name-pattern=^(takes secure as a function|a handler's error takes the framework's error path)",
      join('test', 'conformance', 'memory.test.ts'),
    ]);
    assert.equal(run.status, 0, run.output);
    assert.match(run.stdout, /✔ test\/conformance\/suite\.ts › hono × memory \(2 tests;/);
    assert.doesNotMatch(run.output, /^\s+at /m, 'a stack trace was printed');
    assert.doesNotMatch(run.output, /RouteError/);
  });
});
