#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { AppConfig, ConfigInput, resolveConfig } from './src/core/config';
import { ConfigError, ProfileStreamError } from './src/core/errors';
import { createLogger } from './src/core/logger';
import { parseApiKeys } from './src/core/apiKeys';
import { allErasures, eraseUser, purgeOds } from './src/profile/erasure';
import { Roles, Runtime, closeRuntime, openRuntime, runRoles, shutdownSignal } from './src/runtime/runtime';
import { runBatch } from './src/batch/run';
import { verifyWindows } from './src/batch/verify';
import { groupConsumers, streamStatus } from './src/redis/streamStatus';
import { GROUPS } from './src/consumers/groups';
import { formatStatus, table } from './src/ops/statusReport';
import { listDeadLetters, purgeDeadLetters, replayDeadLetters } from './src/consumers/deadLetters';
import { listOdsFiles } from './src/ods/files';
import { ProfileReader } from './src/profile/reader';
import { ID_PATTERN, ID_RULE, parseIsoTime } from './src/core/event';
import { simulate } from './src/dev/simulate';

// The only module that reads process.env: everything else gets an AppConfig.
const env = process.env;

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
  return n;
};

/** Options shared by every command that talks to Redis; each has an env var. */
function withRedisOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--redis <url>', 'Redis URL').env('REDIS_URL'))
    .addOption(new Option('--cluster <nodes>', 'Redis Cluster seed nodes, host:port,host:port,... (instead of --redis)').env('REDIS_CLUSTER_NODES'))
    .addOption(new Option('--prefix <prefix>', 'prefix of every key').env('PROFILE_PREFIX'))
    .addOption(new Option('--partitions <n>', 'number of stream partitions').env('PROFILE_PARTITIONS').argParser(int('partitions')))
    .addOption(new Option('--config <file>', 'tag config JSON (default: config/tags.json)').env('PROFILE_CONFIG'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent').env('LOG_LEVEL'))
    .addOption(new Option('--pretty', 'human-readable logs instead of JSON lines').env('LOG_PRETTY'))
    .addOption(new Option('--ods <dir>', 'ODS directory (default ./data/ods)').env('ODS_DIR'));
}

function withServerOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--port <port>', 'HTTP port (default 8080)').env('PORT').argParser(int('port')))
    .addOption(new Option('--host <host>', 'interface to bind (default 127.0.0.1)').env('HOST'))
    .addOption(new Option('--max-events <n>', 'most events per POST /events (default 10000)').env('PROFILE_MAX_EVENTS').argParser(int('max-events')))
    .addOption(new Option('--max-future-skew <ms>', 'how far in the future ts may be, ms (default 300000)').env('PROFILE_MAX_FUTURE_SKEW_MS').argParser(int('max-future-skew')))
    .addOption(new Option('--rate-limit <n>', 'requests per second per API key (or client address); 0 = no limit (default 0)').env('PROFILE_RATE_LIMIT').argParser(int('rate-limit')))
    .addOption(new Option('--ingest-redis <url>', 'Redis URL the producer writes events with, e.g. as the ACL user "ingest" (default: --redis)').env('REDIS_INGEST_URL'))
    .addOption(new Option('--batch-redis <url>', 'Redis URL for erasure, the batch lock and POST /batch runs, e.g. as the ACL user "batch" (default: --redis)').env('REDIS_BATCH_URL'))
    .addOption(new Option('--max-backlog <n>', 'unfinished entries per partition before POST /events answers 503 (default 1000000)').env('PROFILE_MAX_BACKLOG').argParser(int('max-backlog')));
}

function withConsumerOptions(cmd: Command): Command {
  if (!cmd.options.some((o) => o.long === '--host')) {
    cmd.addOption(new Option('--host <host>', 'interface the --metrics-port server binds (default 127.0.0.1)').env('HOST'));
  }
  return cmd
    .addOption(new Option('--consumer-name <name>', 'consumer name in its groups (default <host>-<pid>)').env('PROFILE_CONSUMER_NAME'))
    .addOption(new Option('--only-partitions <list>', 'read only these partitions, e.g. 0,3 (default all)').env('PROFILE_ONLY_PARTITIONS'))
    .addOption(new Option('--read-count <n>', 'entries per XREADGROUP (default 500)').env('PROFILE_READ_COUNT').argParser(int('read-count')))
    .addOption(new Option('--claim-idle <ms>', 'claim entries pending this long from dead consumers (default 30000)').env('PROFILE_CLAIM_IDLE_MS').argParser(int('claim-idle')))
    .addOption(new Option('--max-deliveries <n>', 'dead-letter an entry after this many deliveries (default 5)').env('PROFILE_MAX_DELIVERIES').argParser(int('max-deliveries')))
    .addOption(new Option('--metrics-port <port>', 'serve GET /metrics on this port (processes without the API)').env('PROFILE_METRICS_PORT').argParser(int('metrics-port')))
    .addOption(new Option('--fault-ack-delay <ms>', 'fault suite only: archiver sleeps between fsync and ack').env('PROFILE_FAULT_ACK_DELAY_MS').argParser(int('fault-ack-delay')).hideHelp());
}

function configFrom(o: Record<string, unknown>): AppConfig {
  const input: ConfigInput = {
    redisUrl: o.redis as string | undefined,
    clusterNodes: typeof o.cluster === 'string' && o.cluster.trim() !== '' ? o.cluster.split(',').map((n) => n.trim()) : undefined,
    prefix: o.prefix as string | undefined,
    partitions: o.partitions as number | undefined,
    tagsFile: o.config as string | undefined,
    logLevel: o.logLevel as string | undefined,
    port: o.port as number | undefined,
    host: o.host as string | undefined,
    maxEventsPerRequest: o.maxEvents as number | undefined,
    maxFutureSkewMs: o.maxFutureSkew as number | undefined,
    consumerName: o.consumerName as string | undefined,
    onlyPartitions: typeof o.onlyPartitions === 'string' && o.onlyPartitions.trim() !== '' ? o.onlyPartitions.split(',').map((n) => (/^\s*\d+\s*$/.test(n) ? Number(n) : NaN)) : undefined,
    readCount: o.readCount as number | undefined,
    odsDir: o.ods as string | undefined,
    claimIdleMs: o.claimIdle as number | undefined,
    maxDeliveries: o.maxDeliveries as number | undefined,
    maxBacklog: o.maxBacklog as number | undefined,
    faultAckDelayMs: o.faultAckDelay as number | undefined,
    metricsPort: o.metricsPort as number | undefined,
    rateLimitPerS: o.rateLimit as number | undefined,
    ingestRedisUrl: o.ingestRedis as string | undefined,
    batchRedisUrl: o.batchRedis as string | undefined,
    // Keys come from the environment only: a command line is visible to every local user (ps).
    apiKeys: env.PROFILE_API_KEYS ? parseApiKeys(env.PROFILE_API_KEYS) : undefined,
    prettyLogs: o.pretty === undefined ? undefined : o.pretty === true || !/^(0|false|no|)$/i.test(String(o.pretty)),
    dataDir: env.PROFILE_DATA_DIR,
    embeddedRedisPort: env.PROFILE_EMBEDDED_REDIS_PORT === undefined ? undefined : Number(env.PROFILE_EMBEDDED_REDIS_PORT),
    embeddedAppendfsync: env.PROFILE_REDIS_APPENDFSYNC as ConfigInput['embeddedAppendfsync'],
  };
  return resolveConfig(input);
}

async function runProcess(o: Record<string, unknown>, roles: Roles, allowEmbedded: boolean) {
  const config = configFrom(o);
  const logger = createLogger(config.logLevel, config.prettyLogs);
  const stop = shutdownSignal(logger);
  const rt = await openRuntime(config, logger, allowEmbedded);
  await runRoles(rt, roles, stop);
}

const program = new Command('profile')
  .description('profile-stream: Redis-native user profiles for ad platforms')
  .version('0.1.0')
  .showHelpAfterError()
  // Usage errors (unknown option or command, bad argument) exit 2 like configuration
  // errors, not commander's default 1, which means a runtime failure here.
  .exitOverride()
  .addHelpText('after', `
Every option that talks to Redis also reads an environment variable (shown as "env:" in each
command's --help). Exit codes: 0 ok, 1 runtime failure (no Redis, a batch already running,
verify mismatches, unknown user for get), 2 usage or configuration error.

Examples:
  $ profile up                                  # everything in one process
  $ profile simulate --duration 10 && curl localhost:8080/profile/user-1
  $ profile consume --cluster 10.0.0.1:6379,10.0.0.2:6379 --consumer-name rt-1 --metrics-port 9464`);

withConsumerOptions(withServerOptions(withRedisOptions(program.command('up'))))
  .description('run the API, the realtime consumer and the archiver in one process; starts an embedded redis-server when no Redis is configured and none answers on 127.0.0.1:6379')
  .addHelpText('after', '\nExamples:\n  $ profile up\n  $ profile up --port 9000 --redis redis://10.0.0.5:6379 --ods /data/ods')
  .action((o) => runProcess(o, { api: true, realtime: true, archive: true }, true));

withServerOptions(withRedisOptions(program.command('serve')))
  .description('run the HTTP API only (POST /events, GET /profile/:id, POST /profiles, POST /batch, GET /batch/:id, GET /status, GET /health, GET /ready, GET /metrics, GET /openapi.json)')
  .addHelpText('after', '\nExample:\n  $ REDIS_URL=redis://127.0.0.1:6379 profile serve --port 8080')
  .action((o) => runProcess(o, { api: true }, false));

withConsumerOptions(withRedisOptions(program.command('consume')))
  .description('run a realtime consumer (group "realtime"); run several to share the partitions')
  .addHelpText('after', '\nExample:\n  $ profile consume --consumer-name rt-1')
  .action((o) => runProcess(o, { realtime: true }, false));

withConsumerOptions(withRedisOptions(program.command('archive')))
  .description('run an archive consumer (group "archive"): streams to NDJSON files under <ods>/dt=YYYY-MM-DD/, fsynced before ack')
  .addHelpText('after', '\nExample:\n  $ profile archive --ods /mnt/ods --consumer-name arch-1')
  .action((o) => runProcess(o, { archive: true }, false));

/** Adds --batch-redis to a command that writes as the batch role (batch, verify, erase). */
function withBatchRole(cmd: Command): Command {
  return cmd.addOption(new Option('--batch-redis <url>', 'Redis URL to use instead of --redis, e.g. as the ACL user "batch"').env('REDIS_BATCH_URL'));
}

/** The options of a batch-role command with its Redis URL: --batch-redis when given. */
const asBatchRole = (o: Record<string, unknown>) => ({ ...o, redis: o.batchRedis ?? o.redis, batchRedis: undefined });

/** Opens Redis for a one-shot command, runs `fn`, and closes. */
async function withRuntime<T>(o: Record<string, unknown>, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const config = configFrom({ logLevel: 'warn', ...o });
  const rt = await openRuntime(config, createLogger(config.logLevel, config.prettyLogs));
  try {
    return await fn(rt);
  } finally {
    await closeRuntime(rt);
  }
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const timeArg = (name: string) => (value: string) => {
  const ms = /^\d+$/.test(value) ? Number(value) : parseIsoTime(value);
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`${name} must be epoch ms or an ISO-8601 date-time`);
  return ms;
};
const dateArg = (name: string) => (value: string) => {
  if (!DATE.test(value)) throw new InvalidArgumentError(`${name} must be a date YYYY-MM-DD`);
  return value;
};

withBatchRole(withRedisOptions(program.command('batch')))
  .description('replay the ODS into offline tags and segments (u:{user}:off), deduplicated by event id')
  .addOption(new Option('--as-of <time>', 'compute tags as of this time (epoch ms or ISO-8601; default now)').argParser(timeArg('--as-of')))
  .addOption(new Option('--from <date>', 'first ODS date to read').argParser(dateArg('--from')))
  .addOption(new Option('--to <date>', 'last ODS date to read').argParser(dateArg('--to')))
  .option('--windows', 'also compute the realtime window tags as of --as-of, for `profile verify`')
  .addOption(new Option('--run-id <id>', 'run id (set by POST /batch)').hideHelp())
  .addHelpText('after', '\nExamples:\n  $ profile batch\n  $ profile batch --from 2026-11-01 --to 2026-11-26\n  $ profile batch --as-of 2026-11-26T12:00:00Z --windows && profile verify')
  .action(async (o) => {
    await withRuntime(asBatchRole({ logLevel: 'info', ...o }), async (rt) => {
      const tty = process.stderr.isTTY;
      let lastLine = 0;
      const summary = await runBatch({
        redis: rt.redis, target: rt.target, keys: rt.keys, tags: rt.config.tags, odsDir: rt.config.odsDir,
        asOf: o.asOf ?? Date.now(), from: o.from, to: o.to, windows: Boolean(o.windows), runId: o.runId, logger: rt.logger,
        // A run the API started (--run-id) reports through its registry hash, not stderr.
        progress: o.runId ? undefined : (phase, done, total) => {
          const now = Date.now();
          if (tty) {
            const pct = total ? Math.min(100, Math.floor((done / total) * 100)) : 100;
            const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
            process.stderr.write(`\r${phase.padEnd(14)} [${bar}] ${String(pct).padStart(3)}%  ${(done / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MiB`);
          } else if (now - lastLine >= 5000) {
            lastLine = now;
            process.stderr.write(`${phase}: ${(done / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MiB\n`);
          }
        },
      });
      if (tty) process.stderr.write('\n');
      const lines = [
        `run        ${summary.run_id} (as of ${new Date(summary.as_of).toISOString()})`,
        `read       ${summary.files} files, ${(summary.bytes / 1048576).toFixed(1)} MiB, ${summary.lines} lines in ${summary.seconds.toFixed(1)} s (${Math.round(summary.lines / Math.max(summary.seconds, 0.001))} lines/s)`,
        `events     ${summary.events} counted, ${summary.duplicates} duplicates skipped, ${summary.events_after_as_of} after --as-of ignored`,
        `bad lines  ${summary.bad_lines}${summary.bad_line_samples.slice(0, 10).map((b) => `\n  ${b.file}:${b.line}: ${b.reason}`).join('')}`,
        `users      ${summary.users_written} offline profiles written${o.windows ? `, ${summary.window_users_written} window results` : ''}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
  });

withBatchRole(withRedisOptions(program.command('verify')))
  .description('compare the window tags of the newest `profile batch --windows` run with what the live windows answer at its as-of time')
  .addOption(new Option('--as-of <time>', 'fail unless the newest --windows run is as of this time').argParser(timeArg('--as-of')))
  .addHelpText('after', '\nExample:\n  $ profile batch --windows --as-of 1795687800000 && profile verify --as-of 1795687800000')
  .action(async (o) => {
    await withRuntime(asBatchRole(o), async (rt) => {
      const result = await verifyWindows(rt.redis, rt.keys, rt.config.tags.realtime, o.asOf);
      for (const m of result.mismatches.slice(0, 50)) {
        process.stdout.write(`mismatch ${m.user_id} ${m.tag}: batch ${JSON.stringify(m.batch)} live ${JSON.stringify(m.live)}\n`);
      }
      process.stdout.write(`run ${result.run_id} as of ${new Date(result.as_of).toISOString()}: ${result.users_checked} users checked, ${result.mismatches.length} mismatches\n`);
      if (result.mismatches.length > 0) process.exitCode = 1;
    });
  });

withRedisOptions(program.command('status'))
  .description('show stream partitions (length, oldest entry), consumer groups (lag, pending, consumers) and the ODS size')
  .option('--json', 'print JSON instead of a table')
  .addOption(new Option('--watch [seconds]', 'print again every N seconds (default 2) until Ctrl-C').argParser(int('watch')))
  .addHelpText('after', '\nExamples:\n  $ profile status\n  $ profile status --watch 1\n  $ profile status --json | jq \'.partitions[].groups\'')
  .action(async (o) => {
    const every = o.watch === undefined ? 0 : o.watch === true ? 2 : o.watch;
    if (o.watch !== undefined && every < 1) throw new ConfigError('--watch must be at least 1 second');
    await withRuntime(o, async (rt) => {
      let stopped = false;
      const stop = () => (stopped = true);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      for (;;) {
        const partitions = await streamStatus(rt.redis, rt.keys, rt.config.partitions);
        const ods = listOdsFiles(rt.config.odsDir);
        if (o.json) {
          process.stdout.write(JSON.stringify({ at: Date.now(), partitions, ods: { dir: rt.config.odsDir, files: ods.length, bytes: ods.reduce((n, f) => n + f.bytes, 0) } }) + '\n');
        } else {
          // On a terminal each report replaces the last; piped, they follow each other with a time stamp.
          const head = every && process.stdout.isTTY ? '\x1b[H\x1b[2J' : every ? `${new Date().toISOString()}\n` : '';
          process.stdout.write(head + formatStatus(partitions, ods, rt.config.odsDir, Date.now()) + '\n');
        }
        if (!every) return;
        for (let waited = 0; waited < every * 1000 && !stopped; waited += 100) await new Promise((r) => setTimeout(r, 100));
        if (stopped) return;
      }
    });
  });

const dead = program.command('dead').description('inspect, replay or purge the dead-letter stream (ev:dead)');
withRedisOptions(dead.command('list'))
  .description('list dead letters: original stream and id, group, consumer, deliveries, error')
  .option('--count <n>', 'at most this many', int('count'), 100)
  .option('--json', 'print JSON lines')
  .addHelpText('after', '\nExample:\n  $ profile dead list --count 20')
  .action(async (o) => {
    await withRuntime(o, async (rt) => {
      const letters = await listDeadLetters(rt.redis, rt.keys, o.count);
      if (o.json) {
        for (const l of letters) process.stdout.write(JSON.stringify(l) + '\n');
        return;
      }
      const rows = letters.map((l) => [l.dead_id, l.stream, l.id, l.group, String(l.deliveries), l.error]);
      process.stdout.write(table(['dead id', 'stream', 'entry id', 'group', 'deliveries', 'error'], rows, [0, 1, 2, 3, 5]) + '\n');
    });
  });
withRedisOptions(dead.command('replay'))
  .description('put dead letters back into their partitions (all, or --id ...) and delete them from ev:dead')
  .option('--id <deadId...>', 'only these dead ids')
  .addHelpText('after', '\nExamples:\n  $ profile dead replay\n  $ profile dead replay --id 1795687489291-0')
  .action(async (o) => {
    await withRuntime(o, async (rt) => {
      const r = await replayDeadLetters(rt.redis, rt.keys, rt.config.partitions, o.id);
      process.stdout.write(`replayed ${r.replayed}${r.skipped.length ? `, skipped ${r.skipped.length} (not from a partition): ${r.skipped.join(' ')}` : ''}\n`);
    });
  });
withRedisOptions(dead.command('purge'))
  .description('delete every dead letter')
  .addHelpText('after', '\nExample:\n  $ profile dead purge')
  .action(async (o) => {
    await withRuntime(o, async (rt) => {
      process.stdout.write(`purged ${await purgeDeadLetters(rt.redis, rt.keys)}\n`);
    });
  });

withBatchRole(withRedisOptions(program.command('erase')))
  .description("erase users: delete all their keys, record them so every later batch skips their events, and with --purge-ods remove their events from the ODS")
  .argument('[userIds...]', 'users to erase (none with --purge-ods: purge the events of every user erased so far)')
  .option('--purge-ods', 'rewrite the ODS files without the events of erased users (refused while an archiver is active)')
  .option('--force', 'purge even though an archiver looks active')
  .addHelpText('after', '\nExamples:\n  $ profile erase user-42\n  $ profile erase user-42 user-43 --purge-ods\n  $ profile erase --purge-ods')
  .action(async (userIds: string[], o) => {
    const bad = userIds.find((u) => !ID_PATTERN.test(u));
    if (bad !== undefined) throw new ConfigError(`user id must be ${ID_RULE}`);
    if (userIds.length === 0 && !o.purgeOds) throw new ConfigError('name at least one user id, or give --purge-ods');
    await withRuntime(asBatchRole(o), async (rt) => {
      for (const userId of userIds) {
        const n = await eraseUser(rt.redis, rt.keys, userId);
        process.stdout.write(`erased ${userId}: ${n} keys deleted\n`);
      }
      if (!o.purgeOds) return;
      const active = await activeArchivers(rt);
      if (active.length > 0 && !o.force) {
        process.stderr.write(`profile: archivers are active (${active.join(', ')}): stop them before --purge-ods (or --force)\n`);
        process.exitCode = 1;
        return;
      }
      const r = await purgeOds(rt.config.odsDir, await allErasures(rt.redis, rt.keys));
      process.stdout.write(`ODS ${rt.config.odsDir}: ${r.lines_removed} lines removed from ${r.files_rewritten} files\n`);
    });
  });

/** Archive consumers seen on any partition within the claim time: they may be writing the ODS. */
async function activeArchivers(rt: Runtime): Promise<string[]> {
  const active = new Set<string>();
  for (const stream of rt.keys.streams(rt.config.partitions)) {
    const consumers = await groupConsumers(rt.redis, stream, GROUPS.archive).catch(() => []); // no stream or group: nobody archives it
    for (const c of consumers) if (c.idle < rt.config.claimIdleMs) active.add(c.name);
  }
  return [...active];
}

withRedisOptions(program.command('get'))
  .description("print a user's fused profile as JSON, read straight from Redis")
  .argument('<userId>', 'the user id')
  .addHelpText('after', '\nExample:\n  $ profile get user-1')
  .action(async (userId: string, o) => {
    if (!ID_PATTERN.test(userId)) throw new ConfigError(`user id must be ${ID_RULE}`);
    await withRuntime(o, async (rt) => {
      const profile = await new ProfileReader(rt.redis, rt.keys, rt.config.tags.realtime).read(userId);
      if (!profile) {
        process.stderr.write(`profile: unknown user ${userId}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(JSON.stringify(profile, null, 2) + '\n');
    });
  });

/**
 * Progress output: on a terminal a bar of the elapsed share of `durationS` and the line,
 * rewritten in place; otherwise the plain line every 5 s.
 */
function progressLine(durationS: number): (line: string) => void {
  const started = Date.now();
  if (process.stderr.isTTY) {
    return (line) => {
      const pct = Math.min(100, Math.floor(((Date.now() - started) / 1000 / durationS) * 100));
      process.stderr.write(`\r[${'#'.repeat(Math.floor(pct / 4)).padEnd(25, '.')}] ${String(pct).padStart(3)}%  ${line}   `);
    };
  }
  let last = 0;
  return (line) => {
    if (Date.now() - last < 5000) return;
    last = Date.now();
    process.stderr.write(`${line}\n`);
  };
}

program
  .command('simulate')
  .description('send realistic ad traffic (impressions >> clicks >> purchases, Zipf-skewed users) to a running API')
  .option('--url <url>', 'API base URL', env.PROFILE_URL ?? 'http://127.0.0.1:8080')
  .option('--users <n>', 'distinct users', int('users'), 1000)
  .option('--rate <n>', 'target events per second', int('rate'), 1000)
  .option('--duration <s>', 'seconds to send for', int('duration'), 30)
  .option('--batch <n>', 'events per request (default rate/20, at most 1000)', int('batch'))
  .option('--concurrency <n>', 'requests in flight', int('concurrency'), 4)
  .option('--seed <n>', 'generator seed (same seed, same traffic)', int('seed'))
  .addOption(new Option('--api-key <key>', 'API key with the ingest (or admin) role, when the API requires keys').env('PROFILE_API_KEY'))
  .option('--json', 'print the summary as JSON')
  .addHelpText('after', '\nExamples:\n  $ profile simulate --duration 10\n  $ profile simulate --users 100000 --rate 20000 --duration 60 --json')
  .action(async (o) => {
    for (const k of ['users', 'rate', 'duration', 'concurrency'] as const) {
      if (o[k] < 1) throw new ConfigError(`--${k} must be at least 1`);
    }
    const summary = await simulate({
      url: o.url, users: o.users, rate: o.rate, durationS: o.duration, batchSize: o.batch,
      concurrency: o.concurrency, seed: o.seed, apiKey: o.apiKey,
      progress: progressLine(o.duration),
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (o.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
    } else {
      const processed = summary.processed_per_s === null
        ? 'not all processed within 60 s (is a realtime consumer running?)'
        : `${summary.processed_per_s} events/s (all processed ${summary.processed_seconds!.toFixed(1)} s after start)`;
      process.stdout.write(
        [
          `sent       ${summary.sent} events in ${summary.send_seconds.toFixed(1)} s (${JSON.stringify(summary.by_type)})`,
          `accepted   ${summary.accepted} (${summary.accepted_per_s} events/s), rejected ${summary.rejected}, failed requests ${summary.failed_requests}`,
          `processed  ${processed}`,
          `top users  ${summary.top_users.join(', ')}`,
          `try        curl ${o.url.replace(/\/+$/, '')}/profile/${summary.top_users[0] ?? 'user-1'}`,
        ].join('\n') + '\n',
      );
    }
    if (summary.accepted === 0 || summary.failed_requests > 0) process.exitCode = 1;
  });

program.parseAsync(process.argv).catch((err: Error) => {
  if (err instanceof CommanderError) {
    // commander already printed the message (or the help / version).
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  // The product's own errors say what to do and carry their exit code; anything else is a bug.
  const known = err instanceof ProfileStreamError;
  process.stderr.write(`profile: ${known ? err.message : err.stack ?? err.message}\n`);
  process.exit(known ? err.exitCode : 1);
});
