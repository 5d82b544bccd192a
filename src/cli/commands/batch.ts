import { Command, Option } from 'commander';
import { runBatch } from '../../batch/run';
import { offlineTagsSql, windowTagsSql } from '../../batch/sql';
import { loadOfflineTable } from '../../batch/load';
import { allErasures } from '../../profile/erasure';
import { asBatchRole, checkDateRange, dateArg, timeArg, withBatchRedisOption, withRedisOptions } from '../options';
import { assertOdsDir, listOdsFiles } from '../../ods/files';
import { withRuntime } from '../process';
import { Progress } from '../progress';
import { batchProgress, formatBatchSummary, formatLoadSummary } from '../output';

/** `profile batch`: computes the offline tags from the ODS on DuckDB and loads them; `profile batch load` publishes a table computed elsewhere. */
export function makeBatchCommand(): Command {
  const batch = withBatchRedisOption(withRedisOptions(new Command('batch')))
    .description('compute the offline tags and segments from the ODS (on DuckDB, deduplicated by event id) and load them into u:{user}:off')
    .addOption(new Option('--as-of <time>', 'compute tags as of this time (epoch ms or ISO-8601; default now)').argParser(timeArg('--as-of')))
    .addOption(new Option('--from <date>', 'first ODS date to read').argParser(dateArg('--from')))
    .addOption(new Option('--to <date>', 'last ODS date to read').argParser(dateArg('--to')))
    .option('--windows', 'also compute the realtime window tags as of --as-of, for `profile verify`')
    .option(
      '--print-sql',
      'print the offline tags and segments of this run as one SQL query over the ODS (DuckDB; plain SQL past its first step, for Spark SQL or Trino) and run nothing (with --windows: the realtime window tags query)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ profile batch\n  $ profile batch --from 2026-11-01 --to 2026-11-26\n  $ profile batch --as-of 2026-11-26T12:00:00Z --windows && profile verify\n  $ profile batch --print-sql > offline.sql && duckdb -c ".read offline.sql"',
    )
    .action(async (o) => {
      checkDateRange(o.from, o.to);
      if (o.printSql) {
        await withRuntime(asBatchRole(o), async (rt) => {
          const erasures = await allErasures(rt.redis, rt.keys);
          const sqlOpts = { odsDir: rt.config.odsDir, asOf: o.asOf ?? Date.now(), from: o.from, to: o.to, erasures };
          process.stdout.write(o.windows ? windowTagsSql(rt.config.tags, sqlOpts) : offlineTagsSql(rt.config.tags, sqlOpts));
        });
        return;
      }
      await withRuntime(asBatchRole(o), async (rt) => {
        assertOdsDir(rt.config.odsDir);
        const progress = new Progress();
        // A --windows run as of a past time is a check for profile verify: it must not
        // replace the offline tags the API serves with older ones.
        const check = Boolean(o.windows) && o.asOf !== undefined && o.asOf < Date.now() - 60_000;
        const summary = await runBatch({
          redis: rt.redis,
          keys: rt.keys,
          tags: rt.config.tags,
          odsDir: rt.config.odsDir,
          publishOffline: !check,
          asOf: o.asOf ?? Date.now(),
          from: o.from,
          to: o.to,
          windows: Boolean(o.windows),
          logger: rt.logger,
          progress: (phase, done, total) => progress.update(...batchProgress(phase, done, total)),
        });
        progress.done();
        process.stdout.write(formatBatchSummary(summary, Boolean(o.windows)) + '\n');
        if (check)
          process.stdout.write(
            'offline tags not published: a --windows run as of a past time is a check for profile verify and leaves what the API serves as it was (without --windows, --as-of publishes older values)\n',
          );
        if (summary.files === 0) {
          const all = listOdsFiles(rt.config.odsDir);
          const dates = all.map((f) => f.date).sort();
          process.stderr.write(
            all.length === 0
              ? `profile: the ODS at ${rt.config.odsDir} holds no files yet: nothing was computed (is the archiver running?)\n`
              : `profile: no ODS file between --from ${o.from ?? '(any)'} and --to ${o.to ?? '(any)'}; the ODS holds ${all.length} files from ${dates[0]} to ${dates[dates.length - 1]}\n`,
          );
        }
      });
    });
  batch.addCommand(makeLoadCommand());
  return batch;
}

/** `profile batch load <file>`: an offline table (from --print-sql run anywhere) into the offline hashes. */
function makeLoadCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('load')))
    .description(
      "publish an offline table (NDJSON or Parquet: user_id, the offline tags, segment_id; e.g. the result of `profile batch --print-sql` run on DuckDB, Spark SQL or Trino) into the offline hashes, under the batch lock, replacing each user's hash",
    )
    .argument('<file>', 'the table: .ndjson (one JSON object a line) or .parquet')
    .option('--allow-bad-rows', 'exit 0 even when rows were skipped as bad (default: exit 1 when any was; the good rows are loaded either way)')
    .addHelpText(
      'after',
      '\nExample:\n  $ profile batch --print-sql > offline.sql\n  $ duckdb -c "COPY ($(cat offline.sql)) TO \'offline.parquet\'"\n  $ profile batch load offline.parquet',
    )
    .action(async (file: string, _o, cmd: Command) => {
      // The shared options may stand before `load` too (`profile batch --redis … load f`): take them from both.
      const o = cmd.optsWithGlobals();
      await withRuntime(asBatchRole(o), async (rt) => {
        const progress = new Progress();
        const summary = await loadOfflineTable({
          redis: rt.redis,
          keys: rt.keys,
          tags: rt.config.tags,
          file,
          logger: rt.logger,
          progress: (rows) => progress.update(1, 'load'.padEnd(14), `${rows} rows`),
        });
        progress.done();
        process.stdout.write(formatLoadSummary(summary) + '\n');
        if (summary.bad_rows > 0 && !o.allowBadRows) {
          process.stderr.write(
            `profile: ${summary.bad_rows} of ${summary.rows} rows were bad and skipped (the others are loaded): exit 1; --allow-bad-rows accepts that\n`,
          );
          process.exitCode = 1;
        }
      });
    });
}
