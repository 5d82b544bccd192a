import fs from 'fs';
import path from 'path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { TagConfig } from '../core/tags';
import { ID_PATTERN } from '../core/event';
import { OdsFile } from '../ods/files';
import { OfflineValues } from './offline';
import { BadLine, readOds } from './reader';
import { ODS_COLUMNS, batchCtes, offlineTagsWithCountsSql, sqlString } from './sql';

/**
 * The batch's compute step on DuckDB: the offline tags and segment of every user from the
 * ODS, with the replay's semantics and its bad-line report. Files are checked in SQL
 * first (strictly: anything unusual makes a file suspect); only suspect files go
 * through the JS validator, which reports each bad line as file:line and writes a copy of
 * the file without them for DuckDB to read. So results equal the JS replay's, at DuckDB
 * speed on clean files.
 */

export interface ComputeOptions {
  files: OdsFile[];
  tags: TagConfig;
  asOf: number;
  erasures: Map<string, number>;
  /** Where copies of files with bad lines go (removed by the caller). */
  tmpDir: string;
  onBadLine: (bad: BadLine) => void;
}

export interface ComputeResult {
  users: [userId: string, values: OfflineValues][];
  lines: number;
  events: number;
  duplicates: number;
  events_after_as_of: number;
  erased_events: number;
}

/** The ODS fields (their order does not matter to the length check). */
const FIELDS = Object.keys(ODS_COLUMNS);
/** ID_PATTERN without its anchors, for regexp_full_match. */
const ID = ID_PATTERN.source.slice(1, -1);

/**
 * Per row, true when the event passes the checks the JS validator makes (strictly: a row
 * it would refuse never passes). Every column is read as JSON text, so its JSON type is
 * checked, not coerced.
 */
const ROW_IS_VALID = `json_type(user_id) = 'VARCHAR' AND regexp_full_match(user_id->>'$', '${ID}')
  AND json_type(event_id) = 'VARCHAR' AND regexp_full_match(event_id->>'$', '${ID}')
  AND json_type(type) = 'VARCHAR' AND (type->>'$') IN ('impression', 'click', 'purchase')
  AND json_type(ts) IN ('UBIGINT', 'BIGINT') AND TRY_CAST(ts->>'$' AS BIGINT) BETWEEN 0 AND 253402300799999
  AND (ad_id IS NULL OR (json_type(ad_id) = 'VARCHAR' AND regexp_full_match(ad_id->>'$', '${ID}')))
  AND (campaign_id IS NULL OR (json_type(campaign_id) = 'VARCHAR' AND regexp_full_match(campaign_id->>'$', '${ID}')))
  AND (currency IS NULL OR (json_type(currency) = 'VARCHAR' AND regexp_full_match(currency->>'$', '[A-Z]{3}')))
  AND (amount IS NULL OR (json_type(amount) IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND TRY_CAST(amount->>'$' AS DOUBLE) >= 0))
  AND ((type->>'$') <> 'purchase' OR amount IS NOT NULL)
  AND (stream_id IS NULL OR json_type(stream_id) = 'VARCHAR')
  AND (ingested_at IS NULL OR json_type(ingested_at) IN ('UBIGINT', 'BIGINT'))`;

/**
 * The length of the row's line if it holds exactly these fields, minified (as the archiver
 * writes them): braces, and per present field `"name":` and its JSON text, comma-separated.
 */
const CANONICAL_LENGTH = `2 + ${FIELDS.map((f) => `CASE WHEN ${f} IS NULL THEN 0 ELSE ${f.length + 4} + length(CAST(${f} AS VARCHAR)) END`).join(' + ')}
  - 1`;

async function rows(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await conn.runAndReadAll(sql)).getRowObjects();
}

const num = (v: unknown) => Number(v); // counts come back as bigint

/**
 * Files DuckDB may read as they are: every line parses, passes ROW_IS_VALID, and the
 * file's size is exactly the sum of its rows' canonical lengths plus newlines — so no line
 * holds an unknown field, extra spaces, or anything the JS validator would read otherwise.
 * Returns the clean files with their line counts.
 */
async function cleanFiles(conn: DuckDBConnection, files: OdsFile[]): Promise<Map<string, number>> {
  const columns = FIELDS.map((f) => `${f}: 'JSON'`).join(', ');
  const result = await rows(conn, `
    SELECT filename, count(*) AS rows, count(*) FILTER (WHERE ${ROW_IS_VALID}) AS valid, sum(${CANONICAL_LENGTH}) AS bytes
    FROM read_ndjson([${files.map((f) => sqlString(f.path)).join(', ')}], columns = {${columns}}, filename = true, ignore_errors = true)
    GROUP BY filename`);
  const clean = new Map<string, number>();
  const size = new Map(files.map((f) => [f.path, f.bytes]));
  for (const r of result) {
    const n = num(r.rows);
    if (num(r.valid) === n && num(r.bytes) + n === size.get(String(r.filename))) clean.set(String(r.filename), n);
  }
  return clean;
}

/** A valid event as the validator normalised it (an ISO time becomes epoch ms), with its line's stream id. */
function normalised(event: object, line: string): string {
  const { stream_id, ingested_at } = JSON.parse(line) as { stream_id?: string; ingested_at?: number };
  return JSON.stringify({ ...event, stream_id, ingested_at });
}

/** Computes every user's offline tags and segment, and the run's counts. */
export async function computeOffline(opts: ComputeOptions): Promise<ComputeResult> {
  const result: ComputeResult = { users: [], lines: 0, events: 0, duplicates: 0, events_after_as_of: 0, erased_events: 0 };
  if (opts.files.length === 0) return result;
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const clean = await cleanFiles(conn, opts.files.filter((f) => f.bytes > 0));
    const sources: string[] = [];
    for (const [i, file] of opts.files.entries()) {
      if (file.bytes === 0) continue;
      const lines = clean.get(file.path);
      if (lines !== undefined) {
        result.lines += lines;
        sources.push(file.path);
        continue;
      }
      // Suspect lines: the JS validator has the last word, and reports each bad line.
      const copy = path.join(opts.tmpDir, `checked-${i}.ndjson`);
      const valid: string[] = [];
      result.lines += await readOds([file], { onEvent: (e, line) => valid.push(normalised(e, line)), onBadLine: opts.onBadLine });
      fs.writeFileSync(copy, valid.length ? valid.join('\n') + '\n' : '');
      if (valid.length > 0) sources.push(copy);
    }
    if (sources.length === 0) return result;
    const sqlOpts = { odsDir: '', files: sources, asOf: opts.asOf, erasures: opts.erasures };
    // Erased events: counted only when someone was erased (a scan of its own).
    if (opts.erasures.size > 0) {
      const [erased] = await rows(conn, `${batchCtes(sqlOpts)} SELECT (SELECT count(*) FROM ods_events) - (SELECT count(*) FROM kept) AS n`);
      result.erased_events = num(erased.n);
    }
    for (const r of await rows(conn, offlineTagsWithCountsSql(opts.tags, sqlOpts))) {
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
    return result;
  } finally {
    conn.closeSync();
  }
}
