import { EventType, ProfileEvent } from '../../src/core/event';
import { WindowTag, bucketLabel, bucketLabels } from '../../src/core/tags';
import { windowRange } from '../../src/core/panes';
import { estimateDistinct, nearestRank, percentileKey, percentiles, sketchHash } from '../../src/core/sketch';
import { WindowValue } from '../../src/batch/windows';

/**
 * Computes realtime window tags as of `asOf` from a user's (deduplicated) events, with the
 * pane rule of the window scripts (core/panes.ts): a tag counts the events whose time is in
 * windowRange(tag, asOf). sum/avg/min/max/last use the events that carry the numeric
 * field; distinct and count_by ignore events without the id field; `last` is the value of
 * the newest event (equal times: the larger value). The reference model of the live
 * windows and of the batch's window SQL (profile batch --windows).
 */
export function computeWindowTags(events: readonly ProfileEvent[], tags: readonly WindowTag[], asOf: number): Record<string, WindowValue> {
  const byType = new Map<EventType, ProfileEvent[]>();
  for (const e of events) {
    let list = byType.get(e.type);
    if (!list) byType.set(e.type, (list = []));
    list.push(e);
  }
  const out: Record<string, WindowValue> = {};
  for (const t of tags) {
    const [from, to] = windowRange(t, asOf);
    const inWindow = (byType.get(t.event) ?? []).filter((e) => e.ts >= from && e.ts < to);
    out[t.name] = aggregate(t, inWindow);
  }
  return out;
}

function aggregate(t: WindowTag, events: ProfileEvent[]): WindowValue {
  if (t.aggregation === 'count') return events.length;
  const values = events.map((e) => e[t.field!]).filter((v) => v !== undefined && v !== '');
  const numbers = values.map(Number).filter((n) => Number.isFinite(n));
  switch (t.aggregation) {
    case 'sum':
      return numbers.reduce((s, n) => s + n, 0);
    case 'avg':
      return numbers.length ? numbers.reduce((s, n) => s + n, 0) / numbers.length : null;
    case 'min':
      return numbers.length ? Math.min(...numbers) : null;
    case 'max':
      return numbers.length ? Math.max(...numbers) : null;
    case 'variance':
    case 'stddev': {
      // Population, two passes.
      if (!numbers.length) return null;
      const mean = numbers.reduce((s, n) => s + n, 0) / numbers.length;
      const variance = numbers.reduce((s, n) => s + (n - mean) ** 2, 0) / numbers.length;
      return t.aggregation === 'variance' ? variance : Math.sqrt(variance);
    }
    case 'first': {
      let best: [number, number] | null = null;
      for (const e of events) {
        const v = Number(e[t.field!]);
        if (e[t.field!] === undefined || !Number.isFinite(v)) continue;
        if (!best || e.ts < best[0] || (e.ts === best[0] && v > best[1])) best = [e.ts, v];
      }
      return best ? best[1] : null;
    }
    case 'last': {
      let best: [number, number] | null = null;
      for (const e of events) {
        const v = Number(e[t.field!]);
        if (e[t.field!] === undefined || !Number.isFinite(v)) continue;
        if (!best || e.ts > best[0] || (e.ts === best[0] && v > best[1])) best = [e.ts, v];
      }
      return best ? best[1] : null;
    }
    case 'distinct':
      return new Set(values.map(String)).size;
    case 'count_by': {
      const counts: Record<string, number> = Object.create(null);
      for (const v of values) counts[String(v)] = (counts[String(v)] ?? 0) + 1;
      return t.top === undefined ? counts : topCounts(counts, t.top);
    }
    case 'last_k':
    case 'first_k': {
      const numeric = t.field === 'amount';
      const list = events
        .filter((e) => e[t.field!] !== undefined && e[t.field!] !== '')
        .map((e) => [e.ts, numeric ? Number(e[t.field!]) : String(e[t.field!])] as [number, number | string]);
      list.sort((a, b) => (a[0] !== b[0] ? (t.aggregation === 'last_k' ? b[0] - a[0] : a[0] - b[0]) : a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0));
      return list.slice(0, t.k).map((x) => x[1]);
    }
    case 'histogram': {
      const labels = bucketLabels(t.buckets!);
      const counts: Record<string, number> = Object.create(null);
      for (const n of numbers) {
        const label = bucketLabel(t.buckets!, labels, n);
        counts[label] = (counts[label] ?? 0) + 1;
      }
      return counts;
    }
    case 'percentile': {
      // The sketch's definition (core/sketch.ts) over the window's values.
      const counts = new Map<string, number>();
      for (const n of numbers) counts.set(percentileKey(n), (counts.get(percentileKey(n)) ?? 0) + 1);
      return percentiles(counts, t.p!);
    }
    case 'approx_distinct':
      return estimateDistinct(
        values.map((v) => sketchHash(String(v))),
        t.k!,
      );
  }
}

/**
 * The exact nearest-rank percentile p of `numbers` (the value of rank ceil(n · p / 100)):
 * what a percentile tag approximates within 1 %.
 */
export function exactPercentile(numbers: readonly number[], p: number): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted[nearestRank(sorted.length, p) - 1];
}

/** The `k` largest counts (equal counts: the smaller key first). */
function topCounts(counts: Record<string, number>, k: number): Record<string, number> {
  const kept = Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, k);
  const out: Record<string, number> = Object.create(null);
  for (const [key, n] of kept.sort((a, b) => (a[0] < b[0] ? -1 : 1))) out[key] = n;
  return out;
}

/** Window tags of every aggregation kind, resolution and `top`, for tests against the reference. */
export const EVERY_KIND_TAGS = [
  { name: 'n_90s', event: 'purchase', aggregation: 'count', window: '90s' },
  { name: 'n_2h', event: 'purchase', aggregation: 'count', window: '2h', resolution: '1s' },
  { name: 'sum_10m', event: 'purchase', aggregation: 'sum', field: 'amount', window: '10m' },
  { name: 'avg_1h', event: 'purchase', aggregation: 'avg', field: 'amount', window: '1h' },
  { name: 'min_3h', event: 'purchase', aggregation: 'min', field: 'amount', window: '3h' },
  { name: 'max_5m', event: 'purchase', aggregation: 'max', field: 'amount', window: '5m' },
  { name: 'last_30m', event: 'purchase', aggregation: 'last', field: 'amount', window: '30m' },
  { name: 'first_20m', event: 'purchase', aggregation: 'first', field: 'amount', window: '20m' },
  { name: 'first_2h_m', event: 'purchase', aggregation: 'first', field: 'amount', window: '2h', resolution: '1m' },
  { name: 'spend_hist_1h', event: 'purchase', aggregation: 'histogram', field: 'amount', buckets: [10, 50, 100], window: '1h' },
  { name: 'spend_hist_30s', event: 'purchase', aggregation: 'histogram', field: 'amount', buckets: [-5, 0, 25.5], window: '30s', resolution: '1s' },
  { name: 'last3_ads_30m', event: 'impression', aggregation: 'last_k', field: 'ad_id', k: 3, window: '30m' },
  { name: 'first2_amounts_2h', event: 'purchase', aggregation: 'first_k', field: 'amount', k: 2, window: '2h' },
  { name: 'last5_amounts_90s', event: 'purchase', aggregation: 'last_k', field: 'amount', k: 5, window: '90s', resolution: '1s' },
  { name: 'var_1h', event: 'purchase', aggregation: 'variance', field: 'amount', window: '1h' },
  { name: 'spend_p_1h', event: 'purchase', aggregation: 'percentile', field: 'amount', p: [50, 90, 99.9], window: '1h' },
  { name: 'spend_p_90s', event: 'purchase', aggregation: 'percentile', field: 'amount', p: [1, 50], window: '90s', resolution: '1s' },
  { name: 'spend_p_6h_h', event: 'purchase', aggregation: 'percentile', field: 'amount', p: [75], window: '6h', resolution: '1h' },
  { name: 'ads_approx_1h', event: 'impression', aggregation: 'approx_distinct', field: 'ad_id', window: '1h' },
  { name: 'ads_approx_k16_2m', event: 'impression', aggregation: 'approx_distinct', field: 'ad_id', k: 16, window: '2m', resolution: '1s' },
  { name: 'camp_approx_k16_6h', event: 'impression', aggregation: 'approx_distinct', field: 'campaign_id', k: 16, window: '6h', resolution: '1h' },
  { name: 'sd_10m', event: 'purchase', aggregation: 'stddev', field: 'amount', window: '10m' },
  { name: 'sd_6h_h', event: 'purchase', aggregation: 'stddev', field: 'amount', window: '6h', resolution: '1h' },
  { name: 'sum_6h_h', event: 'purchase', aggregation: 'sum', field: 'amount', window: '6h', resolution: '1h' },
  { name: 'ads_1h', event: 'impression', aggregation: 'distinct', field: 'ad_id', window: '1h' },
  { name: 'ads_2m_s', event: 'impression', aggregation: 'distinct', field: 'ad_id', window: '2m', resolution: '1s' },
  { name: 'camp_3h', event: 'impression', aggregation: 'count_by', field: 'campaign_id', window: '3h' },
  { name: 'camp_top2_1h', event: 'impression', aggregation: 'count_by', field: 'campaign_id', window: '1h', top: 2 },
  { name: 'views_45m', event: 'impression', aggregation: 'count', window: '45m' },
];
