import type { Keys } from '../core/keys';
import type { Logger } from '../core/logger';
import type { RedisClient } from '../redis/client';
import { Firing, FiringReader, firingsAfter, newestFiringIds } from '../profile/triggers';
import { compareEntryIds } from '../core/streamIds';

/** How long the shared reader's XREAD blocks before it looks again (ms). */
const HUB_BLOCK_MS = 5_000;

/** Firings a subscriber may hold that its client has not taken yet; past it the stream is closed. */
const MAX_QUEUED = 10_000;

/**
 * One event stream's view of the hub: its own cursor (one stream id per partition) and
 * the firings after it, in order. `next` waits for firings like FiringReader.next.
 */
export class FiringSubscription {
  private queue: Firing[] = [];
  private wake?: () => void;
  /** Why the hub gave up on this subscriber (its queue overflowed, the shared read failed); next() then throws. */
  private failure?: string;
  /** The hub's firings while this subscriber catches up (handed out after its catch-up reads). */
  private held?: Firing[][] = [];

  constructor(
    private readonly ids: string[],
    private readonly onClose: (s: FiringSubscription) => void,
  ) {}

  /** The position after every firing handed out so far (what the client resumes from). */
  cursor(): string {
    return this.ids.join(',');
  }

  /** Firings of the shared reader: held while the subscriber catches up, then as `take`. */
  offer(firings: readonly Firing[]): void {
    if (this.held) this.held.push([...firings]);
    else this.take(firings);
  }

  /** The catch-up firings (its cursor up to where the shared reader stood), then what the reader offered meanwhile. */
  caughtUp(firings: readonly Firing[]): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.take(firings);
    for (const batch of held) this.take(batch);
  }

  /** Queues firings past the cursor (those at or before it were sent already) and moves it. */
  private take(firings: readonly Firing[]): void {
    for (const f of firings) {
      if (compareEntryIds(f.entryId, this.ids[f.partition]) <= 0) continue;
      this.ids[f.partition] = f.entryId;
      this.queue.push({ ...f, cursor: this.ids.join(',') });
    }
    if (this.queue.length > MAX_QUEUED) this.fail(`more than ${MAX_QUEUED} firings waiting for this client`);
    if (this.queue.length > 0) this.wake?.();
  }

  /** Ends the subscription: next() throws `reason`. */
  fail(reason: string): void {
    this.failure = reason;
    this.queue = [];
    this.wake?.();
  }

  /** The firings waiting, or after up to `waitMs` whatever came meanwhile ([] when none). */
  async next(waitMs: number): Promise<Firing[]> {
    if (this.queue.length === 0 && this.failure === undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    if (this.failure !== undefined) throw new Error(this.failure);
    const out = this.queue;
    this.queue = [];
    return out;
  }

  close(): void {
    this.wake?.();
    this.onClose(this);
  }
}

/**
 * Every GET /triggers/stream of one API process served by one shared reader: one blocking
 * XREAD connection per Redis node for all clients (not one per client), opened with the
 * first subscriber and closed with the last. A client that resumes (Last-Event-ID) first
 * catches up by plain XRANGE reads on the shared connection, from its cursor up to where
 * the shared reader stood when it joined; every later firing comes from the shared reader.
 * At most `maxStreams` subscribers at once (the route answers 503 past it).
 */
export class FiringHub {
  private readonly subs = new Set<FiringSubscription>();
  private reader?: Promise<FiringReader>;
  private pending = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly partitions: number,
    readonly maxStreams: number,
    private readonly log: Logger,
  ) {}

  /** Streams open now (and opening). */
  get size(): number {
    return this.subs.size + this.pending;
  }

  /**
   * A subscription after `cursor` (parseCursor's ids), or after the newest firing of every
   * partition; null when `maxStreams` are open.
   */
  async subscribe(cursor?: string[]): Promise<FiringSubscription | null> {
    if (this.size >= this.maxStreams) return null;
    this.pending++;
    try {
      const start = cursor ?? (await newestFiringIds(this.redis, this.keys, this.partitions));
      const reader = await this.sharedReader();
      // Registered before any await: every firing past the reader's position reaches it.
      const sub = new FiringSubscription([...start], (s) => this.leave(s));
      const upTo = reader.cursor().split(',');
      this.subs.add(sub);
      try {
        const missed: Firing[] = [];
        for (let p = 0; p < this.partitions; p++) {
          if (compareEntryIds(start[p], upTo[p]) < 0) missed.push(...(await firingsAfter(this.redis, this.keys, p, start[p], upTo[p])));
        }
        sub.caughtUp(missed);
      } catch (err) {
        sub.close();
        throw err;
      }
      return sub;
    } finally {
      this.pending--;
    }
  }

  private sharedReader(): Promise<FiringReader> {
    if (!this.reader) {
      const opening = FiringReader.open(this.redis, this.keys, this.partitions);
      this.reader = opening;
      opening.then(
        (r) => void this.run(r, opening),
        () => {
          if (this.reader === opening) this.reader = undefined;
        },
      );
    }
    return this.reader;
  }

  /** Hands every firing the shared reader reads to every subscriber, while any is left and it is still the hub's. */
  private async run(reader: FiringReader, own: Promise<FiringReader>): Promise<void> {
    while (this.reader === own && this.size > 0) {
      let firings: Firing[];
      try {
        firings = await reader.next(HUB_BLOCK_MS);
      } catch (err) {
        if (this.reader !== own) break; // closed by the last subscriber leaving
        this.log.warn({ err }, 'trigger stream read failed; closing the event streams (clients resume with Last-Event-ID)');
        for (const s of this.subs) s.fail('the shared trigger stream read failed');
        break;
      }
      if (this.reader === own) for (const s of this.subs) s.offer(firings);
    }
    reader.close();
    if (this.reader === own) this.reader = undefined;
  }

  private leave(sub: FiringSubscription): void {
    this.subs.delete(sub);
    if (this.size === 0 && this.reader) {
      // The last one left: stop the shared read now (its blocked XREAD ends with the connection).
      const reader = this.reader;
      this.reader = undefined;
      void reader.then(
        (r) => r.close(),
        () => undefined,
      );
    }
  }
}
