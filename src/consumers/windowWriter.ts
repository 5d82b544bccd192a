import { createHash } from 'crypto';
import { EventType, ProfileEvent } from '../core/event';
import { Keys } from '../core/keys';
import { WINDOW_FIELDS, WindowTag, longestWindow } from '../core/tags';
import { typePanePlan } from '../core/panes';
import { ScriptArg, ScriptCall, Scripts } from '../lua/scripts';

/** The 6-byte event-id fingerprint the window script dedups by (the first bytes of SHA-1, as its v1 fold computes them). */
export function eventFingerprint(eventId: string): Buffer {
  return createHash('sha1').update(eventId).digest().subarray(0, 6);
}

/**
 * Builds updateWindows.lua calls for the configured tags: the pane layout of each event
 * type is derived once from the tag config, then each call carries it with the events.
 */
export class WindowWriter {
  private readonly plans = new Map<EventType, { longest: number; planArgs: (string | number)[] }>();
  private readonly overallLongest: number;

  constructor(private readonly keys: Keys, tags: readonly WindowTag[]) {
    this.overallLongest = longestWindow(tags);
    for (const type of new Set(tags.map((t) => t.event))) {
      const plan = typePanePlan(tags, type);
      const planArgs = [
        plan.numeric ? 1 : 0, plan.numericField, plan.numericLevels.join(','),
        plan.valueFields.map((f) => `${f.index}:${f.levels.join(',')}`).join(';'),
        plan.distinctFields.join(','),
      ];
      this.plans.set(type, { longest: plan.longestMs, planArgs });
    }
  }

  /** The longest window of a type's tags (ms), or undefined when no tag uses the type. */
  longest(type: EventType): number | undefined {
    return this.plans.get(type)?.longest;
  }

  /** The script arguments of one event: time, fingerprint, packed window fields. */
  static eventArgs(e: ProfileEvent): ScriptArg[] {
    return [e.ts, eventFingerprint(e.event_id), WINDOW_FIELDS.map((f) => (e[f] === undefined ? '' : String(e[f]))).join('\x1f')];
  }

  /** The call that folds `events` (built with eventArgs) of one user and type into its panes; none also folds v1 data. */
  update(userId: string, type: EventType, now: number, events: readonly ScriptArg[]): ScriptCall<number> {
    const plan = this.plans.get(type);
    if (!plan) throw new Error(`no window tag uses event type ${type}`);
    const k = this.keys;
    return Scripts.updateWindows({
      panesKey: k.panes(userId, type), paneIndexKey: k.paneIndex(userId, type), realtimeKey: k.realtime(userId),
      legacyWindowKey: k.legacyWindow(userId, type), legacyValuesKey: k.legacyWindowValues(userId, type),
      now, typeWindowMs: plan.longest, longestWindowMs: this.overallLongest, planArgs: plan.planArgs, events,
    });
  }
}
