import { EventType } from '../core/event';
import { KEYED_AGGREGATIONS, LIST_AGGREGATIONS, OfflineTag, WindowTag } from '../core/tags';
import { keySql } from '../batch/sql';
import { DAY_MS, sqlString } from '../ods/sql';
import { approxDistinctSql, nearestRankSql, percentileKeySql, percentileValueSql, sketchHashSql } from '../ods/sketchSql';
import { percentileLabel } from '../core/sketch';

/**
 * The portable form of the training-set query (`profile training-set --print-sql portable`;
 * assembled by trainingSetSql in training/sql.ts): realtime tags as range joins of each spine
 * row with its user's events in the tag's window, offline tags as window aggregates with
 * constant frames over the user's timeline with the spine rows as markers, active_days with a
 * window of a day or more over per-user days. Plain SQL (CTEs, joins, GROUP BY, CASE, window
 * functions with constant frames) except the JSON text of count_by/histogram
 * (json_group_object), last_k/first_k (to_json(list …)) and percentile (json_object), and
 * approx_distinct's sha1 and hex cast: each is DuckDB's, its Spark SQL form beside it below
 * (and in the printed header, training/sql.ts); slower than the DuckDB form (per-row frame
 * offsets, ASOF joins).
 */

/** The first event time a realtime tag counts at the spine row's time (the pane rule): plain SQL. */
const windowStart = (t: WindowTag) => `s._asof - (s._asof % ${t.resolutionMs}) - ${t.windowMs - t.resolutionMs}`;

/** One realtime tag over the rows of a range join (j: the user's events of the type in the longest window). */
function joinedExpression(t: WindowTag): string {
  const inWindow = `j.ts >= ${windowStart(t)}`;
  const value = (v: string) => `CASE WHEN ${inWindow} THEN ${v} END`;
  switch (t.aggregation) {
    case 'count':
      return `COUNT(${value('1')})`;
    case 'sum':
      return `COALESCE(SUM(${value(`j.${t.field}`)}), 0)`;
    case 'avg':
    case 'min':
    case 'max':
      return `${t.aggregation.toUpperCase()}(${value(`j.${t.field}`)})`;
    case 'variance':
      return `VAR_POP(${value(`j.${t.field}`)})`;
    case 'stddev':
      return `STDDEV_POP(${value(`j.${t.field}`)})`;
    case 'distinct':
      return `COUNT(DISTINCT ${value(`j.${t.field}`)})`;
    case 'last':
    case 'first':
    case 'count_by':
    case 'histogram':
    case 'last_k':
    case 'first_k':
    case 'percentile':
    case 'approx_distinct':
      throw new Error(`${t.aggregation} is computed by its own CTE`);
  }
}

/** Portable: the tags computed by a CTE of their own (joinedTagCte) rather than in their type's GROUP BY. */
export function portableOwnCte(t: WindowTag): boolean {
  return (
    t.aggregation === 'last' ||
    t.aggregation === 'first' ||
    t.aggregation === 'percentile' ||
    t.aggregation === 'approx_distinct' ||
    KEYED_AGGREGATIONS.includes(t.aggregation) ||
    LIST_AGGREGATIONS.includes(t.aggregation)
  );
}

/**
 * Portable: one event type's realtime tags as a range join of each spine row with its
 * user's events of the type in the type's longest window up to the row's time; `last` and
 * count_by tags get a CTE each (joinedTagCte).
 */
export function joinedRealtimeCte(type: EventType, tags: WindowTag[]): string {
  const longest = Math.max(...tags.map((t) => t.windowMs));
  const fields = [...new Set(tags.filter((t) => t.field).map((t) => `e.${t.field}`))];
  const ownCte = portableOwnCte;
  const plain = tags.filter((t) => !ownCte(t));
  return `j_${type} AS (
  SELECT s._row, e.ts${fields.map((f) => `, ${f}`).join('')}
  FROM spine_rows s JOIN events e ON e.user_id = s._user AND e.type = ${sqlString(type)} AND e.ts <= s._asof AND e.ts > s._asof - ${longest}
),
rt_${type} AS (
  SELECT s._row${plain
    .map(
      (t) => `,
    ${joinedExpression(t)} AS ${t.name}`,
    )
    .join('')}
  FROM spine_rows s LEFT JOIN j_${type} j ON j._row = s._row
  GROUP BY s._row
)${tags
    .filter(ownCte)
    .map(
      (t) => `,
${joinedTagCte(t)}`,
    )
    .join('')}`;
}

/**
 * Portable: a `last` tag (the newest value; equal times: the larger), a `first` tag (the
 * oldest value; equal times: the larger) or a count_by tag (JSON object of counts, `top`)
 * from the range join.
 */
function joinedTagCte(t: WindowTag): string {
  const rows = `FROM j_${t.event} j JOIN spine_rows s ON s._row = j._row WHERE j.ts >= ${windowStart(t)} AND j.${t.field} IS NOT NULL`;
  if (t.aggregation === 'percentile' || t.aggregation === 'approx_distinct') return joinedSketchCte(t, rows);
  if (t.aggregation === 'last_k' || t.aggregation === 'first_k') {
    // to_json(list(... ORDER BY ...)) is DuckDB's; Spark SQL: to_json(transform(array_sort(collect_list(struct(ts, v))), …)).
    return `t_${t.name} AS (
  SELECT _row, CAST(to_json(list(v ORDER BY r)) AS VARCHAR) AS ${t.name} FROM (
    SELECT j._row, j.${t.field} AS v, ROW_NUMBER() OVER (PARTITION BY j._row ORDER BY j.ts ${t.aggregation === 'last_k' ? 'DESC' : 'ASC'}, j.${t.field} DESC) AS r
    ${rows}
  ) ranked WHERE r <= ${t.k}
  GROUP BY _row
)`;
  }
  if (t.aggregation === 'last' || t.aggregation === 'first') {
    return `t_${t.name} AS (
  SELECT _row, v AS ${t.name} FROM (
    SELECT j._row, j.${t.field} AS v, ROW_NUMBER() OVER (PARTITION BY j._row ORDER BY j.ts ${t.aggregation === 'last' ? 'DESC' : 'ASC'}, j.${t.field} DESC) AS r
    ${rows}
  ) newest WHERE r = 1
)`;
  }
  // json_group_object is DuckDB's; Spark SQL: to_json(map_from_entries(collect_list(struct(v, n)))).
  const key = keySql(t, `j.${t.field}`);
  return `t_${t.name} AS (
  SELECT _row, CAST(json_group_object(v, n) AS VARCHAR) AS ${t.name} FROM (
    SELECT j._row, ${key} AS v, COUNT(*) AS n, ROW_NUMBER() OVER (PARTITION BY j._row ORDER BY COUNT(*) DESC, ${key}) AS r
    ${rows}
    GROUP BY j._row, ${key}
  ) counted${t.top !== undefined ? ` WHERE r <= ${t.top}` : ''}
  GROUP BY _row
)`;
}

/**
 * Portable: a percentile tag (the nearest-rank values of the log buckets, as JSON text;
 * json_object is DuckDB's, Spark SQL: to_json(named_struct(…))) or an approx_distinct tag
 * (the distinct hashes ranked; sha1 and the hex cast are DuckDB's, Spark SQL:
 * substr(sha1(v), 1, 12) and conv(h, 16, 10)).
 */
function joinedSketchCte(t: WindowTag, rows: string): string {
  if (t.aggregation === 'percentile') {
    const values = t.p!.map((p) => `${sqlString(percentileLabel(p))}, ${percentileValueSql(`MAX(CASE WHEN r = ${nearestRankSql('n', p)} THEN b END)`)}`);
    return `t_${t.name} AS (
  SELECT _row, CAST(json_object(${values.join(', ')}) AS VARCHAR) AS ${t.name} FROM (
    SELECT j._row, ${percentileKeySql(`j.${t.field}`)} AS b, ROW_NUMBER() OVER (PARTITION BY j._row ORDER BY ${percentileKeySql(`j.${t.field}`)}) AS r, COUNT(*) OVER (PARTITION BY j._row) AS n
    ${rows}
  ) ranked
  GROUP BY _row
)`;
  }
  return `t_${t.name} AS (
  SELECT _row, ${approxDistinctSql('COUNT(*)', `MAX(CASE WHEN r = ${t.k} THEN h END)`, t.k!)} AS ${t.name} FROM (
    SELECT _row, h, ROW_NUMBER() OVER (PARTITION BY _row ORDER BY h) AS r FROM (
      SELECT DISTINCT j._row, ${sketchHashSql(`j.${t.field}`)} AS h
      ${rows}
    ) hashes
  ) ranked
  GROUP BY _row
)`;
}

/**
 * Portable: an active_days tag with a window as a join of each spine row with its user's
 * days (first and last event time of each): a day counts when it has an event in [T - W, T],
 * which for a window of a day or more is: its last event at or after T - W and its first at
 * or before T.
 */
function activeDaysCte(t: OfflineTag): string {
  const day = `CAST(FLOOR(ts / ${DAY_MS}.0) AS BIGINT)`;
  return `ad_${t.name} AS (
  SELECT s._row, COUNT(d.day) AS ${t.name}
  FROM spine_rows s LEFT JOIN (
    SELECT user_id, ${day} AS day, MIN(ts) AS first_ts, MAX(ts) AS last_ts
    FROM events WHERE user_id IN (SELECT _user FROM spine_rows)${t.event !== undefined ? ` AND type = ${sqlString(t.event)}` : ''}
    GROUP BY user_id, ${day}
  ) d ON d.user_id = s._user AND d.last_ts >= s._asof - ${t.windowMs} AND d.first_ts <= s._asof
  GROUP BY s._row
)`;
}

/** Portable active_days tags: those with a window of a day or more (shorter ones stay window aggregates, which Spark SQL lacks for DISTINCT). */
export const joinedActiveDays = (tags: OfflineTag[]) => tags.filter((t) => t.aggregation === 'active_days' && t.windowMs !== undefined && t.windowMs >= DAY_MS);

/** One offline tag as a window aggregate over the user's whole timeline, as of the marker row's time. */
function offlineExpression(t: OfflineTag): string {
  const frame = t.windowMs !== undefined ? `RANGE BETWEEN ${t.windowMs} PRECEDING AND CURRENT ROW` : 'RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW';
  const over = `OVER (PARTITION BY user_id ORDER BY ts ${frame})`;
  const when = (value: string) => `CASE WHEN ${t.event !== undefined ? `type = ${sqlString(t.event)}` : '_ev = 1'} THEN ${value} END`;
  switch (t.aggregation) {
    case 'count':
      return `COUNT(${when('1')}) ${over}`;
    case 'sum':
      return `ROUND(COALESCE(SUM(${when('amount')}) ${over}, 0), 6)`; // as the batch rounds sums of money
    case 'first_seen':
      return `MIN(${when('ts')}) ${over}`;
    case 'last_seen':
      return `MAX(${when('ts')}) ${over}`;
    case 'active_days':
      return `COUNT(DISTINCT ${when(`CAST(FLOOR(ts / ${DAY_MS}.0) AS BIGINT)`)}) ${over}`;
  }
}

/** The offline tags (and the user's event count up to T, _events) for each spine row; `joined`: active_days tags joined from their own CTE. */
export function offlineCte(tags: OfflineTag[], joined: OfflineTag[] = []): string {
  const framed = tags.filter((t) => !joined.includes(t));
  const select = joined.length ? `framed.*${joined.map((t) => `, ad_${t.name}.${t.name}`).join('')}` : '*';
  return `${joined.map((t) => `${activeDaysCte(t)},\n`).join('')}offline AS (
  SELECT ${select} FROM (
    SELECT _row, _asof,
      COUNT(_ev) OVER (PARTITION BY user_id ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _events${framed.map((t) => `,\n      ${offlineExpression(t)} AS ${t.name}`).join('')}
    FROM (
      SELECT user_id, ts, type, amount, 1 AS _ev, CAST(NULL AS BIGINT) AS _row, CAST(NULL AS BIGINT) AS _asof FROM events WHERE user_id IN (SELECT _user FROM spine_rows)
      UNION ALL
      SELECT _user, _asof, CAST(NULL AS VARCHAR), CAST(NULL AS DOUBLE), CAST(NULL AS INTEGER), _row, _asof FROM spine_rows
    ) timeline
  ) framed
${joined.map((t) => `  JOIN ad_${t.name} USING (_row)\n`).join('')}  WHERE framed._row IS NOT NULL
)`;
}
