import { EventType } from './event';
import { NUMERIC_AGGREGATIONS, PANE_LEVELS_MS, SPREAD_AGGREGATIONS, VALUE_AGGREGATIONS, WINDOW_FIELDS, WindowField, WindowTag } from './tags';

/** Value field indexes of histograms start here (index: HISTOGRAM_FIELD_BASE + k for a type's k-th bucket layout); below it, WINDOW_FIELDS indexes. */
export const HISTOGRAM_FIELD_BASE = 100;
/** Value field indexes of last_k / first_k lists start here (one per field and direction of a type). */
export const LIST_FIELD_BASE = 150;

/**
 * Window state v2: panes. Each event type of a user keeps mergeable partial aggregates
 * per time pane (1 s, 1 min, 1 h) instead of one entry per event, so a write costs one
 * update per pane level and a read merges a bounded number of panes, whatever the number
 * of events.
 *
 * The rule every part shares (Lua scripts, the batch's window tags, tests): a tag with
 * window W and resolution r read at `now` counts the events whose pane floor(ts / r) is
 * one of the W / r panes ending with now's pane, i.e. ts in
 * [(floor(now / r) - W / r + 1) * r, (floor(now / r) + 1) * r). Against the exact window
 * [now - W, now] it may miss up to one resolution step of the oldest events and count
 * events stamped up to one step ahead of `now` (within now's own pane).
 */

/** Pane level prefixes in field names: `s<second>`, `m<minute>`, `h<hour>`. */
export const LEVEL_PREFIX: Record<number, string> = { 1000: 's', 60_000: 'm', 3_600_000: 'h' };

/** The event times [from, to) a tag counts at `now` (see the rule above). */
export function windowRange(tag: Pick<WindowTag, 'windowMs' | 'resolutionMs'>, now: number): [from: number, to: number] {
  const r = tag.resolutionMs;
  const pane = Math.floor(now / r);
  return [(pane - tag.windowMs / r + 1) * r, (pane + 1) * r];
}

/**
 * The pane levels a tag reads: its resolution, and each coarser level that fits at least
 * twice in its window (it then covers the window's middle with fewer panes).
 */
export function tagLevels(tag: Pick<WindowTag, 'windowMs' | 'resolutionMs'>): number[] {
  return PANE_LEVELS_MS.filter((l) => l === tag.resolutionMs || (l > tag.resolutionMs && l * 2 <= tag.windowMs));
}

/**
 * The panes that cover [from, to) (both aligned to levels[0]) with as few panes as the
 * levels allow: fine panes at the edges, coarse ones in the middle. Each is [level, index].
 */
export function coverPanes(from: number, to: number, levels: readonly number[]): [level: number, index: number][] {
  const out: [number, number][] = [];
  let lo = from;
  let hi = to;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    const next = levels[i + 1];
    const loUp = next === undefined ? hi : Math.ceil(lo / next) * next;
    const hiDown = next === undefined ? hi : Math.floor(hi / next) * next;
    if (next === undefined || loUp >= hiDown) {
      for (let t = lo; t < hi; t += level) out.push([level, t / level]);
      return out;
    }
    for (let t = lo; t < loUp; t += level) out.push([level, t / level]);
    for (let t = hiDown; t < hi; t += level) out.push([level, t / level]);
    lo = loUp;
    hi = hiDown;
  }
  return out;
}

/** What the window script keeps for one event type (derived from the tags of that type). */
export interface TypePanePlan {
  type: EventType;
  /** Longest window of the type's tags (ms): state older than that is pruned. */
  longestMs: number;
  /** Levels of the numeric panes (count, and sum/min/max/last when `numeric`). */
  numericLevels: number[];
  /** The panes also keep sum, min, max and last of the numeric field (`amount`). */
  numeric: boolean;
  /** The numeric panes also keep the sum of squared deviations from their mean (for variance and stddev tags). */
  spread: boolean;
  /** The numeric panes also keep their oldest event's time and value (for first tags). */
  first: boolean;
  /** 1-based index (in WINDOW_FIELDS) of the numeric field; 0 when none. */
  numericField: number;
  /**
   * Value panes (a count per distinct value) per id field of count_by tags, and per bucket
   * layout of histogram tags (index HISTOGRAM_FIELD_BASE + k; `source`: the numeric field's
   * index, `edges`: the bucket edges), per numeric field of percentile tags (index
   * HISTOGRAM_FIELD_BASE + k, `percentile`: counts per log bucket), and the lists of last_k,
   * first_k (`list`) and approx_distinct (`list.sketch`: the k smallest hashes) tags, with
   * their levels.
   */
  valueFields: {
    field: WindowField;
    index: number;
    levels: number[];
    source?: number;
    edges?: number[];
    percentile?: boolean;
    list?: { newest: boolean; k: number; sketch?: boolean };
  }[];
  /**
   * 1-based indexes of the id fields of distinct tags: each value's latest time is kept in
   * the pane time index (score 1e13 * index + time, as the window scripts write it), so a
   * distinct count is one ZCOUNT, whatever the number of values or events.
   */
  distinctFields: number[];
}

/** The pane plan of one event type. */
export function typePanePlan(tags: readonly WindowTag[], type: EventType): TypePanePlan {
  const own = tags.filter((t) => t.event === type);
  const numericTags = own.filter((t) => !VALUE_AGGREGATIONS.includes(t.aggregation));
  // Count panes exist for every type with tags (the dashboard's timeline reads them): at 1 min when only distinct/count_by tags use the type.
  const numericLevels = numericTags.length > 0 ? [...new Set(numericTags.flatMap(tagLevels))].sort((a, b) => a - b) : [60_000];
  const numeric = numericTags.some((t) => NUMERIC_AGGREGATIONS.includes(t.aggregation));
  const numericField = numeric ? WINDOW_FIELDS.indexOf(numericTags.find((t) => t.field)!.field!) + 1 : 0;
  const valueFields = new Map<string, Set<number>>();
  const listK = new Map<string, number>();
  for (const t of own.filter((t) => VALUE_AGGREGATIONS.includes(t.aggregation) && t.aggregation !== 'distinct')) {
    const key = valueFieldKey(t);
    const levels = valueFields.get(key) ?? new Set<number>();
    for (const l of tagLevels(t)) levels.add(l);
    valueFields.set(key, levels);
    if (t.k !== undefined) listK.set(key, Math.max(listK.get(key) ?? 0, t.k));
  }
  let histograms = 0;
  let lists = 0;
  return {
    type,
    longestMs: own.reduce((m, t) => Math.max(m, t.windowMs), 0),
    numericLevels,
    numeric,
    spread: own.some((t) => SPREAD_AGGREGATIONS.includes(t.aggregation)),
    first: own.some((t) => t.aggregation === 'first'),
    numericField,
    valueFields: [...valueFields].map(([key, levels]) => {
      const [field, edges] = key.split('|') as [WindowField, string | undefined];
      const sorted = [...levels].sort((a, b) => a - b);
      if (edges === undefined) return { field, index: WINDOW_FIELDS.indexOf(field) + 1, levels: sorted };
      if (edges === 'newest' || edges === 'oldest' || edges === 'sketch') {
        const list = edges === 'sketch' ? { newest: false, k: listK.get(key)!, sketch: true } : { newest: edges === 'newest', k: listK.get(key)! };
        return { field, index: LIST_FIELD_BASE + lists++, levels: sorted, source: WINDOW_FIELDS.indexOf(field) + 1, list };
      }
      if (edges === 'percentile') {
        return { field, index: HISTOGRAM_FIELD_BASE + histograms++, levels: sorted, source: WINDOW_FIELDS.indexOf(field) + 1, percentile: true };
      }
      return {
        field,
        index: HISTOGRAM_FIELD_BASE + histograms++,
        levels: sorted,
        source: WINDOW_FIELDS.indexOf(field) + 1,
        edges: edges.split(',').map(Number),
      };
    }),
    distinctFields: [...new Set(own.filter((t) => t.aggregation === 'distinct').map((t) => WINDOW_FIELDS.indexOf(t.field!) + 1))].sort(),
  };
}

/** What a value-pane tag's panes are kept under: its field, and a histogram's edges or the kind of list or sketch. */
export function valueFieldKey(t: Pick<WindowTag, 'field' | 'aggregation' | 'buckets'>): string {
  if (t.aggregation === 'last_k' || t.aggregation === 'first_k') return `${t.field}|${t.aggregation === 'last_k' ? 'newest' : 'oldest'}`;
  if (t.aggregation === 'approx_distinct') return `${t.field}|sketch`;
  if (t.aggregation === 'percentile') return `${t.field}|percentile`;
  return t.aggregation === 'histogram' ? `${t.field}|${t.buckets!.join(',')}` : t.field!;
}

/** The value field index a count_by or histogram tag reads in `plan`'s type. */
export function valueFieldIndex(plan: TypePanePlan, t: Pick<WindowTag, 'field' | 'aggregation' | 'buckets'>): number {
  const key = valueFieldKey(t);
  return plan.valueFields.find((v) => valueFieldKeyOf(v) === key)!.index;
}

/** The key of a plan's value field (as valueFieldKey names it for its tags). */
export function valueFieldKeyOf(v: TypePanePlan['valueFields'][number]): string {
  if (v.list) return `${v.field}|${v.list.sketch ? 'sketch' : v.list.newest ? 'newest' : 'oldest'}`;
  if (v.percentile) return `${v.field}|percentile`;
  return v.edges ? `${v.field}|${v.edges.join(',')}` : v.field;
}

/**
 * The one-second panes of a count-only type a minute to a field (SECONDS_FORM in
 * src/lua/includes/panes.lua): S<minute> = "<second>:<count>,..." for each second of the
 * minute that holds events (0-59, ascending). The consumer's fold names panes `s<second>`
 * as before; these turn them into S fields.
 */
export function secondsField(second: number): string {
  return secondsFieldOfMinute(Math.floor(second / 60));
}

/** The S field of the minute of index `minute` (ms / 60,000): secondsFieldOfMinute in panes.lua. */
export function secondsFieldOfMinute(minute: number): string {
  return `S${minute}`;
}

/** An S<minute> field's text -> its counts by second of the minute. */
export function parseSeconds(text: string | null | undefined): Map<number, number> {
  const out = new Map<number, number>();
  if (text) for (const m of text.matchAll(/(\d+):(\d+)/g)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

/** Counts by second of the minute -> an S<minute> field's text ('' when none is left). */
export function formatSeconds(counts: Map<number, number>): string {
  const parts: string[] = [];
  for (const sec of [...counts.keys()].sort((a, b) => a - b)) if (counts.get(sec)! > 0) parts.push(`${sec}:${counts.get(sec)}`);
  return parts.join(',');
}
