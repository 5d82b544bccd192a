import type { EventType } from '../core/event';
import type { Keys } from '../core/keys';
import { FoldedUser, Scripts, queueScript, sendLoadingScripts } from '../lua/scripts';
import type { TypePlan, WindowPlan } from '../lua/windowPlan';
import { RedisClient, chunkBySlot, pipelineByNode, throwRedisTrouble } from '../redis/client';
import { RespArg, RespWriter } from '../redis/rawConnection';
import { FoldEvent, PRUNE_SLACK_MS, PlannedVisit, firstFields, keyExpiry, planVisit, prunedUpTo, secondsPruned, visitWrites } from './typeFold';
import { DISTINCT_BASE } from './paneText';
import type { UserWindowUpdate } from './windowWriter';
import type { FoldConnection } from './foldConnection';
import { KnownPanes, PanesSeen } from './panesSeen';
import { BucketsSeen, isSubBucket } from './bucketsSeen';

/**
 * A command (`args`) to run after the fold's writes, in the same pipeline or transaction
 * (one server only: there Redis runs it after them): `result` receives its reply when the
 * writes were sent.
 */
export interface AfterWrites {
  key: string;
  args: [command: string, ...args: string[]];
  result?: [Error | null, unknown];
}

/**
 * The most pane keys one transaction WATCHes. Redis 7.0's WATCH checks each key against
 * every key the connection already watches, so its cost grows with the square of the keys:
 * 50 keys cost 0.29 µs a key, 100 keys 0.64, 400 keys 2.7, 4,000 keys 14, 8,000 keys 45
 * (one WATCH of a 16,000-entry read's keys took 25 ms on average while draining a backlog,
 * 4.3 µs an event). Past this many, a read's users are folded in groups, one WATCH … EXEC
 * each. Smaller transactions cost Redis less in EXEC and HMGET too: draining 300k events
 * over 200k users, Redis time an event was 7.3 µs with 16, 7.8 with 32, 8.2 with 64, 9.9
 * with 128 and 10.3 with 256 (medians of 3), at about the same events a second (22–25k).
 */
export const WATCH_KEYS_PER_TRANSACTION = 32;

/**
 * `users` in groups of at most `maxKeys` pane keys (a user's types are its keys; a user is
 * never split, so a group holds one user with more types than maxKeys).
 */
export function watchGroups(users: readonly UserWindowUpdate[], maxKeys: number): UserWindowUpdate[][] {
  const groups: UserWindowUpdate[][] = [];
  let group: UserWindowUpdate[] = [];
  let keys = 0;
  for (const u of users) {
    const n = Object.keys(u.events).length;
    if (group.length > 0 && keys + n > maxKeys) {
      groups.push(group);
      group = [];
      keys = 0;
    }
    group.push(u);
    keys += n;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** NodeFold.counts before anything was folded. */
export function zeroFoldCounts() {
  return { folded: 0, leftToScript: 0, visits: 0, visitsKnown: 0, subBucketsRead: 0, subBucketsKnown: 0 };
}

/** A reply with its Buffers as text (nested arrays too). */
function asText(reply: unknown): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString();
  return Array.isArray(reply) ? reply.map(asText) : reply;
}

/** A Buffer of its own (null stays null). */
function copyOf(b: Buffer | null): Buffer | null {
  return b && Buffer.from(b);
}

/** Pipeline-shaped results ([error, reply] each) of raw replies, error replies as errors. */
function asResults(replies: unknown[]): [Error | null, unknown][] {
  return replies.map((r) => (r instanceof Error ? [r, null] : [null, r]));
}

/** One user's events of one type, on their way through the fold. */
interface Visit {
  userId: string;
  type: EventType;
  tp: TypePlan;
  events: FoldEvent[];
  fields: string[];
  planned?: PlannedVisit;
  /** What panesSeen knew of its pane hash at the first read. */
  known?: KnownPanes;
  /** V and T as the first read returned them. */
  first?: { version: string; meta: string | undefined };
  /** Sub-buckets of split dedup buckets as they are in the hash (read, or known by bucketsSeen). */
  subBuckets?: Map<string, Buffer | null>;
}

/**
 * Folds users' events into their window state in the consumer: two pipelined HMGETs per
 * user and type (the state the fold needs, then the panes it touches), the fold itself in
 * Node (typeFold.ts), and a write of the result only where nothing changed meanwhile. Redis
 * does the reads and the writes; the per-event work that made updateWindows.lua cost ~50 µs
 * a user runs here instead. On one server (with a FoldConnection) the pane keys are
 * WATCHed before the first read and the writes go in one MULTI/EXEC, plain commands, which
 * Redis refuses whole when another writer touched one of them; on a cluster, one
 * applyFolds.lua call per chunk of users checks each type's write counter V instead.
 * Users it does not take (see typeFold.ts), and users another writer got to first, are
 * returned for updateWindows.lua.
 */
export class NodeFold {
  /**
   * Users written by this fold, and users it left to updateWindows.lua; visits (a user's
   * events of one type) read, and those planned with what panesSeen knew; sub-buckets of
   * split dedup buckets read, and those bucketsSeen knew (since the start).
   */
  readonly counts = zeroFoldCounts();
  /** The seconds and minutes that hold events in the pane hashes this fold wrote (see panesSeen.ts). */
  readonly seen = new PanesSeen();
  /** The sub-buckets of split dedup buckets in the pane hashes this fold wrote (see bucketsSeen.ts). */
  readonly buckets = new BucketsSeen();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly plan: WindowPlan,
    private readonly usersPerCall: number,
    /** One server: the connection for WATCH … EXEC (see FoldConnection); none: applyFolds.lua. */
    private readonly tx?: FoldConnection,
  ) {}

  /**
   * Folds what it can of `users` at `now`; returns the ids of the users it wrote (or had
   * nothing to write for). In a transaction, users go in groups of at most
   * WATCH_KEYS_PER_TRANSACTION pane keys, one WATCH … EXEC each, one after another;
   * `after` rides on the last group's.
   */
  async fold(users: readonly UserWindowUpdate[], now: number, after?: AfterWrites): Promise<Set<string>> {
    if (!this.tx) return this.foldGroup(users, now, after);
    const groups = watchGroups(users, WATCH_KEYS_PER_TRANSACTION);
    const done = new Set<string>();
    for (const [i, group] of groups.entries()) {
      for (const id of await this.foldGroup(group, now, i === groups.length - 1 ? after : undefined)) done.add(id);
    }
    return done;
  }

  private async foldGroup(users: readonly UserWindowUpdate[], now: number, after?: AfterWrites): Promise<Set<string>> {
    const visits = this.visitsOf(users, now);
    const lua = new Set<string>();
    const epoch = await this.firstRead(visits, now, lua);
    const writing = visits.filter((v) => !lua.has(v.userId) && v.planned!.added > 0);
    const got = await this.secondRead(writing, lua, now);
    const records = new Map<string, FoldedUser>();
    const written: [Visit, Exclude<ReturnType<typeof visitWrites>, string>][] = [];
    for (const [i, v] of writing.entries()) {
      if (lua.has(v.userId)) continue;
      const w = visitWrites(v.planned!, v.tp, now, got[i]);
      if (typeof w === 'string') lua.add(v.userId);
      else {
        this.record(records, v, w);
        written.push([v, w]);
      }
    }
    for (const id of lua) records.delete(id);
    try {
      if (this.tx) await this.applyInTransaction([...records], now, lua, epoch, after);
      else await this.apply([...records], now, lua, after);
    } catch (err) {
      for (const v of visits) this.forget(v);
      throw err;
    }
    for (const v of visits) if (lua.has(v.userId)) this.forget(v);
    for (const [v, w] of written) if (!lua.has(v.userId)) this.remember(v, w, now);
    const done = new Set(users.map((u) => u.userId).filter((id) => !lua.has(id)));
    this.counts.folded += done.size;
    this.counts.leftToScript += users.length - done.size;
    return done;
  }

  private visitsOf(users: readonly UserWindowUpdate[], now: number): Visit[] {
    const visits: Visit[] = [];
    for (const u of users) {
      for (const [type, args] of Object.entries(u.events) as [EventType, (string | number | Buffer)[]][]) {
        const tp = this.plan.plans[this.plan.types.indexOf(type)];
        const events: FoldEvent[] = [];
        for (let i = 0; i < args.length; i += 3) events.push({ ts: Number(args[i]), fp: args[i + 1] as Buffer, packed: String(args[i + 2]) });
        visits.push({ userId: u.userId, type, tp, events, fields: firstFields(tp, events, now) });
      }
    }
    return visits;
  }

  /** The first HMGET of every visit (after a WATCH of their pane keys, with a FoldConnection: returns its epoch). */
  private async firstRead(visits: Visit[], now: number, lua: Set<string>): Promise<number> {
    const k = this.keys;
    let epoch = 0;
    let results: [Error | null, unknown][];
    if (this.tx && visits.length > 0) {
      const conn = await this.tx.get();
      epoch = this.tx.epoch;
      const w = new RespWriter().command(['UNWATCH']).command(['WATCH', ...new Set(visits.map((v) => k.panes(v.userId, v.type)))]);
      for (const v of visits) w.command(['HMGET', k.panes(v.userId, v.type), ...v.fields]);
      const all = asResults(await conn.send(w.toBuffer(), w.count));
      throwRedisTrouble(all);
      if (all[1][0]) throw all[1][0];
      results = all.slice(2);
    } else {
      results = await pipelineByNode(
        this.redis,
        visits,
        (v) => k.panes(v.userId, v.type),
        (p, v) => p.hmgetBuffer(k.panes(v.userId, v.type), ...v.fields),
      );
    }
    throwRedisTrouble(results);
    const got = new Map<Visit, (Buffer | null)[]>();
    visits.forEach((v, i) => {
      const [err, values] = results[i];
      if (err) return;
      const read = values as (Buffer | null)[];
      got.set(v, read);
      // firstFields names V and T first.
      v.first = { version: read[0]?.toString() ?? '', meta: read[1]?.toString() };
      if (v.tp.secondsKept > 0) v.known = this.seen.known(k.panes(v.userId, v.type), v.first.version, v.first.meta, now);
      this.counts.visits++;
      if (v.known) this.counts.visitsKnown++;
      v.planned = planVisit(v.tp, v.events, now, v.fields, read, v.known, this.tx !== undefined);
    });
    // Users with split dedup buckets: their events' sub-buckets (those bucketsSeen does not
    // know read here), then plan again.
    const more = visits.filter((v) => v.planned?.more);
    if (more.length > 0) {
      const reading: { v: Visit; names: string[] }[] = [];
      for (const v of more) {
        const known = this.buckets.known(k.panes(v.userId, v.type), v.first!.version, v.first!.meta, now);
        v.subBuckets = new Map(known);
        const names = v.planned!.more!.filter((n) => !v.subBuckets!.has(n));
        this.counts.subBucketsKnown += v.planned!.more!.length - names.length;
        this.counts.subBucketsRead += names.filter(isSubBucket).length;
        if (names.length > 0) reading.push({ v, names });
      }
      const extra = await pipelineByNode(
        this.redis,
        reading,
        ({ v }) => k.panes(v.userId, v.type),
        (p, { v, names }) => p.hmgetBuffer(k.panes(v.userId, v.type), ...names),
      );
      throwRedisTrouble(extra);
      const failed = new Set<Visit>();
      reading.forEach(({ v, names }, i) => {
        const [err, values] = extra[i];
        if (err) failed.add(v);
        // (Copied: a reply's Buffers are views of the socket's chunks, which a kept one would hold.)
        else names.forEach((n, j) => v.subBuckets!.set(n, copyOf((values as (Buffer | null)[])[j])));
      });
      for (const v of more) {
        const names = v.planned!.more!;
        v.planned = undefined;
        if (failed.has(v)) continue;
        const values = names.map((n) => v.subBuckets!.get(n)!);
        // (The swept bucket a prune reads with them is not a sub-bucket: not remembered.)
        for (const n of names) if (!isSubBucket(n)) v.subBuckets!.delete(n);
        v.fields = [...v.fields, ...names];
        v.planned = planVisit(v.tp, v.events, now, v.fields, [...got.get(v)!, ...values], v.known, this.tx !== undefined);
        if (v.planned.more) v.planned = { lua: 'sub-buckets changed' } as PlannedVisit;
      }
    }
    for (const v of visits) if (!v.planned || v.planned.lua) lua.add(v.userId);
    return epoch;
  }

  /**
   * The second HMGET of every visit that writes; in a transaction, also whether any key of
   * a new type exists (applyFolds.lua's EXISTS: state without a write counter, or a v1
   * window, which only the script folds in).
   */
  private async secondRead(writing: Visit[], lua: Set<string>, now: number): Promise<Map<string, string | null>[]> {
    const k = this.keys;
    const legacy = this.tx ? writing.filter((v) => v.planned!.version === '') : [];
    const pruning = writing.filter((v) => v.planned!.prune);
    const secondsPruning = writing.filter((v) => v.planned!.secondsPrune);
    type Item = { v: Visit; kind: 'panes' | 'legacy' | 'index' | 'next' | 'seconds' };
    const items: Item[] = [
      ...writing.map((v) => ({ v, kind: 'panes' as const })),
      ...legacy.map((v) => ({ v, kind: 'legacy' as const })),
      ...pruning.map((v) => ({ v, kind: 'index' as const })),
      ...pruning.map((v) => ({ v, kind: 'next' as const })),
      ...secondsPruning.map((v) => ({ v, kind: 'seconds' as const })),
    ];
    const command = ({ v, kind }: Item): [string, ...string[]] => {
      if (kind === 'legacy') return ['EXISTS', k.panes(v.userId, v.type), k.paneIndex(v.userId, v.type), k.legacyWindow(v.userId, v.type)];
      // A prune's pane members of the time index, with their scores (distinct values score
      // from DISTINCT_BASE up): those it deletes (a minute before the window's start or
      // older), and the lowest of the others (what T's oldest becomes), not all of them.
      const last = prunedUpTo(v.tp, now);
      if (kind === 'index') return ['ZRANGEBYSCORE', k.paneIndex(v.userId, v.type), '-inf', String(last), 'WITHSCORES'];
      if (kind === 'next') return ['ZRANGEBYSCORE', k.paneIndex(v.userId, v.type), `(${last}`, `(${DISTINCT_BASE}`, 'WITHSCORES', 'LIMIT', '0', '1'];
      // The minutes whose one-second panes a prune of seconds deletes (secondsPrune).
      const sp = v.planned!.secondsPrune;
      if (kind === 'seconds') return ['ZRANGEBYSCORE', k.paneIndex(v.userId, v.type), String(sp!.from), String(sp!.upTo)];
      return v.planned!.fetch.length > 0 ? ['HMGET', k.panes(v.userId, v.type), ...v.planned!.fetch] : ['PING'];
    };
    // With a FoldConnection, on it (pre-encoded; reads leave its WATCHes as they are).
    const results = this.tx
      ? await this.sendRaw(items.map(command))
      : await pipelineByNode(
          this.redis,
          items,
          ({ v }) => k.panes(v.userId, v.type),
          (p, item) => p.call(...command(item)),
        );
    throwRedisTrouble(results);
    legacy.forEach((v, i) => {
      const [err, n] = results[writing.length + i];
      if (err || n !== 0) lua.add(v.userId);
    });
    pruning.forEach((v, i) => {
      const [err, members] = results[writing.length + legacy.length + i];
      const [nextErr, next] = results[writing.length + legacy.length + pruning.length + i];
      if (err || nextErr || !Array.isArray(members) || !Array.isArray(next)) lua.add(v.userId);
      else v.planned!.prune!.members = [...(members as string[]), ...(next as string[])];
    });
    secondsPruning.forEach((v, i) => {
      const [err, members] = results[writing.length + legacy.length + 2 * pruning.length + i];
      if (err || !Array.isArray(members)) lua.add(v.userId);
      else v.planned!.secondsPrune!.members = members as string[];
    });
    return writing.map((v, i) => {
      const [err, got] = results[i];
      if (err) lua.add(v.userId);
      const values = Array.isArray(got) ? (got as (string | null)[]) : [];
      return new Map(v.planned!.fetch.map((name, j) => [name, values[j] ?? null]));
    });
  }

  /** `commands` on the FoldConnection, their replies as text, pipeline-shaped. */
  private async sendRaw(commands: RespArg[][]): Promise<[Error | null, unknown][]> {
    if (commands.length === 0) return [];
    const w = new RespWriter();
    for (const c of commands) w.command(c);
    const replies = await (await this.tx!.get()).send(w.toBuffer(), w.count);
    return asResults(replies.map(asText));
  }

  /** Forgets what panesSeen and bucketsSeen knew of `v`'s pane hash. */
  private forget(v: Visit): void {
    const key = this.keys.panes(v.userId, v.type);
    this.seen.forget(key);
    this.buckets.forget(key);
  }

  /**
   * After `v`'s write `w` went in: bucketsSeen, its sub-buckets as the hash now holds them;
   * panesSeen, its V and T and the seconds of its events.
   */
  private remember(v: Visit, w: Exclude<ReturnType<typeof visitWrites>, string>, now: number): void {
    const key = this.keys.panes(v.userId, v.type);
    // (A call none of whose events needed a sub-bucket leaves them as they were.)
    const texts = new Map(v.subBuckets ?? (v.first && this.buckets.known(key, v.first.version, v.first.meta, now)));
    for (let i = 0; i < w.writes.length; i += 2) {
      const name = w.writes[i] as string;
      if (isSubBucket(name)) texts.set(name, w.writes[i + 1] as Buffer);
    }
    for (const name of w.drops) if (isSubBucket(name)) texts.set(name, null);
    this.buckets.wrote(key, { version: w.version, meta: w.meta, until: now + w.expireInMs }, texts);
    if (v.tp.secondsKept === 0) return;
    const old = v.planned!.oldNewest;
    // Without what was known before, the seconds after the hash's newest event held no pane.
    const floor = old === undefined ? -Infinity : Math.floor(old / 1000) + 1;
    this.seen.wrote(
      this.keys.panes(v.userId, v.type),
      { version: w.version, meta: w.meta, until: now + w.expireInMs },
      v.known,
      floor,
      v.planned!.deltas.events.map((e) => e.ts),
      Math.floor(now / 1000) - secondsRemembered(v.tp),
    );
  }

  private record(records: Map<string, FoldedUser>, v: Visit, w: Exclude<ReturnType<typeof visitWrites>, string>): void {
    const k = this.keys;
    let user = records.get(v.userId);
    if (!user) records.set(v.userId, (user = { realtimeKey: k.realtime(v.userId), newestBefore: 0, types: [] }));
    const before = v.planned!.oldNewest;
    // The realtime hash moves for a type whose newest event time moved (updateWindows.lua's `seen`).
    const moved = before === undefined || w.newest > before;
    if (moved) user.newestBefore = before === undefined || user.newestBefore === null ? null : Math.max(user.newestBefore, before);
    user.types.push({
      panesKey: k.panes(v.userId, v.type),
      indexKey: k.paneIndex(v.userId, v.type),
      legacyKey: k.legacyWindow(v.userId, v.type),
      version: v.planned!.version,
      name: v.type,
      newest: moved ? w.newest : null,
      writes: w.writes,
      drops: w.drops,
      members: w.members,
      ttl: w.ttl,
      expireInMs: w.expireInMs,
      prune: w.prune,
    });
  }

  /**
   * Writes every user in one MULTI/EXEC on the connection that WATCHed their pane keys
   * (epoch: its WATCH's). Redis refuses it when another writer touched one of them since;
   * then, or when the connection is not the one that sent the WATCH, every user goes to
   * updateWindows.lua. The commands are applyFolds.lua's, with the realtime hash's expiry
   * as PEXPIRE NX (a new hash) and GT (never back).
   */
  private async applyInTransaction(
    records: [userId: string, user: FoldedUser][],
    now: number,
    lua: Set<string>,
    epoch: number,
    after?: AfterWrites,
  ): Promise<void> {
    if (records.length === 0) return;
    const tx = await this.tx!.get();
    // Checked right before the send (no I/O between): the WATCH's connection, still up.
    if (!this.tx!.holds(epoch)) {
      for (const [id] of records) lua.add(id);
      return;
    }
    const w = new RespWriter().command(['MULTI']);
    for (const [, u] of records) for (const c of foldedUserCommands(u, now, this.plan.longest)) w.command(c);
    if (after) w.command(after.args);
    w.command(['EXEC']);
    const replies = await tx.send(w.toBuffer(), w.count);
    const exec = replies[replies.length - 1];
    if (exec instanceof Error) {
      // EXECABORT: a queued command was refused (its error says why, e.g. OOM).
      Object.assign(exec, { previousErrors: replies.filter((r) => r instanceof Error && r !== exec) });
      throw exec;
    }
    if (exec === null) {
      for (const [id] of records) lua.add(id);
      return;
    }
    const results = asResults(exec as unknown[]);
    throwRedisTrouble(results);
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    // Its reply as ioredis gives it (text, not the Buffers this connection parses).
    if (after) after.result = [null, asText(results[results.length - 1][1])];
  }

  private async apply(records: [userId: string, user: FoldedUser][], now: number, lua: Set<string>, after?: AfterWrites): Promise<void> {
    if (records.length === 0) return;
    type Item = [userId: string, user: FoldedUser][] | 'after';
    const calls = chunkBySlot(this.redis, records, ([, u]) => u.realtimeKey, this.usersPerCall);
    const items: Item[] = after ? [...calls, 'after'] : calls;
    let sends = 0;
    const results = await sendLoadingScripts(this.redis, items, (list) => {
      sends++;
      return pipelineByNode(
        this.redis,
        list,
        (c) => (c === 'after' ? after!.key : c[0][1].realtimeKey),
        (p, c) => {
          if (c === 'after') p.call(...after!.args);
          else
            queueScript(
              p,
              Scripts.applyFolds(
                c.map(([, u]) => u),
                now,
                this.plan.longest,
              ),
            );
        },
      );
    });
    throwRedisTrouble(results);
    // Only when the pipeline was sent once: after a reload of missing functions, calls sent
    // again ran after the command.
    if (after && sends === 1) after.result = results[calls.length];
    calls.forEach((call, i) => {
      const [err, refused] = results[i];
      if (err) for (const [id] of call) lua.add(id);
      else for (const position of refused as number[]) lua.add(call[position - 1][0]);
    });
  }
}

/**
 * How far back (s) the fold remembers which seconds of a hash hold events (panesSeen.ts):
 * as far back as a prune of its one-second panes reaches, so that the prune deletes only
 * seconds that hold events (typeFold.ts: prunePanes, pruneSeconds). That prune is the
 * type's own (the window, PRUNE_SLACK_MS, the minute it rounds to and one more: 72 minutes
 * for an hour's window, a fifth more memory) when its longest window reads seconds
 * (views_1h); else its seconds tags' (secondsPruned: 17 minutes for clicks_5m beside
 * clicks_24h). Both reach past what the fold's totals read (TypePlan.secondsKept).
 */
export function secondsRemembered(tp: TypePlan): number {
  if (tp.secondsKept === 0) return 0;
  const reach = secondsPruned(tp) ? tp.secondsKept * 1000 : tp.longest;
  return Math.ceil((reach + PRUNE_SLACK_MS + 2 * 60_000) / 1000);
}

/** applyFolds.lua's writes of one user, as plain commands (see NodeFold.applyInTransaction). */
function foldedUserCommands(u: FoldedUser, now: number, longestMs: number): RespArg[][] {
  const out: RespArg[][] = [];
  const seen: (string | number)[] = [];
  let newest = -Infinity;
  for (const t of u.types) {
    if (t.writes.length > 0) out.push(['HSET', t.panesKey, ...(t.writes as RespArg[])]);
    if (t.drops.length > 0) out.push(['HDEL', t.panesKey, ...t.drops]);
    if (t.members.length > 0) out.push(['ZADD', t.indexKey, 'GT', ...(t.members as RespArg[])]);
    // A prune (only in a transaction: applyFolds.lua leaves it to updateWindows.lua).
    if (t.prune && t.prune.drops.length > 0) out.push(['HDEL', t.panesKey, ...t.prune.drops]);
    for (const [min, max] of t.prune?.ranges ?? []) out.push(['ZREMRANGEBYSCORE', t.indexKey, min, max]);
    if (t.ttl === 'GT') out.push(['PEXPIRE', t.panesKey, t.expireInMs, 'GT'], ['PEXPIRE', t.indexKey, t.expireInMs, 'GT']);
    else if (t.ttl === 'SET') out.push(['PEXPIRE', t.panesKey, t.expireInMs], ['PEXPIRE', t.indexKey, t.expireInMs]);
    if (t.newest !== null) {
      seen.push(t.name, t.newest);
      newest = Math.max(newest, t.newest);
    }
  }
  if (seen.length === 0) return out;
  // touchRealtime (realtimeHash.lua): the hash lives until keyExpiry of the newest event
  // with the longest window; set on a new hash (NX), moved (never back) only when that
  // value moves. NX only when a type is new to the user: a hash with a type's field was
  // given its expiry when that field was written, and outlives the type's pane keys
  // (keyExpiry with the longest of all windows, moved in the same transaction), so it
  // holds every type whose pane hash the fold read.
  const expiry = keyExpiry(newest, longestMs);
  out.push(['HSET', u.realtimeKey, ...seen]);
  if (u.newestBefore === null) out.push(['PEXPIRE', u.realtimeKey, expiry - now, 'NX'], ['PEXPIRE', u.realtimeKey, expiry - now, 'GT']);
  else if (keyExpiry(u.newestBefore, longestMs) < expiry) out.push(['PEXPIRE', u.realtimeKey, expiry - now, 'GT']);
  return out;
}
