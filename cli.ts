#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { AppConfig, ConfigError, ConfigInput, resolveConfig } from './src/config';
import { createLogger } from './src/logger';
import { RedisServerMissingError } from './src/redisServer';
import { closeRuntime, openRuntime, runRoles, shutdownSignal } from './src/runtime';
import { ProfileReader } from './src/profile';
import { ID_PATTERN } from './src/event';
import { simulate } from './src/simulate';

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
    .addOption(new Option('--prefix <prefix>', 'prefix of every key').env('PROFILE_PREFIX'))
    .addOption(new Option('--partitions <n>', 'number of stream partitions').env('PROFILE_PARTITIONS').argParser(int('partitions')))
    .addOption(new Option('--config <file>', 'tag config JSON (default: config/tags.json)').env('PROFILE_CONFIG'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent').env('LOG_LEVEL'));
}

function withServerOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--port <port>', 'HTTP port (default 8080)').env('PORT').argParser(int('port')))
    .addOption(new Option('--host <host>', 'interface to bind (default 127.0.0.1)').env('HOST'))
    .addOption(new Option('--max-events <n>', 'most events per POST /events (default 10000)').env('PROFILE_MAX_EVENTS').argParser(int('max-events')))
    .addOption(new Option('--max-future-skew <ms>', 'how far in the future ts may be, ms (default 300000)').env('PROFILE_MAX_FUTURE_SKEW_MS').argParser(int('max-future-skew')));
}

function withConsumerOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--consumer-name <name>', 'consumer name in its groups (default <host>-<pid>)').env('PROFILE_CONSUMER_NAME'))
    .addOption(new Option('--read-count <n>', 'entries per XREADGROUP (default 500)').env('PROFILE_READ_COUNT').argParser(int('read-count')));
}

function configFrom(o: Record<string, unknown>): AppConfig {
  const input: ConfigInput = {
    redisUrl: o.redis as string | undefined,
    prefix: o.prefix as string | undefined,
    partitions: o.partitions as number | undefined,
    tagsFile: o.config as string | undefined,
    logLevel: o.logLevel as string | undefined,
    port: o.port as number | undefined,
    host: o.host as string | undefined,
    maxEventsPerRequest: o.maxEvents as number | undefined,
    maxFutureSkewMs: o.maxFutureSkew as number | undefined,
    consumerName: o.consumerName as string | undefined,
    readCount: o.readCount as number | undefined,
    dataDir: env.PROFILE_DATA_DIR,
    embeddedRedisPort: env.PROFILE_EMBEDDED_REDIS_PORT === undefined ? undefined : Number(env.PROFILE_EMBEDDED_REDIS_PORT),
  };
  return resolveConfig(input);
}

async function runProcess(o: Record<string, unknown>, roles: { api?: boolean; realtime?: boolean }, allowEmbedded: boolean) {
  const config = configFrom(o);
  const logger = createLogger(config.logLevel);
  const stop = shutdownSignal(logger);
  const rt = await openRuntime(config, logger, allowEmbedded);
  await runRoles(rt, roles, stop);
}

const program = new Command('profile')
  .description('profile-stream: Redis-native user profiles for ad platforms')
  .version('0.1.0')
  .showHelpAfterError();

withConsumerOptions(withServerOptions(withRedisOptions(program.command('up'))))
  .description('run the API and the realtime consumer in one process; starts an embedded redis-server when no Redis is configured and none answers on 127.0.0.1:6379')
  .addHelpText('after', '\nExamples:\n  $ profile up\n  $ profile up --port 9000 --redis redis://10.0.0.5:6379')
  .action((o) => runProcess(o, { api: true, realtime: true }, true));

withServerOptions(withRedisOptions(program.command('serve')))
  .description('run the HTTP API only (POST /events, GET /profile/:id, POST /profiles, GET /status, GET /health)')
  .addHelpText('after', '\nExample:\n  $ REDIS_URL=redis://127.0.0.1:6379 profile serve --port 8080')
  .action((o) => runProcess(o, { api: true }, false));

withConsumerOptions(withRedisOptions(program.command('consume')))
  .description('run a realtime consumer (group "realtime"); run several to share the partitions')
  .addHelpText('after', '\nExample:\n  $ profile consume --consumer-name rt-1')
  .action((o) => runProcess(o, { realtime: true }, false));

withRedisOptions(program.command('get'))
  .description("print a user's fused profile as JSON, read straight from Redis")
  .argument('<userId>', 'the user id')
  .addHelpText('after', '\nExample:\n  $ profile get user-1')
  .action(async (userId: string, o) => {
    if (!ID_PATTERN.test(userId)) throw new ConfigError('user id must be 1-128 characters of A-Z a-z 0-9 . _ : @ -');
    const config = configFrom({ logLevel: 'warn', ...o });
    const rt = await openRuntime(config, createLogger(config.logLevel));
    try {
      const profile = await new ProfileReader(rt.redis, rt.keys, config.tags.realtime).read(userId);
      if (!profile) {
        process.stderr.write(`profile: unknown user ${userId}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(JSON.stringify(profile, null, 2) + '\n');
    } finally {
      await closeRuntime(rt);
    }
  });

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
  .option('--json', 'print the summary as JSON')
  .addHelpText('after', '\nExamples:\n  $ profile simulate --duration 10\n  $ profile simulate --users 100000 --rate 20000 --duration 60 --json')
  .action(async (o) => {
    for (const k of ['users', 'rate', 'duration', 'concurrency'] as const) {
      if (o[k] < 1) throw new ConfigError(`--${k} must be at least 1`);
    }
    const summary = await simulate({
      url: o.url, users: o.users, rate: o.rate, durationS: o.duration, batchSize: o.batch,
      concurrency: o.concurrency, seed: o.seed,
      progress: process.stderr.isTTY ? (line) => process.stderr.write(`\r${line}   `) : undefined,
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
  if (err instanceof ConfigError) {
    process.stderr.write(`profile: ${err.message}\n`);
    process.exit(2);
  }
  const known = err instanceof RedisServerMissingError || /cannot connect to Redis/.test(err.message);
  process.stderr.write(`profile: ${known ? err.message : err.stack ?? err.message}\n`);
  process.exit(1);
});
