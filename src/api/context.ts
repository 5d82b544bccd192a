import type { RedisClient } from '../redis/client';
import type { Keys } from '../core/keys';
import { Logger, OutageLog, silentLogger } from '../core/logger';
import type { ProfileReader } from '../profile/reader';
import type { Producer } from '../producer/producer';
import type { BatchLauncher } from '../batch/launcher';
import { Metrics } from '../metrics/metrics';
import type { ApiKey } from '../core/apiKeys';
import type { Trigger, WindowTag } from '../core/tags';
import { ActivityTracker } from './dashboard';
import { FiringHub } from './firingHub';

export interface AppOptions {
  redis: RedisClient;
  producer: Producer;
  reader: ProfileReader;
  keys: Keys;
  partitions: number;
  maxEventsPerRequest: number;
  maxProfilesPerRequest: number;
  maxBodyBytes: number;
  /** Starts batch runs (POST /batch); the batch routes answer 503 without it. */
  batch?: BatchLauncher;
  logger?: Logger;
  /** Served at GET /metrics and fed by the routes; a private one when absent. */
  metrics?: Metrics;
  /** API keys and their roles; none: every route is open (the server then warns at start). */
  apiKeys?: readonly ApiKey[];
  /** Requests per second per key (or address); 0 or absent: no limit. */
  rateLimitPerS?: number;
  /**
   * Connection for writes on behalf of an admin (erasure, the batch lock and run registry);
   * `redis` when absent. With Redis ACLs the API reads as the `api` user and writes these as
   * the `batch` user.
   */
  adminRedis?: RedisClient;
  /** Window tags, for the dashboard's per-tag timelines. */
  windowTags?: readonly WindowTag[];
  /** The configured triggers (the dashboard shows their recent firings). */
  triggers?: readonly Trigger[];
  /** ODS directory, for the dashboard's archive size (when this process can see it). */
  odsDir?: string;
  /** Most GET /triggers/stream clients at once; past it 503. @defaultValue 256 */
  maxEventStreams?: number;
  /** Bytes a GET /triggers/stream client may leave unread before the stream is closed (it resumes with Last-Event-ID). @defaultValue 1 MiB */
  eventStreamBufferBytes?: number;
}

/** What every router gets: the options, plus the logger, metrics and activity the routes share. */
export interface ApiContext extends AppOptions {
  log: Logger;
  metrics: Metrics;
  /** Fed by POST /events, read by the dashboard's "most active users". */
  activity: ActivityTracker;
  /** Requests that failed on Redis trouble (503s): logged once per outage, not per request. */
  redisOutage: OutageLog;
  /** The one shared trigger reader behind every GET /triggers/stream. */
  firings: FiringHub;
}

/** The routers' shared context for one app. */
export function apiContext(opts: AppOptions): ApiContext {
  const log = (opts.logger ?? silentLogger).child({ component: 'api' });
  return {
    ...opts,
    log,
    redisOutage: new OutageLog(log, 'Redis cannot serve requests', 'answering 503 with Retry-After'),
    firings: new FiringHub(opts.redis, opts.keys, opts.partitions, opts.maxEventStreams ?? 256, log),
    metrics: opts.metrics ?? new Metrics({ redis: opts.redis, keys: opts.keys, partitions: opts.partitions, processMetrics: false }),
    activity: new ActivityTracker(),
  };
}
