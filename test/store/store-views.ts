// Views of a MemoryStore with fewer methods than it has, for the contract's optional parts.
import type { MemoryStore } from '../../src/stores/memory.js';
import type { Store } from '../../src/stores/store.js';

/** `memory`'s Store methods only, as a store that keeps no user index has them. */
export function withoutUserIndex(memory: MemoryStore): Store {
  return {
    load: (id) => memory.load(id),
    create: (id, fields, ttlMs) => memory.create(id, fields, ttlMs),
    update: (id, set, remove, expiry, limits) => memory.update(id, set, remove, expiry, limits),
    increment: (id, field, by, set, expiry, limits) => memory.increment(id, field, by, set, expiry, limits),
    move: (from, to, change, expiry) => memory.move(from, to, change, expiry),
    destroy: (id) => memory.destroy(id),
    close: () => memory.close(),
  };
}
