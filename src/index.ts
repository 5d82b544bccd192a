/**
 * profile-stream's public entry: what a Node program (a bidder, a job, a test harness)
 * uses to read and write profiles without the HTTP hop, and to run the pipeline's roles
 * in its own process. The CLI (`profile …`) is built on the same pieces.
 *
 * @example
 *   import { ProfileReader } from 'profile-stream';
 *   const reader = await ProfileReader.connect({ redisUrl: 'redis://127.0.0.1:6379' }); // or { clusterNodes: ['10.0.0.1:7000'] }
 *   const profile = await reader.read('user-1'); // null for an unknown user
 *   const many = await reader.readMany(['user-1', 'user-2']);
 *   await reader.close();
 */
export { resolveConfig } from './core/config';
export type { AppConfig, ConfigInput } from './core/config';
export { loadTagConfig, parseTagConfig, DEFAULT_TAGS_FILE } from './core/tagConfig';
export type { TagConfig, WindowTag, OfflineTag, SegmentRule } from './core/tags';
export { Keys, partitionFor } from './core/keys';
export { EVENT_TYPES, validateEvent } from './core/event';
export type { EventType, ProfileEvent, FieldError } from './core/event';
export {
  ProfileStreamError,
  ConfigError,
  RedisUnavailableError,
  RedisServerMissingError,
  BatchBusyError,
  NothingToVerifyError,
  UnknownTagError,
  StaleProfileError,
  isRedisError,
} from './core/errors';
export { connectTarget, connectRedis, connectCluster } from './redis/client';
export type { RedisClient, RedisTarget } from './redis/client';
export { ProfileReader } from './profile/reader';
export { RealtimeLag } from './profile/lag';
export type { Profile, TagValue, ReaderOptions, ReadOptions } from './profile/reader';
export type { RedisTls } from './redis/client';
export { Producer } from './producer/producer';
export type { ProducerOptions, IngestResult } from './producer/producer';
export { runBatch } from './batch/run';
export type { BatchOptions, BatchSummary } from './batch/run';
export { openRuntime, closeRuntime, runRoles } from './runtime/runtime';
export type { Runtime, Roles } from './runtime/runtime';
