// The types of `req.session` and `req.sessionID` for latchkey/express-session. The build copies
// this file beside dist/adapters/express-session.d.ts and references it from there. It stays out
// of the repo's own program (tsconfig.json excludes it): there, latchkey/express gives
// `req.session` its own type, and two declarations of one property must agree.
//
// An app migrating from express-session may still have @types/express-session, which declares
// `req.session` too: then this declaration must be the very same type, or TypeScript refuses
// both (TS2717). So `req.session` is express-session's own type when its types are installed
// (its `declare module 'express-session' { interface SessionData }` keeps working), and
// latchkey's otherwise (keys typed by `declare module 'latchkey' { interface SessionData }`).
import type { Session as LatchkeySession } from './express-session.js';
import type { DefaultSessionData } from '../index.js';

/* eslint-disable @typescript-eslint/ban-ts-comment, @typescript-eslint/consistent-type-imports */
// @ts-ignore -- without @types/express-session this is `any`, and latchkey's type is used instead.
type TheirSession = import('express-session').Session;
// @ts-ignore -- as above.
type TheirSessionData = import('express-session').SessionData;
/* eslint-enable @typescript-eslint/ban-ts-comment, @typescript-eslint/consistent-type-imports */

/**
 * `req.session`: express-session's type when @types/express-session is installed, else latchkey's.
 * An absent module's type is an error type, which turns a conditional type that checks it into
 * `any`; its keys, though, are every string's (`keyof any`), which no class has.
 */
export type ExpressRequestSession = '__latchkeyAbsent' extends keyof TheirSession ? LatchkeySession & Partial<DefaultSessionData> : TheirSession & Partial<TheirSessionData>;

declare global {
  namespace Express {
    interface Request {
      /** This request's session, set by latchkey/express-session's middleware. */
      session: ExpressRequestSession;
      /** The session's public handle, named before the session is saved. */
      sessionID: string;
    }
  }
}
