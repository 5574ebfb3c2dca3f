// The README's code must be code that runs: every TypeScript block in it is an excerpt of an
// example (each started by test/examples.test.ts) or of the tests (a test file, or the set-up code
// the tests run, such as the client configurations the fault tests use), and every npm script it
// names exists. A block marked as an app's own code is compiled in an app project by
// test/types/consumer.test.ts instead.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TYPE_CHECKED_MARKER } from './types/consumer-project.js';

const readme = readFileSync('README.md', 'utf8');

/** The fenced code blocks of `markdown` with their language, and whether the line before marks them as an app's code. */
function codeBlocks(markdown: string): Array<{ lang: string; code: string; appCode: boolean }> {
  const blocks: Array<{ lang: string; code: string; appCode: boolean }> = [];
  for (const match of markdown.matchAll(/^(?:(.*)\n)?```(\w*)\n([\s\S]*?)^```$/gm)) {
    blocks.push({ lang: match[2] ?? '', code: match[3] ?? '', appCode: match[1]?.trim() === TYPE_CHECKED_MARKER });
  }
  return blocks;
}

/** Files whose content a README example may come from: the examples, and the tests' code. */
function sources(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string, accept: (file: string) => boolean): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, accept);
      else if (accept(entry.name)) files.set(path, readFileSync(path, 'utf8'));
    }
  };
  walk('examples', (name) => name.endsWith('.ts'));
  walk('test', (name) => name.endsWith('.ts') && !name.endsWith('.d.ts'));
  return files;
}

describe('README.md', () => {
  const blocks = codeBlocks(readme).filter((block) => ['ts', 'typescript', 'js', 'javascript'].includes(block.lang));

  it('has code examples', () => {
    assert.ok(blocks.length >= 7, `found ${blocks.length} TypeScript blocks`);
  });

  it('shows only code that an example app or a test runs', () => {
    const files = sources();
    for (const { code, appCode } of blocks) {
      if (appCode) continue;
      const found = [...files].find(([, content]) => content.includes(code));
      assert.ok(found, `this README block is in no example and no test, so nothing runs it:\n${code}`);
    }
  });

  it('names the Bun and Deno versions that scripts/install-runtimes.js installs for the tests', () => {
    const script = readFileSync('scripts/install-runtimes.js', 'utf8');
    const pinned = /const VERSIONS = \{ bun: '([\d.]+)', deno: '([\d.]+)' \};/.exec(script);
    assert.ok(pinned, 'scripts/install-runtimes.js no longer pins the versions as this test expects');
    const claim = `on Bun ${pinned[1]} and Deno ${pinned[2]},`;
    assert.ok(readme.includes(claim), `the README's "Runtimes" section should say "${claim}"`);
  });

  it('names only npm scripts that exist, and one per framework example', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    const named = [...readme.matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1] as string);
    for (const name of named) assert.ok(name in scripts, `README names npm run ${name}, which package.json lacks`);
    for (const file of readdirSync('examples')) {
      const framework = file.replace(/\.ts$/, '');
      if (framework === 'demo' || framework === 'redis' || framework === 'address') continue;
      assert.equal(scripts[`example:${framework}`], `exec node --import tsx examples/${file}`);
      assert.ok(named.includes(`example:${framework}`), `README does not tell how to run examples/${file}`);
    }
  });
});
