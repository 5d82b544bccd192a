import { Scripts, UpdateWindowsReply, queueScript, sendLoadingScripts } from '../lua/scripts';
import { chunkBySlot, isCluster, pipelineByNode, throwRedisTrouble } from '../redis/client';
import { erasedAt, erasureTimes, everyUserKey, isErased } from '../profile/erasure';
import { OfflineTag, TagConfig, Trigger, WindowTag } from '../core/tags';
import { Keys, partitionFor } from '../core/keys';
import type { EventType } from '../core/event';
import { createHash } from 'crypto';
import { UserWindowUpdate, WindowWriter, windowsReply } from './windowWriter';
import { AfterWrites, NodeFold, zeroFoldCounts } from './nodeFold';
import { FoldConnection } from './foldConnection';
import { WindowTarget, keptBy } from './windowTarget';
import { GROUPS } from '../redis/streamGroups';
import { GroupConsumer, GroupConsumerOptions, StreamBatch } from './groupConsumer';

/** A config whose window state a consumer also writes: its tags, in pane keys of `generation`. */
export interface AlsoWrite {
  generation: number;
  realtime: readonly WindowTag[];
}

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
  private nextTags?: { tags: Pick<TagConfig, 'realtime' | 'triggers' | 'offline'>; generation: number; alsoWrite: AlsoWrite[] };
  /** The other configs whose window state every batch is also folded into (see WindowTarget). */
  private targets: WindowTarget[] = [];

  constructor(private readonly opts: RealtimeConsumerOptions) {
    super(GROUPS.realtime, opts);
    this.clock = opts.clock ?? Date.now;
    this.writer = new WindowWriter(opts.keys, opts.tags, opts.triggers, opts.offlineTags);
    this.keys = opts.keys;
    if (opts.foldInConsumer !== false) {
      this.foldConnection = FoldConnection.for(opts.redis);
      this.nodeFold = new NodeFold(opts.redis, opts.keys, this.writer.windowPlan, USERS_PER_CALL, this.foldConnection);
    }
  }

  private nodeFold?: NodeFold;
  /** The folds' connection for WATCH … EXEC (one server; shared: handle() is never re-entered). */
  private foldConnection?: FoldConnection;

  protected override async closeResources(): Promise<void> {
    await super.closeResources();
    await this.foldConnection?.close();
  }
  /** The keys of the active config's window state generation. */
  private keys: Keys;

  /**
   * Runs with another tag config from the next batch on (a switch of the active config,
   * see redis/tagConfigs.ts), its window state in pane keys of `generation`, and folds
   * every batch into the `alsoWrite` configs' state too: the batch in progress is written
   * whole with the configs it started with.
   */
  switchTags(tags: Pick<TagConfig, 'realtime' | 'triggers' | 'offline'>, generation = 0, alsoWrite: AlsoWrite[] = []): void {
    this.nextTags = { tags, generation, alsoWrite };
  }

  private takeSwitch(): void {
    const next = this.nextTags;
    if (!next) return;
    this.nextTags = undefined;
    const t = next.tags;
    const { redis, keys } = this.opts;
    this.keys = keys.withGeneration(next.generation);
    this.writer = new WindowWriter(this.keys, t.realtime, t.triggers, t.offline);
    if (this.nodeFold) {
      const counts = this.nodeFold.counts;
      this.nodeFold = new NodeFold(redis, this.keys, this.writer.windowPlan, USERS_PER_CALL, this.foldConnection);
      Object.assign(this.nodeFold.counts, counts);
    }
    this.targets = next.alsoWrite.map(
      (w) => new WindowTarget(redis, keys.withGeneration(w.generation), w.realtime, USERS_PER_CALL, this.opts.foldInConsumer !== false, this.foldConnection),
    );
  }

  /** The longest window any written config keeps events of `type` for (ms), or undefined when none uses it. */
  private longest(type: EventType): number | undefined {
    let out = this.writer.longest(type);
    for (const t of this.targets) {
      const l = t.writer.longest(type);
      if (l !== undefined && (out === undefined || l > out)) out = l;
    }
    return out;
  }

  /**
   * Users folded in the consumer, and users it left to updateWindows.lua (with triggers
   * evaluated: not counted); visits and sub-buckets read, and those known (NodeFold.counts).
   */
  get foldCounts(): NodeFold['counts'] {
    return { ...(this.nodeFold?.counts ?? zeroFoldCounts()) };
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
        const longest = this.longest(e.type);
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
    // The other configs' state first (each dedups in its own keys: a batch sent again after
    // a failure counts once), then the active one's with what it keeps of each user.
    const mainUsers = await this.foldTargets(byUser, now, toAck);
    if (mainUsers.size > 0) {
      const k = this.opts.keys;
      const redis = this.opts.redis;
      const written = [...mainUsers.keys()];
      // On one server the erasure re-check rides at the end of the last write pipeline (Redis
      // runs it after every write of the batch): the fold's, unless users are left to the
      // script; on a cluster the writes go to several nodes at once, so it is a round trip of
      // its own after them.
      const inline = !isCluster(redis);
      const afterFold: AfterWrites | undefined = inline ? { key: k.erasures(), args: ['ZMSCORE', k.erasures(), ...written] } : undefined;
      const calls = this.chunkCalls(await this.foldInConsumer([...mainUsers.values()], now, toAck, afterFold));
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
      await this.undoErased(byUser, mainUsers.size < byUser.size || !inline || retry.length > 0 ? undefined : (checkedByFold ?? results[calls.length]));
    } else if (byUser.size > 0) {
      await this.undoErased(byUser, undefined);
    }
    return toAck;
  }

  /**
   * Folds every user's events into the other configs' state (this.targets), then answers
   * what the active config keeps of each (users it keeps nothing of are acked here).
   * Throws when a target's write failed: nothing of the batch is acked, and it comes back.
   */
  private async foldTargets<U extends { update: UserWindowUpdate; ids: EntryRef[] }>(
    byUser: Map<string, U>,
    now: number,
    toAck: Map<string, string[]>,
  ): Promise<Map<string, U>> {
    if (this.targets.length === 0) return byUser;
    const updates = [...byUser.values()].map((u) => u.update);
    for (const target of this.targets) await target.fold(updates, now);
    const main = new Map<string, U>();
    for (const [userId, u] of byUser) {
      const kept = keptBy(this.writer, u.update, now);
      if (kept) main.set(userId, { ...u, update: kept });
      else addAcks(toAck, u.ids);
    }
    return main;
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
      if (byUser.get(userId)!.minTs <= at) await redis.unlink(...(await everyUserKey(redis, k, userId)));
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
