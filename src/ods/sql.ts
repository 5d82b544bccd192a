import path from 'path';

/**
 * What every SQL query over the ODS shares (the batch's offline and window tags, the
 * training sets): the ODS's columns, reading its `dt=` folders (or given files) with
 * `read_ndjson` (the one DuckDB-specific piece), dropping the events of erased users, and
 * keeping the first copy of each (user, type, event id) by stream id at or before the as-of
 * time.
 */

export interface OdsSqlOptions {
  /** Root of the ODS (`<odsDir>/dt=YYYY-MM-DD/*.ndjson`). */
  odsDir: string;
  /** Read exactly these NDJSON files instead of the ODS's `dt=` folders (from/to are then not applied). */
  files?: string[];
  /** Time (ms) the tags are computed as of (Infinity: every event counts). */
  asOf: number;
  /** First and last ODS date to read (`YYYY-MM-DD`); all when absent. */
  from?: string;
  to?: string;
  /** Erased users and their erasure times (ms). */
  erasures: Map<string, number>;
}

export const DAY_MS = 86_400_000;

/** The ODS columns and their SQL types (an ODS line: the event as accepted, its stream id and ingest time). */
export const ODS_COLUMNS: Record<string, string> = {
  event_id: 'VARCHAR',
  user_id: 'VARCHAR',
  type: 'VARCHAR',
  ts: 'BIGINT',
  ad_id: 'VARCHAR',
  campaign_id: 'VARCHAR',
  amount: 'DOUBLE',
  currency: 'VARCHAR',
  stream_id: 'VARCHAR',
  ingested_at: 'BIGINT',
};

/** A SQL string literal (quotes doubled). */
export const sqlString = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The erasures as an inline table (an empty one when nobody was erased). */
function erasuresSql(erasures: Map<string, number>): string {
  if (erasures.size === 0) return 'SELECT CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS BIGINT) AS erased_at WHERE 1 = 0';
  const rows = [...erasures].map(([user, at]) => `(${sqlString(user)}, ${at})`);
  return `SELECT * FROM (VALUES ${rows.join(', ')}) AS erased(user_id, erased_at)`;
}

/**
 * The CTEs every query over the ODS shares (the batch's, the training set's): ods_events (the lines), erasures, kept (lines of
 * events not erased), numbered (kept lines with their copy number per (user, type, event
 * id), by stream id: `<ms>-<seq>` compared as numbers) and events (first copies at or
 * before the as-of time).
 */
export function odsCtes(opts: OdsSqlOptions): string {
  const columns = Object.entries(ODS_COLUMNS)
    .map(([name, type]) => `${name}: '${type}'`)
    .join(', ');
  const source = opts.files
    ? `[${opts.files.map(sqlString).join(', ')}], columns = {${columns}}, ignore_errors = true`
    : `${sqlString(path.join(opts.odsDir, 'dt=*', '*.ndjson'))}, columns = {${columns}},\n    hive_partitioning = true, ignore_errors = true`;
  const dates = opts.files
    ? []
    : [opts.from ? `CAST(dt AS VARCHAR) >= ${sqlString(opts.from)}` : '', opts.to ? `CAST(dt AS VARCHAR) <= ${sqlString(opts.to)}` : ''].filter(Boolean);
  return `WITH ods_events AS (
  SELECT * FROM read_ndjson(${source})${dates.length ? `\n  WHERE ${dates.join(' AND ')}` : ''}
),
erasures AS (
  ${erasuresSql(opts.erasures)}
),
kept AS (
  SELECT e.* FROM ods_events e
  WHERE NOT EXISTS (SELECT 1 FROM erasures x WHERE x.user_id = e.user_id AND e.ts <= x.erased_at)
),
numbered AS (
  SELECT kept.*, ROW_NUMBER() OVER (
    PARTITION BY user_id, type, event_id
    ORDER BY CAST(split_part(stream_id, '-', 1) AS BIGINT), CAST(split_part(stream_id, '-', 2) AS BIGINT)
  ) AS copy
  FROM kept
),
events AS (
  SELECT user_id, type, ts, amount, ad_id, campaign_id, currency, event_id FROM numbered WHERE copy = 1${opts.asOf === Infinity ? '' : ` AND ts <= ${opts.asOf}`}
)`;
}
