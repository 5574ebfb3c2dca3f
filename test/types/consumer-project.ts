// Scratch app projects that use latchkey the way an app that installed it does: the built package
// (package.json and dist/) under node_modules/latchkey, the app's other packages linked from the
// repo's node_modules, and the repo's TypeScript checking it. Nothing here runs npm.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import ts from 'typescript';

/** The repository's root directory. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The compiler options of an app that wants its dependencies' types checked: strict, and
 * `skipLibCheck: false`, so every declaration file latchkey ships is checked with the app's own
 * augmentations applied. TypeScript's own lib files are left out of the check (they are not
 * latchkey's, and checking them takes most of the time).
 */
export const STRICT_APP_OPTIONS: Readonly<Record<string, unknown>> = {
  target: 'ES2022',
  lib: ['ES2022'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  skipLibCheck: false,
  skipDefaultLibCheck: true,
  noEmit: true,
};

/** What goes into a scratch app project. */
export interface ConsumerProjectOptions {
  /** Packages of the repo's node_modules the app has installed, e.g. `express`, `@types/express`. */
  readonly packages: readonly string[];
  /** The app's files: path in the project to content. tsconfig.json includes every `.ts` among them. */
  readonly files: Readonly<Record<string, string>>;
  /** Compiler options over {@link STRICT_APP_OPTIONS}. */
  readonly compilerOptions?: Readonly<Record<string, unknown>>;
  /**
   * A directory that holds latchkey as installed (an unpacked `npm pack`, say), copied to
   * node_modules/latchkey; by default the repo's package.json and dist/.
   */
  readonly latchkey?: string;
  /** The app's package.json; an ESM app (`"type": "module"`) unless given. */
  readonly manifest?: Readonly<Record<string, unknown>>;
}

/** A scratch app project in a temporary directory. */
export interface ConsumerProject {
  readonly dir: string;
  /** Runs the repo's `tsc -p` on the project: its exit code and everything it printed. */
  tsc(): Promise<{ status: number | null; output: string }>;
  /**
   * Type-checks the project in this process and gives the errors, one per line, in the app's files
   * and in the declarations latchkey ships, as `tsc` reports them; the declarations of other
   * packages are not checked (they are not ours, and checking them is most of tsc's time). Files
   * parsed by an earlier call are reused, which makes checking many projects cheap.
   */
  typeErrors(): string;
  /** Deletes the project's directory. */
  remove(): void;
}

/** Fails unless dist/ holds declarations at least as new as every file in src/. */
export function assertBuilt(): void {
  const built = join(repoRoot, 'dist', 'index.d.ts');
  assert.ok(existsSync(built), 'dist/ is missing: run `npm run build` before this test (`npm test` does it for you)');
  const sources = readdirSync(join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  const changed = sources.filter((file) => statSync(join(repoRoot, 'src', file)).mtimeMs > statSync(built).mtimeMs);
  assert.deepEqual(changed, [], 'dist/ is older than these sources: run `npm run build` before this test (`npm test` does it for you)');
}

/**
 * Creates an app project: node_modules/latchkey is a copy (as npm would install it, so its own
 * imports resolve from the app's node_modules), every other package a link.
 */
export function createConsumerProject(options: ConsumerProjectOptions): ConsumerProject {
  // The real path: TypeScript names the files it resolves in node_modules by theirs.
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'latchkey-app-')));
  try {
    const modules = join(dir, 'node_modules');
    const latchkey = join(modules, 'latchkey');
    mkdirSync(latchkey, { recursive: true });
    if (options.latchkey !== undefined) {
      cpSync(options.latchkey, latchkey, { recursive: true });
    } else {
      cpSync(join(repoRoot, 'package.json'), join(latchkey, 'package.json'));
      cpSync(join(repoRoot, 'dist'), join(latchkey, 'dist'), { recursive: true });
    }
    for (const name of options.packages) {
      const source = join(repoRoot, 'node_modules', name);
      assert.ok(existsSync(join(source, 'package.json')), `${name} is not installed in the repo's node_modules: run npm install`);
      mkdirSync(dirname(join(modules, name)), { recursive: true });
      symlinkSync(source, join(modules, name), 'dir');
    }
    const files = Object.keys(options.files);
    for (const [path, content] of Object.entries(options.files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    const manifest = options.manifest ?? { name: 'app', private: true, type: 'module' };
    writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
    const tsconfig = {
      compilerOptions: { ...STRICT_APP_OPTIONS, ...options.compilerOptions },
      files: files.filter((path) => /\.[cm]?ts$/.test(path)),
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    tsc: () => runTsc(dir),
    typeErrors: () => typeErrors(dir),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Parsed declaration files, shared by the programs of every project (their files never change). */
const parsed = new Map<string, ts.SourceFile | undefined>();

function typeErrors(dir: string): string {
  const config = ts.getParsedCommandLineOfConfigFile(join(dir, 'tsconfig.json'), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => assert.fail(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')),
  });
  assert.ok(config !== undefined);
  const host = ts.createCompilerHost(config.options);
  const getSourceFile = host.getSourceFile.bind(host);
  const latchkey = join(dir, 'node_modules', 'latchkey') + '/';
  const isOurs = (fileName: string): boolean => fileName.startsWith(latchkey) || !fileName.includes('/node_modules/');
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    if (isOurs(fileName)) return getSourceFile(fileName, languageVersion, ...rest);
    const key = `${fileName}\0${JSON.stringify(languageVersion)}`;
    if (!parsed.has(key)) parsed.set(key, getSourceFile(fileName, languageVersion, ...rest));
    return parsed.get(key);
  };
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, host });
  assert.ok(
    program.getSourceFiles().some((file) => file.fileName.startsWith(latchkey)),
    `the app in ${dir} loads no declarations from node_modules/latchkey`,
  );
  const diagnostics = [...config.errors, ...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const file of program.getSourceFiles()) {
    if (isOurs(file.fileName)) diagnostics.push(...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file));
  }
  return ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (name) => name, getCurrentDirectory: () => dir, getNewLine: () => '\n' });
}

function runTsc(dir: string): Promise<{ status: number | null; output: string }> {
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => void (output += chunk.toString());
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', fail);
    child.on('close', (status) => done({ status, output }));
  });
}

/**
 * The line that marks a README code block as an app's own code: test/types/consumer.test.ts
 * compiles it in an app project, where test/readme.test.ts would look for it in an example or a
 * test (it cannot be one: its `declare module 'latchkey'` would retype the repo's own sessions).
 */
export const TYPE_CHECKED_MARKER = '<!-- type-checked as an app by test/types/consumer.test.ts -->';
