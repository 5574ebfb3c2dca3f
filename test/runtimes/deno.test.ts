import { conformanceOn } from './runtime.js';

// Hono served by Deno.serve, and node:http on Deno's node:http.
conformanceOn('deno', ['hono', 'node']);
