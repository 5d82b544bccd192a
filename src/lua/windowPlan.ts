import { EventType } from '../core/event';
import { WINDOW_FIELDS, WindowTag, longestWindow } from '../core/tags';
import { LEVEL_PREFIX, tagLevels, typePanePlan, valueFieldIndex } from '../core/panes';
import { COUNTED_AGGREGATIONS, NUMERIC_FIELDS, VALUE_AGGREGATIONS, bucketLabels } from '../core/tags';

/** One window tag as the window scripts read it (see includes/tagValues.lua). */
export interface TagPlan {
  name: string;
  agg: WindowTag['aggregation'];
  /** 1-based index of its field in WINDOW_FIELDS (a histogram: its value field, HISTOGRAM_FIELD_BASE + k); 0 for count. */
  field: number;
  window: number;
  res: number;
  /** Pane levels it reads (ms, finest first). */
  levels: number[];
  /** count_by: the k largest (0: all). */
  top: number;
  /** Name of its running total in the pane hash's T field ('' for kinds without one): the same for tags that count the same panes. */
  total: string;
}

/** One event type's part of the plan: what its panes keep, and its tags. */
export interface TypePlan {
  name: EventType;
  longest: number;
  /**
   * The longest window of its tags that read one-second panes, in seconds plus one (0
   * when none does): how far back the consumer's fold remembers which seconds and minutes
   * hold events (consumers/panesSeen.ts). Not part of the Lua plan.
   */
  secondsKept: number;
  numeric: boolean;
  /** The numeric panes keep the sum of squared deviations (m2) too. */
  spread: boolean;
  /** The numeric panes keep their oldest event's time and value (ft, fv) too. */
  first: boolean;
  numericField: number;
  numericLevels: number[];
  /** Value panes: per field (a histogram's: `source` the numeric field, `edges` and their `labels`), the levels kept. */
  values: {
    field: number;
    levels: number[];
    source?: number;
    edges?: number[];
    labels?: string[];
    list?: { newest: boolean; k: number; sketch?: boolean };
    /** A percentile's value field: counts per log bucket of `source` (core/sketch.ts). */
    percentile?: boolean;
    numericList?: boolean;
  }[];
  distinct: number[];
  tags: TagPlan[];
}

/** What the window scripts need to know of the tag config, sent as one argument (ARGV[2]). */
export interface WindowPlan {
  /** The event types with tags, in config order: the order of their keys in a read. */
  types: EventType[];
  /** The plan in the binary form the scripts decode (includes/plan.lua). */
  bin: Buffer;
  /** The same plan decoded, one entry per type in `types` order (for the fold in the consumer). */
  plans: TypePlan[];
  /** The longest window of any type (ms): the realtime hash's lifetime. */
  longest: number;
}

/**
 * Running totals are kept for count and count_by (integers: moved by adding and
 * subtracting panes without rounding), and for sum and avg (one total for both: the number
 * of values and their sum, "n,s"; a sum moved by adding and subtracting pane sums differs
 * from the panes' merge in the last bits only, and is 0 exactly when n is); min, max and
 * last merge panes at read time;
 * variance and stddev share one "n,s,q" total (a pane's q is m2 + s² / n).
 */
function totalSpec(t: WindowTag, field: number): string {
  const steps = `${LEVEL_PREFIX[t.resolutionMs]}${t.windowMs / t.resolutionMs}`;
  if (t.aggregation === 'count') return steps;
  if (COUNTED_AGGREGATIONS.includes(t.aggregation)) return `${field}${steps}`;
  if (t.aggregation === 'sum' || t.aggregation === 'avg') return `S${steps}`;
  // variance and stddev: "n,s,q" (q: the sum of squares; the value is q / n - (s / n)²).
  if (t.aggregation === 'variance' || t.aggregation === 'stddev') return `Q${steps}`;
  return '';
}

/** The window plan of a tag config: derived once, the same text on every call. */
export function windowPlan(tags: readonly WindowTag[]): WindowPlan {
  const types = [...new Set(tags.map((t) => t.event))];
  const plans: TypePlan[] = types.map((type) => {
    const p = typePanePlan(tags, type);
    const own = tags.filter((t) => t.event === type);
    return {
      name: type,
      longest: p.longestMs,
      secondsKept: Math.max(0, ...own.filter((t) => tagLevels(t).includes(1000)).map((t) => t.windowMs / 1000 + 1)),
      numeric: p.numeric,
      spread: p.spread,
      first: p.first,
      numericField: p.numericField,
      numericLevels: p.numericLevels,
      values: p.valueFields.map((f) =>
        f.edges
          ? { field: f.index, levels: f.levels, source: f.source, edges: f.edges, labels: bucketLabels(f.edges) }
          : f.percentile
            ? { field: f.index, levels: f.levels, source: f.source, percentile: true }
            : f.list
              ? { field: f.index, levels: f.levels, source: f.source, list: f.list, numericList: NUMERIC_FIELDS.includes(f.field) }
              : { field: f.index, levels: f.levels },
      ),
      distinct: p.distinctFields,
      tags: tags
        .filter((t) => t.event === type)
        .map((t) => {
          const keyed = VALUE_AGGREGATIONS.includes(t.aggregation) && t.aggregation !== 'distinct';
          const field = keyed ? valueFieldIndex(p, t) : t.field ? WINDOW_FIELDS.indexOf(t.field) + 1 : 0;
          return {
            name: t.name,
            agg: t.aggregation,
            field,
            window: t.windowMs,
            res: t.resolutionMs,
            levels: tagLevels(t),
            top: t.top ?? t.k ?? 0,
            total: totalSpec(t, field),
          };
        }),
    };
  });
  return { types, bin: encodePlan(plans, longestWindow(tags)), plans, longest: longestWindow(tags) };
}

const AGGREGATION_CODES: Record<WindowTag['aggregation'], number> = {
  count: 1,
  sum: 2,
  avg: 3,
  min: 4,
  max: 5,
  last: 6,
  distinct: 7,
  count_by: 8,
  variance: 9,
  stddev: 10,
  first: 11,
  // Read and written as count_by (counts per key) over its value field.
  histogram: 8,
  last_k: 12,
  first_k: 13,
  // Read and written as count_by over the log buckets of its field (the reader turns the counts into percentiles).
  percentile: 8,
  approx_distinct: 14,
};
const RESOLUTION_CODES: Record<number, number> = { 1000: 1, 60_000: 2, 3_600_000: 3 };
const levelMask = (levels: number[]) => levels.reduce((m, l) => m | (l === 1000 ? 1 : l === 60_000 ? 2 : 4), 0);

/** The binary form of the plan that includes/plan.lua decodes (its header lists the layout). */
function encodePlan(types: TypePlan[], longest: number): Buffer {
  const parts: Buffer[] = [];
  const u8 = (...n: number[]) => parts.push(Buffer.from(n));
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    parts.push(b);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    parts.push(b);
  };
  const text = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 255) throw new Error(`window plan: "${s}" is longer than 255 bytes`);
    u8(b.length);
    parts.push(b);
  };
  u8(types.length);
  u32(longest / 1000);
  for (const t of types) {
    // Each type's block behind its length, so a script decodes only the types it needs.
    const lengthAt = parts.length;
    parts.push(Buffer.alloc(2));
    const before = parts.length;
    text(t.name);
    u32(t.longest / 1000);
    u8((t.numeric ? 1 : 0) | (t.spread ? 2 : 0) | (t.first ? 4 : 0), t.numericField, levelMask(t.numericLevels), t.values.length);
    for (const v of t.values) {
      u8(v.field, levelMask(v.levels));
      // A histogram's edges, or 'P' for a percentile's log buckets.
      text(v.edges ? v.edges.map(String).join(',') : v.percentile ? 'P' : '');
      // A list: 1 the newest values, 2 the oldest, 3 a sketch's smallest hashes, + 4 when its field is numeric (compared as numbers); then k.
      u8(v.source ?? 0, v.list ? (v.list.sketch ? 3 : v.list.newest ? 1 : 2) + (v.numericList ? 4 : 0) : 0);
      u16(v.list?.k ?? 0);
    }
    u8(t.distinct.length, ...t.distinct);
    u8(t.tags.length);
    for (const g of t.tags) {
      text(g.name);
      u8(AGGREGATION_CODES[g.agg], g.field);
      u32(g.window / 1000);
      u8(RESOLUTION_CODES[g.res], levelMask(g.levels));
      u32(g.top);
      text(g.total);
    }
    parts[lengthAt].writeUInt16BE(parts.slice(before).reduce((n, b) => n + b.length, 0));
  }
  return Buffer.concat(parts);
}
