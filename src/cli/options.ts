import { Command, InvalidArgumentError, Option } from 'commander';
import { AppConfig, ConfigInput, resolveConfig } from '../core/config';
import { ConfigError } from '../core/errors';
import { parseApiKeys } from '../core/apiKeys';
import { parseIsoTime } from '../core/event';
import { parseDuration } from '../core/duration';
import { ODS_DATE } from '../ods/files';

/**
 * The options every command shares, and the one place that turns a command's options
 * (and the environment) into an AppConfig: the CLI layer is the only reader of process.env.
 */

/** Parses an integer option; the message names the option. */
export const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
  return n;
};

/** Parses epoch ms or a strict ISO-8601 date-time. */
export const timeArg = (name: string) => (value: string) => {
  const ms = /^\d+$/.test(value) ? Number(value) : parseIsoTime(value);
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`${name} must be epoch ms or an ISO-8601 date-time`);
  return ms;
};

/** Parses an ODS date, YYYY-MM-DD. */
export const dateArg = (name: string) => (value: string) => {
  if (!ODS_DATE.test(value)) throw new InvalidArgumentError(`${name} must be a date YYYY-MM-DD`);
  // 2026-13-01 and 2026-02-30 have the form but are no dates.
  const parsed = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== value)
    throw new InvalidArgumentError(`${name} ${value} is not a date of the calendar (YYYY-MM-DD)`);
  return value;
};

/** Refuses a --from after --to (a range that can hold nothing). */
export function checkDateRange(from: string | undefined, to: string | undefined): void {
  if (from !== undefined && to !== undefined && from > to) throw new ConfigError(`--from ${from} is after --to ${to}: the range holds no date`);
}

/** A positive duration such as 30s, 5m, 24h, 7d (or plain ms) in ms; undefined when the text is none. */
export function positiveDuration(value: string): number | undefined {
  const ms = parseDuration(/^\d+$/.test(value) ? Number(value) : value);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** Parses a positive duration such as 30s, 5m, 24h, 7d (or ms). */
export const durationArg = (name: string) => (value: string) => {
  const ms = positiveDuration(value);
  if (ms === undefined) throw new InvalidArgumentError(`${name} must be a duration such as 30m, 24h or 7d`);
  return ms;
};

/** Options shared by every command that talks to Redis; each has an env var. */
export function withRedisOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--redis <url>', 'Redis URL').env('REDIS_URL'))
    .addOption(new Option('--cluster <nodes>', 'Redis Cluster seed nodes, host:port,host:port,... (instead of --redis)').env('REDIS_CLUSTER_NODES'))
    .addOption(new Option('--prefix <prefix>', 'prefix of every key').env('PROFILE_PREFIX'))
    .addOption(new Option('--partitions <n>', 'number of stream partitions').env('PROFILE_PARTITIONS').argParser(int('partitions')))
    .addOption(new Option('--config <file>', 'tag config JSON (default: config/tags.json)').env('PROFILE_CONFIG'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent').env('LOG_LEVEL'))
    .addOption(
      new Option('--log-format <format>', 'log lines as json or pretty; auto: pretty on a terminal, JSON when piped')
        .choices(['auto', 'json', 'pretty'])
        .env('LOG_FORMAT'),
    )
    .addOption(new Option('--pretty', 'same as --log-format pretty').env('LOG_PRETTY'))
    .addOption(new Option('--ods <dir>', 'ODS directory (default ./data/ods)').env('ODS_DIR'))
    .addOption(
      new Option(
        '--redis-tls-ca <file>',
        "PEM file of the CA that signed the Redis server's certificate (TLS; a rediss:// URL alone trusts the system CAs)",
      ).env('REDIS_TLS_CA'),
    )
    .addOption(new Option('--redis-tls-cert <file>', 'PEM client certificate, when Redis asks for one (with --redis-tls-key)').env('REDIS_TLS_CERT'))
    .addOption(new Option('--redis-tls-key <file>', 'PEM key of --redis-tls-cert').env('REDIS_TLS_KEY'))
    .addOption(
      new Option('--redis-tls-servername <name>', "the name the server's certificate must hold, when not the host connected to").env('REDIS_TLS_SERVERNAME'),
    )
    .addOption(
      new Option('--allow-eviction', 'start even if Redis may evict keys (maxmemory-policy other than noeviction): events and window state can be lost').env(
        'PROFILE_ALLOW_EVICTION',
      ),
    );
}

/**
 * --batch-redis: the connection for the batch role's writes. The API uses it for erasure,
 * the batch lock and POST /batch runs; `batch`, `verify` and `erase` use it instead of --redis.
 */
export function withBatchRedisOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--batch-redis <url>', 'Redis URL for the batch role (erasure, the batch lock and runs), e.g. as the ACL user "batch" (default: --redis)').env(
      'REDIS_BATCH_URL',
    ),
  );
}

/** The options of a batch-role command with its Redis URL: --batch-redis when given. */
export const asBatchRole = (o: Record<string, unknown>) => ({ ...o, redis: o.batchRedis ?? o.redis, batchRedis: undefined });

/** Options of the HTTP API (`up`, `serve`). */
export function withServerOptions(cmd: Command): Command {
  return withBatchRedisOption(
    cmd
      .addOption(new Option('--port <port>', 'HTTP port (default 8080)').env('PORT').argParser(int('port')))
      .addOption(new Option('--host <host>', 'interface to bind (default 127.0.0.1)').env('HOST'))
      .addOption(new Option('--max-events <n>', 'most events per POST /events (default 10000)').env('PROFILE_MAX_EVENTS').argParser(int('max-events')))
      .addOption(
        new Option('--max-future-skew <ms>', 'how far in the future ts may be, ms (default 300000)')
          .env('PROFILE_MAX_FUTURE_SKEW_MS')
          .argParser(int('max-future-skew')),
      )
      .addOption(
        new Option('--rate-limit <n>', 'requests per second per API key (or client address); 0 = no limit (default 0)')
          .env('PROFILE_RATE_LIMIT')
          .argParser(int('rate-limit')),
      )
      .addOption(
        new Option('--ingest-redis <url>', 'Redis URL the producer writes events with, e.g. as the ACL user "ingest" (default: --redis)').env(
          'REDIS_INGEST_URL',
        ),
      ),
  )
    .addOption(
      new Option('--max-event-streams <n>', 'most GET /triggers/stream clients at once; past it 503 (default 256)')
        .env('PROFILE_MAX_EVENT_STREAMS')
        .argParser(int('max-event-streams')),
    )
    .addOption(
      new Option('--max-backlog <n>', 'unfinished entries per partition before POST /events answers 503 (default 1000000)')
        .env('PROFILE_MAX_BACKLOG')
        .argParser(int('max-backlog')),
    );
}

/** Options of the consumers (`up`, `consume`, `archive`). */
export function withConsumerOptions(cmd: Command): Command {
  if (!cmd.options.some((o) => o.long === '--host')) {
    cmd.addOption(new Option('--host <host>', 'interface the --metrics-port server binds (default 127.0.0.1)').env('HOST'));
  }
  return cmd
    .addOption(new Option('--consumer-name <name>', 'consumer name in its groups (default <host>-<pid>)').env('PROFILE_CONSUMER_NAME'))
    .addOption(new Option('--only-partitions <list>', 'read only these partitions, e.g. 0,3 (default all)').env('PROFILE_ONLY_PARTITIONS'))
    .addOption(new Option('--read-count <n>', 'entries per stream per XREADGROUP (default 2000)').env('PROFILE_READ_COUNT').argParser(int('read-count')))
    .addOption(
      new Option('--claim-idle <ms>', 'claim entries pending this long from dead consumers (default 30000)')
        .env('PROFILE_CLAIM_IDLE_MS')
        .argParser(int('claim-idle')),
    )
    .addOption(
      new Option('--max-deliveries <n>', 'dead-letter an entry after this many deliveries (default 5)')
        .env('PROFILE_MAX_DELIVERIES')
        .argParser(int('max-deliveries')),
    )
    .addOption(
      new Option('--trigger-retention <duration>', 'how long trigger firings stay in trig:{pN}, e.g. 24h (default 24h)')
        .env('PROFILE_TRIGGER_RETENTION')
        .argParser(durationArg('--trigger-retention')),
    )
    .addOption(
      new Option('--metrics-port <port>', 'serve GET /metrics on this port (processes without the API)')
        .env('PROFILE_METRICS_PORT')
        .argParser(int('metrics-port')),
    )
    .addOption(
      new Option(
        '--no-fold-in-consumer',
        'fold every event with the window script in Redis instead of in the consumer: more Redis time per event (env PROFILE_NO_FOLD_IN_CONSUMER=1)',
      ),
    )
    .addOption(
      new Option('--fault-ack-delay <ms>', 'fault suite only: archiver sleeps between fsync and ack')
        .env('PROFILE_FAULT_ACK_DELAY_MS')
        .argParser(int('fault-ack-delay'))
        .hideHelp(),
    );
}

const list = (value: unknown): string[] | undefined => (typeof value === 'string' && value.trim() !== '' ? value.split(',').map((n) => n.trim()) : undefined);

/** A boolean flag given on the command line (true) or by its env var (anything but 0, false, no or empty). */
const flag = (value: unknown): boolean => value === true || !/^(0|false|no|)$/i.test(String(value));

/** A command's parsed options (and the environment) as a validated AppConfig. */
export function configFrom(o: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): AppConfig {
  const input: ConfigInput = {
    redisUrl: o.redis as string | undefined,
    clusterNodes: list(o.cluster),
    prefix: o.prefix as string | undefined,
    partitions: o.partitions as number | undefined,
    tagsFile: o.config as string | undefined,
    logLevel: o.logLevel as string | undefined,
    port: o.port as number | undefined,
    host: o.host as string | undefined,
    maxEventsPerRequest: o.maxEvents as number | undefined,
    maxFutureSkewMs: o.maxFutureSkew as number | undefined,
    consumerName: o.consumerName as string | undefined,
    onlyPartitions: list(o.onlyPartitions)?.map((n) => (/^\d+$/.test(n) ? Number(n) : NaN)),
    readCount: o.readCount as number | undefined,
    odsDir: o.ods as string | undefined,
    claimIdleMs: o.claimIdle as number | undefined,
    maxDeliveries: o.maxDeliveries as number | undefined,
    triggerRetentionMs: o.triggerRetention as number | undefined,
    maxBacklog: o.maxBacklog as number | undefined,
    maxEventStreams: o.maxEventStreams as number | undefined,
    faultAckDelayMs: o.faultAckDelay as number | undefined,
    metricsPort: o.metricsPort as number | undefined,
    rateLimitPerS: o.rateLimit as number | undefined,
    ingestRedisUrl: o.ingestRedis as string | undefined,
    batchRedisUrl: o.batchRedis as string | undefined,
    // Keys come from the environment only: a command line is visible to every local user (ps).
    apiKeys: env.PROFILE_API_KEYS ? parseApiKeys(env.PROFILE_API_KEYS) : undefined,
    logFormat: (o.logFormat as ConfigInput['logFormat']) ?? (o.pretty === undefined ? undefined : flag(o.pretty) ? 'pretty' : 'json'),
    allowEviction: o.allowEviction === undefined ? undefined : flag(o.allowEviction),
    foldInConsumer: o.foldInConsumer === false || flag(env.PROFILE_NO_FOLD_IN_CONSUMER ?? '') ? false : undefined,
    redisTls:
      o.redisTlsCa || o.redisTlsCert || o.redisTlsKey || o.redisTlsServername
        ? {
            ca: o.redisTlsCa as string | undefined,
            cert: o.redisTlsCert as string | undefined,
            key: o.redisTlsKey as string | undefined,
            servername: o.redisTlsServername as string | undefined,
          }
        : undefined,
    dataDir: env.PROFILE_DATA_DIR,
    embeddedRedisPort: env.PROFILE_EMBEDDED_REDIS_PORT === undefined ? undefined : Number(env.PROFILE_EMBEDDED_REDIS_PORT),
    embeddedAppendfsync: env.PROFILE_REDIS_APPENDFSYNC as ConfigInput['embeddedAppendfsync'],
  };
  return resolveConfig(input);
}
