import { EventType } from './event';

/**
 * How a realtime tag folds the events of its window into a value: `count` of events; `sum`,
 * `avg`, `min`, `max` of a numeric field; `variance` and `stddev` of it (population: the
 * mean squared deviation from the window's mean, and its square root); `last`, the field's
 * value in the newest event (ties on time: the larger value); `first`, its value in the
 * oldest event of the window (ties on time: the larger value, as `last` breaks them); `distinct` values of an id
 * field; `count_by`, events per value of an id field; `histogram`, events per bucket of a
 * numeric field (fixed `buckets` edges); `last_k` / `first_k`, the field's values in
 * the k newest / oldest events of the window (newest / oldest first; equal times: the larger
 * value first); `percentile`, the `p` percentiles of a numeric field within 1 % (a log-bucket
 * sketch, see core/sketch.ts); `approx_distinct`, the distinct values of an id field, exact
 * below `k` and estimated above (a k-minimum-values sketch).
 */
export const AGGREGATIONS = [
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'last',
  'distinct',
  'count_by',
  'variance',
  'stddev',
  'first',
  'histogram',
  'last_k',
  'first_k',
  'percentile',
  'approx_distinct',
] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];
/** Aggregations over a numeric field, kept in the numeric panes. */
export const NUMERIC_AGGREGATIONS: readonly Aggregation[] = ['sum', 'avg', 'min', 'max', 'last', 'variance', 'stddev', 'first'];
/** Aggregations that need the numeric panes' sum of squared deviations (a field they keep only then). */
export const SPREAD_AGGREGATIONS: readonly Aggregation[] = ['variance', 'stddev'];
/** Aggregations over an id field, kept in the value panes (one entry per distinct value). */
export const VALUE_AGGREGATIONS: readonly Aggregation[] = ['distinct', 'count_by', 'histogram', 'last_k', 'first_k', 'percentile', 'approx_distinct'];
/** Aggregations whose value is a list of the field's values (the k newest or oldest events'). */
export const LIST_AGGREGATIONS: readonly Aggregation[] = ['last_k', 'first_k'];
/** Aggregations whose value is a count per key (count_by: per value of an id field; histogram: per bucket of a numeric field). */
export const KEYED_AGGREGATIONS: readonly Aggregation[] = ['count_by', 'histogram'];
/** Aggregations kept as counts per key in value panes with a running total (percentile: per log bucket of a numeric field). */
export const COUNTED_AGGREGATIONS: readonly Aggregation[] = ['count_by', 'histogram', 'percentile'];
/** Aggregations whose value panes are per-pane lists (last_k, first_k: the k newest / oldest; approx_distinct: the k smallest hashes). */
export const PANE_LIST_AGGREGATIONS: readonly Aggregation[] = ['last_k', 'first_k', 'approx_distinct'];
/** Aggregations a trigger condition cannot compare with a number (their values are objects or lists). */
export const NOT_NUMERIC_AGGREGATIONS: readonly Aggregation[] = ['count_by', 'histogram', 'last_k', 'first_k', 'percentile'];

/**
 * A histogram's bucket labels for its edges e1 < … < ek: `<e1`, `[e1,e2)`, …, `>=ek` (each
 * edge as JavaScript prints the number; the window scripts build the same text from it).
 */
export function bucketLabels(edges: readonly number[]): string[] {
  const e = edges.map(String);
  return [`<${e[0]}`, ...e.slice(1).map((hi, i) => `[${e[i]},${hi})`), `>=${e[e.length - 1]}`];
}

/** The bucket label of value `v` (edges ascending). */
export function bucketLabel(edges: readonly number[], labels: readonly string[], v: number): string {
  for (let i = 0; i < edges.length; i++) if (v < edges[i]) return labels[i];
  return labels[edges.length];
}

/**
 * The pane levels (ms): window state is kept in panes of 1 s, 1 min and 1 h. A tag's
 * resolution is one of them; coarser levels cover the middle of long windows, so a read
 * merges a bounded number of panes whatever the window holds.
 */
export const PANE_LEVELS_MS = [1000, 60_000, 3_600_000] as const;

/**
 * Event fields a window keeps per event, in the order they are packed into the window's
 * value hash. Fixed, so a config change never reinterprets values already stored.
 */
export const WINDOW_FIELDS = ['ad_id', 'campaign_id', 'currency', 'amount'] as const;
export type WindowField = (typeof WINDOW_FIELDS)[number];
export const NUMERIC_FIELDS: readonly WindowField[] = ['amount'];

/** A realtime tag: one aggregation of one event type over a sliding window of event time. */
export interface WindowTag {
  name: string;
  event: EventType;
  aggregation: Aggregation;
  /** The event field aggregated (`sum`, `distinct`, `count_by`); absent for `count`. */
  field?: WindowField;
  /** Window length in ms, a multiple of the resolution. */
  windowMs: number;
  /**
   * Resolution (ms, one of PANE_LEVELS_MS): at read time `now` the tag counts the events
   * whose pane floor(ts / resolution) is one of the windowMs / resolution panes ending
   * with now's pane. @defaultValue 1 s for count/sum/avg/min/max/last up to 1 h, else 1 min
   */
  resolutionMs: number;
  /** count_by only: reply with the `top` largest counts (ties: smaller key first); all when absent. */
  top?: number;
  /** histogram only: the bucket edges, ascending (k edges, k + 1 buckets; see bucketLabels). */
  buckets?: number[];
  /** last_k and first_k: how many values (1 to 100); approx_distinct: the sketch's size (16 to 4096). */
  k?: number;
  /** percentile only: the percentiles, each in (0, 100] to a tenth, ascending. */
  p?: number[];
}

/** How an offline tag folds a user's whole history (as of the batch's as-of time). */
export const OFFLINE_AGGREGATIONS = ['count', 'sum', 'first_seen', 'last_seen', 'active_days'] as const;
export type OfflineAggregation = (typeof OFFLINE_AGGREGATIONS)[number];

/**
 * An offline tag: a long-term aggregation over the ODS, computed by `profile batch`.
 * `first_seen`/`last_seen` are event times (epoch ms); `active_days` counts distinct UTC
 * dates with an event.
 */
export interface OfflineTag {
  name: string;
  aggregation: OfflineAggregation;
  /** Only events of this type (all types when absent). */
  event?: EventType;
  /** The summed field (`sum` only). */
  field?: 'amount';
  /** Only events at most this old at the as-of time (all history when absent). */
  windowMs?: number;
}

export const COMPARISONS = ['>=', '>', '<=', '<', '==', '!='] as const;
export const AGE_TESTS = ['within', 'older_than'] as const;

/**
 * One condition of a segment rule: a numeric comparison of a tag with a value, or an age
 * test of a time tag (`within 7d`: as-of minus the tag is at most 7 days; `older_than 30d`:
 * more than 30 days).
 */
export type SegmentCondition =
  { tag: string; op: (typeof COMPARISONS)[number]; value: number } | { tag: string; op: (typeof AGE_TESTS)[number]; valueMs: number };

/** A segment: the first rule whose conditions all hold gives the user's `segment_id`. */
export interface SegmentRule {
  id: string;
  when: SegmentCondition[];
}

/** Trigger comparisons: a trigger fires when all of them hold (`!=` and age tests are segment-only). */
export const TRIGGER_COMPARISONS = ['>=', '>', '<=', '<', '=='] as const;

/** One condition of a trigger: a realtime window tag (numeric) or an offline tag compared with a value. */
export interface TriggerCondition {
  tag: string;
  op: (typeof TRIGGER_COMPARISONS)[number];
  value: number;
}

/**
 * A trigger: fires for a user when an event makes all its conditions true while they were
 * not all true before (edge-triggered), and again only after they have been false.
 */
export interface Trigger {
  name: string;
  when: TriggerCondition[];
}

/** Every tag definition the product computes, loaded from one JSON file. */
export interface TagConfig {
  source: string;
  realtime: WindowTag[];
  offline: OfflineTag[];
  segments: SegmentRule[];
  /** Pushed when a user crosses a threshold (none when absent). */
  triggers: Trigger[];
  /**
   * The config as written (the parsed JSON): what its version is computed from and what
   * Redis keeps, so every process can run the active config (see tagConfigVersion).
   */
  document: unknown;
}

/** The offline tag that holds the user's segment. */
export const SEGMENT_TAG = 'segment_id';

/** A tag, trigger or segment name. */
export const NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** The longest window over the tags of one event type (0 when the type has no tag). */
export function longestWindowFor(tags: readonly WindowTag[], type: EventType): number {
  return tags.reduce((max, t) => (t.event === type && t.windowMs > max ? t.windowMs : max), 0);
}

/** The longest window over all tags: how long a user's window keys can matter. */
export function longestWindow(tags: readonly WindowTag[]): number {
  return tags.reduce((max, t) => Math.max(max, t.windowMs), 0);
}
