import type { Keys } from '../core/keys';
import { partitionFor } from '../core/keys';
import { Logger, errorText, silentLogger } from '../core/logger';
import { RedisClient, nodeFor } from '../redis/client';
import { GROUPS, groupProgress } from '../redis/streamGroups';

/** How often the lag of every partition is sampled (ms). */
export const LAG_SAMPLE_MS = 100;

/** One partition's sample: the age of its oldest unapplied entry when sampled, and when. */
interface Sample {
  /** Age (ms, by the partition's own Redis clock) of the oldest entry not yet applied; 0: none. */
  ageMs: number;
  /** Local time of the sample (ms, monotonic). */
  at: number;
}

/** An entry id's milliseconds (the Redis clock when XADD accepted it). */
const idMs = (id: string) => Number(id.slice(0, id.indexOf('-')));

/**
 * How far behind the realtime path is, per stream partition: the age of the oldest event
 * accepted there (XADD) but not yet applied to the windows (delivered to no realtime
 * consumer yet, or delivered and not acked), 0 when the group has applied everything.
 * Sampled every LAG_SAMPLE_MS in the background, so a read pays no Redis round trip for
 * it: lagMs() is the sampled age plus the time since the sample while something was
 * waiting (it may overstate by up to one period after the backlog cleared). Ages come from
 * each partition's own Redis clock (TIME against the entry id), not from this host's.
 */
export class RealtimeLag {
  private readonly samples: (Sample | undefined)[];
  private timer?: NodeJS.Timeout;
  private sampling?: Promise<void>;
  private failing = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly partitions: number,
    private readonly log: Logger = silentLogger,
  ) {
    this.samples = new Array<Sample | undefined>(partitions).fill(undefined);
  }

  /** Samples now, then every LAG_SAMPLE_MS until stop(). */
  async start(): Promise<void> {
    await this.sample();
    this.timer = setInterval(() => {
      this.sampling ??= this.sample().finally(() => (this.sampling = undefined));
    }, LAG_SAMPLE_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sampling;
  }

  /** The lag (ms) of a partition; null until it was sampled, or when its last sample failed. */
  partitionLagMs(partition: number): number | null {
    const s = this.samples[partition];
    if (!s) return null;
    return s.ageMs === 0 ? 0 : Math.round(s.ageMs + (performance.now() - s.at));
  }

  /** The lag (ms) of the partition that holds `userId`'s events. */
  lagMs(userId: string): number | null {
    return this.partitionLagMs(partitionFor(userId, this.partitions));
  }

  /** Every partition's lag (ms; null: not known). */
  all(): (number | null)[] {
    return this.samples.map((_, p) => this.partitionLagMs(p));
  }

  /** One sample of every partition (concurrently: two round trips on one server). */
  async sample(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.partitions }, (_, p) =>
        this.samplePartition(p).then(
          (s) => {
            this.samples[p] = s;
            if (this.failing) this.log.info('realtime lag sampled again');
            this.failing = false;
          },
          (err: unknown) => {
            this.samples[p] = undefined;
            if (!this.failing) this.log.warn({ err: errorText(err) }, 'cannot sample the realtime lag; reads answer lag_ms null until it can');
            this.failing = true;
          },
        ),
      ),
    );
  }

  private async samplePartition(partition: number): Promise<Sample> {
    const stream = this.keys.stream(partition);
    const at = performance.now();
    const { nowMs, streamExists, group } = await groupProgress(this.redis, stream, GROUPS.realtime, true);
    if (!streamExists) return { ageMs: 0, at }; // nothing was accepted there yet
    let oldest = group?.oldestPending ? idMs(group.oldestPending) : undefined;
    // The first entry no realtime consumer was given yet (the whole stream without a group).
    // Asked every time: XINFO's own lag can be wrong after an AOF restart (see streamStatus).
    const undelivered = group === undefined ? '-' : `(${group.lastDelivered}`;
    const first = (await nodeFor(this.redis, stream).xrange(stream, undelivered, '+', 'COUNT', 1)) as [string, string[]][];
    if (first.length > 0) oldest = Math.min(oldest ?? Infinity, idMs(first[0][0]));
    return { ageMs: oldest === undefined ? 0 : Math.max(1, nowMs! - oldest), at };
  }
}
