import { Command, InvalidArgumentError, Option, OptionValues } from 'commander';
import { buildTrainingSet, printedTrainingSql, TrainingFormat, TrainingSetInterrupted } from '../../training/trainingSet';
import { allErasures } from '../../profile/erasure';
import { asBatchRole, checkDateRange, dateArg, positiveDuration, withBatchRedisOption, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { ConfigError } from '../../core/errors';

/** --label clicked_within=30m (repeatable): a click on the same ad within the time after the impression. */
function labelArg(value: string, previous: { name: string; withinMs: number }[] = []) {
  const m = /^clicked_within=(.+)$/.exec(value);
  const ms = m ? positiveDuration(m[1]) : undefined;
  if (!m || ms === undefined) throw new InvalidArgumentError('--label must be clicked_within=<duration>, e.g. clicked_within=30m');
  return [...previous, { name: `clicked_within_${m[1]}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase(), withinMs: ms }];
}

/** The output format: --format, else by the file's extension (.ndjson, .jsonl, .json: NDJSON), else Parquet. */
const formatOf = (format: string | undefined, out: string): TrainingFormat =>
  (format ?? (/\.(ndjson|jsonl|json)$/i.test(out) ? 'ndjson' : 'parquet')) as TrainingFormat;

/** `profile training-set`: point-in-time features for a spine of (user_id, ts) rows, from the ODS. */
export function makeTrainingSetCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('training-set')))
    .description(
      "write every tag as of each spine row's time (point-in-time, from the ODS, on DuckDB): the features a model trains on, equal to what GET /profile answered then",
    )
    .addOption(new Option('--spine <file>', 'the rows: NDJSON or .parquet with user_id, ts (epoch ms or ISO-8601) and any other columns, passed through'))
    .addOption(
      new Option('--spine-from <source>', 'build the spine from the ODS instead: every impression, as of 1 ms before it')
        .choices(['impressions'])
        .conflicts('spine'),
    )
    .addOption(
      new Option(
        '--label <label>',
        'with --spine-from impressions: a 0/1 column, e.g. clicked_within=30m (a click on the same ad within 30 minutes); repeatable',
      ).argParser(labelArg),
    )
    .addOption(new Option('--from <date>', 'with --spine-from: first date of the impressions (UTC)').argParser(dateArg('--from')))
    .addOption(new Option('--to <date>', 'with --spine-from: last date of the impressions (UTC)').argParser(dateArg('--to')))
    .addOption(new Option('--out <file>', 'where to write the training set'))
    .addOption(new Option('--format <format>', "output format (default: by --out's extension, .ndjson → ndjson, else parquet)").choices(['parquet', 'ndjson']))
    .addOption(new Option('--tags <names>', 'comma-separated features to write (tags, segment_id); default all'))
    .addOption(
      new Option(
        '--print-sql [dialect]',
        'print the query over the ODS and the spine and run nothing: duckdb (default; what the command runs) or portable (range joins, plain SQL for Spark SQL or Trino past reading the files; slower)',
      ).choices(['duckdb', 'portable']),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ profile training-set --spine impressions.parquet --out train.parquet
  $ profile training-set --spine-from impressions --label clicked_within=30m --from 2026-11-01 --to 2026-11-07 --out ctr.parquet
  $ profile training-set --spine spine.ndjson --tags views_5m,clicks_24h,segment_id --format ndjson --out train.ndjson`,
    )
    .action(trainingSet);
}

/** The command's work, once its options are parsed. */
async function trainingSet(o: OptionValues): Promise<void> {
  checkDateRange(o.from, o.to);
  if (!o.spine && !o.spineFrom) throw new ConfigError('training-set needs --spine <file> or --spine-from impressions');
  if (!o.spineFrom && (o.label || o.from || o.to)) throw new ConfigError('--label, --from and --to go with --spine-from impressions');
  if (!o.out && !o.printSql) throw new ConfigError('training-set needs --out <file>');
  const spine = o.spine ? { file: String(o.spine) } : { impressions: { from: o.from, to: o.to, labels: o.label ?? [] } };
  const select =
    o.tags === undefined
      ? undefined
      : String(o.tags)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  await withRuntime(asBatchRole(o), async (rt) => {
    const erasures = await allErasures(rt.redis, rt.keys);
    const common = { tags: rt.config.tags, odsDir: rt.config.odsDir, spine, select, erasures };
    if (o.printSql) {
      process.stdout.write(await printedTrainingSql({ ...common, dialect: o.printSql === 'portable' ? 'portable' : 'duckdb' }));
      return;
    }
    const format = formatOf(o.format, o.out);
    // Ctrl-C or SIGTERM: stop the query and remove the partial output, then exit 130.
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const summary = await buildTrainingSet({
      ...common,
      out: o.out,
      format,
      signal: abort.signal,
      onBadLine: (bad) => rt.logger.warn({ file: bad.file, line: bad.line, reason: bad.reason }, 'ODS line skipped'),
    })
      .catch((err: unknown) => {
        if (!(err instanceof TrainingSetInterrupted)) throw err;
        process.stderr.write(`training-set interrupted: nothing written to ${o.out}\n`);
        process.exitCode = 130;
        return undefined;
      })
      .finally(() => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      });
    if (!summary) return;
    const seconds = summary.seconds < 10 ? summary.seconds.toFixed(2) : summary.seconds.toFixed(1);
    const unknown = summary.label_unknown
      ? `\n${summary.label_unknown} impressions left out: their label window reaches past the newest event in the ODS (${new Date(summary.newest_event!).toISOString()}), so their label is not known yet`
      : '';
    // No row from the ODS's impressions: say where to look (a range with no impression is the usual cause).
    const why =
      summary.rows === 0 && o.spineFrom
        ? `\nno impression in the ODS ${o.from || o.to ? `between --from ${o.from ?? '(any)'} and --to ${o.to ?? '(any)'}` : 'yet'}: the ODS holds ${summary.ods_files} files (profile status shows their dates)`
        : '';
    process.stdout.write(
      `training set: ${summary.rows} rows × ${summary.features.length} features → ${summary.out} (${summary.format}) in ${seconds} s` +
        ` · ODS ${summary.ods_files} files, ${summary.ods_lines} lines${summary.bad_lines ? `, ${summary.bad_lines} bad lines skipped` : ''}${unknown}${why}\n`,
    );
  });
}
