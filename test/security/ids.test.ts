import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSessionId, isSessionId } from '../../src/core/id.js';

const COUNT = 1_000_000;
const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

describe('session ids at scale', () => {
  it(`${COUNT.toLocaleString('en')} ids: no duplicates, each exactly 32 bytes in canonical base64url, each passes isSessionId`, (t) => {
    const started = Date.now();
    const seen = new Set<string>();
    let duplicates = 0;
    let wrongLength = 0;
    let notCanonical = 0;
    let rejected = 0;
    for (let i = 0; i < COUNT; i++) {
      const id = createSessionId();
      // Counted rather than asserted one by one: a million assert calls would dwarf the work.
      if (seen.has(id)) duplicates++;
      else seen.add(id);
      const bytes = Buffer.from(id, 'base64url');
      if (bytes.length !== 32) wrongLength++;
      if (bytes.toString('base64url') !== id) notCanonical++;
      if (!isSessionId(id)) rejected++;
    }
    t.diagnostic(`${COUNT} ids in ${Date.now() - started} ms: ${seen.size} distinct, ${duplicates} duplicates, ${wrongLength} not 32 bytes, ${notCanonical} not canonical, ${rejected} failing isSessionId`);
    assert.equal(duplicates, 0);
    assert.equal(seen.size, COUNT);
    assert.equal(wrongLength, 0);
    assert.equal(notCanonical, 0);
    assert.equal(rejected, 0);
  });

  it('nothing under src/ uses Math.random', () => {
    const files = filesUnder(SRC);
    assert.ok(files.length > 10, `expected the source files under ${SRC}, found ${files.length}`);
    const offenders = files.filter((file) => /Math\s*(?:\.|\[\s*['"`])\s*random/.test(readFileSync(file, 'utf8')));
    assert.deepEqual(offenders.map((file) => relative(SRC, file)), []);
  });
});
