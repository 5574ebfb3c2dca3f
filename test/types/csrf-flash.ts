// Compile-time checks: the CSRF and flash helpers take a session of any Data type. `npm test`
// type-checks this file; nothing here runs.
import type { Session } from '../../src/index.js';
import { checkCsrf, csrfToken, verifyCsrf } from '../../src/core/csrf.js';
import { addFlash, takeFlashes, type Flash } from '../../src/core/flash.js';

interface Data {
  name: string;
  visits: number;
  tags?: string[];
}

export async function anySession(typed: Session<Data>, plain: Session, sparse: Session<{ theme?: 'dark' | 'light' }>, strings: Session<Record<string, string>>): Promise<void> {
  for (const s of [typed, plain, sparse, strings]) {
    const token: string = await csrfToken(s);
    const ok: boolean = await verifyCsrf(s, 'POST', token);
    await checkCsrf(s, 'POST', ok ? token : undefined);
    await addFlash(s, { text: 'saved' }, 'info');
    const flashes: Flash[] = await takeFlashes(s, 'info');
    void flashes;
  }
}

export async function generic<D extends object>(s: Session<D>): Promise<void> {
  await csrfToken(s);
  await addFlash(s, 'hello');
  await takeFlashes(s);
}

export async function notASession(): Promise<void> {
  // @ts-expect-error not a session
  await csrfToken({ get: async () => 'x' });
  // @ts-expect-error a session needs keys() and delete() for flashes
  await takeFlashes({} as Pick<Session, 'get' | 'set'>);
  // @ts-expect-error the category is a string
  await addFlash({} as Session, 'x', 1);
}
