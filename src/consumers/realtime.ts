import { EventType, ProfileEvent } from '../core/event';
import { Scripts, queueScript } from '../lua/scripts';
import { isCluster, pipelineByNode } from '../redis/client';
import { erasedAt, erasureTimes, isErased } from '../profile/erasure';
import { WINDOW_FIELDS, WindowTag, longestWindow, longestWindowFor } from '../core/tags';
import { GROUPS } from './groups';
import { DecodedEntry, GroupConsumer, GroupConsumerOptions } from './groupConsumer';

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
const RT_EXACT_MAX_EVENTS = 100;
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

  /**
   * Groups the events of each user and type (in stream order) and folds each group with
   * one EVALSHA of updateWindows.lua, all in one pipeline (one per node on a cluster). An entry is acked only once its
   * group's script returned; a failed group stays pending.
   */
  protected async handle(stream: string, entries: DecodedEntry[]): Promise<string[]> {
    const now = this.clock();
    const toAck: string[] = [];
    const groups = new Map<string, { first: ProfileEvent; minTs: number; ids: string[]; events: (string | number)[] }>();
    const users = [...new Set(entries.map((e) => e.event.user_id))];
    const erased = await erasedAt(this.opts.redis, this.opts.keys, users);
    for (const { id, event: e } of entries) {
      const plan = this.plans.get(e.type);
      if (!plan || e.ts < now - plan.longest || isErased(erased, e.user_id, e.ts)) {
        toAck.push(id); // no tag uses this type, or older than its longest window
        continue;
      }
      const key = `${e.user_id}\0${e.type}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { first: e, minTs: e.ts, ids: [], events: [] }));
      group.minTs = Math.min(group.minTs, e.ts);
      group.ids.push(id);
      group.events.push(e.ts, e.event_id, WINDOW_FIELDS.map((f) => (e[f] === undefined ? '' : String(e[f]))).join('\x1f'));
    }
    if (groups.size > 0) {
      const k = this.opts.keys;
      const redis = this.opts.redis;
      const list = [...groups.values()];
      const written = [...new Set(list.map((g) => g.first.user_id))];
      // On one server the erasure re-check rides at the end of the same pipeline (Redis runs
      // it after every write of the batch); on a cluster the writes go to several nodes at
      // once, so it is a round trip of its own after them.
      const inline = !isCluster(redis);
      type Item = (typeof list)[number] | 'erasures';
      const items: Item[] = inline ? [...list, 'erasures'] : list;
      const results = await pipelineByNode(redis, items, (item) => (item === 'erasures' ? k.erasures() : k.window(item.first.user_id, item.first.type)), (pipeline, item) => {
        if (item === 'erasures') {
          pipeline.call('ZMSCORE', k.erasures(), ...written);
          return;
        }
        const e = item.first;
        const plan = this.plans.get(e.type)!;
        queueScript(pipeline, Scripts.updateWindows({
          windowKey: k.window(e.user_id, e.type), valuesKey: k.windowValues(e.user_id, e.type), realtimeKey: k.realtime(e.user_id),
          now, typeWindowMs: plan.longest, longestWindowMs: this.overallLongest,
          rtExactMaxEvents: RT_EXACT_MAX_EVENTS, rtMsPerEvent: RT_MS_PER_EVENT, type: e.type, tagArgs: plan.tagArgs, events: item.events,
        }));
      });
      list.forEach((group, i) => {
        const [err] = results[i];
        if (err) this.log.error({ err, stream, ids: group.ids }, 'window update failed; entries left pending for retry');
        else toAck.push(...group.ids);
      });
      // A user erased while this batch was being written: delete what the batch recreated.
      let late: Map<string, number>;
      if (inline) {
        const [err, scores] = results[list.length];
        if (err) throw err;
        late = erasureTimes(written, scores as (string | null)[]);
      } else {
        late = await erasedAt(redis, k, written);
      }
      for (const [userId, at] of late) {
        if (list.some((g) => g.first.user_id === userId && g.minTs <= at)) await redis.unlink(...k.userKeys(userId));
      }
    }
    return toAck;
  }
}
