export { SessionError, isSessionError, type SessionErrorCode } from './core/errors.js';
export {
  DEFAULT_OPTIONS,
  BROWSER_SESSION_STORE_LIFETIME,
  resolveOptions,
  type SessionOptions,
  type ResolvedOptions,
  type SameSite,
} from './core/options.js';
export { SessionManager } from './core/manager.js';
export type {
  Session,
  SessionData,
  SessionKey,
  NumericSessionKey,
  SessionHandle,
  RequestContext,
} from './core/session.js';
export { createSessionId, isSessionId } from './core/id.js';
export { MAX_COUNTER, type Store, type StoreField, type StoreRefresh } from './stores/store.js';
export { RedisStore, DEFAULT_REDIS_STORE_OPTIONS, type RedisStoreOptions } from './stores/redis.js';
export { MemoryStore, DEFAULT_MEMORY_STORE_OPTIONS, type MemoryStoreOptions } from './stores/memory.js';
export type {
  RedisClientLike,
  RedisConnectionOptions,
  NodeRedisClientLike,
  NodeRedisClusterLike,
  NodeRedisSentinelLike,
  IoRedisLike,
} from './stores/redis-client.js';
