import { ProfileEvent } from '../../src/core/event';
import { OfflineTag, SegmentRule } from '../../src/core/tags';
import { OfflineValues } from '../../src/batch/store';

const DAY_MS = 86_400_000;

type Accumulator = { n: number } | { days: Set<number> };

/**
 * The reference model of the offline tags (the batch's SQL must compute the same): folds a
 * user's events into the offline tags as of `asOf` (events after it are ignored), then
 * picks the segment: the first rule whose conditions all hold.
 */
export class OfflineAggregator {
  constructor(
    private readonly tags: readonly OfflineTag[],
    private readonly segments: readonly SegmentRule[],
    private readonly asOf: number,
  ) {}

  /** A fresh per-user state. */
  newState(): Accumulator[] {
    return this.tags.map((t) =>
      t.aggregation === 'active_days'
        ? { days: new Set<number>() }
        : { n: t.aggregation === 'first_seen' ? Infinity : t.aggregation === 'last_seen' ? -Infinity : 0 },
    );
  }

  /** Adds one (deduplicated) event. Returns false when the event is after `asOf` and ignored. */
  add(state: Accumulator[], e: ProfileEvent): boolean {
    if (e.ts > this.asOf) return false;
    this.tags.forEach((t, i) => {
      if (t.event !== undefined && t.event !== e.type) return;
      if (t.windowMs !== undefined && e.ts < this.asOf - t.windowMs) return;
      const acc = state[i];
      if ('days' in acc) {
        acc.days.add(Math.floor(e.ts / DAY_MS));
        return;
      }
      switch (t.aggregation) {
        case 'count':
          acc.n += 1;
          break;
        case 'sum':
          acc.n += e.amount ?? 0;
          break;
        case 'first_seen':
          if (e.ts < acc.n) acc.n = e.ts;
          break;
        case 'last_seen':
          if (e.ts > acc.n) acc.n = e.ts;
          break;
      }
    });
    return true;
  }

  /** The user's tag values and segment. Time tags with no event are left out. */
  values(state: Accumulator[]): OfflineValues {
    const out: OfflineValues = {};
    this.tags.forEach((t, i) => {
      const acc = state[i];
      const value = 'days' in acc ? acc.days.size : t.aggregation === 'sum' ? roundMoney(acc.n) : acc.n;
      if (Number.isFinite(value)) out[t.name] = value;
    });
    const segment = this.segments.find((rule) =>
      rule.when.every((c) => {
        const v = out[c.tag];
        if (typeof v !== 'number') return false;
        switch (c.op) {
          case 'within':
            return this.asOf - v <= c.valueMs;
          case 'older_than':
            return this.asOf - v > c.valueMs;
          case '>=':
            return v >= c.value;
          case '>':
            return v > c.value;
          case '<=':
            return v <= c.value;
          case '<':
            return v < c.value;
          case '==':
            return v === c.value;
          case '!=':
            return v !== c.value;
        }
      }),
    );
    if (segment) out.segment_id = segment.id;
    return out;
  }
}

/** Sums of money: drop binary noise below a millionth (0.1 + 0.2 is 0.3). */
function roundMoney(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
