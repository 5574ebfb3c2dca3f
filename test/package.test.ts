// The published package: installing latchkey for one framework must not pull in another, and the
// entry points of the exports map must be sound. Works offline on the built dist/ (`npm test`
// builds before it runs the tests) and the installed node_modules; it never runs npm.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertBuilt } from './types/consumer-project.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Manifest {
  name?: string;
  main?: string;
  types?: string;
  exports?: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

function readManifest(path: string): Manifest {
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
}

const manifest = readManifest(join(root, 'package.json'));

const FRAMEWORKS = ['express', 'fastify', 'hono', 'koa'] as const;
const REDIS_CLIENTS = ['redis', 'ioredis'] as const;
type Framework = (typeof FRAMEWORKS)[number];

/** The packages of `framework`: the framework itself and its scoped plugins (`@fastify/*`...). */
function isOfFramework(name: string, framework: Framework): boolean {
  return name === framework || name.startsWith(`@${framework}/`);
}

/** A Redis client library: node-redis (`redis`, `@redis/*`) or ioredis (`ioredis`, `@ioredis/*`). */
function isRedisClient(name: string): boolean {
  return REDIS_CLIENTS.some((client) => name === client || name.startsWith(`@${client}/`));
}

function isForbiddenDependency(name: string): boolean {
  return FRAMEWORKS.some((framework) => isOfFramework(name, framework)) || isRedisClient(name);
}

/** The directory of the installed package `name` as Node would find it from `fromDir`, or undefined. */
function findInstalled(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The dependencies installing a package pulls in: `dependencies` and the peers it does not mark optional. */
function requiredDependencies(pkg: Manifest): string[] {
  const peers = Object.keys(pkg.peerDependencies ?? {}).filter((name) => pkg.peerDependenciesMeta?.[name]?.optional !== true);
  return [...Object.keys(pkg.dependencies ?? {}), ...peers];
}

/**
 * The packages installing latchkey pulls in, walked through node_modules the way Node resolves
 * them: name -> the chain of packages that pulls it in. `missing` lists chains to packages that
 * are not installed.
 */
function dependencyClosure(): { closure: Map<string, string[]>; missing: string[] } {
  assert.ok(existsSync(join(root, 'node_modules')), 'node_modules is missing: run npm install first');
  const closure = new Map<string, string[]>();
  const missing: string[] = [];
  const queue: { name: string; fromDir: string; chain: string[] }[] = Object.keys(manifest.dependencies ?? {}).map((name) => ({
    name,
    fromDir: root,
    chain: ['latchkey'],
  }));
  const visitedDirs = new Set<string>();
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const { name, fromDir, chain } = next;
    if (!closure.has(name)) closure.set(name, [...chain, name]);
    const dir = findInstalled(name, fromDir);
    if (dir === undefined) {
      missing.push([...chain, name].join(' > '));
      continue;
    }
    if (visitedDirs.has(dir)) continue;
    visitedDirs.add(dir);
    const pkg = readManifest(join(dir, 'package.json'));
    // An npm alias ("x": "npm:express@5") installs under one name a package with another.
    if (pkg.name !== undefined && !closure.has(pkg.name)) closure.set(pkg.name, [...chain, name]);
    for (const dependency of requiredDependencies(pkg)) queue.push({ name: dependency, fromDir: dir, chain: [...chain, name] });
  }
  return { closure, missing };
}

describe('what installing latchkey pulls in', () => {
  it('its dependency closure holds no framework and no Redis client', () => {
    const { closure, missing } = dependencyClosure();
    assert.deepEqual(missing, [], 'dependencies that are not installed (run npm install)');
    const forbidden = [...closure].filter(([name]) => isForbiddenDependency(name)).map(([, chain]) => chain.join(' > '));
    assert.deepEqual(forbidden, [], 'frameworks or Redis clients pulled in by installing latchkey');
    // The walk did find the runtime dependencies, so an empty result above means something.
    for (const name of Object.keys(manifest.dependencies ?? {})) assert.ok(closure.has(name), name);
  });

  it('has every framework and Redis client as an optional peer, never as a dependency', () => {
    for (const name of [...FRAMEWORKS, ...REDIS_CLIENTS]) {
      assert.equal(typeof manifest.peerDependencies?.[name], 'string', `${name} is missing from peerDependencies`);
      assert.equal(manifest.peerDependenciesMeta?.[name]?.optional, true, `${name} is not marked optional in peerDependenciesMeta`);
      assert.equal(manifest.dependencies?.[name], undefined, `${name} is in dependencies`);
      assert.equal(manifest.optionalDependencies?.[name], undefined, `${name} is in optionalDependencies`);
    }
    const forbidden = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {})].filter(
      isForbiddenDependency,
    );
    assert.deepEqual(forbidden, [], 'frameworks or Redis clients in dependencies or optionalDependencies');
  });
});

/** The `types` and `default` files of each subpath export (`.`, `./hono`...), relative to the root. */
function subpathExports(): Map<string, { types: string; default: string }> {
  const entries = new Map<string, { types: string; default: string }>();
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    if (subpath === './package.json') continue;
    assert.ok(typeof target === 'object', `exports['${subpath}'] should have types and default conditions`);
    const { types, default: main } = target;
    assert.ok(types !== undefined && main !== undefined, `exports['${subpath}'] should have types and default conditions`);
    entries.set(subpath, { types, default: main });
  }
  return entries;
}

const EXPECTED_SUBPATHS = ['.', './hono', './express', './express-session', './fastify', './fastify-session', './koa', './koa-session', './node', './testing'];

// The child process registers these module hooks. They record every module an import resolves to
// (ESM, and CommonJS imported from ESM), and answer the report specifier with that list, so the
// child reads it synchronously with its imports rather than over an asynchronous message port.
const REPORT = 'latchkey-probe:report';
const HOOKS = `
const resolved = new Set();
export async function resolve(specifier, context, nextResolve) {
  if (specifier === ${JSON.stringify(REPORT)}) return { url: specifier, shortCircuit: true };
  const result = await nextResolve(specifier, context);
  resolved.add(result.url);
  return result;
}
export async function load(url, context, nextLoad) {
  if (url === ${JSON.stringify(REPORT)}) {
    return { format: 'module', source: 'export default ' + JSON.stringify([...resolved]) + ';', shortCircuit: true };
  }
  return nextLoad(url, context);
}
`;
const dataUrl = (source: string): string => `data:text/javascript,${encodeURIComponent(source)}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(dataUrl(HOOKS))});`;

/** The package a module file belongs to (`cookie`, `@fastify/error`), or undefined outside node_modules. */
function packageOf(location: string): string | undefined {
  if (!location.startsWith('file:') && !location.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(location)) return undefined;
  const path = (location.startsWith('file:') ? fileURLToPath(location) : location).replaceAll('\\', '/');
  const at = path.lastIndexOf('/node_modules/');
  if (at === -1) return undefined;
  const [first, second] = path.slice(at + '/node_modules/'.length).split('/');
  return first?.startsWith('@') ? `${first}/${second}` : first;
}

/**
 * Imports `specifier` in a fresh `node` process and returns the packages from node_modules it
 * loaded: those the ESM resolver saw, plus those in the CommonJS cache (CommonJS packages
 * `require()` each other past the ESM hooks on Node 20).
 */
function packagesLoadedBy(specifier: string): string[] {
  const main = `
import { createRequire } from 'node:module';
await import(${JSON.stringify(specifier)});
// Give anything an entry point starts without awaiting at load time a moment to show up.
await new Promise((resolve) => setTimeout(resolve, 50));
const { default: esm } = await import(${JSON.stringify(REPORT)});
const cjs = Object.keys(createRequire(${JSON.stringify(pathToFileURL(join(root, 'package.json')).href)}).cache);
process.stdout.write(JSON.stringify({ esm, cjs }));
`;
  // A clean environment: no loader from NODE_OPTIONS, and no test-runner context inherited from this process.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  const child = spawnSync(process.execPath, ['--import', dataUrl(REGISTER), '--input-type=module', '--eval', main], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 30_000,
    killSignal: 'SIGKILL',
    maxBuffer: 16 * 1024 * 1024,
  });
  assert.equal(child.error, undefined, `importing ${specifier} in a child process failed: ${String(child.error)}\n${child.stderr}`);
  assert.equal(child.status, 0, `importing ${specifier} in a child process exited with ${child.status}:\n${child.stderr}`);
  const { esm, cjs } = JSON.parse(child.stdout) as { esm: string[]; cjs: string[] };
  const packages = new Set<string>();
  for (const location of [...esm, ...cjs]) {
    const name = packageOf(location);
    if (name !== undefined) packages.add(name);
  }
  return [...packages].sort();
}

/** What each entry point must not load just by being imported. */
const MUST_NOT_LOAD: Record<string, readonly Framework[]> = {
  '.': FRAMEWORKS,
  './node': FRAMEWORKS,
  './testing': FRAMEWORKS,
  './koa': ['express', 'fastify', 'hono'],
  // Not even koa: the adapter only types against it.
  './koa-session': ['express', 'fastify', 'hono', 'koa'],
  './express': ['koa', 'fastify', 'hono'],
  './express-session': ['koa', 'fastify', 'hono', 'express'],
  // fastify-plugin is a dependency, but it only tags the plugin function: fastify itself stays unloaded.
  './fastify': ['express', 'koa', 'hono', 'fastify'],
  './fastify-session': ['express', 'koa', 'hono', 'fastify'],
  './hono': ['express', 'koa', 'fastify'],
};

describe('the entry points of the exports map', () => {
  it('are exactly the documented subpaths', () => {
    assert.deepEqual([...subpathExports().keys()].sort(), [...EXPECTED_SUBPATHS].sort());
  });

  it('have every types and default file in dist', () => {
    assertBuilt();
    const absent: string[] = [];
    for (const [subpath, { types, default: main }] of subpathExports()) {
      for (const file of [types, main]) {
        assert.ok(file.startsWith('./dist/'), `exports['${subpath}'] points outside dist: ${file}`);
        if (!existsSync(join(root, file))) absent.push(`${subpath}: ${file}`);
      }
    }
    for (const file of [manifest.main, manifest.types]) {
      if (file !== undefined && !existsSync(join(root, file))) absent.push(`top level: ${file}`);
    }
    assert.deepEqual(absent, [], 'files named by package.json that the build did not produce');
  });

  it('the probe sees packages loaded through ESM and through CommonJS require', () => {
    // express is CommonJS: express itself comes through the ESM import, body-parser only through require().
    const loaded = packagesLoadedBy('express');
    assert.ok(loaded.includes('express'), `probe missed express: ${loaded.join(', ')}`);
    assert.ok(loaded.includes('body-parser'), `probe missed body-parser: ${loaded.join(', ')}`);
  });

  for (const subpath of EXPECTED_SUBPATHS) {
    const forbidden = MUST_NOT_LOAD[subpath] ?? FRAMEWORKS;
    it(`${subpath === '.' ? 'latchkey' : `latchkey/${subpath.slice(2)}`} loads neither ${forbidden.join(', ')} nor a Redis client when imported`, (t) => {
      assertBuilt();
      const file = subpathExports().get(subpath)?.default;
      assert.ok(file !== undefined, `no exports['${subpath}']`);
      const loaded = packagesLoadedBy(pathToFileURL(join(root, file)).href);
      t.diagnostic(`${subpath} loads: ${loaded.join(', ') || '(no package from node_modules)'}`);
      const wrong = loaded.filter((name) => forbidden.some((framework) => isOfFramework(name, framework)) || isRedisClient(name));
      assert.deepEqual(wrong, [], `importing ${file} loads packages it must not`);
      // Everything a dist file loads is installed along with latchkey (else a fresh install would break).
      const { closure } = dependencyClosure();
      const undeclared = loaded.filter((name) => !closure.has(name));
      assert.deepEqual(undeclared, [], `importing ${file} loads packages that installing latchkey does not pull in`);
      if (subpath === './fastify') assert.ok(loaded.includes('fastify-plugin'), `probe missed fastify-plugin: ${loaded.join(', ')}`);
    });
  }
});
