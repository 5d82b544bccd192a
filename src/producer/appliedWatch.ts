import { compareEntryIds } from '../core/streamIds';
import { RedisClient, nodeFor } from '../redis/client';
import { GROUPS, groupProgress } from '../redis/streamGroups';

/** The entries one request appended to one stream partition: the first and last id. */
export interface AppendedRange {
  stream: string;
  first: string;
  last: string;
}

/** How often a partition with waiters is checked (ms). */
export const APPLIED_POLL_MS = 1;

interface Waiter {
  ranges: AppendedRange[];
  deadline: number;
  resolve: (applied: boolean) => void;
}

/**
 * Waits until the realtime group has applied given stream entries (`POST
 * /events?wait=applied`): an entry is applied once a realtime consumer read it (its id is
 * at most the group's last-delivered id) and acked it (it is not in the group's pending
 * list) — the consumer acks only after the windows hold the event, so a read after that
 * sees it. One loop serves every waiter: while any waits, each partition with waiters is
 * checked every APPLIED_POLL_MS (XINFO GROUPS and the XPENDING summary, pipelined per
 * partition; an XPENDING range only when older entries are still pending); nothing runs
 * while nobody waits. Works per partition on its own node, so on a cluster too.
 */
export class AppliedWatch {
  private readonly waiters = new Set<Waiter>();
  private looping = false;

  constructor(private readonly redis: RedisClient) {}

  /** Resolves true once every range is applied, false at the timeout (the entries stay accepted and will be applied). */
  wait(ranges: AppendedRange[], timeoutMs: number): Promise<boolean> {
    if (ranges.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.add({ ranges: [...ranges], deadline: Date.now() + timeoutMs, resolve });
      if (!this.looping) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.waiters.size > 0) {
        await this.check();
        const now = Date.now();
        for (const w of this.waiters) {
          if (w.ranges.length === 0) this.settle(w, true);
          else if (now >= w.deadline) this.settle(w, false);
        }
        if (this.waiters.size > 0) await new Promise((r) => setTimeout(r, APPLIED_POLL_MS));
      }
    } finally {
      this.looping = false;
    }
  }

  private settle(w: Waiter, applied: boolean): void {
    this.waiters.delete(w);
    w.resolve(applied);
  }

  /** One check of every partition with waiters: drops the ranges found applied. */
  private async check(): Promise<void> {
    const streams = new Set<string>();
    for (const w of this.waiters) for (const r of w.ranges) streams.add(r.stream);
    // Each stream on its own: one that cannot be read (the deadline answers for it) does not cut the others short.
    await Promise.allSettled([...streams].map((s) => this.checkStream(s)));
  }

  private async checkStream(stream: string): Promise<void> {
    const { group } = await groupProgress(this.redis, stream, GROUPS.realtime);
    if (!group) return;
    const { lastDelivered: delivered, oldestPending } = group;
    const node = nodeFor(this.redis, stream);
    for (const w of this.waiters) {
      for (const r of w.ranges.filter((x) => x.stream === stream)) {
        if (compareEntryIds(r.last, delivered) > 0) continue; // not all read yet
        // Nothing pending, or only entries newer than the range: applied. Otherwise ask
        // whether any entry of the range itself is still pending.
        let applied = oldestPending === null || compareEntryIds(oldestPending, r.last) > 0;
        if (!applied) applied = ((await node.xpending(stream, GROUPS.realtime, r.first, r.last, 1)) as unknown[]).length === 0;
        if (applied) w.ranges.splice(w.ranges.indexOf(r), 1);
      }
    }
  }
}
