import fs from 'fs';
import path from 'path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { TagConfig } from '../core/tags';
import { CANONICAL_ODS_LINE, OdsFile } from '../ods/files';
import { BadLine, readOds } from './reader';
import { OfflineValues } from './store';
import { OfflineSqlOptions, batchCtes, offlineTagsWithCountsSql, sqlString, windowTagsSql } from './sql';
import { WindowValue } from './windows';
import { CheckedFiles } from './checkedFiles';

/**
 * The batch's compute step on DuckDB: the offline tags and segment of every user from the
 * ODS, with the replay's semantics and its bad-line report. Each file is checked first:
 * one whose lines are all canonical (as the archiver writes valid events) is read by
 * DuckDB as it is; any other goes through the JS validator, which reports each bad line
 * as file:line and writes a copy of the file without them for DuckDB to read. So results
 * equal the JS replay's, at DuckDB speed on the files the archiver wrote.
 */

export interface ComputeOptions extends CheckOptions {
  tags: TagConfig;
  asOf: number;
  erasures: Map<string, number>;
  /** Also compute the realtime window tags as of `asOf` (profile batch --windows). */
  windows?: boolean;
}

export interface ComputeResult {
  users: [userId: string, values: OfflineValues][];
  lines: number;
  events: number;
  duplicates: number;
  events_after_as_of: number;
  erased_events: number;
  /** With `windows`: each user with an event in the longest window, and its window tags. */
  windowUsers: [userId: string, values: Record<string, WindowValue>][];
}

const num = (v: unknown) => Number(v); // counts come back as bigint

async function rows(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await conn.runAndReadAll(sql)).getRowObjects();
}

/** CANONICAL_ODS_LINE with its newline, matched line after line where the last match ended. */
const CANONICAL_LINE_AT = new RegExp(`${CANONICAL_ODS_LINE.source.slice(1, -1)}\\n`, 'y');

/**
 * The file's line count if every line is canonical (CANONICAL_ODS_LINE: exactly as the
 * archiver writes a valid event, so DuckDB reads each field as the validator does), else
 * undefined (the file goes through the validator). Stops at the first other line.
 */
export async function canonicalLines(file: string): Promise<number | undefined> {
  // latin1: one character a byte; a line with other bytes does not match anyway.
  const stream = fs.createReadStream(file, { encoding: 'latin1', highWaterMark: 4 << 20 });
  let lines = 0;
  let rest = '';
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const text = rest + chunk;
      CANONICAL_LINE_AT.lastIndex = 0;
      let end = 0;
      while (CANONICAL_LINE_AT.test(text)) {
        lines++;
        end = CANONICAL_LINE_AT.lastIndex;
      }
      rest = text.slice(end);
      // What is left must be the start of a line still being read, not a line that failed.
      if (rest.includes('\n') || rest.length > 4096) return undefined;
    }
  } finally {
    stream.destroy();
  }
  return rest === '' ? lines : undefined; // a last line without its newline: torn, or written by hand
}

/** A valid event as the validator normalised it (an ISO time becomes epoch ms), with its line's stream id. */
function normalised(event: object, line: string): string {
  const { stream_id, ingested_at } = JSON.parse(line) as { stream_id?: string; ingested_at?: number };
  return JSON.stringify({ ...event, stream_id, ingested_at });
}

/** The window tags of every recent user, as the API answers them (count_by: an object of counts). */
async function windowTags(conn: DuckDBConnection, tags: TagConfig, sqlOpts: OfflineSqlOptions): Promise<[string, Record<string, WindowValue>][]> {
  const countBy = new Set(tags.realtime.filter((t) => t.aggregation === 'count_by').map((t) => t.name));
  return (await rows(conn, windowTagsSql(tags, sqlOpts))).map((r) => {
    const values: Record<string, WindowValue> = {};
    for (const t of tags.realtime) {
      const v = r[t.name];
      values[t.name] = countBy.has(t.name) ? (JSON.parse(String(v)) as Record<string, number>) : v === null ? null : num(v);
    }
    return [String(r.user_id), values];
  });
}

/** What checking the ODS files needs. */
export interface CheckOptions {
  files: OdsFile[];
  /** Where copies of files with bad lines go (removed by the caller). */
  tmpDir: string;
  onBadLine: (bad: BadLine) => void;
  /** Files earlier runs found canonical (skipped by the check; updated with this run's). */
  checked?: CheckedFiles;
}

/**
 * The files DuckDB reads: each canonical file as it is; for any other, a copy of its valid
 * lines the JS validator wrote (reporting each bad line). Counts the lines read.
 */
async function checkedSources(opts: CheckOptions, counts: { lines: number }): Promise<string[]> {
  const sources: string[] = [];
  for (const [i, file] of opts.files.entries()) {
    if (file.bytes === 0) continue;
    const stat = fs.statSync(file.path);
    let lines = opts.checked?.lines(file.path, stat);
    if (lines === undefined) {
      lines = await canonicalLines(file.path);
      if (lines !== undefined) opts.checked?.record(file.path, stat, lines);
      else opts.checked?.forget(file.path);
    }
    if (lines !== undefined) {
      counts.lines += lines;
      sources.push(file.path);
      continue;
    }
    // Suspect lines: the JS validator has the last word, and reports each bad line.
    const copy = path.join(opts.tmpDir, `checked-${i}.ndjson`);
    const valid: string[] = [];
    counts.lines += await readOds([file], { onEvent: (e, line) => valid.push(normalised(e, line)), onBadLine: opts.onBadLine });
    fs.writeFileSync(copy, valid.length ? valid.join('\n') + '\n' : '');
    if (valid.length > 0) sources.push(copy);
  }
  return sources;
}

/**
 * Runs `query` over the checked ODS files (`sources`; undefined when no file holds a valid
 * line). It starts on the files as they are while Node checks them (DuckDB runs on its own
 * threads): most runs read only files the archiver wrote, and then that result is the one.
 * Otherwise it is interrupted and runs again over the checked copies.
 */
export async function queryCheckedOds<T>(
  conn: DuckDBConnection,
  opts: CheckOptions,
  counts: { lines: number },
  query: (files: string[]) => Promise<T>,
): Promise<{ value: T | undefined; sources: string[] }> {
  const asTheyAre = opts.files.filter((f) => f.bytes > 0).map((f) => f.path);
  const early = query(asTheyAre).then((value) => ({ value }), (err: unknown) => ({ err }));
  const sources = await checkedSources(opts, counts);
  if (sources.length === asTheyAre.length && sources.every((s, i) => s === asTheyAre[i])) {
    const done = await early;
    if ('err' in done) throw done.err;
    return { value: done.value, sources };
  }
  conn.interrupt();
  await early;
  return { value: sources.length > 0 ? await query(sources) : undefined, sources };
}

/** The tags query over the checked sources (see queryCheckedOds). */
async function tagRows(conn: DuckDBConnection, opts: ComputeOptions, result: ComputeResult): Promise<{ rows: Record<string, unknown>[]; sqlOpts: OfflineSqlOptions }> {
  const sqlOpts = (files: string[]): OfflineSqlOptions => ({ odsDir: '', files, asOf: opts.asOf, erasures: opts.erasures });
  const { value, sources } = await queryCheckedOds(conn, opts, result, (files) => rows(conn, offlineTagsWithCountsSql(opts.tags, sqlOpts(files))));
  return { rows: value ?? [], sqlOpts: sqlOpts(sources) };
}

/** Computes every user's offline tags and segment, and the run's counts. */
export async function computeOffline(opts: ComputeOptions): Promise<ComputeResult> {
  const result: ComputeResult = { users: [], lines: 0, events: 0, duplicates: 0, events_after_as_of: 0, erased_events: 0, windowUsers: [] };
  if (opts.files.every((f) => f.bytes === 0)) return result;
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`SET temp_directory = ${sqlString(path.join(opts.tmpDir, 'duckdb'))}`); // spills of an ODS larger than memory
    const { rows: tagged, sqlOpts } = await tagRows(conn, opts, result);
    if (sqlOpts.files!.length === 0) return result;
    // Erased events: counted only when someone was erased (a scan of its own).
    if (opts.erasures.size > 0) {
      const [erased] = await rows(conn, `${batchCtes(sqlOpts)} SELECT (SELECT count(*) FROM ods_events) - (SELECT count(*) FROM kept) AS n`);
      result.erased_events = num(erased.n);
    }
    for (const r of tagged) {
      result.duplicates += num(r._duplicates);
      result.events_after_as_of += num(r._after_as_of);
      const events = num(r._events);
      if (events === 0) continue; // only events after the as-of time: no profile
      result.events += events;
      const values: OfflineValues = {};
      for (const [k, v] of Object.entries(r)) {
        if (k === 'user_id' || k.startsWith('_') || v === null || v === undefined) continue;
        values[k] = typeof v === 'string' ? v : num(v);
      }
      result.users.push([String(r.user_id), values]);
    }
    if (opts.windows) result.windowUsers = await windowTags(conn, opts.tags, sqlOpts);
    return result;
  } finally {
    conn.closeSync();
  }
}
