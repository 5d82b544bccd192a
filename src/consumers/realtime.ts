import { ProfileEvent } from '../core/event';
import { ScriptArg, Scripts, queueScript } from '../lua/scripts';
import { isCluster, pipelineByNode } from '../redis/client';
import { erasedAt, erasureTimes, isErased } from '../profile/erasure';
import { OfflineTag, Trigger, WindowTag } from '../core/tags';
import { partitionFor } from '../core/keys';
import { createHash } from 'crypto';
import { WindowWriter } from './windowWriter';
import { GROUPS } from './groups';
import { DecodedEntry, GroupConsumer, GroupConsumerOptions } from './groupConsumer';

export interface RealtimeConsumerOptions extends GroupConsumerOptions {
  tags: readonly WindowTag[];
  /** Triggers evaluated with each window update, and the offline tags their conditions may name. */
  triggers?: readonly Trigger[];
  offlineTags?: readonly OfflineTag[];
  /** How long firings stay in the trigger streams (ms). @defaultValue 24 h */
  triggerRetentionMs?: number;
  /** Current time in ms, passed to the window script as "now". @defaultValue Date.now */
  clock?: () => number;
}

/**
 * The realtime consumer: a member of group `realtime` that folds each event into the
 * user's sliding windows with one EVALSHA of updateWindows.lua, and acks an entry only
 * after its script returned.
 */
export class RealtimeConsumer extends GroupConsumer {
  private readonly writer: WindowWriter;
  private readonly clock: () => number;

  constructor(private readonly opts: RealtimeConsumerOptions) {
    super(GROUPS.realtime, opts);
    this.clock = opts.clock ?? Date.now;
    this.writer = new WindowWriter(opts.keys, opts.tags, opts.triggers, opts.offlineTags);
  }

  /**
   * Groups the events of each user and type (in stream order) and folds each group with
   * one EVALSHA of updateWindows.lua, all in one pipeline (one per node on a cluster). An entry is acked only once its
   * group's script returned; a failed group stays pending.
   */
  protected async handle(stream: string, entries: DecodedEntry[]): Promise<string[]> {
    const now = this.clock();
    const toAck: string[] = [];
    const groups = new Map<string, { first: ProfileEvent; last: ProfileEvent; minTs: number; ids: string[]; events: ScriptArg[] }>();
    const users = [...new Set(entries.map((e) => e.event.user_id))];
    const erased = await erasedAt(this.opts.redis, this.opts.keys, users);
    for (const { id, event: e } of entries) {
      const longest = this.writer.longest(e.type);
      if (longest === undefined || e.ts < now - longest || isErased(erased, e.user_id, e.ts)) {
        toAck.push(id); // no tag uses this type, or older than its longest window
        continue;
      }
      const key = `${e.user_id}\0${e.type}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { first: e, last: e, minTs: e.ts, ids: [], events: [] }));
      group.last = e;
      group.minTs = Math.min(group.minTs, e.ts);
      group.ids.push(id);
      group.events.push(...WindowWriter.eventArgs(e));
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
      const results = await pipelineByNode(redis, items, (item) => (item === 'erasures' ? k.erasures() : k.panes(item.first.user_id, item.first.type)), (pipeline, item) => {
        if (item === 'erasures') {
          pipeline.call('ZMSCORE', k.erasures(), ...written);
          return;
        }
        const e = item.first;
        queueScript(pipeline, this.writer.update(e.user_id, e.type, now, item.events, item.last.event_id));
      });
      // Each user's outbox as its last call of the batch saw it (calls run in pipeline order).
      const outboxes = new Map<string, string[]>();
      list.forEach((group, i) => {
        const [err, reply] = results[i];
        if (err) this.log.error({ err, stream, ids: group.ids }, 'window update failed; entries left pending for retry');
        else toAck.push(...group.ids);
        if (!err && Array.isArray(reply)) outboxes.set(group.first.user_id, (reply as [number, string[]])[1]);
      });
      // Firings reach their streams before anything is acked: a failure here throws, the
      // batch stays pending, and its redelivery appends what the outboxes still hold.
      await this.publishFirings([...outboxes].filter(([, out]) => out.length > 0), now);
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

  /**
   * Appends the users' outbox firings to their partitions' trigger streams (once each:
   * appendTriggers.lua dedups by firing id), then removes them from the outboxes.
   */
  private async publishFirings(outboxes: [userId: string, records: string[]][], now: number): Promise<void> {
    if (outboxes.length === 0) return;
    const k = this.opts.keys;
    const byPartition = new Map<number, { id: string; fields: string[] }[]>();
    for (const [userId, records] of outboxes) {
      const p = partitionFor(userId, this.opts.partitions);
      for (const record of records) {
        const [trigger, at, eventId, ...values] = record.split('\x1f');
        const id = createHash('sha1').update(`${userId}\x1f${record}`).digest('base64url').slice(0, 20);
        const list = byPartition.get(p) ?? [];
        list.push({ id, fields: ['trigger', trigger, 'user_id', userId, 'at', at, 'event_id', eventId, ...values] });
        byPartition.set(p, list);
      }
    }
    const retention = this.opts.triggerRetentionMs ?? 86_400_000;
    const partitions = [...byPartition];
    const appended = await pipelineByNode(this.opts.redis, partitions, ([p]) => k.triggerStream(p), (pipeline, [p, firings]) => {
      queueScript(pipeline, Scripts.appendTriggers(k.triggerStream(p), k.triggerSeen(p), now, retention, firings));
    });
    const failed = appended.find(([err]) => err);
    if (failed) throw failed[0];
    const trimmed = await pipelineByNode(this.opts.redis, outboxes, ([userId]) => k.triggerOutbox(userId), (pipeline, [userId, records]) => {
      pipeline.ltrim(k.triggerOutbox(userId), records.length, -1);
    });
    const trimFailed = trimmed.find(([err]) => err);
    if (trimFailed) throw trimFailed[0];
  }
}
