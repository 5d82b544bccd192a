import path from 'path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { KEYED_AGGREGATIONS, LIST_AGGREGATIONS, TagConfig } from '../core/tags';
import { CheckOptions, queryCheckedOds } from '../ods/checkedQuery';
import { OfflineValues } from './store';
import { OfflineSqlOptions, offlineTagsWithCountsSql, windowTagsSql } from './sql';
import { odsCtes, sqlString } from '../ods/sql';
import { WindowValue } from './windows';

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
/** The window tags of every recent user, as the API answers them (count_by: an object of counts). */
async function windowTags(conn: DuckDBConnection, tags: TagConfig, sqlOpts: OfflineSqlOptions): Promise<[string, Record<string, WindowValue>][]> {
  const countBy = new Set(tags.realtime.filter((t) => KEYED_AGGREGATIONS.includes(t.aggregation)).map((t) => t.name));
  return (await rows(conn, windowTagsSql(tags, sqlOpts))).map((r) => {
    const values: Record<string, WindowValue> = {};
    for (const t of tags.realtime) {
      const v = r[t.name];
      if (LIST_AGGREGATIONS.includes(t.aggregation)) values[t.name] = v === null ? [] : (JSON.parse(String(v)) as (number | string)[]);
      else if (t.aggregation === 'percentile') values[t.name] = v === null ? null : (JSON.parse(String(v)) as Record<string, number>);
      else values[t.name] = countBy.has(t.name) ? (JSON.parse(String(v)) as Record<string, number>) : v === null ? null : num(v);
    }
    return [String(r.user_id), values];
  });
}

/** The tags query over the checked sources (see queryCheckedOds). */
async function tagRows(
  conn: DuckDBConnection,
  opts: ComputeOptions,
  result: ComputeResult,
): Promise<{ rows: Record<string, unknown>[]; sqlOpts: OfflineSqlOptions }> {
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
      const [erased] = await rows(conn, `${odsCtes(sqlOpts)} SELECT (SELECT count(*) FROM ods_events) - (SELECT count(*) FROM kept) AS n`);
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
