import type { Redis } from 'ioredis';
import { FieldError, ProfileEvent, toStreamFields, validateEvent } from '../event';
import { Keys, partitionFor } from '../keys';

export interface ProducerOptions {
  redis: Redis;
  keys: Keys;
  partitions: number;
  /** How far in the future an event time may be (ms). */
  maxFutureSkewMs: number;
  /** Current time in ms. @defaultValue Date.now */
  clock?: () => number;
}

export type IngestResult =
  | { ok: true; accepted: number; event_ids: string[] }
  | { ok: false; errors: FieldError[] };

/** Validates events and appends them to their stream partitions. */
export class Producer {
  private readonly clock: () => number;

  constructor(private readonly opts: ProducerOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /**
   * Validates every item; if any is invalid, returns all errors and writes nothing.
   * Otherwise appends every event to its partition in one MULTI/EXEC, so a request is
   * written whole or (on a Redis failure) not at all, and resolves once Redis has
   * acknowledged the writes.
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

    const tx = this.opts.redis.multi();
    for (const e of events) {
      tx.xadd(this.opts.keys.stream(partitionFor(e.user_id, this.opts.partitions)), '*', ...toStreamFields(e));
    }
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new Error(`stream append failed: ${failed?.[0]?.message ?? 'transaction aborted'}`);
    return { ok: true, accepted: events.length, event_ids: events.map((e) => e.event_id) };
  }
}
