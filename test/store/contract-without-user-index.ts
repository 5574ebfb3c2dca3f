// Run by test/store/memory.test.ts in a child `node --test`: the Store contract on a store with the
// Store methods only (MemoryStore's, without its user index), as a store written before the user
// index was, to see what node:test reports for the tests of that optional capability.
import { storeContract } from 'latchkey/testing';
import { MemoryStore } from '../../src/stores/memory.js';
import { withoutUserIndex } from './store-views.js';

storeContract('MemoryStore without a user index', async () => {
  const memory = new MemoryStore();
  return { store: withoutUserIndex(memory), ttlOf: async (id) => memory.inspect(id)?.ttlMs ?? -2, close: () => memory.close() };
});
