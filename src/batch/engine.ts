import fs from 'fs';
import path from 'path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { TagConfig } from '../core/tags';
import { ID_PATTERN } from '../core/event';
import { OdsFile } from '../ods/files';
import { OfflineValues } from './offline';
import { BadLine, readOds } from './reader';
import { batchCtes, offlineTagsSql } from './sql';

/**
 * The batch's compute step on DuckDB: the offline tags and segment of every user from the
 * ODS, with the replay's semantics and its bad-line report. Lines are checked in SQL
 * first (strictly: anything unusual counts as suspect); only files with suspect lines go
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

const quote = (text: string) => `'${text.replace(/'/g, "''")}'`;
const ID = ID_PATTERN.source.slice(1, -1);

/** A line the SQL check passes is one the JS validator passes too (the check may refuse more). */
const LINE_IS_VALID = `CASE WHEN NOT json_valid(line) THEN false ELSE json_type(line) = 'OBJECT'
  AND list_has_all(['event_id', 'user_id', 'type', 'ts', 'ad_id', 'campaign_id', 'amount', 'currency', 'stream_id', 'ingested_at'], json_keys(line))
  AND json_type(line, '$.user_id') = 'VARCHAR' AND regexp_full_match(line->>'$.user_id', '${ID}')
  AND json_type(line, '$.event_id') = 'VARCHAR' AND regexp_full_match(line->>'$.event_id', '${ID}')
  AND (line->>'$.type') IN ('impression', 'click', 'purchase')
  AND json_type(line, '$.ts') IN ('UBIGINT', 'BIGINT') AND TRY_CAST(line->>'$.ts' AS BIGINT) BETWEEN 0 AND 253402300799999
  AND (json_type(line, '$.ad_id') IS NULL OR (json_type(line, '$.ad_id') = 'VARCHAR' AND regexp_full_match(line->>'$.ad_id', '${ID}')))
  AND (json_type(line, '$.campaign_id') IS NULL OR (json_type(line, '$.campaign_id') = 'VARCHAR' AND regexp_full_match(line->>'$.campaign_id', '${ID}')))
  AND (json_type(line, '$.currency') IS NULL OR (json_type(line, '$.currency') = 'VARCHAR' AND regexp_full_match(line->>'$.currency', '[A-Z]{3}')))
  AND (json_type(line, '$.amount') IS NULL OR (json_type(line, '$.amount') IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND TRY_CAST(line->>'$.amount' AS DOUBLE) >= 0))
  AND ((line->>'$.type') <> 'purchase' OR json_type(line, '$.amount') IS NOT NULL)
  AND (json_type(line, '$.stream_id') IS NULL OR json_type(line, '$.stream_id') = 'VARCHAR')
  AND (json_type(line, '$.ingested_at') IS NULL OR json_type(line, '$.ingested_at') IN ('UBIGINT', 'BIGINT')) END`;

async function rows(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await conn.runAndReadAll(sql)).getRowObjects();
}

const num = (v: unknown) => (typeof v === 'bigint' ? Number(v) : Number(v));

/** Non-blank lines and lines passing the SQL check, per file. */
async function checkLines(conn: DuckDBConnection, files: OdsFile[]): Promise<Map<string, { lines: number; valid: number }>> {
  const out = new Map<string, { lines: number; valid: number }>();
  const result = await rows(conn, `
    SELECT filename, count(*) AS lines, count(*) FILTER (WHERE ${LINE_IS_VALID}) AS valid
    FROM (SELECT filename, unnest(string_split(content, chr(10))) AS line FROM read_text([${files.map((f) => quote(f.path)).join(', ')}]))
    WHERE trim(line) <> ''
    GROUP BY filename`);
  for (const r of result) out.set(String(r.filename), { lines: num(r.lines), valid: num(r.valid) });
  return out;
}

/** Computes every user's offline tags and segment, and the run's counts. */
export async function computeOffline(opts: ComputeOptions): Promise<ComputeResult> {
  const result: ComputeResult = { users: [], lines: 0, events: 0, duplicates: 0, events_after_as_of: 0, erased_events: 0 };
  if (opts.files.length === 0) return result;
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const checked = await checkLines(conn, opts.files);
    const sources: string[] = [];
    for (const [i, file] of opts.files.entries()) {
      const counts = checked.get(file.path) ?? { lines: 0, valid: 0 };
      if (counts.lines === counts.valid) {
        result.lines += counts.lines;
        if (counts.lines > 0) sources.push(file.path);
        continue;
      }
      // Suspect lines: the JS validator has the last word, and reports each bad line.
      const copy = path.join(opts.tmpDir, `checked-${i}.ndjson`);
      const valid: string[] = [];
      // Each valid event as the validator normalised it (an ISO time becomes epoch ms), with its stream id.
      const normalised = (e: object, line: string) => {
        const { stream_id, ingested_at } = JSON.parse(line) as { stream_id?: string; ingested_at?: number };
        return JSON.stringify({ ...e, stream_id, ingested_at });
      };
      result.lines += await readOds([file], { onEvent: (e, line) => valid.push(normalised(e, line)), onBadLine: opts.onBadLine });
      fs.writeFileSync(copy, valid.length ? valid.join('\n') + '\n' : '');
      if (valid.length > 0) sources.push(copy);
    }
    if (sources.length === 0) return result;
    const sqlOpts = { odsDir: '', files: sources, asOf: opts.asOf, erasures: opts.erasures };
    const [counts] = await rows(conn, `${batchCtes(sqlOpts)}
      SELECT (SELECT count(*) FROM ods_events) - (SELECT count(*) FROM kept) AS erased_events,
        count(*) FILTER (WHERE copy > 1) AS duplicates,
        count(*) FILTER (WHERE copy = 1 AND ts > ${opts.asOf}) AS events_after_as_of,
        count(*) FILTER (WHERE copy = 1 AND ts <= ${opts.asOf}) AS events
      FROM numbered`);
    result.erased_events = num(counts.erased_events);
    result.duplicates = num(counts.duplicates);
    result.events_after_as_of = num(counts.events_after_as_of);
    result.events = num(counts.events);
    for (const r of await rows(conn, offlineTagsSql(opts.tags, sqlOpts))) {
      const values: OfflineValues = {};
      for (const [k, v] of Object.entries(r)) {
        if (k === 'user_id' || v === null || v === undefined) continue;
        values[k] = typeof v === 'string' ? v : num(v);
      }
      result.users.push([String(r.user_id), values]);
    }
    return result;
  } finally {
    conn.closeSync();
  }
}
