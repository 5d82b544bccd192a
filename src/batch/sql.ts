import { KEYED_AGGREGATIONS, OfflineTag, SegmentCondition, TagConfig, WindowTag, bucketLabels, longestWindow } from '../core/tags';
import { windowRange } from '../core/panes';
import { DAY_MS, OdsSqlOptions, odsCtes, sqlString } from '../ods/sql';
import { approxDistinctListSql, percentileKeySql, percentileMapSql, sketchHashSql } from '../ods/sketchSql';

/** What the batch's queries read: the ODS's options (ods/sql.ts). */
export type OfflineSqlOptions = OdsSqlOptions;

/**
 * The batch's offline tags and segments as one SQL query over the ODS, generated from the
 * tag config (`profile batch --print-sql`). Only the first CTE, which reads the NDJSON
 * files, is DuckDB's (`read_ndjson` over the `dt=` folders); the rest is plain SQL
 * (window functions, FILTER, CASE) that Spark SQL or Trino run as it is over a table of
 * the same files. Its semantics are the JS replay's (test/helpers/replay.ts): events
 * of erased users stamped at or before their erasure are dropped, then the first copy of
 * each (user, type, event id) by stream id counts, if it is not after the as-of time.
 */

/** The SQL expression of one offline tag over the `events` CTE. */
function tagExpression(t: OfflineTag, asOf: number, rows?: string): string {
  // `rows`: a condition that picks the counted rows when the source holds others too.
  const conditions: string[] = rows ? [rows] : [];
  if (t.event !== undefined) conditions.push(`type = ${sqlString(t.event)}`);
  if (t.windowMs !== undefined) conditions.push(`ts >= ${asOf - t.windowMs}`);
  const filter = conditions.length ? ` FILTER (WHERE ${conditions.join(' AND ')})` : '';
  switch (t.aggregation) {
    case 'count':
      return `COUNT(*)${filter}`;
    case 'sum':
      // Sums of money: rounded to a millionth, as the replay does (0.1 + 0.2 is 0.3).
      return `ROUND(COALESCE(SUM(amount)${filter}, 0), 6)`;
    case 'first_seen':
      return `MIN(ts)${filter}`;
    case 'last_seen':
      return `MAX(ts)${filter}`;
    case 'active_days':
      return `COUNT(DISTINCT CAST(FLOOR(ts / ${DAY_MS}.0) AS BIGINT))${filter}`;
  }
}

/** One segment condition as SQL; a tag without a value (NULL) makes it false, as in the replay. `asOf`: a time or a column. */
function conditionSql(c: SegmentCondition, asOf: number | string): string {
  if ('valueMs' in c) return c.op === 'within' ? `${asOf} - ${c.tag} <= ${c.valueMs}` : `${asOf} - ${c.tag} > ${c.valueMs}`;
  const op = c.op === '==' ? '=' : c.op === '!=' ? '<>' : c.op;
  return `${c.tag} ${op} ${c.value}`;
}

/** The segment CASE over the tag columns: the first rule whose conditions all hold (one without conditions holds for everyone). */
export function segmentCase(tags: TagConfig, asOf: number | string): string {
  const rules = tags.segments.map(
    (rule) => `    WHEN ${rule.when.length ? rule.when.map((c) => conditionSql(c, asOf)).join(' AND ') : '1 = 1'} THEN ${sqlString(rule.id)}`,
  );
  return tags.segments.length ? `,\n  CASE\n${rules.join('\n')}\n  END AS segment_id` : '';
}

/**
 * For the embedded engine: the offline tags of offlineTagsSql and, per user, the run's
 * counts (_events, _duplicates, _after_as_of) in one scan of the ODS. Rows with _events = 0
 * are users with events after the as-of time only (no profile to write).
 */
export function offlineTagsWithCountsSql(tags: TagConfig, opts: OfflineSqlOptions): string {
  const counted = `copy = 1 AND ts <= ${opts.asOf}`;
  return `${odsCtes(opts)},
per_user AS (
  SELECT user_id,
    count(*) FILTER (WHERE ${counted}) AS _events,
    count(*) FILTER (WHERE copy > 1) AS _duplicates,
    count(*) FILTER (WHERE copy = 1 AND ts > ${opts.asOf}) AS _after_as_of,
${tags.offline.map((t) => `    ${tagExpression(t, opts.asOf, counted)} AS ${t.name}`).join(',\n')}
  FROM numbered
  GROUP BY user_id
)
SELECT user_id, _events, _duplicates, _after_as_of, ${tags.offline.map((t) => t.name).join(', ')}${segmentCase(tags, opts.asOf)}
FROM per_user
`;
}

/** The query: one row per user with an event at or before `asOf`: user_id, every offline tag, segment_id. */
export function offlineTagsSql(tags: TagConfig, opts: OfflineSqlOptions): string {
  return `-- profile-stream batch: offline tags and segments as of ${new Date(opts.asOf).toISOString()} (${opts.asOf} ms)
-- ods_events is the only DuckDB-specific part: on Spark SQL or Trino, make it a table over the same files.
${odsCtes(opts)},
tags AS (
  SELECT user_id,
${tags.offline.map((t) => `    ${tagExpression(t, opts.asOf)} AS ${t.name}`).join(',\n')}
  FROM events
  GROUP BY user_id
)
SELECT user_id, ${tags.offline.map((t) => t.name).join(', ')}${segmentCase(tags, opts.asOf)}
FROM tags
ORDER BY user_id
`;
}

/** The SQL expression of one window tag over `events` (count_by: see countByCte). */
function windowExpression(t: WindowTag, asOf: number): string {
  const [from, to] = windowRange(t, asOf);
  const rows = `type = ${sqlString(t.event)} AND ts >= ${from} AND ts < ${to}`;
  const withField = t.field ? `${rows} AND ${t.field} IS NOT NULL` : rows;
  switch (t.aggregation) {
    case 'count':
      return `COUNT(*) FILTER (WHERE ${rows})`;
    case 'sum':
      return `COALESCE(SUM(${t.field}) FILTER (WHERE ${withField}), 0)`;
    case 'avg':
    case 'min':
    case 'max':
      return `${t.aggregation.toUpperCase()}(${t.field}) FILTER (WHERE ${withField})`;
    case 'variance':
    case 'stddev':
      // Population (as the window scripts compute it).
      return `${t.aggregation === 'variance' ? 'VAR_POP' : 'STDDEV_POP'}(${t.field}) FILTER (WHERE ${withField})`;
    case 'last':
      // The newest event's value; equal times: the larger value.
      return `(MAX(STRUCT_PACK(t := ts, v := ${t.field})) FILTER (WHERE ${withField})).v`;
    case 'first':
      // The oldest event's value; equal times: the larger value (as last breaks them).
      return `-(MIN(STRUCT_PACK(t := ts, v := -${t.field})) FILTER (WHERE ${withField})).v`;
    case 'distinct':
      return `COUNT(DISTINCT ${t.field}) FILTER (WHERE ${withField})`;
    case 'last_k':
    case 'first_k':
      // The values of the k newest / oldest events; equal times: the larger value first.
      return `CAST(to_json((list(${t.field} ORDER BY ts ${t.aggregation === 'last_k' ? 'DESC' : 'ASC'}, ${t.field} DESC) FILTER (WHERE ${withField}))[1:${t.k}]) AS VARCHAR)`;
    case 'percentile':
      // The nearest-rank percentiles read off the log buckets (ods/sketchSql.ts), as JSON text.
      return `CAST(to_json(${percentileMapSql(`list_sort(LIST(${percentileKeySql(t.field!)}) FILTER (WHERE ${withField}))`, t.p!)}) AS VARCHAR)`;
    case 'approx_distinct':
      return approxDistinctListSql(`LIST(${sketchHashSql(t.field!)}) FILTER (WHERE ${withField})`, t.k!);
    case 'count_by':
    case 'histogram':
      throw new Error(`${t.aggregation} is computed by countByCte`);
  }
}

/** The key a count_by (its field) or histogram (the bucket label of its field, as the window scripts name it) tag counts per, over column `column`. */
export function keySql(t: WindowTag, column: string): string {
  if (t.aggregation !== 'histogram') return column;
  const labels = bucketLabels(t.buckets!);
  const whens = t.buckets!.map((e, i) => `WHEN ${column} < ${e} THEN ${sqlString(labels[i])}`).join(' ');
  return `CASE WHEN ${column} IS NULL THEN NULL ${whens} ELSE ${sqlString(labels[labels.length - 1])} END`;
}

/**
 * A count_by tag: per user, the count per value in the window as a JSON object (`top`: the
 * largest counts, equal counts the smaller value first). The object is built by DuckDB's
 * json_group_object; Spark SQL: to_json(map_from_entries(collect_list(struct(v, n)))).
 */
function countByCte(t: WindowTag, asOf: number): string {
  const [from, to] = windowRange(t, asOf);
  const key = keySql(t, t.field!);
  const ranked = `SELECT user_id, ${key} AS v, COUNT(*) AS n, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY COUNT(*) DESC, ${key}) AS r
    FROM events WHERE type = ${sqlString(t.event)} AND ts >= ${from} AND ts < ${to} AND ${t.field} IS NOT NULL
    GROUP BY user_id, ${key}`;
  return `cb_${t.name} AS (
  SELECT user_id, CAST(json_group_object(v, n) AS VARCHAR) AS ${t.name}
  FROM (${ranked}) ranked${t.top !== undefined ? ` WHERE r <= ${t.top}` : ''}
  GROUP BY user_id
)`;
}

/**
 * `profile batch --windows`: every realtime window tag as of `asOf`, with the pane rule of
 * the window scripts (core/panes.ts windowRange), for each user with an event in the
 * longest window before it. One row per user: user_id and a column per tag (count_by: a
 * JSON object of counts; avg/min/max/last: NULL for an empty window). DuckDB's own: the
 * STRUCT_PACK of `last` (Spark SQL: named_struct) and json_group_object (see countByCte).
 */
export function windowTagsSql(tags: TagConfig, opts: OfflineSqlOptions): string {
  const plain = tags.realtime.filter((t) => !KEYED_AGGREGATIONS.includes(t.aggregation));
  const countBy = tags.realtime.filter((t) => KEYED_AGGREGATIONS.includes(t.aggregation));
  const recent = `ts >= ${opts.asOf - longestWindow(tags.realtime)}`;
  const columns = [`COUNT(*) AS _events`, ...plain.map((t) => `${windowExpression(t, opts.asOf)} AS ${t.name}`)];
  return `-- profile-stream batch --windows: realtime window tags as of ${new Date(opts.asOf).toISOString()} (${opts.asOf} ms)
${odsCtes(opts)},
${[
  ...countBy.map((t) => countByCte(t, opts.asOf)),
  `windowed AS (
  SELECT user_id,
${columns.map((c) => `    ${c}`).join(',\n')}
  FROM events
  WHERE ${recent}
  GROUP BY user_id
)`,
].join(',\n')}
SELECT w.user_id, ${[...plain.map((t) => `w.${t.name}`), ...countBy.map((t) => `COALESCE(cb_${t.name}.${t.name}, '{}') AS ${t.name}`)].join(', ')}
FROM windowed w
${countBy.map((t) => `LEFT JOIN cb_${t.name} ON cb_${t.name}.user_id = w.user_id`).join('\n')}
ORDER BY w.user_id
`;
}
