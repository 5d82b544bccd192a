import type { RedisClient } from '../redis/client';
import { FieldError, ProfileEvent, toStreamFields, validateEvent } from '../core/event';
import { Keys, partitionFor } from '../core/keys';
import { isCluster, pipelineByNode } from '../redis/client';
import { AppendedRange, AppliedWatch } from './appliedWatch';

export interface ProducerOptions {
  redis: RedisClient;
  keys: Keys;
  partitions: number;
  /** How far in the future an event time may be (ms). */
  maxFutureSkewMs: number;
  /** Current time in ms. @defaultValue Date.now */
  clock?: () => number;
  /** Entries a partition may hold before ingestion is refused (backpressure). @defaultValue unlimited */
  maxBacklog?: number;
  /**
   * The connection `waitApplied` reads the realtime group's progress with (XINFO, XPENDING):
   * the API's reading user when the producer writes as an ingest-only user. @defaultValue redis
   */
  watchRedis?: RedisClient;
}

export type IngestResult =
  | {
      ok: true;
      accepted: number;
      event_ids: string[];
      /** Per stream partition written: the first and last entry id appended. */
      appended: AppendedRange[];
      /** With `waitApplied`: whether the realtime group applied every event before the timeout. */
      applied?: boolean;
    }
  | { ok: false; errors: FieldError[] }
  | { ok: false; backlogged: number[]; retryAfterS: number };

export interface IngestOptions {
  /**
   * Resolve only once the realtime consumers have applied every event to the windows (a read
   * after it sees them), or at `timeoutMs` with `applied: false` (the events are accepted
   * and will be applied). @defaultValue false
   */
  waitApplied?: boolean;
  /** How long waitApplied waits (ms). @defaultValue WAIT_APPLIED_DEFAULT_MS (1000) */
  timeoutMs?: number;
}

/** How long a wait for the realtime path waits by default (ms), and at most. */
export const WAIT_APPLIED_DEFAULT_MS = 1000;
export const WAIT_APPLIED_MAX_MS = 30_000;

/** How long a backlog reading is reused: one XLEN pipeline per this period, not per request. */
const BACKLOG_TTL_MS = 250;

/** Validates events and appends them to their stream partitions. */
export class Producer {
  private readonly clock: () => number;
  private backlog: { at: number; lengths: number[] } | undefined;
  private readonly watch: AppliedWatch;

  constructor(private readonly opts: ProducerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.watch = new AppliedWatch(opts.watchRedis ?? opts.redis);
  }

  /**
   * Validates every item; if any is invalid, returns all errors and writes nothing.
   * Otherwise appends every event to its partition and resolves once Redis has
   * acknowledged the writes. On one server all partitions are written in one MULTI/EXEC,
   * so a request is written whole or (on a Redis failure) not at all. On a cluster a
   * transaction cannot span slots: each partition's events are one MULTI/EXEC, the
   * partitions are written in parallel, and a failure of any of them fails the request
   * (the client retries it; every effect downstream is idempotent by event id).
   * With `waitApplied`, it then waits for the realtime path (see IngestOptions).
   */
  async ingest(items: unknown[], opts: IngestOptions = {}): Promise<IngestResult> {
    const result = await this.append(items);
    if (result.ok && opts.waitApplied) {
      const timeout = Math.min(opts.timeoutMs ?? WAIT_APPLIED_DEFAULT_MS, WAIT_APPLIED_MAX_MS);
      result.applied = await this.watch.wait(result.appended, timeout);
    }
    return result;
  }

  private async append(items: unknown[]): Promise<IngestResult> {
    const now = this.clock();
    const events: ProfileEvent[] = [];
    const errors: FieldError[] = [];
    items.forEach((item, index) => {
      const r = validateEvent(item, index, { now, maxFutureSkewMs: this.opts.maxFutureSkewMs });
      if (r.ok) events.push(r.event);
      else errors.push(...r.errors);
    });
    if (errors.length > 0) return { ok: false, errors };

    const partitions = events.map((e) => partitionFor(e.user_id, this.opts.partitions));
    if (this.opts.maxBacklog !== undefined) {
      // Streams are trimmed to what some group has not finished, so XLEN is the backlog.
      const lengths = await this.backlogLengths();
      const full = [...new Set(partitions)].filter((p) => lengths[p] >= this.opts.maxBacklog!).sort((a, b) => a - b);
      if (full.length > 0) return { ok: false, backlogged: full, retryAfterS: 1 };
    }
    const { redis, keys } = this.opts;
    const byTransaction = new Map<number, ProfileEvent[]>();
    events.forEach((e, i) => {
      const t = isCluster(redis) ? partitions[i] : 0;
      let list = byTransaction.get(t);
      if (!list) byTransaction.set(t, (list = []));
      list.push(e);
    });
    const appended = new Map<string, AppendedRange>();
    await Promise.all(
      [...byTransaction.values()].map(async (list) => {
        const tx = redis.multi();
        const streams = list.map((e) => keys.stream(partitionFor(e.user_id, this.opts.partitions)));
        list.forEach((e, i) => tx.xadd(streams[i], '*', ...toStreamFields(e)));
        const results = await tx.exec();
        const failed = results?.find(([err]) => err);
        if (!results || failed) throw new Error(`stream append failed: ${failed?.[0]?.message ?? 'transaction aborted'}`);
        // A transaction appends in order: a stream's first id is its first reply, its last the last.
        results.forEach(([, id], i) => {
          const range = appended.get(streams[i]);
          if (range) range.last = id as string;
          else appended.set(streams[i], { stream: streams[i], first: id as string, last: id as string });
        });
      }),
    );
    return { ok: true, accepted: events.length, event_ids: events.map((e) => e.event_id), appended: [...appended.values()] };
  }

  /** Stream lengths of every partition, read at most once per BACKLOG_TTL_MS. */
  private async backlogLengths(): Promise<number[]> {
    const now = Date.now();
    if (this.backlog && now - this.backlog.at < BACKLOG_TTL_MS) return this.backlog.lengths;
    const results = await pipelineByNode(
      this.opts.redis,
      this.opts.keys.streams(this.opts.partitions),
      (s) => s,
      (p, s) => p.xlen(s),
    );
    const lengths = results.map(([err, n]) => {
      if (err) throw err;
      return n as number;
    });
    this.backlog = { at: now, lengths };
    return lengths;
  }
}
