// Run by test/store/memory.test.ts in a child `node --test`: the Store contract on a fixture that
// gives no ttlOf, to see what node:test reports for the tests that could not check the TTL.
import { storeContract } from 'latchkey/testing';
import { MemoryStore } from '../../src/stores/memory.js';

storeContract('MemoryStore without ttlOf', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});
