import path from 'path';
import { AppConfig } from '../core/config';
import { Keys } from '../core/keys';
import { Logger, OutageLog } from '../core/logger';
import { RedisClient, RedisTarget, connectTarget, redisAnswers } from '../redis/client';
import { RedisServerHandle, startRedisServer } from '../redis/embeddedServer';
import { createApi } from '../api/app';
import { HttpServerHandle, listen } from '../api/server';
import { Producer } from '../producer/producer';
import { ProfileReader, offlineTagNames } from '../profile/reader';
import { RealtimeLag } from '../profile/lag';
import { RealtimeConsumer } from '../consumers/realtime';
import { ensureGroups } from '../redis/streamGroups';
import { ArchiveConsumer } from '../consumers/archive';
import { assertWritableDir } from '../ods/files';
import { GroupConsumer, GroupConsumerOptions } from '../consumers/groupConsumer';
import { BatchLauncher } from '../batch/launcher';
import { Metrics, serveMetrics } from '../metrics/metrics';
import { isRedisError } from '../core/errors';
import { checkEvictionPolicy } from '../redis/settings';
import { ActiveTagConfig, adoptActiveTagConfig, announceProcess, watchActiveTagConfig, writtenVersions } from '../redis/tagConfigs';
import { TagConfig } from '../core/tags';

/** A connected process: its Redis, key names, and what it must close on exit. */
export interface Runtime {
  config: AppConfig;
  logger: Logger;
  redis: RedisClient;
  /** What `redis` is connected to: the configured cluster or URL, or the embedded server's URL. */
  target: RedisTarget;
  keys: Keys;
  embedded?: RedisServerHandle;
  /** This process's metrics (served by the API at /metrics, or on --metrics-port). */
  metrics: Metrics;
  /** More connections (as other Redis users) that closeRuntime closes. */
  extra?: RedisClient[];
}

/**
 * Connects to the configured Redis. With no Redis configured and nothing answering on
 * 127.0.0.1:6379 (`embeddedRedisPort`), `allowEmbedded` starts a private redis-server there (AOF on, data under
 * `<dataDir>/redis`); it is stopped by `closeRuntime`. Unless `checkSettings` is false (a
 * command that only reports them, such as `profile status`), refuses to go on when a
 * Redis server may evict keys (see redis/settings.ts; `config.allowEviction` overrides).
 */
export async function openRuntime(config: AppConfig, logger: Logger, allowEmbedded = false, checkSettings = true): Promise<Runtime> {
  const rt = await connectRuntime(config, logger, allowEmbedded);
  if (!checkSettings) return rt;
  try {
    await checkEvictionPolicy(rt.redis, config.allowEviction, (message, detail) => logger.warn(detail, message));
  } catch (err) {
    await closeRuntime(rt);
    throw err;
  }
  return rt;
}

async function connectRuntime(config: AppConfig, logger: Logger, allowEmbedded: boolean): Promise<Runtime> {
  if (config.clusterNodes) {
    const target = { clusterNodes: config.clusterNodes, tls: config.redisTls };
    const redis = await connectTarget(target);
    watchConnection(redis, logger, 'cluster');
    logger.info({ nodes: config.clusterNodes }, 'connected to Redis Cluster');
    const keys = new Keys(config.prefix);
    return { config, logger, redis, target, keys, metrics: processMetrics(config, redis, keys) };
  }
  let url = config.redisUrl ?? `redis://127.0.0.1:${config.embeddedRedisPort}`;
  let embedded: RedisServerHandle | undefined;
  if (config.redisUrl === undefined && allowEmbedded && !(await redisAnswers(url))) {
    const dir = path.join(config.dataDir, 'redis');
    embedded = await startRedisServer({
      port: config.embeddedRedisPort,
      dir,
      appendonly: true,
      appendfsync: config.embeddedAppendfsync,
      ownProcessGroup: true,
    });
    url = embedded.url;
    logger.info({ url, dir, appendfsync: config.embeddedAppendfsync }, 'started embedded redis-server (AOF on); it stops when this process exits');
  } else if (config.redisUrl === undefined && allowEmbedded) {
    // Another process's Redis (perhaps another `profile up`'s embedded one): say whose it is.
    logger.info(
      { url },
      'using the Redis already answering there, not started by this process: it keeps running when this process stops, and this process cannot serve while it is gone',
    );
  }
  const target = { redisUrl: url, tls: config.redisTls };
  const redis = await connectTarget(target);
  watchConnection(redis, logger, 'main');
  const keys = new Keys(config.prefix);
  return { config, logger, redis, target, keys, embedded, metrics: processMetrics(config, redis, keys) };
}

/** Logs a connection's outage once when it starts (then every 30 s) and once when it is back, not at every retry. */
function watchConnection(client: RedisClient, logger: Logger, role: string): void {
  const outage = new OutageLog(logger, `Redis connection lost (${role})`, 'reconnecting; requests answer 503 meanwhile');
  client.on('error', (err: Error) => outage.failed(err));
  client.on('ready', () => outage.succeeded());
}

function processMetrics(config: AppConfig, redis: RedisClient, keys: Keys): Metrics {
  return new Metrics({ redis, keys, partitions: config.partitions });
}

/** Closes what openRuntime opened. */
export async function closeRuntime(rt: Runtime): Promise<void> {
  for (const c of rt.extra ?? []) await c.quit().catch(() => c.disconnect());
  await rt.redis.quit().catch(() => rt.redis.disconnect());
  await rt.embedded?.stop();
}

/** meta.lag_ms and ?max_lag_ms: every partition's realtime lag, sampled in the background for `reader` and /metrics. */
async function startLag(rt: Runtime, reader: ProfileReader): Promise<RealtimeLag> {
  const { config, redis, keys, logger } = rt;
  const lag = new RealtimeLag(redis, keys, config.partitions, logger);
  await lag.start();
  reader.trackLag(lag);
  rt.metrics.trackRealtimeLag(keys.streams(config.partitions), () => lag.all());
  return lag;
}

/** Starts the HTTP API on the runtime's Redis. */
export async function startApi(rt: Runtime): Promise<HttpServerHandle & { switchTags(tags: TagConfig, generation?: number): void }> {
  const { config, redis, keys, logger } = rt;
  // Groups exist before the first event is accepted, so no trim can ever skip a group.
  try {
    await ensureGroups(redis, keys.streams(config.partitions));
  } catch (err) {
    // With Redis ACLs the API's user may not create groups: workers create them at start.
    // Nothing is lost meanwhile: groups read from the first entry, and no stream is
    // trimmed while a group is missing.
    if (!isRedisError(err, 'NOPERM')) throw err;
    logger.info('consumer groups not created here (no permission): workers create them');
  }
  const extra = async (url: string | undefined, role: string) => {
    if (!url) return redis;
    const client = await connectTarget({ redisUrl: url, tls: config.redisTls });
    watchConnection(client, logger, role);
    (rt.extra ??= []).push(client);
    return client;
  };
  const ingestRedis = await extra(config.ingestRedisUrl, 'ingest');
  const batchRedis = await extra(config.batchRedisUrl, 'batch');
  const producer = new Producer({
    redis: ingestRedis,
    keys,
    partitions: config.partitions,
    maxFutureSkewMs: config.maxFutureSkewMs,
    maxBacklog: config.maxBacklog,
    // wait=applied reads the realtime group's progress as the API's own (reading) user.
    watchRedis: redis,
  });
  const reader = new ProfileReader(redis, keys, config.tags.realtime, undefined, offlineTagNames(config.tags));
  const lag = await startLag(rt, reader);
  const child = {
    // The batch writes as the batch role when one is configured (with ACLs: the `batch` user).
    target: rt.target.clusterNodes
      ? { clusterNodes: rt.target.clusterNodes, tls: config.redisTls }
      : { redisUrl: config.batchRedisUrl ?? rt.target.redisUrl, tls: config.redisTls },
    prefix: config.prefix,
    tags: config.tags.document,
    tagsSource: config.tags.source,
    odsDir: config.odsDir,
    logLevel: config.logLevel,
  };
  const batch = new BatchLauncher({ redis: batchRedis, keys, child, logger, metrics: rt.metrics });
  const { listener: app, context } = createApi({
    redis,
    producer,
    reader,
    keys,
    logger,
    batch,
    metrics: rt.metrics,
    adminRedis: batchRedis,
    apiKeys: config.apiKeys,
    rateLimitPerS: config.rateLimitPerS,
    windowTags: config.tags.realtime,
    triggers: config.tags.triggers,
    odsDir: config.odsDir,
    partitions: config.partitions,
    maxEventsPerRequest: config.maxEventsPerRequest,
    maxProfilesPerRequest: config.maxProfilesPerRequest,
    maxEventStreams: config.maxEventStreams,
    maxBodyBytes: config.maxBodyBytes,
  });
  const listening = await listen(app, config.host, config.port);
  // A switch of the active tag config: reads, routes and batch runs use the new one from now on.
  const switchTags = (tags: TagConfig, generation = 0) => {
    reader.setTags(tags.realtime, offlineTagNames(tags), generation);
    context.keys = rt.keys.withGeneration(generation);
    context.windowTags = tags.realtime;
    context.triggers = tags.triggers;
    child.tags = tags.document;
    child.tagsSource = tags.source;
  };
  const http = { ...listening, close: () => listening.close().finally(() => lag.stop()), switchTags };
  logger.info({ host: config.host, port: http.port }, 'API listening');
  logApiKeys(config, logger);
  return http;
}

/** Says which API keys are required, or loudly that none is. */
function logApiKeys(config: AppConfig, logger: Logger): void {
  if (config.apiKeys.length === 0) {
    logger.warn(
      { host: config.host },
      'NO API KEYS CONFIGURED: every route is open to anyone who can reach this port. Set PROFILE_API_KEYS=<key>:ingest,<key>:read,<key>:admin (see SECURITY.md)' +
        (config.host === '127.0.0.1' || config.host === 'localhost' ? '' : ` -- and this server listens on ${config.host}, not only on loopback`),
    );
  } else {
    logger.info({ keys: config.apiKeys.map((k) => k.role) }, 'API keys required on every route but /health');
  }
}

/** What every consumer of this process is configured with. */
function consumerOptions(rt: Runtime): GroupConsumerOptions {
  const { config, redis, keys, logger, metrics } = rt;
  return {
    redis,
    keys,
    logger,
    metrics,
    partitions: config.partitions,
    onlyPartitions: config.onlyPartitions,
    consumerName: config.consumerName,
    readCount: config.readCount,
    blockMs: config.blockMs,
    trimIntervalMs: config.trimIntervalMs,
    claimIdleMs: config.claimIdleMs,
    maxDeliveries: config.maxDeliveries,
  };
}

/** Starts the realtime consumer on the runtime's Redis. */
export async function startRealtime(rt: Runtime): Promise<RealtimeConsumer> {
  const { config, logger } = rt;
  const consumer = new RealtimeConsumer({
    ...consumerOptions(rt),
    tags: config.tags.realtime,
    triggers: config.tags.triggers,
    offlineTags: config.tags.offline,
    triggerRetentionMs: config.triggerRetentionMs,
    foldInConsumer: config.foldInConsumer,
  });
  await consumer.start();
  logger.info({ consumer: config.consumerName, partitions: config.onlyPartitions ?? config.partitions }, 'realtime consumer started');
  return consumer;
}

/** Starts the archive consumer (NDJSON ODS under config.odsDir) on the runtime's Redis. */
export async function startArchive(rt: Runtime): Promise<ArchiveConsumer> {
  const { config, logger } = rt;
  const consumer = new ArchiveConsumer({
    ...consumerOptions(rt),
    odsDir: config.odsDir,
    afterSync:
      config.faultAckDelayMs > 0
        ? async () => {
            logger.warn({ delayMs: config.faultAckDelayMs }, 'fault injection: synced, ack delayed');
            await new Promise((r) => setTimeout(r, config.faultAckDelayMs));
          }
        : undefined,
  });
  await consumer.start();
  logger.info({ consumer: config.consumerName, odsDir: config.odsDir }, 'archive consumer started');
  return consumer;
}

/** Which parts one process runs. */
export interface Roles {
  api?: boolean;
  realtime?: boolean;
  archive?: boolean;
}

/**
 * Resolves on the first SIGINT/SIGTERM; a second one exits at once with code 1. Call it
 * before starting anything, so a signal during start-up still shuts down in order (and
 * stops an embedded Redis) instead of killing the process with the default handler.
 */
/** Signals this close to the first are copies of it (ms). */
const REPEAT_SIGNAL_MS = 1000;

export function shutdownSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let signalledAt: number | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalledAt !== undefined) {
        // Ctrl-C under `npm start` arrives twice at once (the terminal's, and npm's forwarded copy):
        // only a second signal a moment later means "stop now".
        if (Date.now() - signalledAt < REPEAT_SIGNAL_MS) return;
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      signalledAt = Date.now();
      logger.info({ signal }, 'shutting down');
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * Runs the roles of one process until `stop` resolves, then shuts down in order: stop
 * accepting requests, let the consumer finish and ack its batch, close Redis (and the
 * embedded server).
 */
export async function runRoles(rt: Runtime, roles: Roles, stop: Promise<unknown>): Promise<void> {
  let http: HttpServerHandle | undefined;
  let metricsServer: { close(): Promise<void> } | undefined;
  const consumers: GroupConsumer[] = [];
  let announced: ReturnType<typeof announceProcess> | undefined;
  let watch: { stop(): Promise<void> } | undefined;
  const switchers: ((active: ActiveTagConfig) => void)[] = [];
  try {
    if (roles.archive) assertWritableDir(rt.config.odsDir); // before anything starts: fail with an instruction, not at the first event
    // Every role runs the active tag config (this process's own, unless another is active).
    const file = rt.config.tags.source;
    const active = await adoptActiveTagConfig(rt.redis, rt.keys, rt.config.tags, rt.logger);
    rt.config = { ...rt.config, tags: active.config };
    const roleNames = (['api', 'realtime', 'archive'] as const).filter((r) => roles[r]);
    announced = announceProcess(rt.redis, rt.keys, [...roleNames], active.version, file, rt.logger, writtenVersions(active));
    if (roles.api) {
      const api = (http = await startApi(rt));
      switchers.push((a) => api.switchTags(a.config, a.generation));
    } else if (rt.config.metricsPort !== undefined) {
      const served = await serveMetrics(rt.metrics, rt.config.host, rt.config.metricsPort);
      metricsServer = served;
      rt.logger.info({ host: rt.config.host, port: served.port }, 'metrics listening on /metrics');
    }
    if (roles.realtime) {
      const realtime = await startRealtime(rt);
      consumers.push(realtime);
      switchers.push((a) =>
        realtime.switchTags(
          a.config,
          a.generation,
          a.alsoWrite.map((w) => ({ generation: w.generation, realtime: w.config.realtime })),
        ),
      );
    }
    // The active config's window state generation, and the configs also written (a backfill in progress).
    for (const s of switchers) s(active);
    if (roles.archive) consumers.push(await startArchive(rt));
    // Once started (a failed start stays one line): what this process serves.
    const tags = rt.config.tags;
    rt.logger.info(
      {
        file: tags.source,
        version: active.version,
        realtime: tags.realtime.map((t) => t.name),
        offline: tags.offline.map((t) => t.name),
        segments: tags.segments.map((s) => s.id),
        triggers: tags.triggers.map((t) => t.name),
      },
      'tag config loaded',
    );
    // `profile tags apply` switches the active config: every role follows it.
    watch = watchActiveTagConfig(
      rt.redis,
      rt.keys,
      writtenVersions(active).join(' '),
      async (next) => {
        rt.config = { ...rt.config, tags: next.config };
        for (const s of switchers) s(next);
        await announced?.setVersion(next.version, writtenVersions(next));
      },
      rt.logger,
    );
    await stop;
  } finally {
    await watch?.stop();
    await http?.close();
    await metricsServer?.close();
    await Promise.all(consumers.map((c) => c.stop()));
    await announced?.stop();
    await closeRuntime(rt);
  }
  rt.logger.info('stopped');
}
