export { SessionError, isSessionError, type SessionErrorCode } from './core/errors.js';
export {
  DEFAULT_OPTIONS,
  COMPAT_DEFAULTS,
  BROWSER_SESSION_STORE_LIFETIME,
  resolveOptions,
  type SessionOptions,
  type ResolvedOptions,
  type SameSite,
  type SessionCompat,
  type SessionLimits,
  type InvalidCookieReason,
  DEFAULT_ADOPT,
  type AdoptOptions,
  type AdoptFrom,
  type ResolvedAdoptSource,
} from './core/options.js';
export { hasForeignRecords, type ForeignRecords, type ForeignRecord, type ForeignRecordsStore } from './stores/foreign.js';
export { SessionManager } from './core/manager.js';
export {
  SessionAdmin,
  type SessionAdminOptions,
  type SessionInfo,
  type UserSessionInfo,
  type SessionInspection,
  type InspectedField,
  type SessionRef,
} from './core/admin.js';
export type {
  Session,
  SessionData,
  DefaultSessionData,
  UntypedSessionData,
  SessionKey,
  NumericSessionKey,
  SessionHandle,
  RequestContext,
} from './core/session.js';
export type { ResponseHeaders } from './core/headers.js';
export { createSessionId, isSessionId } from './core/id.js';
export {
  SESSION_CHANNEL,
  STORE_CHANNEL,
  type SessionEvent,
  type StoreTraceContext,
  type StoreOperation,
  type StoreOutcome,
  type LimitName,
} from './core/diagnostics.js';
export { CSRF_KEY, csrfToken, verifyCsrf, checkCsrf, type CsrfSession } from './core/csrf.js';
export { FLASH_PREFIX, addFlash, takeFlashes, type Flash, type FlashSession } from './core/flash.js';
export {
  MAX_COUNTER,
  CREATED_AT_FIELD,
  LAST_SEEN_FIELD,
  STATE_FIELD,
  USER_FIELD,
  USER_AGENT_FIELD,
  CLIENT_IP_FIELD,
  METADATA_FIELDS,
  ENDED_GRACE_MS,
  parseStoredTime,
  hasUserIndex,
  type UserIndexStore,
  type IndexedSession,
  type Store,
  type StoreField,
  type StoreChange,
  type StoreExpiry,
  type StoreLimits,
} from './stores/store.js';
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
