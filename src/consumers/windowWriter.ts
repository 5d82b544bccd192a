import { hash } from 'crypto';
import { EventType, ProfileEvent } from '../core/event';
import { Keys } from '../core/keys';
import { OfflineTag, Trigger, WINDOW_FIELDS, WindowTag, longestWindowFor } from '../core/tags';
import { ScriptArg, ScriptCall, Scripts, UpdateWindowsReply, WindowUpdateUser } from '../lua/scripts';
import { windowPlan } from '../lua/windowPlan';

/**
 * The 6-byte event-id fingerprint the window script dedups by (the first bytes of SHA-1, as
 * its v1 fold computes them). crypto.hash, the one-shot form: half the CPU of a
 * createHash object per event (1.1 against 2.2 µs an id, measured), the same bytes.
 */
export function eventFingerprint(eventId: string): Buffer {
  return hash('sha1', eventId, 'buffer').subarray(0, 6);
}

/** One user's part of a window update: its events by type (each built with eventArgs, in stream order). */
export interface UserWindowUpdate {
  userId: string;
  events: Partial<Record<EventType, ScriptArg[]>>;
  /** The event a trigger firing names (the user's last of the batch). */
  lastEventId?: string;
}

/** An updateWindows.lua reply: the events added, and the outbox of each user whose triggers were evaluated. */
export function windowsReply(reply: UpdateWindowsReply): { added: number; outboxes: Map<string, string[]> } {
  const outboxes = new Map<string, string[]>();
  for (let i = 1; i < reply.length; i += 2) outboxes.set(reply[i] as string, reply[i + 1] as string[]);
  return { added: reply[0], outboxes };
}

/**
 * Builds updateWindows.lua calls for the configured tags: the window plan (each event
 * type's pane layout and tags, binary) and the trigger plan (JSON) are derived once from
 * the tag config and sent as two fixed arguments; each call carries many users' events
 * (Scripts.updateWindows lays out its KEYS and ARGV).
 */
export class WindowWriter {
  private readonly plan: ReturnType<typeof windowPlan>;
  private readonly longestByType = new Map<EventType, number>();
  /** With triggers: the plan types whose tags the conditions read, the types whose events evaluate them, and the plan's JSON. */
  private readonly triggerPlan?: { types: EventType[]; evaluatedOn: Set<EventType>; json: string };

  constructor(
    private readonly keys: Keys,
    tags: readonly WindowTag[],
    triggers: readonly Trigger[] = [],
    offline: readonly OfflineTag[] = [],
  ) {
    this.plan = windowPlan(tags);
    for (const type of this.plan.types) this.longestByType.set(type, longestWindowFor(tags, type));
    if (triggers.length > 0) this.triggerPlan = this.planTriggers(tags, triggers, offline);
  }

  /** What updateWindows.lua needs to evaluate the triggers (see includes/triggers.lua). */
  private planTriggers(tags: readonly WindowTag[], triggers: readonly Trigger[], offline: readonly OfflineTag[]) {
    const named = new Set(triggers.flatMap((t) => t.when.map((c) => c.tag)));
    const windowTags = tags.filter((t) => named.has(t.name));
    const types = [...new Set(windowTags.map((t) => t.event))];
    // Only an event of a type the conditions read can make one true (offline tags change by
    // batch): users without such events skip the evaluation, unless a trigger reads offline tags only.
    const offlineOnly = triggers.some((t) => t.when.every((c) => !windowTags.some((w) => w.name === c.tag)));
    const json = JSON.stringify({
      types: types.map((t) => this.plan.types.indexOf(t) + 1),
      tags: Object.fromEntries(windowTags.map((t) => [t.name, true])),
      offline: offline.filter((t) => named.has(t.name)).map((t) => t.name),
      triggers: triggers.map((t) => ({ name: t.name, when: t.when.map((c) => [c.tag, c.op, c.value]) })),
    });
    return { types, evaluatedOn: new Set<EventType>(offlineOnly ? this.plan.types : types), json };
  }

  /** The longest window of a type's tags (ms), or undefined when no tag uses the type. */
  longest(type: EventType): number | undefined {
    return this.longestByType.get(type);
  }

  /** The script arguments of one event: time, fingerprint, packed window fields. */
  static eventArgs(e: ProfileEvent): ScriptArg[] {
    return [e.ts, eventFingerprint(e.event_id), WINDOW_FIELDS.map((f) => (e[f] === undefined ? '' : String(e[f]))).join('\x1f')];
  }

  /** Whether the user's triggers are evaluated with this update (it has an event of a type their conditions read). */
  evaluates(u: UserWindowUpdate): boolean {
    const t = this.triggerPlan;
    return t !== undefined && (Object.keys(u.events) as EventType[]).some((type) => t.evaluatedOn.has(type) && u.events[type]!.length > 0);
  }

  /** The window plan the writer sends (its decoded form too). */
  get windowPlan(): ReturnType<typeof windowPlan> {
    return this.plan;
  }

  /**
   * The call that folds the events of `users` into their windows at `now` (and folds v1
   * data of the types listed, even with no events); with triggers, also evaluates those of
   * each user that has an event of a type they read. On a cluster every user of one call
   * must hash to one slot.
   */
  update(users: readonly UserWindowUpdate[], now: number): ScriptCall<UpdateWindowsReply> {
    const k = this.keys;
    const t = this.triggerPlan;
    const records: WindowUpdateUser[] = users.map((u) => {
      const own = Object.keys(u.events) as EventType[];
      const unused = own.find((type) => !this.longestByType.has(type));
      if (unused) throw new Error(`no window tag uses event type ${unused}`);
      const evaluate = this.evaluates(u) && t !== undefined;
      const types = evaluate ? [...new Set([...own, ...t.types])] : own;
      return {
        userId: u.userId,
        realtimeKey: k.realtime(u.userId),
        lastEventId: u.lastEventId ?? '',
        triggers: evaluate ? { stateKey: k.triggerState(u.userId), outboxKey: k.triggerOutbox(u.userId), offlineKey: k.offline(u.userId) } : undefined,
        types: types.map((type) => ({
          planIndex: this.plan.types.indexOf(type) + 1,
          panesKey: k.panes(u.userId, type),
          indexKey: k.paneIndex(u.userId, type),
          legacyKey: k.legacyWindow(u.userId, type),
          legacyValuesKey: k.legacyWindowValues(u.userId, type),
          events: u.events[type] ?? [],
        })),
      };
    });
    return Scripts.updateWindows(records, now, this.plan.bin, t?.json ?? '');
  }
}
