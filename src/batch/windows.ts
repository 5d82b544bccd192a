import { EventType, ProfileEvent } from '../core/event';
import { WindowTag } from '../core/tags';

/** A realtime tag value as the API returns it. */
export type WindowValue = number | Record<string, number>;

/**
 * Computes realtime window tags as of `asOf` from a user's (deduplicated) events, with the
 * semantics of aggregateTag.lua: an event is in a window of length w when
 * asOf - w <= ts <= asOf; distinct and count_by ignore events without the field.
 * The batch uses it to prove that replaying the ODS gives what the live windows served.
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
    const inWindow = (byType.get(t.event) ?? []).filter((e) => e.ts >= asOf - t.windowMs && e.ts <= asOf);
    switch (t.aggregation) {
      case 'count':
        out[t.name] = inWindow.length;
        break;
      case 'sum':
        out[t.name] = inWindow.reduce((s, e) => s + (Number(e[t.field!]) || 0), 0);
        break;
      case 'distinct':
        out[t.name] = new Set(inWindow.map((e) => e[t.field!]).filter((v) => v !== undefined && v !== '')).size;
        break;
      case 'count_by': {
        const counts: Record<string, number> = Object.create(null);
        for (const e of inWindow) {
          const v = e[t.field!];
          if (v === undefined || v === '') continue;
          counts[String(v)] = (counts[String(v)] ?? 0) + 1;
        }
        out[t.name] = counts;
        break;
      }
    }
  }
  return out;
}

/** True when two tag values agree (sums within float noise, count_by key by key). */
export function sameWindowValue(a: WindowValue | undefined, b: WindowValue | undefined): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
  }
  return false;
}
