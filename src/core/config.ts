import type { LogFormat } from './logger';
import os from 'os';
import path from 'path';
import { TagConfig } from './tags';
import { loadTagConfig } from './tagConfig';
import { ConfigError } from './errors';
import { ID_PATTERN, ID_RULE } from './event';
import { ApiKey } from './apiKeys';

/**
 * TLS to Redis (a managed Redis usually requires it), as PEM files: the CA that signed the
 * server's certificate (when it is not one of the system's), this client's certificate and
 * key (when the server asks for one: `tls-auth-clients`), and the name the server's
 * certificate must hold when it is not the host connected to. Given any of them, every
 * connection of the target uses TLS; a `rediss://` URL alone uses TLS with the system's CAs.
 */
/**
 * Entries a consumer reads per stream per XREADGROUP. Large enough that a partition hot
 * users crowd can catch up within a read or two: at 10,000 events/s on a 2-core machine,
 * freshness p99 was 1.4–2.1 s with 500, 0.7–0.8 s with 1,000 and 0.4–0.5 s with 2,000.
 */
export const DEFAULT_READ_COUNT = 2000;

export interface RedisTls {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

/** Everything a profile-stream process is configured with; built once by the CLI. */
export interface AppConfig {
  /** Redis to use. Undefined: 127.0.0.1:`embeddedRedisPort`, and `profile up` starts an embedded one if nothing answers there. */
  redisUrl?: string;
  /**
   * Seed nodes (`host:port`) of a Redis Cluster; when set, every component uses a cluster
   * client (and `redisUrl` must be unset). @defaultValue none
   */
  clusterNodes?: string[];
  /**
   * TLS to Redis for every connection of the process (main, ingest, batch, cluster nodes,
   * the batch child): PEM file paths of the CA, client certificate and key, and the
   * server name to check. @defaultValue none (TLS only with a rediss:// URL, system CAs)
   */
  redisTls?: RedisTls;
  /**
   * Redis URL the API's producer writes events with (with ACLs: the `ingest` user); the
   * main connection when unset.
   */
  ingestRedisUrl?: string;
  /**
   * Redis URL for writes the API makes for admins (erasure, batch lock and registry) and
   * that `POST /batch` gives the batch process (with ACLs: the `batch` user); the main
   * connection when unset.
   */
  batchRedisUrl?: string;
  /** API keys with their roles (from PROFILE_API_KEYS); none: the API is open. @defaultValue [] */
  apiKeys: ApiKey[];
  /** Requests per second per API key (or client address without keys); 0: no limit. @defaultValue 0 */
  rateLimitPerS: number;
  /** Port of the default local Redis (127.0.0.1) that `profile up` uses or starts. @defaultValue 6379 */
  embeddedRedisPort: number;
  /**
   * AOF fsync policy of the embedded Redis: `always` loses no acknowledged event on a
   * crash, `everysec` up to about a second of them, `no` whatever the OS had not flushed.
   * @defaultValue `"everysec"`
   */
  embeddedAppendfsync: 'always' | 'everysec' | 'no';
  /**
   * Start even when a Redis server's maxmemory-policy is not `noeviction` (which lets Redis
   * delete acknowledged events and window state under memory pressure). @defaultValue false
   */
  allowEviction: boolean;
  /**
   * The realtime consumer folds events in its own process and has Redis only read and
   * write (false: every user through updateWindows.lua). @defaultValue true
   */
  foldInConsumer: boolean;
  /** Prefix of every key. @defaultValue `""` */
  prefix: string;
  /** Number of stream partitions `ev:{p0}`…; must not change while streams hold entries. @defaultValue 4 */
  partitions: number;
  /** Interface the HTTP server binds. @defaultValue `"127.0.0.1"` */
  host: string;
  /** HTTP port. @defaultValue 8080 */
  port: number;
  /** Most events accepted in one POST /events. @defaultValue 10000 */
  maxEventsPerRequest: number;
  /** Most GET /triggers/stream clients of one API process at once (one shared Redis reader serves them); past it 503. @defaultValue 256 */
  maxEventStreams: number;
  /** Most user ids in one POST /profiles. @defaultValue 100 */
  maxProfilesPerRequest: number;
  /** Largest request body. @defaultValue 16 MiB */
  maxBodyBytes: number;
  /** How far in the future an event time may be. @defaultValue 300000 (5 min) */
  maxFutureSkewMs: number;
  /**
   * Partitions this process's consumers read (and recover); all when unset. Lets consumers
   * be placed by node, e.g. one per cluster master reading the partitions that master
   * serves, with an unrestricted consumer as a standby. @defaultValue all
   */
  onlyPartitions?: number[];
  /** This process's consumer name in its groups. @defaultValue `<hostname>-<pid>` */
  consumerName: string;
  /** Entries read per stream per XREADGROUP call. @defaultValue DEFAULT_READ_COUNT (2000) */
  readCount: number;
  /** How long XREADGROUP blocks waiting for entries. @defaultValue 2000 */
  blockMs: number;
  /** Where the embedded Redis keeps its data. @defaultValue `./data` */
  dataDir: string;
  /** Root of the ODS (NDJSON archive). @defaultValue `<dataDir>/ods` */
  odsDir: string;
  /** Period of the stream trim timer in consumers, and the least time between a partition's trims after acks (ms). @defaultValue 5000 */
  trimIntervalMs: number;
  /** Entries pending this long (ms) are claimed from their (presumed dead) consumer. @defaultValue 30000 */
  claimIdleMs: number;
  /** Deliveries after which an entry goes to the dead-letter stream. @defaultValue 5 */
  maxDeliveries: number;
  /** How long trigger firings stay in the trigger streams (ms). @defaultValue 86400000 (24 h) */
  triggerRetentionMs: number;
  /** Unfinished entries in a partition above which POST /events answers 503 with Retry-After. @defaultValue 1000000 */
  maxBacklog: number;
  /**
   * Fault injection for the fault suite: the archiver waits this long (ms) between fsync
   * and ack, and says so in its log, so a test can kill it exactly there. @defaultValue 0
   */
  faultAckDelayMs: number;
  /** Port of a GET /metrics server in processes without the API (`consume`, `archive`); none when unset. */
  metricsPort?: number;
  /**
   * Log lines as JSON, or pretty (pino-pretty) for people; `auto`: pretty when stdout and
   * stderr are both a terminal, JSON when either is piped (Docker, CI, a log shipper).
   * @defaultValue `"auto"`
   */
  logFormat: LogFormat;
  /** pino log level. @defaultValue `"info"` */
  logLevel: string;
  /** The tag definitions (from `tagsFile`, or the shipped config/tags.json). */
  tags: TagConfig;
}

/** Config as given by a user: everything optional, tags as a file name. */
export type ConfigInput = Partial<Omit<AppConfig, 'tags'>> & { tagsFile?: string; tags?: TagConfig };

export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Applies defaults to `input` and validates the result; throws ConfigError naming the bad option. */
export function resolveConfig(input: ConfigInput = {}): AppConfig {
  // Unset and empty values (an empty env var) both mean "use the default".
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== '')) as ConfigInput;
  const { tagsFile, tags, ...rest } = defined;
  const config: AppConfig = {
    embeddedRedisPort: 6379,
    embeddedAppendfsync: 'everysec',
    allowEviction: false,
    foldInConsumer: true,
    prefix: '',
    partitions: 4,
    host: '127.0.0.1',
    port: 8080,
    maxEventsPerRequest: 10_000,
    maxProfilesPerRequest: 100,
    maxEventStreams: 256,
    maxBodyBytes: 16 * 1024 * 1024,
    maxFutureSkewMs: 5 * 60_000,
    consumerName: `${os.hostname()}-${process.pid}`,
    readCount: DEFAULT_READ_COUNT,
    blockMs: 2000,
    dataDir: path.resolve('data'),
    trimIntervalMs: 5000,
    claimIdleMs: 30_000,
    maxDeliveries: 5,
    triggerRetentionMs: 86_400_000,
    maxBacklog: 1_000_000,
    faultAckDelayMs: 0,
    logFormat: 'auto',
    apiKeys: [],
    rateLimitPerS: 0,
    logLevel: 'info',
    ...rest,
    odsDir: rest.odsDir ?? path.join(rest.dataDir ?? 'data', 'ods'),
    tags: tags ?? loadTagConfig(tagsFile),
  };
  validate(config);
  return config;
}

/** Checks every option's range and form; throws ConfigError naming the first bad one. Normalises paths and partition lists. */
function validate(config: AppConfig): void {
  const int = (name: keyof AppConfig, min: number, max: number) => {
    const v = config[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got ${String(v)})`);
    }
  };
  int('partitions', 1, 1024);
  int('embeddedRedisPort', 1, 65535);
  int('port', 0, 65535);
  int('maxEventsPerRequest', 1, 1_000_000);
  int('maxProfilesPerRequest', 1, 10_000);
  int('maxEventStreams', 1, 100_000);
  int('maxBodyBytes', 1024, 1024 ** 3);
  int('maxFutureSkewMs', 0, 7 * 86_400_000);
  int('readCount', 1, 100_000);
  int('blockMs', 1, 60_000);
  int('trimIntervalMs', 0, 3_600_000);
  int('claimIdleMs', 1, 86_400_000);
  int('maxDeliveries', 1, 1000);
  int('maxBacklog', 1, 1_000_000_000);
  int('faultAckDelayMs', 0, 60_000);
  int('rateLimitPerS', 0, 10_000_000);
  if (config.metricsPort !== undefined) int('metricsPort', 0, 65535);
  config.dataDir = path.resolve(config.dataDir);
  config.odsDir = path.resolve(config.odsDir);
  if (!/^[A-Za-z0-9._:-]*$/.test(config.prefix) || config.prefix.length > 64) {
    throw new ConfigError('prefix may hold at most 64 characters of A-Z a-z 0-9 . _ : -');
  }
  if (!ID_PATTERN.test(config.consumerName)) {
    throw new ConfigError(`consumerName must be ${ID_RULE}`);
  }
  if (!['always', 'everysec', 'no'].includes(config.embeddedAppendfsync)) {
    throw new ConfigError('embeddedAppendfsync must be always, everysec or no');
  }
  if (!LOG_LEVELS.includes(config.logLevel)) throw new ConfigError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  if (!LOG_FORMATS.includes(config.logFormat)) throw new ConfigError(`logFormat must be one of ${LOG_FORMATS.join(', ')}`);
  if (config.onlyPartitions !== undefined) {
    const bad = config.onlyPartitions.find((n) => !Number.isInteger(n) || n < 0 || n >= config.partitions);
    if (bad !== undefined || config.onlyPartitions.length === 0) {
      throw new ConfigError(`onlyPartitions must list partition numbers from 0 to ${config.partitions - 1} (got ${config.onlyPartitions.join(',')})`);
    }
    config.onlyPartitions = [...new Set(config.onlyPartitions)].sort((a, b) => a - b);
  }
  if (config.clusterNodes !== undefined) {
    if (config.redisUrl !== undefined) throw new ConfigError('give either a Redis URL or cluster nodes, not both');
    if (config.clusterNodes.length === 0) throw new ConfigError('cluster nodes: give at least one host:port');
    for (const node of config.clusterNodes) {
      if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(node) || Number(node.split(':')[1]) > 65535 || Number(node.split(':')[1]) < 1) {
        throw new ConfigError(`cluster node must be host:port (got "${node}")`);
      }
    }
  }
  for (const [name, url] of [
    ['redis URL', config.redisUrl],
    ['ingest redis URL', config.ingestRedisUrl],
    ['batch redis URL', config.batchRedisUrl],
  ] as const) {
    // The URL may hold a password: never echo it.
    if (url !== undefined && !/^rediss?:\/\//.test(url)) throw new ConfigError(`${name} must start with redis:// or rediss://`);
  }
}
