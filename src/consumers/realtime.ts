import { EventType, ProfileEvent, fromStreamFields, validateEvent } from '../event';
import { callScript } from '../lua/scripts';
import { WINDOW_FIELDS, WindowTag, longestWindow, longestWindowFor } from '../tags';
import { GROUPS, StreamEntry } from './groups';
import { GroupConsumer, GroupConsumerOptions } from './groupConsumer';

export interface RealtimeConsumerOptions extends GroupConsumerOptions {
  tags: readonly WindowTag[];
  /** Current time in ms, passed to the window script as "now". @defaultValue Date.now */
  clock?: () => number;
}

/**
 * The realtime hash (for people, not for bidders) gets its tags rewritten on every batch
 * for windows of up to RT_EXACT_MAX_EVENTS events; a larger window of N events at most
 * once per N * RT_MS_PER_EVENT ms, so rewrites scan at most ~1000 events per window and
 * second however fast a user's events come.
 */
const RT_EXACT_MAX_EVENTS = 1000;
const RT_MS_PER_EVENT = 1;

interface TypePlan {
  longest: number;
  tagArgs: (string | number)[];
}

/**
 * The realtime consumer: a member of group `realtime` that folds each event into the
 * user's sliding windows with one EVALSHA of updateWindows.lua, and acks an entry only
 * after its script returned.
 */
export class RealtimeConsumer extends GroupConsumer {
  private readonly plans = new Map<EventType, TypePlan>();
  private readonly overallLongest: number;
  private readonly clock: () => number;

  constructor(private readonly opts: RealtimeConsumerOptions) {
    super(GROUPS.realtime, opts);
    this.clock = opts.clock ?? Date.now;
    this.overallLongest = longestWindow(opts.tags);
    for (const type of new Set(opts.tags.map((t) => t.event))) {
      const tags = opts.tags.filter((t) => t.event === type);
      const tagArgs: (string | number)[] = [tags.length];
      for (const t of tags) tagArgs.push(t.name, t.aggregation, t.field ? WINDOW_FIELDS.indexOf(t.field) + 1 : 0, t.windowMs);
      this.plans.set(type, { longest: longestWindowFor(opts.tags, type), tagArgs });
    }
  }

  protected async handle(stream: string, entries: StreamEntry[]): Promise<string[]> {
    return this.foldIntoWindows(stream, entries);
  }

  private async foldIntoWindows(stream: string, entries: StreamEntry[]): Promise<string[]> {
    const now = this.clock();
    const toAck: string[] = [];
    const scripted: string[] = [];
    const pipeline = this.opts.redis.pipeline();
    const parsedEntries = entries.map(([id, fields]) => ({
      id,
      fields,
      parsed: fields === null ? null : validateEvent(fromStreamFields(fields), 0, { now, maxFutureSkewMs: Infinity, stored: true }),
    }));
    // The realtime hash shows tags as of each user's and type's last event of the batch.
    const lastOfUserType = new Map<string, string>();
    for (const { id, parsed } of parsedEntries) {
      if (parsed?.ok) lastOfUserType.set(`${parsed.event.user_id}\0${parsed.event.type}`, id);
    }
    for (const { id, fields, parsed } of parsedEntries) {
      if (fields === null || parsed === null) {
        // Deleted from the stream while pending: nothing left to process.
        toAck.push(id);
        continue;
      }
      if (!parsed.ok) {
        await this.deadLetter(stream, id, fields, parsed.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
        toAck.push(id);
        continue;
      }
      const e = parsed.event;
      const args = this.scriptArgs(e, now, lastOfUserType.get(`${e.user_id}\0${e.type}`) === id);
      if (args === null) {
        toAck.push(id); // no tag uses this type, or older than its longest window
        continue;
      }
      callScript(pipeline, 'updateWindows', args);
      scripted.push(id);
    }
    if (scripted.length > 0) {
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([err], i) => {
        if (err) this.log.error({ err, stream, id: scripted[i] }, 'window update failed; entry left pending for retry');
        else toAck.push(scripted[i]);
      });
    }
    return toAck;
  }

  /** KEYS and ARGV of updateWindows.lua for one event, or null when the event touches no window. */
  private scriptArgs(e: ProfileEvent, now: number, writeTags: boolean): (string | number)[] | null {
    const plan = this.plans.get(e.type);
    if (!plan || e.ts < now - plan.longest) return null;
    const k = this.opts.keys;
    const packed = WINDOW_FIELDS.map((f) => (e[f] === undefined ? '' : String(e[f]))).join('\x1f');
    return [
      k.window(e.user_id, e.type),
      k.windowValues(e.user_id, e.type),
      k.realtime(e.user_id),
      now,
      e.ts,
      e.event_id,
      packed,
      plan.longest,
      this.overallLongest,
      writeTags ? 1 : 0,
      RT_EXACT_MAX_EVENTS,
      RT_MS_PER_EVENT,
      e.type,
      ...plan.tagArgs,
    ];
  }
}
