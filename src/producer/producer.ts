import type { RedisClient } from '../redis/client';
import { FieldError, ProfileEvent, toStreamFields, validateEvent } from '../core/event';
import { Keys, partitionFor } from '../core/keys';
import { isCluster, pipelineByNode } from '../redis/client';

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
}

export type IngestResult =
  { ok: true; accepted: number; event_ids: string[] } | { ok: false; errors: FieldError[] } | { ok: false; backlogged: number[]; retryAfterS: number };

/** How long a backlog reading is reused: one XLEN pipeline per this period, not per request. */
const BACKLOG_TTL_MS = 250;

/** Validates events and appends them to their stream partitions. */
export class Producer {
  private readonly clock: () => number;
  private backlog: { at: number; lengths: number[] } | undefined;

  constructor(private readonly opts: ProducerOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /**
   * Validates every item; if any is invalid, returns all errors and writes nothing.
   * Otherwise appends every event to its partition and resolves once Redis has
   * acknowledged the writes. On one server all partitions are written in one MULTI/EXEC,
   * so a request is written whole or (on a Redis failure) not at all. On a cluster a
   * transaction cannot span slots: each partition's events are one MULTI/EXEC, the
   * partitions are written in parallel, and a failure of any of them fails the request
   * (the client retries it; every effect downstream is idempotent by event id).
   */
  async ingest(items: unknown[]): Promise<IngestResult> {
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
    await Promise.all(
      [...byTransaction.values()].map(async (list) => {
        const tx = redis.multi();
        for (const e of list) tx.xadd(keys.stream(partitionFor(e.user_id, this.opts.partitions)), '*', ...toStreamFields(e));
        const results = await tx.exec();
        const failed = results?.find(([err]) => err);
        if (!results || failed) throw new Error(`stream append failed: ${failed?.[0]?.message ?? 'transaction aborted'}`);
      }),
    );
    return { ok: true, accepted: events.length, event_ids: events.map((e) => e.event_id) };
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
