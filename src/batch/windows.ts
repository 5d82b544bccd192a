import { EventType, ProfileEvent } from '../core/event';
import { WindowTag } from '../core/tags';
import { windowRange } from '../core/panes';

/** A realtime tag value as the API returns it (null: min/max/last/avg of an empty window). */
export type WindowValue = number | Record<string, number> | null;

/**
 * Computes realtime window tags as of `asOf` from a user's (deduplicated) events, with the
 * pane rule of the window scripts (core/panes.ts): a tag counts the events whose time is in
 * windowRange(tag, asOf). sum/avg/min/max/last use the events that carry the numeric
 * field; distinct and count_by ignore events without the id field; `last` is the value of
 * the newest event (equal times: the larger value). The batch uses it to prove that
 * replaying the ODS gives what the live windows served; tests use it as the reference.
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
  }
}

/** The `k` largest counts (equal counts: the smaller key first). */
function topCounts(counts: Record<string, number>, k: number): Record<string, number> {
  const kept = Object.entries(counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k);
  const out: Record<string, number> = Object.create(null);
  for (const [key, n] of kept.sort((a, b) => (a[0] < b[0] ? -1 : 1))) out[key] = n;
  return out;
}

/** True when two tag values agree (numbers within float noise, count_by key by key, null only with null). */
export function sameWindowValue(a: WindowValue | undefined, b: WindowValue | undefined): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
  }
  return false;
}
