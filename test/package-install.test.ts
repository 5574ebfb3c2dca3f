// The tarball a fresh clone packs, installed the way an app gets it: what it ships, whether its
// source maps resolve, whether TypeScript finds its types under each module setting the README
// names, and whether an ES module app and a CommonJS app compile against it and run. Nothing here
// touches the network: npm only packs (offline), the tarball is unpacked with tar, and the packages
// the scratch projects need besides latchkey are linked from this repository's node_modules.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSC = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
// `npm test` runs this file under npm, which names its own CLI; run directly, npm comes from PATH.
const NPM_CLI = process.env.npm_execpath;

interface Manifest {
  bin?: Record<string, string>;
  main?: string;
  types?: string;
  exports?: Record<string, string | Record<string, string>>;
  typesVersions?: Record<string, Record<string, string[]>>;
  dependencies?: Record<string, string>;
}

interface Packed {
  filename: string;
  files: { path: string; mode: number }[];
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for npm, tsc and the scratch apps: none of the npm_* variables `npm test` sets
 * (they would point a nested npm at this repository), no loader from NODE_OPTIONS, no test-runner
 * context.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) && name !== 'NODE_OPTIONS' && name !== 'NODE_TEST_CONTEXT') env[name] = value;
  }
  return env;
}

function run(command: string, args: string[], cwd: string, timeout = 60_000): Run {
  const child = spawnSync(command, args, { cwd, env: childEnv(), encoding: 'utf8', timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 });
  assert.equal(child.error, undefined, `${command} ${args.join(' ')} failed to run: ${String(child.error)}\n${child.stderr}`);
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

/** `npm pack --json` with `args` in `cwd`, offline; the one package it describes. */
function npmPack(cwd: string, args: string[]): Packed {
  const npmArgs = ['pack', '--json', '--offline', '--update-notifier=false', ...args];
  const result =
    NPM_CLI !== undefined && /\.[cm]?js$/.test(NPM_CLI) ? run(process.execPath, [NPM_CLI, ...npmArgs], cwd) : run('npm', npmArgs, cwd);
  assert.equal(result.status, 0, `npm ${npmArgs.join(' ')} in ${cwd} failed:\n${result.stderr}`);
  const [packed] = JSON.parse(result.stdout) as Packed[];
  assert.ok(packed !== undefined, `npm pack printed no package:\n${result.stdout}`);
  return packed;
}

/**
 * Copies what a fresh clone of this checkout holds (the files git tracks or would track, so no
 * dist/ and no node_modules/) to `clone`, and links node_modules for the build.
 */
function freshClone(clone: string): void {
  const listed = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root);
  assert.equal(listed.status, 0, `git ls-files failed (is ${root} a git checkout?):\n${listed.stderr}`);
  for (const file of listed.stdout.split('\0')) {
    if (file === '' || file === 'node_modules' || file.startsWith('node_modules/') || !existsSync(join(root, file))) continue;
    mkdirSync(dirname(join(clone, file)), { recursive: true });
    cpSync(join(root, file), join(clone, file));
  }
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'junction');
}

/** tsc's errors, each with the lines that continue it, split by whether they are in a file outside `inside`. */
function tscErrors(output: string, cwd: string, inside: string): { ours: string[]; foreign: string[] } {
  const ours: string[] = [];
  const foreign: string[] = [];
  let last: string[] | undefined;
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    const file = /^(.+?)\(\d+,\d+\): error TS\d+:/.exec(line)?.[1];
    if (file === undefined && /^\s/.test(line) && last !== undefined) {
      last[last.length - 1] += `\n${line}`;
      continue;
    }
    last = file !== undefined && !resolve(cwd, file).startsWith(inside + sep) ? foreign : ours;
    last.push(line);
  }
  return { ours, foreign };
}

/**
 * Compiles the project in `cwd` with the repository's tsc and fails on any error in it or in
 * latchkey's declarations. Errors in other packages' declarations (a linked @types package that
 * disagrees with a package it names) are not latchkey's: they are reported, not failed on.
 */
function assertCompiles(t: TestContext, cwd: string, what: string): void {
  const result = run(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], cwd);
  const { ours, foreign } = tscErrors(result.stdout, cwd, dirname(cwd));
  if (foreign.length > 0) t.diagnostic(`${what}: errors in other packages' declarations, not latchkey's: ${foreign.join(' | ')}`);
  assert.deepEqual(ours, [], `${what} does not compile against the packed latchkey`);
  assert.ok(result.status === 0 || foreign.length > 0, `tsc exited with ${result.status}:\n${result.stdout}${result.stderr}`);
}

/** Compiler options from tsconfig-style JSON (`{ module: 'nodenext' }`). */
function compilerOptions(json: Record<string, unknown>): ts.CompilerOptions {
  const { options, errors } = ts.convertCompilerOptionsFromJson(json, root);
  assert.deepEqual(errors.map((error) => ts.flattenDiagnosticMessageText(error.messageText, '\n')), []);
  return options;
}

/** Every file package.json names: the exports map's targets, main, types, typesVersions' targets and the commands. */
function namedFiles(manifest: Manifest): string[] {
  const named = new Set<string>(Object.values(manifest.bin ?? {}));
  for (const target of Object.values(manifest.exports ?? {})) {
    for (const file of typeof target === 'string' ? [target] : Object.values(target)) named.add(file);
  }
  for (const file of [manifest.main, manifest.types]) if (file !== undefined) named.add(file);
  for (const paths of Object.values(manifest.typesVersions ?? {})) for (const files of Object.values(paths)) for (const file of files) named.add(file);
  return [...named].map((file) => posix.normalize(file)).sort();
}

/** The packages the scratch projects get from this repository's node_modules, besides latchkey's dependencies. */
const LINKED = ['express', 'hono', '@hono/node-server', 'fastify', 'koa', '@types/node', '@types/express', '@types/koa'];

/** Links `name` from this repository's node_modules into `nodeModules`. */
function link(name: string, nodeModules: string): void {
  const target = join(root, 'node_modules', name);
  assert.ok(existsSync(join(target, 'package.json')), `${name} is not installed in ${root}/node_modules: run npm install`);
  mkdirSync(dirname(join(nodeModules, name)), { recursive: true });
  symlinkSync(target, join(nodeModules, name), 'junction');
}

const writeJson = (path: string, value: unknown): void => writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);

// skipLibCheck off: latchkey's declarations must compile in the app's program.
const COMPILER_OPTIONS = { strict: true, target: 'es2022', skipLibCheck: false, types: ['node'] };

// Every entry point: an import TypeScript cannot resolve to a declaration file is an error under `strict`.
const SUBPATHS = `
import type { MemoryStore, Session } from 'latchkey';
import type { session as honoSession } from 'latchkey/hono';
import type { session as expressSession } from 'latchkey/express';
import type { session as fastifySession } from 'latchkey/fastify';
import type { session as koaSession } from 'latchkey/koa';
import type { withSession } from 'latchkey/node';
import type { storeContract } from 'latchkey/testing';

export type EntryPoints = [MemoryStore, Session, typeof honoSession, typeof expressSession, typeof fastifySession, typeof koaSession, typeof withSession, typeof storeContract];
`;

// What both apps do once they listen: set a name, read it back with the cookie, and read it
// without; then print what they got and which file latchkey was loaded from.
const VISIT = (resolved: string): string => `
async function visit(port: number): Promise<void> {
  const base = 'http://127.0.0.1:' + port;
  const set = await fetch(base + '/set/Chris');
  const cookie = (set.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const back = await fetch(base + '/', { headers: { cookie } });
  const stranger = await fetch(base + '/');
  const result = { resolved: ${resolved}, cookie, set: await set.text(), back: await back.text(), stranger: await stranger.text() };
  process.stdout.write(JSON.stringify(result));
}
`;

const ESM_APP = `
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { MemoryStore } from 'latchkey';
import { session, type SessionEnv } from 'latchkey/hono';

interface Visitor { name: string }

const app = new Hono<SessionEnv<Visitor>>();
app.use(session<Visitor>({ store: new MemoryStore() }));
app.get('/', async (c) => {
  const name = await c.get('session').get('name');
  return c.text(name !== undefined ? 'Hello, ' + name : "I don't recognize you.");
});
app.get('/set/:name', async (c) => {
  await c.get('session').set('name', c.req.param('name'));
  return c.text('I recognize you now.');
});
${VISIT("import.meta.resolve('latchkey/hono')")}
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  void visit(info.port).finally(() => server.close());
});
`;

const CJS_APP = `
import express from 'express';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from 'latchkey';
import { session } from 'latchkey/express';

const app = express();
app.use(session({ store: new MemoryStore() }));
app.get('/', async (req, res) => {
  const name = await req.session.get('name');
  res.send(typeof name === 'string' ? 'Hello, ' + name : "I don't recognize you.");
});
app.get('/set/:name', async (req, res) => {
  await req.session.set('name', req.params.name);
  res.send('I recognize you now.');
});
${VISIT("require.resolve('latchkey/express')")}
const server = app.listen(0, '127.0.0.1', () => {
  void visit((server.address() as AddressInfo).port).finally(() => server.close());
});
`;

// The value imports of a CommonJS file, which TypeScript turns into require() calls.
const REQUIRES = `
import { MemoryStore } from 'latchkey';
import { session } from 'latchkey/express';

export const used = [MemoryStore, session];
`;

interface Visit {
  resolved: string;
  cookie: string;
  set: string;
  back: string;
  stranger: string;
}

/** Asserts that a compiled scratch app kept a session across two requests, with latchkey loaded from the tarball. */
function assertSessionKept(file: string, loaded: string): void {
  const result = run(process.execPath, [file], dirname(file), 20_000);
  assert.equal(result.status, 0, `${file} exited with ${result.status}:\n${result.stdout}${result.stderr}`);
  const visit = JSON.parse(result.stdout) as Visit;
  assert.equal(visit.set, 'I recognize you now.');
  assert.match(visit.cookie, /^session=[\w-]{43}$/, 'the first response sets the session cookie');
  assert.equal(visit.back, 'Hello, Chris', 'the session read back with the cookie');
  assert.equal(visit.stranger, "I don't recognize you.", 'without the cookie there is no session');
  const resolved = visit.resolved.startsWith('file:') ? fileURLToPath(visit.resolved) : visit.resolved;
  assert.equal(resolved, loaded, 'latchkey is loaded from the unpacked tarball');
}

describe('the tarball a fresh clone packs, installed into scratch projects', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
  let scratch = '';
  let installed = '';
  let shipped = new Set<string>();
  /** The mode of each file in the tarball. */
  let modes = new Map<string, number>();

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'latchkey-pack-'));
    // npm pack runs prepack, which has to build dist/ from nothing.
    const clone = join(scratch, 'clone');
    freshClone(clone);
    const packed = npmPack(clone, ['--pack-destination', scratch]);
    shipped = new Set(packed.files.map((file) => file.path));
    modes = new Map(packed.files.map((file) => [file.path, file.mode]));
    // One node_modules above both projects: latchkey unpacked, everything else linked.
    const nodeModules = join(scratch, 'node_modules');
    installed = join(nodeModules, 'latchkey');
    mkdirSync(installed, { recursive: true });
    const untar = run('tar', ['-xzf', join(scratch, packed.filename), '-C', installed, '--strip-components=1'], scratch);
    assert.equal(untar.status, 0, `tar could not unpack ${packed.filename}:\n${untar.stderr}`);
    for (const name of [...Object.keys(manifest.dependencies ?? {}), ...LINKED]) link(name, nodeModules);

    const esm = join(scratch, 'esm');
    mkdirSync(esm);
    writeJson(join(esm, 'package.json'), { name: 'scratch-esm', private: true, type: 'module' });
    writeFileSync(join(esm, 'app.ts'), ESM_APP);
    writeFileSync(join(esm, 'subpaths.ts'), SUBPATHS);
    writeJson(join(esm, 'tsconfig.json'), { compilerOptions: { ...COMPILER_OPTIONS, module: 'nodenext', outDir: 'out' }, files: ['app.ts', 'subpaths.ts'] });

    const cjs = join(scratch, 'cjs');
    mkdirSync(cjs);
    // No "type": the project is CommonJS, as most Express apps are.
    writeJson(join(cjs, 'package.json'), { name: 'scratch-cjs', private: true });
    writeFileSync(join(cjs, 'app.ts'), CJS_APP);
    writeFileSync(join(cjs, 'subpaths.ts'), SUBPATHS);
    writeFileSync(join(cjs, 'requires.ts'), REQUIRES);
    // module commonjs implies moduleResolution node10, which reads no exports map.
    writeJson(join(cjs, 'tsconfig.json'), {
      compilerOptions: { ...COMPILER_OPTIONS, module: 'commonjs', esModuleInterop: true, outDir: 'out' },
      files: ['app.ts', 'subpaths.ts'],
    });
  });

  after(() => {
    // rmSync removes the links in node_modules, never what they point to.
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
  });

  it('ships dist, the sources its maps name, README, LICENSE and SECURITY.md, and nothing else', () => {
    assert.ok(shipped.has('dist/index.js'), 'the tarball has no dist/: prepack did not build it');
    const missing = ['package.json', 'README.md', 'LICENSE', 'SECURITY.md', ...namedFiles(manifest)].filter((file) => !shipped.has(file));
    assert.deepEqual(missing, [], 'files package.json names, or that a user needs, missing from the tarball');
    const expected = (file: string): boolean =>
      ['package.json', 'README.md', 'LICENSE', 'SECURITY.md'].includes(file) ||
      (/^dist\/.+\.(js|d\.ts)(\.map)?$/.test(file) && !/\.test\./.test(file)) ||
      (/^src\/.+\.ts$/.test(file) && !/\.test\./.test(file));
    assert.deepEqual([...shipped].filter((file) => !expected(file)), [], 'files in the tarball a user does not need');
    const undeclared = [...shipped].filter((file) => file.endsWith('.js') && !shipped.has(file.replace(/\.js$/, '.d.ts')));
    assert.deepEqual(undeclared, [], 'modules shipped without a declaration file');
  });

  it('ships the latchkey command, executable, which runs from the tarball with nothing but its dependencies', () => {
    const bin = manifest.bin?.latchkey;
    assert.ok(bin !== undefined, 'package.json names no latchkey command in bin');
    const file = posix.normalize(bin);
    assert.ok(shipped.has(file), `the tarball lacks ${file}`);
    // npm makes a command executable when it links it into node_modules/.bin; the tarball already marks it so.
    assert.equal((modes.get(file) ?? 0) & 0o111, 0o111, `${file} is not executable in the tarball`);
    const command = join(installed, file);
    assert.match(readFileSync(command, 'utf8'), /^#!\/usr\/bin\/env node\n/, 'the command starts with its shebang');
    const help = run(process.execPath, [command, '--help'], scratch, 20_000);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: latchkey sessions <command>/);
    // No Redis client is installed beside latchkey here: the command says so in one line.
    const count = run(process.execPath, [command, 'sessions', 'count', '--redis', 'redis://127.0.0.1:1/0'], scratch, 20_000);
    assert.equal(count.status, 2, count.stderr);
    assert.equal(count.stderr, 'latchkey: no Redis client is installed: npm install redis (or ioredis)\n');
  });

  it('every source map and declaration map a shipped file names is shipped, and so is every source it maps', () => {
    const unresolved: string[] = [];
    let maps = 0;
    for (const file of shipped) {
      if (!/\.(js|d\.ts)$/.test(file)) continue;
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(installed, file), 'utf8'))?.[1];
      if (url === undefined) continue;
      const map = posix.join(posix.dirname(file), url);
      if (!shipped.has(map)) {
        unresolved.push(`${file} names ${map}`);
        continue;
      }
      maps++;
      const { sources, sourceRoot = '' } = JSON.parse(readFileSync(join(installed, map), 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const source of sources) {
        const path = posix.join(posix.dirname(map), sourceRoot, source);
        if (!shipped.has(path)) unresolved.push(`${map} maps ${path}`);
      }
    }
    assert.deepEqual(unresolved, [], 'source maps or sources named in the tarball but missing from it');
    // tsc writes one map per .js and one per .d.ts: the walk found them, so an empty list above means something.
    const modules = [...shipped].filter((file) => file.endsWith('.js')).length;
    assert.ok(modules > 0 && maps >= 2 * modules, `${maps} maps found for ${modules} modules`);
  });

  // Each module setting the README names, with the format of the importing file.
  const SETTINGS: { name: string; project: 'esm' | 'cjs'; options: Record<string, unknown> }[] = [
    { name: 'an ES module, module nodenext', project: 'esm', options: { module: 'nodenext' } },
    { name: 'an ES module, module node16', project: 'esm', options: { module: 'node16' } },
    { name: 'an ES module, moduleResolution bundler', project: 'esm', options: { module: 'esnext', moduleResolution: 'bundler' } },
    { name: 'a CommonJS file, module commonjs (node10 resolution)', project: 'cjs', options: { module: 'commonjs' } },
    { name: 'a CommonJS file, module nodenext', project: 'cjs', options: { module: 'nodenext' } },
  ];

  it('TypeScript resolves every entry point to its declaration file under each module setting the README names', () => {
    const wrong: string[] = [];
    for (const { name, project, options } of SETTINGS) {
      const compiler = compilerOptions(options);
      const importer = join(scratch, project, 'subpaths.ts');
      const mode = ts.getImpliedNodeFormatForFile(importer, undefined, ts.sys, compiler);
      for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
        if (typeof target === 'string') continue;
        const specifier = subpath === '.' ? 'latchkey' : `latchkey/${subpath.slice(2)}`;
        const { resolvedModule } = ts.resolveModuleName(specifier, importer, compiler, ts.sys, undefined, undefined, mode);
        const expected = join(installed, target.types ?? '(no types condition)');
        if (resolvedModule?.resolvedFileName !== expected) wrong.push(`${name}: ${specifier} -> ${resolvedModule?.resolvedFileName ?? 'nothing'}, not ${expected}`);
      }
    }
    assert.deepEqual(wrong, [], 'entry points TypeScript does not resolve to their declarations');
  });

  it('a CommonJS file may import latchkey under module nodenext, and not under node16 (TS1479), as the README says', () => {
    const errors = (module: string): string[] => {
      const file = join(scratch, 'cjs', 'requires.ts');
      const program = ts.createProgram([file], compilerOptions({ module, strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['es2022'] }));
      return program.getSemanticDiagnostics(program.getSourceFile(file)).map((error) => `TS${error.code}: ${ts.flattenDiagnosticMessageText(error.messageText, ' ')}`);
    };
    assert.deepEqual(errors('nodenext'), [], 'a CommonJS file cannot import latchkey under module nodenext');
    const node16 = errors('node16');
    assert.equal(node16.length, 2, `expected one error per import of latchkey under module node16: ${node16.join('\n')}`);
    for (const error of node16) assert.match(error, /^TS1479: .*"latchkey(\/express)?"/);
  });

  it('an ES module project (TypeScript strict, module nodenext) compiles against it and its Hono app keeps a session', (t) => {
    const esm = join(scratch, 'esm');
    assertCompiles(t, esm, 'the ES module project (module nodenext)');
    assertSessionKept(join(esm, 'out', 'app.js'), join(installed, 'dist', 'adapters', 'hono.js'));
  });

  // require() of an ES module works from Node 20.19 and 22.12 on, which process.features tells.
  const requireEsm = process.features.require_module;

  it(`a CommonJS project (module commonjs, node10 resolution) compiles against it and its Express app ${requireEsm ? 'keeps a session' : 'fails with ERR_REQUIRE_ESM on this Node'}`, (t) => {
    const cjs = join(scratch, 'cjs');
    assertCompiles(t, cjs, 'the CommonJS project (module commonjs)');
    const app = join(cjs, 'out', 'app.js');
    assert.match(readFileSync(app, 'utf8'), /require\("latchkey\/express"\)/, 'tsc compiled the import to require()');
    if (requireEsm) {
      assertSessionKept(app, join(installed, 'dist', 'adapters', 'express.js'));
    } else {
      const result = run(process.execPath, [app], cjs, 20_000);
      assert.match(result.stderr, /ERR_REQUIRE_ESM/, `Node ${process.version} has no require(esm), yet the CommonJS app did not fail with ERR_REQUIRE_ESM`);
    }
  });
});
