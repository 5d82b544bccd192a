import { EVENT_TYPES, EventType } from './event';
import { TypePanePlan, tagLevels, typePanePlan, valueFieldKey, valueFieldKeyOf } from './panes';
import { NUMERIC_AGGREGATIONS, SPREAD_AGGREGATIONS, VALUE_AGGREGATIONS, TagConfig, WINDOW_FIELDS, WindowTag } from './tags';
import { canonicalJson } from './tagConfig';
import { formatDuration } from './duration';

/**
 * What a change of tag config means on a live system (`profile tags plan`): for each tag,
 * segment and trigger that is added, changed or removed, whether the new config serves it
 * correctly at once from the window state the active config has kept, needs a backfill from
 * the ODS (and how far back), needs a batch run, or leaves state to free.
 */

/** What a change needs before it is served right. */
export type ChangeEffect =
  /** Served correctly at once: the panes the active config keeps already hold its window. */
  | 'instant'
  /** Needs window state the active config has not kept: a backfill of `backfillMs` of events. */
  | 'backfill'
  /** An offline tag or segment: computed by the next `profile batch`. */
  | 'batch'
  /** A trigger: its new conditions hold for events after the switch. */
  | 'trigger'
  /** Window state the new config no longer reads. */
  | 'free';

export interface ConfigChange {
  what: 'realtime tag' | 'offline tag' | 'segment' | 'trigger' | 'event type';
  name: string;
  change: 'added' | 'changed' | 'removed' | 'keeps less';
  effect: ChangeEffect;
  /** One sentence: what changed and what it means. */
  detail: string;
  /** backfill: how far back from now the events must be replayed (ms). */
  backfillMs?: number;
}

/** The plan of `type` under `tags`, or null when no tag of `tags` uses it (its panes are not kept). */
function planOf(tags: readonly WindowTag[], type: EventType): TypePanePlan | null {
  return tags.some((t) => t.event === type) ? typePanePlan(tags, type) : null;
}

/** What `tag` needs that the panes of `kept` (the active config's plan of its type) lack; empty when nothing. */
function missingState(tag: WindowTag, kept: TypePanePlan | null): string[] {
  if (!kept) return [`no ${tag.event} panes are kept (no active tag reads ${tag.event} events)`];
  const missing: string[] = [];
  if (kept.longestMs < tag.windowMs)
    missing.push(`${tag.event} panes are kept for ${formatDuration(kept.longestMs)}, the window is ${formatDuration(tag.windowMs)}`);
  const levels = tagLevels(tag);
  const fieldIndex = tag.field ? WINDOW_FIELDS.indexOf(tag.field) + 1 : 0;
  const lacking = (have: readonly number[]) => levels.filter((l) => !have.includes(l)).map((l) => formatDuration(l));
  if (tag.aggregation === 'distinct') {
    if (!kept.distinctFields.includes(fieldIndex)) missing.push(`the latest time of each ${tag.field} is not kept`);
  } else if (VALUE_AGGREGATIONS.includes(tag.aggregation)) {
    const key = valueFieldKey(tag);
    const values = kept.valueFields.find((v) => valueFieldKeyOf(v) === key && (!v.list || v.list.k >= (tag.k ?? 0)));
    const what =
      tag.aggregation === 'histogram'
        ? `counts per bucket (${tag.buckets!.join(', ')}) of ${tag.field}`
        : tag.aggregation === 'percentile'
          ? `counts per log bucket of ${tag.field}`
          : tag.aggregation === 'approx_distinct'
            ? `the ${tag.k} smallest hashes of ${tag.field} per pane`
            : tag.k !== undefined
              ? `the ${tag.k} ${tag.aggregation === 'last_k' ? 'newest' : 'oldest'} values of ${tag.field} per pane`
              : `counts per ${tag.field}`;
    if (!values) missing.push(`${what} are not kept`);
    else if (lacking(values.levels).length) missing.push(`${what} are not kept in ${lacking(values.levels).join(', ')} panes`);
  } else {
    if (lacking(kept.numericLevels).length) missing.push(`no ${lacking(kept.numericLevels).join(', ')} panes are kept`);
    if (NUMERIC_AGGREGATIONS.includes(tag.aggregation) && !(kept.numeric && kept.numericField === fieldIndex)) {
      missing.push(`sum, min, max and last of ${tag.field} are not kept`);
    } else if (SPREAD_AGGREGATIONS.includes(tag.aggregation) && !kept.spread) {
      missing.push(`the spread of ${tag.field} (sum of squared deviations) is not kept`);
    } else if (tag.aggregation === 'first' && !kept.first) {
      missing.push(`the first value of ${tag.field} is not kept`);
    }
  }
  return missing;
}

/** The definition of a realtime tag that its values depend on (not its name). */
function definition(t: WindowTag): string {
  return canonicalJson({
    event: t.event,
    aggregation: t.aggregation,
    field: t.field,
    window: t.windowMs,
    resolution: t.resolutionMs,
    top: t.top,
    buckets: t.buckets,
    k: t.k,
    p: t.p,
  });
}

/** What differs between two definitions of one realtime tag, e.g. "window 24h → 7d". */
function differences(a: WindowTag, b: WindowTag): string {
  const out: string[] = [];
  const pairs: [string, unknown, unknown][] = [
    ['event', a.event, b.event],
    ['aggregation', a.aggregation, b.aggregation],
    ['field', a.field ?? '-', b.field ?? '-'],
    ['window', formatDuration(a.windowMs), formatDuration(b.windowMs)],
    ['resolution', formatDuration(a.resolutionMs), formatDuration(b.resolutionMs)],
    ['top', a.top ?? 'all', b.top ?? 'all'],
    ['buckets', a.buckets?.join(',') ?? '-', b.buckets?.join(',') ?? '-'],
    ['k', a.k ?? '-', b.k ?? '-'],
    ['p', a.p?.join(',') ?? '-', b.p?.join(',') ?? '-'],
  ];
  for (const [k, x, y] of pairs) if (x !== y) out.push(`${k} ${String(x)} → ${String(y)}`);
  return out.join(', ');
}

function realtimeChanges(from: TagConfig, to: TagConfig): ConfigChange[] {
  const out: ConfigChange[] = [];
  const old = new Map(from.realtime.map((t) => [t.name, t]));
  for (const t of to.realtime) {
    const before = old.get(t.name);
    if (before && definition(before) === definition(t)) continue;
    const change = before ? 'changed' : 'added';
    const readers = to.triggers.filter((g) => g.when.some((c) => c.tag === t.name)).map((g) => g.name);
    const what = (before ? `${differences(before, t)}: ` : '') + (before && readers.length ? `triggers ${readers.join(', ')} read it; ` : '');
    const missing = missingState(t, planOf(from.realtime, t.event));
    if (missing.length === 0) {
      out.push({
        what: 'realtime tag',
        name: t.name,
        change,
        effect: 'instant',
        detail: `${what}served correctly at once: the ${t.event} panes already hold its window`,
      });
    } else {
      out.push({
        what: 'realtime tag',
        name: t.name,
        change,
        effect: 'backfill',
        backfillMs: t.windowMs,
        detail: `${what}needs a backfill of ${formatDuration(t.windowMs)} of events (${missing.join('; ')})`,
      });
    }
  }
  const kept = new Set(to.realtime.map((t) => t.name));
  for (const t of from.realtime) {
    if (!kept.has(t.name)) out.push({ what: 'realtime tag', name: t.name, change: 'removed', effect: 'free', detail: 'no longer served' });
  }
  return out;
}

/** Per event type, the window state the new config keeps less of (freed at each user's next write, or by expiry). */
function freedState(from: TagConfig, to: TagConfig): ConfigChange[] {
  const out: ConfigChange[] = [];
  for (const type of EVENT_TYPES) {
    const a = planOf(from.realtime, type);
    if (!a) continue;
    const b = planOf(to.realtime, type);
    if (!b) {
      out.push({
        what: 'event type',
        name: type,
        change: 'removed',
        effect: 'free',
        detail: `no tag reads ${type} events any more: their panes (u:{*}:p:${type}, u:{*}:t:${type}) expire with their TTL`,
      });
      continue;
    }
    const less: string[] = [];
    if (b.longestMs < a.longestMs)
      less.push(`panes older than ${formatDuration(b.longestMs)} (kept ${formatDuration(a.longestMs)} until now) are pruned at each user's next ${type} event`);
    const droppedLevels = a.numericLevels.filter((l) => !b.numericLevels.includes(l));
    if (droppedLevels.length) less.push(`${droppedLevels.map(formatDuration).join(', ')} count panes are no longer written`);
    for (const v of a.valueFields) if (!b.valueFields.some((w) => w.field === v.field)) less.push(`counts per ${v.field} are no longer written`);
    if (less.length) out.push({ what: 'event type', name: type, change: 'keeps less', effect: 'free', detail: less.join('; ') });
  }
  return out;
}

/** Changes of named entries compared by their canonical JSON (offline tags, segments, triggers). */
function namedChanges<T>(
  what: ConfigChange['what'],
  from: readonly T[],
  to: readonly T[],
  name: (x: T) => string,
  effect: ChangeEffect,
  detail: (change: 'added' | 'changed' | 'removed') => string,
): ConfigChange[] {
  const out: ConfigChange[] = [];
  const old = new Map(from.map((x) => [name(x), canonicalJson(x)]));
  for (const x of to) {
    const before = old.get(name(x));
    if (before === canonicalJson(x)) continue;
    const change = before === undefined ? 'added' : 'changed';
    out.push({ what, name: name(x), change, effect, detail: detail(change) });
  }
  const kept = new Set(to.map(name));
  for (const x of from) if (!kept.has(name(x))) out.push({ what, name: name(x), change: 'removed', effect, detail: detail('removed') });
  return out;
}

/** A user gets the first segment whose rule holds: segments kept in both configs but in another order place users differently. */
function segmentOrder(from: TagConfig, to: TagConfig): ConfigChange[] {
  const both = new Set(to.segments.map((s) => s.id).filter((id) => from.segments.some((s) => s.id === id)));
  const a = from.segments.map((s) => s.id).filter((id) => both.has(id));
  const b = to.segments.map((s) => s.id).filter((id) => both.has(id));
  if (a.join(',') === b.join(',')) return [];
  return [
    {
      what: 'segment',
      name: b.join(','),
      change: 'changed',
      effect: 'batch',
      detail: `order ${a.join(' > ')} → ${b.join(' > ')}: the first that holds wins, so users are placed anew by the next \`profile batch\``,
    },
  ];
}

/** Every change from the active config `from` to `to`, realtime tags first; empty when they serve the same. */
export function planTagChange(from: TagConfig, to: TagConfig): ConfigChange[] {
  const batch = (c: string) =>
    c === 'removed'
      ? 'dropped from every user by the next `profile batch` (until then reads still answer it)'
      : 'computed by the next `profile batch` (until then reads answer the value of the last run, or nothing)';
  return [
    ...realtimeChanges(from, to),
    ...freedState(from, to),
    ...namedChanges('offline tag', from.offline, to.offline, (t) => t.name, 'batch', batch),
    ...namedChanges(
      'segment',
      from.segments,
      to.segments,
      (s) => s.id,
      'batch',
      (c) => (c === 'removed' ? 'no user is put in it by the next `profile batch`' : 'users are placed by the next `profile batch`'),
    ),
    ...segmentOrder(from, to),
    ...namedChanges(
      'trigger',
      from.triggers,
      to.triggers,
      (t) => t.name,
      'trigger',
      (c) =>
        c === 'removed'
          ? 'stops firing at the switch'
          : c === 'added'
            ? 'fires for events after the switch'
            : 'its new conditions apply to events after the switch (a user it fired for stays fired until re-armed)',
    ),
  ];
}
