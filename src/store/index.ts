/**
 * The persistence layer's public surface: the contract, the implementations and `openStore`.
 */
export type { CorruptJob, JobPage, JobQuery, JobStore, StoreStats } from './contract.js';
export { StoreError, isStoreError, STORE_ERROR_CODES } from './errors.js';
export type { StoreBackend, StoreErrorCode } from './errors.js';
export { MemoryStore } from './memory.js';
export type { MemoryStoreOptions } from './memory.js';
export { SqliteStore } from './sqlite.js';
export type { SqliteStoreOptions } from './sqlite.js';
export { PostgresStore } from './postgres.js';
export type { PostgresStoreOptions } from './postgres.js';
export { RedisStore } from './redis.js';
export type { RedisStoreOptions } from './redis.js';
export { openStore, storeKind, sqlitePath, DEFAULT_STORE_URL } from './open.js';
export type { OpenStoreOptions } from './open.js';
