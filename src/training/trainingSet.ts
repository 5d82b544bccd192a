import fs from 'fs';
import os from 'os';
import path from 'path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { ConfigError } from '../core/errors';
import { SEGMENT_TAG, TagConfig } from '../core/tags';
import { listOdsFiles } from '../ods/files';
import { BadLine } from '../ods/readOds';
import { CheckedFiles } from '../ods/checkedFiles';
import { queryCheckedOds } from '../ods/checkedQuery';
import { sqlString } from '../ods/sql';
import { RESERVED_SPINE_COLUMNS, SpineSource, featureNames, spineColumns, spineTimeSql, trainingSetSql, unknownLabelsSql } from './sql';

/**
 * `profile training-set`: reads the spine, checks the ODS as the batch does (bad lines
 * reported, never read), and writes the spine with its point-in-time features
 * (training/sql.ts) to Parquet or NDJSON with DuckDB's COPY, into a temporary file renamed
 * over `out` when complete.
 */

export type TrainingFormat = 'parquet' | 'ndjson';

export type SpineInput = { file: string } | { impressions: { from?: string; to?: string; labels: { name: string; withinMs: number }[] } };

export interface TrainingSetOptions {
  tags: TagConfig;
  odsDir: string;
  spine: SpineInput;
  out: string;
  format: TrainingFormat;
  /** Features to write (tag names, segment_id); all when absent. */
  select?: string[];
  /** Erased users and their erasure times (ms). */
  erasures: Map<string, number>;
  /** Where DuckDB spills and checked copies of files with bad lines go. @defaultValue the OS temp dir */
  tmpDir?: string;
  onBadLine?: (bad: BadLine) => void;
  /** Aborting stops the query (DuckDB interrupted) and removes what was written: the call rejects with TrainingSetInterrupted. */
  signal?: AbortSignal;
}

/** The build was aborted (SIGINT/SIGTERM in the CLI): nothing was written. */
export class TrainingSetInterrupted extends Error {
  override name = 'TrainingSetInterrupted';
}

export interface TrainingSetSummary {
  out: string;
  format: TrainingFormat;
  rows: number;
  features: string[];
  ods_files: number;
  ods_lines: number;
  bad_lines: number;
  /** With --spine-from impressions and labels: impressions left out because their label is not known yet, and the ODS's newest event time. */
  label_unknown?: number;
  newest_event?: number;
  seconds: number;
}

/** The spine's format from its name: .parquet, else NDJSON. */
export const spineReader = (file: string) =>
  /\.parquet$/i.test(file) ? `read_parquet(${sqlString(file)})` : `read_json(${sqlString(file)}, format = 'newline_delimited')`;

/** Checks the selection of features against the tag config. */
export function checkSelection(tags: TagConfig, select: string[] | undefined): string[] | undefined {
  if (!select) return undefined;
  const known = featureNames(tags);
  const unknown = select.filter((s) => !known.includes(s));
  if (unknown.length) throw new ConfigError(`--tags: ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not a tag of the config (${known.join(', ')})`);
  if (select.length === 0) throw new ConfigError('--tags: name at least one tag');
  return known.filter((k) => select.includes(k)); // config order
}

async function describeSpine(conn: DuckDBConnection, file: string): Promise<SpineSource & { kind: 'file' }> {
  if (!fs.existsSync(file)) throw new ConfigError(`the spine ${file} does not exist`);
  const reader = spineReader(file);
  let described: Record<string, unknown>[];
  try {
    described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${reader}`)).getRowObjects();
  } catch (err) {
    throw new ConfigError(`the spine ${file} cannot be read as ${/\.parquet$/i.test(file) ? 'Parquet' : 'NDJSON'}: ${(err as Error).message.split('\n')[0]}`);
  }
  const columns = described.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
  const names = columns.map((c) => c.name);
  for (const needed of ['user_id', 'ts']) {
    if (!names.includes(needed)) throw new ConfigError(`the spine ${file} has no ${needed} column (it has ${names.join(', ')})`);
  }
  const reserved = names.filter((n) => RESERVED_SPINE_COLUMNS.includes(n));
  if (reserved.length) throw new ConfigError(`the spine's column ${reserved[0]} is a name the training set uses itself: rename it`);
  try {
    spineTimeSql(columns.find((c) => c.name === 'ts')!.type);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return { kind: 'file', reader, columns };
}

/** 9999-12-31T23:59:59.999Z: a later time (ts 1e18) is a mistake, and past what dates and timestamps hold. */
const LATEST_MS = 253_402_300_799_999;

/** Times before 1973-03-03 (1e11 ms): a spine in epoch seconds, read as ms, would silently get the features of 1970. */
const SECONDS_NOT_MS = 100_000_000_000;

/** Every spine row must have a user and a time in ms: the first that does not is reported (row numbers from 1). Returns the latest time. */
async function checkSpineRows(conn: DuckDBConnection, spine: SpineSource & { kind: 'file' }): Promise<number> {
  const tsType = spine.columns.find((c) => c.name === 'ts')!.type;
  const [r] = (
    await conn.runAndReadAll(`SELECT MAX(_asof) AS hi,
      MIN(_row) FILTER (WHERE _user IS NULL OR _user = '') AS no_user,
      MIN(_row) FILTER (WHERE _asof IS NULL OR _asof > ${LATEST_MS}) AS bad_ts,
      MIN(_row) FILTER (WHERE _asof < ${SECONDS_NOT_MS}) AS seconds_row, arg_min(_asof, _row) FILTER (WHERE _asof < ${SECONDS_NOT_MS}) AS seconds_value,
      arg_min(CAST(${tsType === 'JSON' ? `ts ->> '$'` : 'ts'} AS VARCHAR), _row) FILTER (WHERE _asof IS NULL OR _asof > ${LATEST_MS}) AS bad_value
    FROM (SELECT CAST(user_id AS VARCHAR) AS _user, ${spineTimeSql(tsType)} AS _asof, ts, ROW_NUMBER() OVER () AS _row FROM ${spine.reader})`)
  ).getRowObjects();
  if (r.no_user !== null) throw new ConfigError(`spine row ${r.no_user}: no user_id`);
  if (r.bad_ts !== null)
    throw new ConfigError(`spine row ${r.bad_ts}: ts ${JSON.stringify(r.bad_value)} is neither epoch ms nor an ISO-8601 time up to year 9999`);
  if (r.seconds_row !== null) {
    const at = new Date(Number(r.seconds_value)).toISOString();
    throw new ConfigError(`spine row ${r.seconds_row}: ts ${r.seconds_value} is ${at} as epoch ms: epoch seconds? ts must be epoch milliseconds (or ISO-8601)`);
  }
  return r.hi === null ? 0 : Number(r.hi);
}

/** The features `select` names, or every feature, with the columns the spine passes through checked against them. */
function outputFeatures(tags: TagConfig, spine: SpineSource, select?: string[]): string[] {
  const features = select ?? featureNames(tags);
  const clash = spineColumns(spine).find((c) => features.includes(c));
  if (clash) throw new ConfigError(`the spine's column ${clash} has the name of a feature: rename it, or leave the feature out with --tags`);
  return features.filter((f) => f !== SEGMENT_TAG || tags.segments.length > 0);
}

/** The spine description and the bound of event times (ms) the query needs. */
export async function prepareSpine(conn: DuckDBConnection, opts: Pick<TrainingSetOptions, 'spine'>): Promise<{ spine: SpineSource; bound: number }> {
  await conn.run(`SET TimeZone = 'UTC'`); // ISO times without an offset are UTC
  if ('impressions' in opts.spine) return { spine: { kind: 'impressions', ...opts.spine.impressions }, bound: Infinity };
  const spine = await describeSpine(conn, opts.spine.file);
  return { spine, bound: await checkSpineRows(conn, spine) };
}

/** The query `--print-sql` prints: over the ODS's dt= folders. */
export async function printedTrainingSql(opts: Omit<TrainingSetOptions, 'out' | 'format'> & { dialect?: 'duckdb' | 'portable' }): Promise<string> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const select = checkSelection(opts.tags, opts.select);
    const { spine, bound } = await prepareSpine(conn, opts);
    outputFeatures(opts.tags, spine, select);
    return trainingSetSql(opts.tags, { odsDir: opts.odsDir, asOf: bound, erasures: opts.erasures, spine, select, dialect: opts.dialect });
  } finally {
    conn.closeSync();
  }
}

/** The output must go to a folder that exists and is writable, and not over the spine. */
function checkOut(opts: TrainingSetOptions): void {
  const folder = path.dirname(path.resolve(opts.out));
  try {
    fs.accessSync(folder, fs.constants.W_OK);
  } catch {
    throw new ConfigError(`--out ${opts.out}: the folder ${folder} does not exist or is not writable`);
  }
  if ('file' in opts.spine && path.resolve(opts.spine.file) === path.resolve(opts.out))
    throw new ConfigError('--out is the spine itself: write the training set to another file');
}

/** Builds the training set (see the file's comment). */
export async function buildTrainingSet(opts: TrainingSetOptions): Promise<TrainingSetSummary> {
  const started = Date.now();
  const select = checkSelection(opts.tags, opts.select);
  checkOut(opts);
  const files = listOdsFiles(opts.odsDir);
  if (files.every((f) => f.bytes === 0)) throw new ConfigError(`the ODS at ${opts.odsDir} holds no events: nothing to compute features from`);
  const tmpDir = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'profile-training-'));
  const partial = path.join(path.dirname(path.resolve(opts.out)), `.${path.basename(opts.out)}.${process.pid}.partial`);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  let badLines = 0;
  const onAbort = () => conn.interrupt();
  opts.signal?.addEventListener('abort', onAbort);
  try {
    await conn.run(`SET temp_directory = ${sqlString(path.join(tmpDir, 'duckdb'))}`);
    const { spine, bound } = await prepareSpine(conn, opts);
    const features = outputFeatures(opts.tags, spine, select);
    const checked = CheckedFiles.load(opts.odsDir);
    const counts = { lines: 0 };
    const copy = async (sources: string[]) => {
      if (opts.signal?.aborted) throw new TrainingSetInterrupted('interrupted');
      const sql = trainingSetSql(opts.tags, { odsDir: '', files: sources, asOf: bound, erasures: opts.erasures, spine, select });
      const format = opts.format === 'parquet' ? 'FORMAT parquet, COMPRESSION zstd' : 'FORMAT json';
      const result = await conn.run(`COPY (${sql}) TO ${sqlString(partial)} (${format})`);
      return Number(result.rowsChanged);
    };
    const { value: rows, sources } = await queryCheckedOds(
      conn,
      {
        files,
        tmpDir,
        checked,
        onBadLine: (bad) => {
          badLines++;
          opts.onBadLine?.(bad);
        },
      },
      counts,
      copy,
    );
    if (opts.signal?.aborted) throw new TrainingSetInterrupted('interrupted');
    checked.save(files.map((f) => f.path));
    if (rows === undefined) throw new ConfigError(`the ODS at ${opts.odsDir} holds no valid event: nothing to compute features from`);
    fs.renameSync(partial, opts.out);
    const unknown =
      spine.kind === 'impressions' && spine.labels.length > 0
        ? (await conn.runAndReadAll(unknownLabelsSql({ odsDir: '', files: sources, asOf: Infinity, erasures: opts.erasures, spine }))).getRowObjects()[0]
        : undefined;
    return {
      out: opts.out,
      format: opts.format,
      rows,
      features,
      ...(unknown ? { label_unknown: Number(unknown.unknown), newest_event: Number(unknown.newest) } : {}),
      ods_files: files.length,
      ods_lines: counts.lines,
      bad_lines: badLines,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (err) {
    throw opts.signal?.aborted ? new TrainingSetInterrupted('interrupted') : err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    conn.closeSync();
    fs.rmSync(partial, { force: true });
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
