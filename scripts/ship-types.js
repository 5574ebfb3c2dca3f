// After tsc: declaration files written by hand that must stay out of the repo's own program, copied
// into dist/ and referenced from the declarations of the module they type.
//   latchkey/express-session: req.session's global type (see src/adapters/express-session-request.d.ts)
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';

const SHIPPED = [{ file: 'adapters/express-session-request.d.ts', referencedBy: 'adapters/express-session.d.ts' }];

for (const { file, referencedBy } of SHIPPED) {
  copyFileSync(`src/${file}`, `dist/${file}`);
  const target = `dist/${referencedBy}`;
  const name = file.slice(file.lastIndexOf('/') + 1);
  const reference = `/// <reference path="./${name}" />\n`;
  const declarations = readFileSync(target, 'utf8');
  if (!declarations.startsWith(reference)) writeFileSync(target, reference + declarations);
}
