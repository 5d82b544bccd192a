import { createHash } from 'crypto';
import { EventType, ProfileEvent } from '../core/event';
import { Keys } from '../core/keys';
import { OfflineTag, Trigger, WINDOW_FIELDS, WindowTag, longestWindow } from '../core/tags';
import { typePanePlan } from '../core/panes';
import { ScriptArg, ScriptCall, Scripts, windowTagArgs } from '../lua/scripts';

/** The 6-byte event-id fingerprint the window script dedups by (the first bytes of SHA-1, as its v1 fold computes them). */
export function eventFingerprint(eventId: string): Buffer {
  return createHash('sha1').update(eventId).digest().subarray(0, 6);
}

/** The number of events an updateWindows.lua call added (its reply with or without triggers). */
export function eventsAdded(reply: number | [number, string[]]): number {
  return Array.isArray(reply) ? reply[0] : reply;
}

/**
 * Builds updateWindows.lua calls for the configured tags: the pane layout of each event
 * type is derived once from the tag config, then each call carries it with the events.
 */
export class WindowWriter {
  private readonly plans = new Map<EventType, { longest: number; planArgs: (string | number)[] }>();
  private readonly overallLongest: number;
  /** With triggers: the event types whose panes the conditions read, and the values after the user and event ids. */
  private readonly triggerPlan?: { types: EventType[]; evaluatedOn: Set<EventType>; args: (string | number)[] };

  constructor(private readonly keys: Keys, tags: readonly WindowTag[], triggers: readonly Trigger[] = [], offline: readonly OfflineTag[] = []) {
    this.overallLongest = longestWindow(tags);
    if (triggers.length > 0) this.triggerPlan = WindowWriter.planTriggers(tags, triggers, offline);
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

  /** What updateWindows.lua needs to evaluate the triggers: the tags their conditions name, then the triggers. */
  private static planTriggers(tags: readonly WindowTag[], triggers: readonly Trigger[], offline: readonly OfflineTag[]) {
    const named = new Set(triggers.flatMap((t) => t.when.map((c) => c.tag)));
    const windowTags = tags.filter((t) => named.has(t.name));
    const offlineNames = offline.filter((t) => named.has(t.name)).map((t) => t.name);
    const types = [...new Set(windowTags.map((t) => t.event))];
    // KEYS: 1-5 the call's own, 6 state, 7 outbox, 8 offline hash, then a pane hash and time index per type.
    const args: (string | number)[] = [windowTags.length, ...windowTagArgs(windowTags, (t) => 9 + types.indexOf(t.event) * 2)];
    args.push(offlineNames.length, ...offlineNames, triggers.length);
    for (const t of triggers) args.push(t.name, t.when.length, ...t.when.flatMap((c) => [c.tag, c.op, c.value]));
    // Only an event of a type the conditions read can make one true (offline tags change by
    // batch): calls of other types skip the evaluation, unless a trigger reads offline tags only.
    const offlineOnly = triggers.some((t) => t.when.every((c) => !windowTags.some((w) => w.name === c.tag)));
    const evaluatedOn = new Set<EventType>(offlineOnly ? tags.map((t) => t.event) : types);
    return { types, evaluatedOn, args };
  }

  /** The longest window of a type's tags (ms), or undefined when no tag uses the type. */
  longest(type: EventType): number | undefined {
    return this.plans.get(type)?.longest;
  }

  /** The script arguments of one event: time, fingerprint, packed window fields. */
  static eventArgs(e: ProfileEvent): ScriptArg[] {
    return [e.ts, eventFingerprint(e.event_id), WINDOW_FIELDS.map((f) => (e[f] === undefined ? '' : String(e[f]))).join('\x1f')];
  }

  /**
   * The call that folds `events` (built with eventArgs) of one user and type into its panes
   * (and folds v1 data); with triggers, also evaluates them, `lastEventId` naming the event
   * a firing reports.
   */
  update(userId: string, type: EventType, now: number, events: readonly ScriptArg[], lastEventId = ''): ScriptCall<number | [number, string[]]> {
    const plan = this.plans.get(type);
    if (!plan) throw new Error(`no window tag uses event type ${type}`);
    const k = this.keys;
    const t = this.triggerPlan?.evaluatedOn.has(type) ? this.triggerPlan : undefined;
    return Scripts.updateWindows({
      panesKey: k.panes(userId, type), paneIndexKey: k.paneIndex(userId, type), realtimeKey: k.realtime(userId),
      legacyWindowKey: k.legacyWindow(userId, type), legacyValuesKey: k.legacyWindowValues(userId, type),
      now, typeWindowMs: plan.longest, longestWindowMs: this.overallLongest, planArgs: plan.planArgs, events,
      triggers: t && {
        keys: [k.triggerState(userId), k.triggerOutbox(userId), k.offline(userId), ...t.types.flatMap((ty) => [k.panes(userId, ty), k.paneIndex(userId, ty)])],
        args: [userId, lastEventId, ...t.args],
      },
    });
  }
}
