import { PERCENTILE_LOG_GAMMA_TEXT, PERCENTILE_OFFSET, SKETCH_HASH_HEX, percentileLabel } from '../core/sketch';
import { sqlString } from './sql';

/**
 * The sketches of core/sketch.ts in SQL, for `batch --windows`, `verify` and both forms of
 * the training set: the same buckets, ranks, hashes and estimate as the window scripts, so
 * the values are equal. Constants are parsed from text (CAST … AS DOUBLE) so DuckDB uses
 * the double the scripts use, not a DECIMAL.
 */

const double = (text: string) => `CAST('${text}' AS DOUBLE)`;
const GAMMA = double(String(1.01 / 0.99));

/** A computed number to 14 significant digits, as the API answers sums, averages and percentiles (Lua's %.14g). */
export const significant14 = (x: string) => `CASE WHEN ${x} = 0 THEN ${x} ELSE ROUND(${x}, CAST(13 - FLOOR(LOG10(ABS(${x}))) AS INTEGER)) END`;

/** The percentile bucket key (an integer) of numeric column `x`: NULL when x is. */
export function percentileKeySql(x: string): string {
  const bucket = (v: string) => `${PERCENTILE_OFFSET} + CAST(CEIL(LN(${v}) / ${double(PERCENTILE_LOG_GAMMA_TEXT)}) AS BIGINT)`;
  return `CASE WHEN ${x} > 0 THEN ${bucket(x)} WHEN ${x} < 0 THEN -(${bucket(`-${x}`)}) WHEN ${x} = 0 THEN 0 END`;
}

/** The value bucket key `key` stands for (2γ^i / (γ + 1), 14 significant digits). */
export function percentileValueSql(key: string): string {
  const rep = `2 * POW(${GAMMA}, ABS(${key}) - ${PERCENTILE_OFFSET}) / (${GAMMA} + 1)`;
  return `CASE WHEN ${key} = 0 THEN CAST(0 AS DOUBLE) ELSE SIGN(${key}) * ${significant14(rep)} END`;
}

/** The nearest rank (1-based) of percentile p among `n` values: ceil(n · p / 100) (exact: integers over 1000; Trino's integer division truncates to the same). */
export const nearestRankSql = (n: string, p: number) => `CAST(FLOOR(((${n}) * ${Math.round(p * 10)} + 999) / 1000) AS BIGINT)`;

/** A percentile tag's value from a sorted list of bucket keys (DuckDB): MAP {'p50': …}, NULL for an empty or NULL list. */
export function percentileMapSql(sortedKeys: string, ps: readonly number[]): string {
  const entries = ps.map((p) => `${sqlString(percentileLabel(p))}: ${percentileValueSql(`(${sortedKeys})[${nearestRankSql(`len(${sortedKeys})`, p)}]`)}`);
  return `CASE WHEN COALESCE(len(${sortedKeys}), 0) = 0 THEN NULL ELSE MAP {${entries.join(', ')}} END`;
}

/** The approx_distinct hash (12 hex digits of the SHA-1 of the value's text) of column `x`. */
export const sketchHashSql = (x: string) => `substr(sha1(CAST(${x} AS VARCHAR)), 1, ${SKETCH_HASH_HEX})`;

/** approx_distinct's value from `n` distinct hashes and the k-th smallest `kth` (hex text): n below k, else the estimate. */
export function approxDistinctSql(n: string, kth: string, k: number): string {
  const h = `CAST(CAST(('0x' || ${kth}) AS BIGINT) AS DOUBLE)`;
  const estimate = `CAST(FLOOR(CAST(${k - 1} AS DOUBLE) * CAST(${2 ** 48} AS DOUBLE) / (${h} + 1) + 0.5) AS BIGINT)`;
  return `CASE WHEN COALESCE(${n}, 0) < ${k} THEN COALESCE(${n}, 0) ELSE ${estimate} END`;
}

/** approx_distinct's value from a list of hashes (DuckDB; repeats allowed, NULL for none). */
export function approxDistinctListSql(hashes: string, k: number): string {
  const sorted = `list_sort(list_distinct(${hashes}))`;
  return approxDistinctSql(`len(${sorted})`, `${sorted}[${k}]`, k);
}
