import { Command, Option } from 'commander';
import { runBatch } from '../../batch/run';
import { offlineTagsSql } from '../../batch/sql';
import { allErasures } from '../../profile/erasure';
import { asBatchRole, dateArg, timeArg, withBatchRedisOption, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { Progress } from '../progress';
import { batchProgress, formatBatchSummary } from '../output';

/** `profile batch`: replays the ODS into the offline tags. */
export function makeBatchCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('batch')))
    .description('replay the ODS into offline tags and segments (u:{user}:off), deduplicated by event id')
    .addOption(new Option('--as-of <time>', 'compute tags as of this time (epoch ms or ISO-8601; default now)').argParser(timeArg('--as-of')))
    .addOption(new Option('--from <date>', 'first ODS date to read').argParser(dateArg('--from')))
    .addOption(new Option('--to <date>', 'last ODS date to read').argParser(dateArg('--to')))
    .option('--windows', 'also compute the realtime window tags as of --as-of, for `profile verify`')
    .option('--print-sql', 'print the offline tags and segments of this run as one SQL query over the ODS (DuckDB; plain SQL past its first step, for Spark SQL or Trino) and run nothing')
    .addHelpText('after', '\nExamples:\n  $ profile batch\n  $ profile batch --from 2026-11-01 --to 2026-11-26\n  $ profile batch --as-of 2026-11-26T12:00:00Z --windows && profile verify\n  $ profile batch --print-sql > offline.sql && duckdb -c ".read offline.sql"')
    .action(async (o) => {
      if (o.printSql) {
        await withRuntime(asBatchRole(o), async (rt) => {
          const erasures = await allErasures(rt.redis, rt.keys);
          process.stdout.write(offlineTagsSql(rt.config.tags, { odsDir: rt.config.odsDir, asOf: o.asOf ?? Date.now(), from: o.from, to: o.to, erasures }));
        });
        return;
      }
      await withRuntime(asBatchRole({ logLevel: 'info', ...o }), async (rt) => {
        const progress = new Progress();
        const summary = await runBatch({
          redis: rt.redis, target: rt.target, keys: rt.keys, tags: rt.config.tags, odsDir: rt.config.odsDir,
          asOf: o.asOf ?? Date.now(), from: o.from, to: o.to, windows: Boolean(o.windows), logger: rt.logger,
          progress: (phase, done, total) => progress.update(...batchProgress(phase, done, total)),
        });
        progress.done();
        process.stdout.write(formatBatchSummary(summary, Boolean(o.windows)) + '\n');
      });
    });
}
