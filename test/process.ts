// Programs run as child processes by the tests (example apps, app processes of the race tests, apps
// in Bun and Deno): what they print collected, stopped by SIGTERM and then SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';

/** A running program and everything it printed so far. */
export interface Program {
  readonly child: ChildProcess;
  output(): string;
  /** Stops it: SIGTERM, then SIGKILL if it is still running 5 s later. */
  stop(): Promise<void>;
}

/** Runs `file` with tsx (as the npm scripts do), with `env` added to this process's environment. */
export function runProgram(file: string, env: Record<string, string> = {}): Program {
  return spawnProgram(process.execPath, ['--import', 'tsx', file], env);
}

/** Runs `command` with `args`, with `env` added to this process's environment. */
export function spawnProgram(command: string, args: readonly string[], env: Record<string, string> = {}): Program {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => void (output += chunk.toString());
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Resolves the first match of `pattern` in what `program` prints, once it appears.
 * @throws when the program exits first, or prints no match within `timeoutMs`, with its output
 */
export async function waitForOutput(program: Program, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      program.child.stdout?.off('data', check);
      program.child.stderr?.off('data', check);
      program.child.off('exit', exited);
      settle();
    };
    const check = (): void => {
      const match = pattern.exec(program.output());
      if (match) finish(() => resolve(match));
    };
    const exited = (code: number | null): void => finish(() => reject(new Error(`${what} exited with ${code}:\n${program.output()}`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s:\n${program.output()}`))), timeoutMs);
    program.child.stdout?.on('data', check);
    program.child.stderr?.on('data', check);
    program.child.once('exit', exited);
    check();
  });
}

/** Whether `path` is a file this process may run: for the browsers and runtimes the tests look for. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The options and body of a test that cannot run because a tool is `missing` (the reason, with how
 * to install it): `it(name, ...withoutTool(missing))` skips it with that reason, or fails it under
 * `CI=true`, where .ci/run installs every tool, so that a missing one is a broken build and not a
 * skip. (The caller calls `it`, so that node:test reports the test where its suite is.)
 */
export function withoutTool(missing: string): [options: { skip?: string }, fn: () => void] {
  if (process.env.CI !== 'true') return [{ skip: missing }, () => {}];
  return [
    {},
    () => {
      throw new Error(`CI=true and this test ${missing}`);
    },
  ];
}
