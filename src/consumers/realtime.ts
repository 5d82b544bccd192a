import { Scripts, UpdateWindowsReply, queueScript, sendLoadingScripts } from '../lua/scripts';
import { chunkBySlot, isCluster, pipelineByNode, throwRedisTrouble } from '../redis/client';
import { erasedAt, erasureTimes, isErased } from '../profile/erasure';
import { OfflineTag, TagConfig, Trigger, WindowTag } from '../core/tags';
import { partitionFor } from '../core/keys';
import { createHash } from 'crypto';
import { UserWindowUpdate, WindowWriter, windowsReply } from './windowWriter';
import { AfterWrites, NodeFold } from './nodeFold';
import { GROUPS } from '../redis/streamGroups';
import { GroupConsumer, GroupConsumerOptions, StreamBatch } from './groupConsumer';

export interface RealtimeConsumerOptions extends GroupConsumerOptions {
  tags: readonly WindowTag[];
  /** Triggers evaluated with each window update, and the offline tags their conditions may name. */
  triggers?: readonly Trigger[];
  offlineTags?: readonly OfflineTag[];
  /** How long firings stay in the trigger streams (ms). @defaultValue 24 h */
  triggerRetentionMs?: number;
  /** Current time in ms, passed to the window script as "now". @defaultValue Date.now */
  clock?: () => number;
  /**
   * Fold in the consumer (nodeFold.ts) the users whose triggers are not evaluated, with
   * updateWindows.lua for the rest; false: every user through updateWindows.lua.
   * @defaultValue true
   */
  foldInConsumer?: boolean;
}

/**
 * Users folded by one window script call: bounds the time one call holds Redis (a call of
 * 100 users of a few events each runs well under a millisecond) and its argument count.
 */
const USERS_PER_CALL = 100;

/** A stream entry (its stream and id): what an ack names. */
type EntryRef = [stream: string, id: string];

/** Per stream, the ids of `refs`, added to `acks`. */
function addAcks(acks: Map<string, string[]>, refs: readonly EntryRef[]): void {
  for (const [stream, id] of refs) {
    const list = acks.get(stream);
    if (list) list.push(id);
    else acks.set(stream, [id]);
  }
}

/** The ids of `refs` by stream. */
function idsByStream(refs: readonly EntryRef[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  addAcks(out, refs);
  return out;
}

/**
 * The realtime consumer: a member of group `realtime` that folds each batch into the
 * users' sliding windows with a few EVALSHAs of updateWindows.lua (many users each), and
 * acks an entry only after its script returned.
 */
export class RealtimeConsumer extends GroupConsumer {
  private writer: WindowWriter;
  private readonly clock: () => number;
  /** A tag config to run from the next batch on (switchTags). */
  private nextTags?: Pick<TagConfig, 'realtime' | 'triggers' | 'offline'>;

  constructor(private readonly opts: RealtimeConsumerOptions) {
    super(GROUPS.realtime, opts);
    this.clock = opts.clock ?? Date.now;
    this.writer = new WindowWriter(opts.keys, opts.tags, opts.triggers, opts.offlineTags);
    if (opts.foldInConsumer !== false) this.nodeFold = new NodeFold(opts.redis, opts.keys, this.writer.windowPlan, USERS_PER_CALL);
  }

  private nodeFold?: NodeFold;

  /**
   * Runs with another tag config from the next batch on (a switch of the active config,
   * see redis/tagConfigs.ts): the batch in progress is written whole with the config it
   * started with.
   */
  switchTags(tags: Pick<TagConfig, 'realtime' | 'triggers' | 'offline'>): void {
    this.nextTags = tags;
  }

  private takeSwitch(): void {
    const t = this.nextTags;
    if (!t) return;
    this.nextTags = undefined;
    this.writer = new WindowWriter(this.opts.keys, t.realtime, t.triggers, t.offline);
    if (this.nodeFold) {
      const counts = this.nodeFold.counts;
      this.nodeFold = new NodeFold(this.opts.redis, this.opts.keys, this.writer.windowPlan, USERS_PER_CALL);
      Object.assign(this.nodeFold.counts, counts);
    }
  }

  /** Users folded in the consumer, and users it left to updateWindows.lua (with triggers evaluated: not counted). */
  get foldCounts(): { folded: number; leftToScript: number } {
    return { ...(this.nodeFold?.counts ?? { folded: 0, leftToScript: 0 }) };
  }

  /**
   * Folds in the consumer the users it can (not those whose triggers are evaluated): their
   * entries go to `toAck`; returns the users left for updateWindows.lua.
   */
  private async foldInConsumer<U extends { update: UserWindowUpdate; ids: EntryRef[] }>(
    users: U[],
    now: number,
    toAck: Map<string, string[]>,
    after?: AfterWrites,
  ): Promise<U[]> {
    const done = this.nodeFold
      ? await this.nodeFold.fold(
          users.filter((u) => !this.writer.evaluates(u.update)).map((u) => u.update),
          now,
          after,
        )
      : new Set<string>();
    for (const u of users) if (done.has(u.update.userId)) addAcks(toAck, u.ids);
    this.opts.metrics?.windowFolds.inc({ by: 'consumer' }, done.size);
    this.opts.metrics?.windowFolds.inc({ by: 'script' }, users.length - done.size);
    return users.filter((u) => !done.has(u.update.userId));
  }

  /**
   * The entries' window updates by user (in stream order); entries no window takes (no tag
   * uses the type, older than its longest window, or of a user erased after it) go
   * straight to `toAck`.
   */
  private async byUser(
    batches: StreamBatch[],
    now: number,
    toAck: Map<string, string[]>,
  ): Promise<Map<string, { update: UserWindowUpdate; minTs: number; ids: EntryRef[] }>> {
    const byUser = new Map<string, { update: UserWindowUpdate; minTs: number; ids: EntryRef[] }>();
    const users = [...new Set(batches.flatMap((b) => b.entries.map((e) => e.event.user_id)))];
    const erased = await erasedAt(this.opts.redis, this.opts.keys, users);
    for (const { stream, entries } of batches) {
      for (const { id, event: e } of entries) {
        const longest = this.writer.longest(e.type);
        if (longest === undefined || e.ts < now - longest || isErased(erased, e.user_id, e.ts)) {
          addAcks(toAck, [[stream, id]]); // no tag uses this type, or older than its longest window
          continue;
        }
        let user = byUser.get(e.user_id);
        if (!user) byUser.set(e.user_id, (user = { update: { userId: e.user_id, events: {} }, minTs: e.ts, ids: [] }));
        (user.update.events[e.type] ??= []).push(...WindowWriter.eventArgs(e));
        user.update.lastEventId = e.event_id;
        user.minTs = Math.min(user.minTs, e.ts);
        user.ids.push([stream, id]);
      }
    }
    return byUser;
  }

  /**
   * Groups a read's events (every stream of it) by user and type, in stream order, and
   * folds them: in the consumer where it can (nodeFold.ts), else with one call of
   * updateWindows.lua per chunk of users (on a cluster: per slot), all in one pipeline (one
   * per node on a cluster). An entry is acked only once its user's write returned; a failed
   * call's entries stay pending.
   */
  protected async handle(batches: StreamBatch[]): Promise<Map<string, string[]>> {
    this.takeSwitch();
    const now = this.clock();
    const toAck = new Map<string, string[]>();
    const byUser = await this.byUser(batches, now, toAck);
    if (byUser.size > 0) {
      const k = this.opts.keys;
      const redis = this.opts.redis;
      const written = [...byUser.keys()];
      // On one server the erasure re-check rides at the end of the last write pipeline (Redis
      // runs it after every write of the batch): the fold's, unless users are left to the
      // script; on a cluster the writes go to several nodes at once, so it is a round trip of
      // its own after them.
      const inline = !isCluster(redis);
      const afterFold: AfterWrites | undefined = inline ? { key: k.erasures(), add: (p) => p.call('ZMSCORE', k.erasures(), ...written) } : undefined;
      const calls = this.chunkCalls(await this.foldInConsumer([...byUser.values()], now, toAck, afterFold));
      const checkedByFold = calls.length === 0 ? afterFold?.result : undefined;
      const results = await this.sendScriptCalls(calls, inline && !checkedByFold ? written : undefined, now);
      // Each user's outbox as its call saw it. A call that failed is sent again one user per
      // call (what it wrote before failing counts once: every effect is idempotent), so one
      // poison user's entries stay pending, not its neighbours'.
      const outboxes = new Map<string, string[]>();
      const retry: (typeof calls)[number] = [];
      const failed: [EntryRef[], Error][] = [];
      const settle = (call: (typeof calls)[number], [err, reply]: [Error | null, unknown]) => {
        if (err && call.length > 1) {
          retry.push(...call);
        } else if (err) {
          const [stream, entry] = call[0].ids[0];
          this.log.error({ err, stream, entry, entries: call[0].ids.length }, 'window update failed; entries left pending for retry');
          failed.push([call[0].ids, err]);
        } else {
          for (const u of call) addAcks(toAck, u.ids);
          for (const [userId, out] of windowsReply(reply as UpdateWindowsReply).outboxes) outboxes.set(userId, out);
        }
      };
      throwRedisTrouble(results);
      calls.forEach((call, i) => settle(call, results[i]));
      if (retry.length > 0) {
        const single = await sendLoadingScripts(redis, retry, (list) =>
          pipelineByNode(
            redis,
            list,
            (u) => k.realtime(u.update.userId),
            (pipeline, u) => queueScript(pipeline, this.writer.update([u.update], now)),
          ),
        );
        throwRedisTrouble(single);
        retry.forEach((u, i) => settle([u], single[i]));
      }
      for (const [refs, err] of failed) for (const [stream, ids] of idsByStream(refs)) await this.recordFailure(stream, ids, err);
      // Firings reach their streams before anything is acked: a failure here throws, the
      // batch stays pending, and its redelivery appends what the outboxes still hold.
      await this.publishFirings(
        [...outboxes].filter(([, out]) => out.length > 0),
        now,
      );
      // After single-user retries the erasures are checked again: they ran after the pipeline's check.
      await this.undoErased(byUser, !inline || retry.length > 0 ? undefined : (checkedByFold ?? results[calls.length]));
    }
    return toAck;
  }

  /**
   * The updateWindows.lua calls in one pipeline (one per node on a cluster), then, with
   * `recheck` (one server only), the erasure check of those users, which Redis runs after them.
   */
  private sendScriptCalls(calls: { update: UserWindowUpdate }[][], recheck: string[] | undefined, now: number): Promise<[Error | null, unknown][]> {
    const { redis, keys: k } = this.opts;
    type Item = (typeof calls)[number] | 'erasures';
    const items: Item[] = recheck ? [...calls, 'erasures'] : calls;
    return sendLoadingScripts(redis, items, (list) =>
      pipelineByNode(
        redis,
        list,
        (item) => (item === 'erasures' ? k.erasures() : k.realtime(item[0].update.userId)),
        (pipeline, item) => {
          if (item === 'erasures') pipeline.call('ZMSCORE', k.erasures(), ...recheck!);
          else
            queueScript(
              pipeline,
              this.writer.update(
                item.map((u) => u.update),
                now,
              ),
            );
        },
      ),
    );
  }

  /**
   * A user erased while this batch was being written: deletes what the batch recreated.
   * `checked`: the erasure check that rode at the end of the write pipeline, if it still holds.
   */
  private async undoErased(byUser: Map<string, { minTs: number }>, checked: [Error | null, unknown] | undefined): Promise<void> {
    const { redis, keys: k } = this.opts;
    const written = [...byUser.keys()];
    let late: Map<string, number>;
    if (checked) {
      const [err, scores] = checked;
      if (err) throw err;
      late = erasureTimes(written, scores as (string | null)[]);
    } else {
      late = await erasedAt(redis, k, written);
    }
    for (const [userId, at] of late) {
      if (byUser.get(userId)!.minTs <= at) await redis.unlink(...k.userKeys(userId));
    }
  }

  /**
   * The users of one batch in script calls: on one server, chunks of at most
   * USERS_PER_CALL users; on a cluster a call's keys must share a slot, so users are
   * grouped by the slot of their hash tag first.
   */
  private chunkCalls<U extends { update: UserWindowUpdate }>(users: U[]): U[][] {
    return chunkBySlot(this.opts.redis, users, (u) => this.opts.keys.realtime(u.update.userId), USERS_PER_CALL);
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
    const appended = await sendLoadingScripts(this.opts.redis, partitions, (list) =>
      pipelineByNode(
        this.opts.redis,
        list,
        ([p]) => k.triggerStream(p),
        (pipeline, [p, firings]) => {
          queueScript(pipeline, Scripts.appendTriggers(k.triggerStream(p), k.triggerSeen(p), now, retention, firings));
        },
      ),
    );
    const failed = appended.find(([err]) => err);
    if (failed) throw failed[0];
    const trimmed = await pipelineByNode(
      this.opts.redis,
      outboxes,
      ([userId]) => k.triggerOutbox(userId),
      (pipeline, [userId, records]) => {
        pipeline.ltrim(k.triggerOutbox(userId), records.length, -1);
      },
    );
    const trimFailed = trimmed.find(([err]) => err);
    if (trimFailed) throw trimFailed[0];
  }
}
