import { conformanceOn } from './runtime.js';

// Hono served by Bun.serve, and node:http on Bun's node:http.
conformanceOn('bun', ['hono', 'node']);
