import { createHash } from 'crypto';

/**
 * The two sketches of the window tags, shared by the window scripts (includes/panes.lua),
 * the fold in the consumer, the reader, the batch's SQL and the property tests' model. Each
 * is defined by the events of the window alone, so the realtime path, `batch --windows` and
 * the training set compute the same value from the same events.
 *
 * `percentile`: log buckets in the manner of DDSketch. A value x > 0 falls in bucket
 * i = ceil(ln x / ln γ), γ = (1 + α) / (1 − α), α = 1 %; negative values mirror it, 0 has a
 * bucket of its own. The p-th percentile is the nearest-rank one (the value of rank
 * ceil(n · p / 100) of the n values, at least 1) read off the buckets: the representative
 * 2γ^i / (γ + 1) of the rank's bucket, which is within α (1 %) of every value of the bucket.
 *
 * `approx_distinct`: a k-minimum-values sketch. Each value's hash is the first 12 hex digits
 * (48 bits) of its SHA-1; a pane keeps the k smallest hashes of its values, so the union
 * of the panes of a window holds the window's k smallest. Fewer than k hashes: the count is
 * exact. Else (k − 1) · 2^48 / (h_k + 1), h_k the k-th smallest hash: an estimate with a
 * relative standard error of at most 1 / √(k − 2) (3.1 % at the default k = 1024).
 */

/**
 * ln γ, γ = 1.01 / 0.99, as decimal text: every place that buckets a value (Lua, Node,
 * DuckDB) parses this same text, so all use the same double.
 */
export const PERCENTILE_LOG_GAMMA_TEXT = '0.020000666706669435';
const LOG_GAMMA = Number(PERCENTILE_LOG_GAMMA_TEXT);
const GAMMA = 1.01 / 0.99;
/** Bucket keys: x > 0 → OFFSET + i, x < 0 → −(OFFSET + i of −x), 0 → 0; numeric order is value order. */
export const PERCENTILE_OFFSET = 40_000;

/** The percentile bucket key of x (a finite number), as text: what its value panes count. */
export function percentileKey(x: number): string {
  if (x === 0) return '0';
  const i = PERCENTILE_OFFSET + Math.ceil(Math.log(Math.abs(x)) / LOG_GAMMA);
  return String(x > 0 ? i : -i);
}

/** The value a bucket key stands for: 2γ^i / (γ + 1), to 14 significant digits (as the API prints numbers). */
export function percentileValue(key: number): number {
  if (key === 0) return 0;
  const i = Math.abs(key) - PERCENTILE_OFFSET;
  const v = Number(((2 * Math.pow(GAMMA, i)) / (GAMMA + 1)).toPrecision(14));
  return key > 0 ? v : -v;
}

/** The 1-based nearest rank of percentile p among n values: ceil(n · p / 100), at least 1 (p in tenths, integer arithmetic). */
export function nearestRank(n: number, p: number): number {
  const tenths = Math.round(p * 10);
  return Math.max(1, Math.floor((n * tenths + 999) / 1000));
}

/** The label of percentile p in a value: p50, p99.9. */
export const percentileLabel = (p: number) => `p${p}`;

/** A percentile tag's value from its counts per bucket key: { p50: …, p90: … }; null when there are none. */
export function percentiles(counts: Record<string, number> | Map<string | number, number>, ps: readonly number[]): Record<string, number> | null {
  const keys: number[] = [];
  const byKey = new Map<number, number>();
  let n = 0;
  for (const [k, c] of counts instanceof Map ? counts : Object.entries(counts)) {
    if (c <= 0) continue;
    const key = Number(k);
    keys.push(key);
    byKey.set(key, c);
    n += c;
  }
  if (n === 0) return null;
  keys.sort((a, b) => a - b);
  const out: Record<string, number> = {};
  // The ranks ascend with p: one walk over the buckets serves them all.
  let i = 0;
  let seen = byKey.get(keys[0])!;
  for (const p of ps) {
    const rank = nearestRank(n, p);
    while (seen < rank) seen += byKey.get(keys[++i])!;
    out[percentileLabel(p)] = percentileValue(keys[i]);
  }
  return out;
}

/**
 * The counts per key of the read script's signed value-pane texts ("+", "k\x1fn\x1f…", "-",
 * …: a count_by's, histogram's or percentile's total and its corrections), merged.
 */
export function signedCounts(signed: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < signed.length; i += 2) {
    const sign = signed[i] === '-' ? -1 : 1;
    const text = signed[i + 1];
    let at = 0;
    while (at < text.length) {
      const a = text.indexOf('\x1f', at);
      const b = text.indexOf('\x1f', a + 1);
      const key = text.slice(at, a);
      counts.set(key, (counts.get(key) ?? 0) + sign * Number(text.slice(a + 1, b < 0 ? text.length : b)));
      at = b < 0 ? text.length : b + 1;
    }
  }
  return counts;
}

/** A percentile tag's value from the read script's signed count texts: signedCounts, then percentiles(). */
export function percentilesFromSigned(signed: readonly string[], ps: readonly number[]): Record<string, number> | null {
  return percentiles(signedCounts(signed), ps);
}

/** Hex digits of an approx_distinct hash (48 bits). */
export const SKETCH_HASH_HEX = 12;
/** 2^48: the hashes' range. */
const HASH_RANGE = 2 ** 48;
/** approx_distinct's default k. */
export const DEFAULT_SKETCH_K = 1024;

/** A value's approx_distinct hash: the first 12 hex digits of the SHA-1 of its text. */
export function sketchHash(value: string): string {
  return createHash('sha1').update(value, 'utf8').digest('hex').slice(0, SKETCH_HASH_HEX);
}

/** The hashes of a pane text (12 hex digits each, no separator), in order. */
export function sketchHashes(text: string | null | undefined): string[] {
  const out: string[] = [];
  if (text) for (let i = 0; i + SKETCH_HASH_HEX <= text.length; i += SKETCH_HASH_HEX) out.push(text.slice(i, i + SKETCH_HASH_HEX));
  return out;
}

/** The k smallest of a pane's hashes and `more`, ascending, as a pane text (includes/panes.lua: mergeSketch). */
export function mergeSketch(text: string | null | undefined, more: Iterable<string>, k: number): string {
  const all = [...new Set([...sketchHashes(text), ...more])].sort();
  return all.slice(0, k).join('');
}

/**
 * estimateDistinct over a text of hashes (the read script's answer: the covering panes'
 * texts, concatenated): the hashes as numbers (48 bits: exact doubles) in a typed array,
 * sorted and walked once — about 2× faster than sorting the strings.
 */
export function estimateDistinctText(text: string, k: number): number {
  const n = Math.floor(text.length / SKETCH_HASH_HEX);
  const hashes = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let j = i * SKETCH_HASH_HEX, end = j + SKETCH_HASH_HEX; j < end; j++) {
      const c = text.charCodeAt(j);
      v = v * 16 + (c < 58 ? c - 48 : c - 87); // '0'-'9', 'a'-'f'
    }
    hashes[i] = v;
  }
  hashes.sort();
  let distinct = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0 && hashes[i] === hashes[i - 1]) continue;
    distinct++;
    if (distinct === k) return Math.floor(((k - 1) * HASH_RANGE) / (hashes[i] + 1) + 0.5);
  }
  return distinct;
}

/** The estimate of the distinct values behind a set of hashes (any order, repeats allowed): exact below k. */
export function estimateDistinct(hashes: Iterable<string>, k: number): number {
  const sorted = [...new Set(hashes)].sort();
  if (sorted.length < k) return sorted.length;
  return Math.floor(((k - 1) * HASH_RANGE) / (parseInt(sorted[k - 1], 16) + 1) + 0.5);
}
