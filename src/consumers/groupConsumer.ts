import { Keys } from '../core/keys';
import { DEFAULT_READ_COUNT } from '../core/config';
import { Logger, OutageLog, errorText, silentLogger } from '../core/logger';
import { RedisClient, duplicateRedis, isCluster, nodeFor } from '../redis/client';
import type { Metrics } from '../metrics/metrics';
import { ProfileEvent, describeErrors, fromStreamFields, validateEvent } from '../core/event';
import { GroupName, ReadReply, StreamEntry, ensureGroups, trimBelowSafeId } from '../redis/streamGroups';
import { LIVE_EVERY_MS, leaveGroup, removeGonePeers, vouch } from './membership';
import { forgetEntryError, lastEntryError, recordEntryFailure, writeDeadLetter } from './deadLetters';
import { isRedisError, isRedisTrouble } from '../core/errors';

export interface GroupConsumerOptions {
  /** Connection (one server or a cluster) for processing, acks and trims. */
  redis: RedisClient;
  keys: Keys;
  partitions: number;
  /** Partitions to read (and recover); all `partitions` when absent. */
  onlyPartitions?: number[];
  consumerName: string;
  /** Entries per stream per read. @defaultValue DEFAULT_READ_COUNT */
  readCount?: number;
  /** Block time of a read (ms). @defaultValue 2000 */
  blockMs?: number;
  /**
   * Period of the trim timer (ms), and the least time between two trims of a stream after
   * acks (a trim is a script call that costs Redis ~30 µs: after every batch of a few dozen
   * entries, ~1.5 µs an entry); 0 turns the timer off and trims after every acked batch.
   * @defaultValue 5000
   */
  trimIntervalMs?: number;
  /** Entries pending longer than this (ms) are claimed from their consumer, presumed dead. @defaultValue 30000 */
  claimIdleMs?: number;
  /** An entry delivered this many times without being acked goes to the dead-letter stream. @defaultValue 5 */
  maxDeliveries?: number;
  logger?: Logger;
  /** Counts processed and dead-lettered entries and times each batch. */
  metrics?: Metrics;
}

/** A valid event read from a stream entry. */
export interface DecodedEntry {
  id: string;
  event: ProfileEvent;
}

/** One stream's valid events of a read. */
export interface StreamBatch {
  stream: string;
  entries: DecodedEntry[];
}

/**
 * Streams read by one XREADGROUP, with the dedicated connection that blocks on them. On
 * one server that is every partition at once; on a cluster a command's keys must share a
 * slot, so each partition is its own unit with its own blocking connection.
 */
interface ReadUnit {
  streams: string[];
  blocking?: RedisClient;
  /** CLIENT ID of the blocking connection on the node serving `streams` (see stop()). */
  blockingId?: number;
}

/** XPENDING's extended form: id, consumer, idle ms, deliveries. */
type PendingEntry = [id: string, consumer: string, idleMs: number, deliveries: number];

/**
 * A member of one consumer group reading every stream partition: own pending entries
 * first (after a restart), then new ones; `handle` processes a stream's entries and says
 * which may be acked; after acking, the stream is trimmed below what every group has
 * finished. Subclasses are the realtime and archive consumers. On a cluster each partition
 * is read by its own loop; processing (handle, acks, recovery) is still one at a time.
 */
export abstract class GroupConsumer {
  protected readonly streams: string[];
  protected readonly log: Logger;
  /** Per stream: the id to read from; '0'-based ids while recovering own pending entries, then '>'. */
  private readonly cursor = new Map<string, string>();
  /** See GroupConsumerOptions.trimIntervalMs. */
  private get trimIntervalMs(): number {
    return this.base.trimIntervalMs ?? 5000;
  }
  /** When (performance.now()) each stream was last trimmed after an ack. */
  private readonly trimmedAt = new Map<string, number>();
  private readonly units: ReadUnit[];
  /** Tail of the chain that runs processing one step at a time (see exclusive()). */
  private turn: Promise<unknown> = Promise.resolve();
  private running?: Promise<unknown>;
  private trimTimer?: NodeJS.Timeout;
  private liveTimer?: NodeJS.Timeout;
  private stopping = false;
  private nextClaimAt = 0;
  /** Redis trouble (OOM, gone) met by reads and by processing: logged once per outage. */
  private readonly outage: OutageLog;
  /** Entries acked by this consumer (for summaries and tests). */
  processed = 0;

  constructor(
    readonly group: GroupName,
    protected readonly base: GroupConsumerOptions,
  ) {
    this.streams = base.onlyPartitions ? base.onlyPartitions.map((n) => base.keys.stream(n)) : base.keys.streams(base.partitions);
    this.log = (base.logger ?? silentLogger).child({ component: group, consumer: base.consumerName });
    this.outage = new OutageLog(this.log, 'Redis cannot take the batch (out of memory or unreachable)', 'retrying it in place, not as a new delivery');
    for (const s of this.streams) this.cursor.set(s, '0');
    this.units = isCluster(base.redis) ? this.streams.map((s) => ({ streams: [s] })) : [{ streams: this.streams }];
  }

  /**
   * Processes the valid events of one read (every stream it returned entries of, as one
   * unit: one fold, one fsync) and resolves with the ids that may be acked, by stream (an
   * entry whose effect is not durable yet must not be among them). Deleted and invalid
   * entries never reach it: processRead acks the first and dead-letters the second.
   */
  protected abstract handle(batches: StreamBatch[]): Promise<Map<string, string[]>>;

  /** Creates every consumer group where missing. */
  async init(): Promise<void> {
    await ensureGroups(this.base.redis, this.streams);
  }

  /** Starts the read loop(s) and the trim timer in the background; resolves once the groups exist. */
  async start(): Promise<void> {
    await this.init();
    for (const unit of this.units) {
      const blocking = await duplicateRedis(this.base.redis);
      // The process's main connection reports an outage once; this one's retries are debug.
      blocking.on('error', (err: Error) => this.log.debug({ err: err.message }, 'blocking connection error'));
      unit.blocking = blocking;
      await this.fetchBlockingId(unit);
      blocking.on('ready', () => {
        // Reconnected (Redis restarted, or the network came back): entries this consumer
        // read before and never acked are still its own pending ones; re-read them now
        // (the read ioredis resends on reconnect returns first) rather than after the claim time.
        for (const s of unit.streams) this.cursor.set(s, '0');
        void this.fetchBlockingId(unit);
      });
    }
    const vouchNow = () => vouch(this.base.redis, this.base.keys, this.group, this.base.consumerName, this.log);
    await vouchNow();
    this.liveTimer = setInterval(() => void vouchNow(), LIVE_EVERY_MS);
    const interval = this.trimIntervalMs;
    if (interval > 0) {
      this.trimTimer = setInterval(
        () =>
          void this.trimAll().catch((err) => {
            if (isRedisTrouble(err))
              this.outage.failed(err); // said once per outage
            else this.log.warn({ err }, 'trim failed');
          }),
        interval,
      );
    }
    this.running = Promise.all(this.units.map((unit) => this.loop(unit)));
  }

  /** Asks the node that serves the unit's streams for the id of the unit's blocking connection. */
  private async fetchBlockingId(unit: ReadUnit): Promise<void> {
    try {
      unit.blockingId = (await nodeFor(unit.blocking!, unit.streams[0]).client('ID')) as number;
    } catch (err) {
      unit.blockingId = undefined;
      this.log.debug({ err }, 'CLIENT ID failed; fetched again before the next read');
    }
  }

  /** Runs `fn` after every step queued before it has finished: handle() is never re-entered. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async loop(unit: ReadUnit): Promise<void> {
    while (!this.stopping) {
      try {
        if (Date.now() >= this.nextClaimAt) {
          this.nextClaimAt = Date.now() + Math.min(this.claimIdleMs / 2, 10_000);
          await this.exclusive(() => this.recoverStale());
        }
        if (unit.blockingId === undefined) await this.fetchBlockingId(unit);
        await this.processUnit(unit, true);
        this.outage.succeeded();
      } catch (err) {
        if (this.stopping) break;
        unit.blockingId = undefined; // the connection may have been replaced (failover, reconnect)
        if (isRedisTrouble(err)) {
          // Redis went away or cannot write: once it is back, re-read this consumer's own
          // pending entries at once (a restarted Redis keeps them pending) instead of
          // leaving them to the claim timer.
          for (const s of unit.streams) this.cursor.set(s, '0');
          this.outage.failed(err);
        } else {
          this.log.error({ err }, 'read loop failed; retrying in 1 s');
        }
        if (isRedisError(err, 'NOGROUP')) {
          // Redis lost the groups (restarted without persistence): create them again.
          await this.init().catch((e: Error) => this.log.warn({ err: e.message }, 'cannot recreate consumer groups'));
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /**
   * Stops reading, lets the batch in flight finish (processed and acked), and closes the
   * blocking connections.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.liveTimer) clearInterval(this.liveTimer);
    if (this.running) {
      // Wake each blocked XREADGROUP now instead of waiting out its block time; it then
      // returns as on a timeout, so no entry is read and left unprocessed. A read sent just
      // before `stopping` was seen can reach Redis after the UNBLOCK (another connection):
      // repeat it until every loop has ended.
      let ended = false;
      const loops = this.running.then(
        () => (ended = true),
        () => (ended = true),
      );
      while (!ended) {
        await this.unblockReads();
        await Promise.race([loops, new Promise((r) => setTimeout(r, 100))]);
      }
    }
    await this.running;
    this.running = undefined;
    await this.closeResources();
    await leaveGroup(this.base.redis, this.base.keys, this.streams, this.group, this.base.consumerName, this.log);
    for (const unit of this.units) {
      unit.blocking?.disconnect();
      unit.blocking = undefined;
    }
  }

  /** CLIENT UNBLOCK of each unit's blocking connection (a no-op for one not blocked). */
  private async unblockReads(): Promise<void> {
    await Promise.all(
      this.units.map(async (unit) => {
        if (unit.blockingId === undefined) return;
        try {
          await nodeFor(this.base.redis, unit.streams[0]).client('UNBLOCK', unit.blockingId);
        } catch (err) {
          this.log.debug({ err }, 'CLIENT UNBLOCK failed; waiting for the read to time out');
        }
      }),
    );
  }

  /** Releases what a subclass holds open (files); called once the loop has ended. */
  protected async closeResources(): Promise<void> {}

  /** Processes everything currently readable (own pending entries first), without blocking. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.processOnce(false);
      if (n === 0) return total;
      total += n;
    }
  }

  /**
   * One read of every unit and its processing. Returns the number of entries read (0 =
   * nothing to do).
   */
  async processOnce(block: boolean): Promise<number> {
    let read = 0;
    for (const unit of this.units) read += await this.processUnit(unit, block);
    return read;
  }

  /**
   * One read of a unit's streams and its processing. While recovering this consumer's own
   * pending entries (after a restart) it reads history, which never blocks; then it reads
   * new entries with `>`.
   */
  private async processUnit(unit: ReadUnit, block: boolean): Promise<number> {
    for (;;) {
      const recovering = unit.streams.some((s) => this.cursor.get(s) !== '>');
      const read = await this.readAndProcess(unit, block);
      // A history read that came back empty has switched its streams to '>': read new entries now.
      if (read > 0 || !recovering) return read;
    }
  }

  private async readAndProcess(unit: ReadUnit, block: boolean): Promise<number> {
    const ids = unit.streams.map((s) => this.cursor.get(s)!);
    const recovering = ids.some((id) => id !== '>');
    const conn = block ? (unit.blocking ?? this.base.redis) : this.base.redis;
    const args: (string | number)[] = ['GROUP', this.group, this.base.consumerName, 'COUNT', this.base.readCount ?? DEFAULT_READ_COUNT];
    if (block && !recovering) args.push('BLOCK', this.base.blockMs ?? 2000);
    args.push('STREAMS', ...unit.streams, ...ids);
    const reply = (await conn.call('XREADGROUP', ...args)) as ReadReply;
    const byStream = new Map<string, StreamEntry[]>(reply ?? []);
    const batches: { stream: string; entries: StreamEntry[] }[] = [];
    for (const [i, stream] of unit.streams.entries()) {
      const entries = byStream.get(stream) ?? [];
      // Moved only from the id this read used: a reconnect meanwhile may have set it back
      // to '0' (re-read own pending entries), which this reply must not undo.
      if (ids[i] !== '>' && this.cursor.get(stream) === ids[i]) {
        // Pending history exhausted: switch this stream to new entries.
        if (entries.length === 0) this.cursor.set(stream, '>');
        else this.cursor.set(stream, entries[entries.length - 1][0]);
      }
      if (entries.length > 0) batches.push({ stream, entries });
    }
    // Every stream of the read in one processing step: its round trips (and an archiver's
    // fsync) are paid once per read, not once per partition.
    if (batches.length > 0) await this.exclusive(() => this.processRead(batches));
    return batches.reduce((n, b) => n + b.entries.length, 0);
  }

  /**
   * Decodes and checks each entry (the stream is writable by anyone with Redis access, so
   * consumers do not trust it), hands the valid events to handle(), then XACKs what may be
   * acked and trims the streams.
   */
  private async processRead(batches: { stream: string; entries: StreamEntry[] }[]): Promise<void> {
    const timer = this.base.metrics?.consumerBatchSeconds.startTimer({ group: this.group });
    const toAck = new Map<string, string[]>();
    const valid: StreamBatch[] = [];
    for (const { stream, entries } of batches) {
      const acks: string[] = [];
      const decoded: DecodedEntry[] = [];
      for (const [id, fields] of entries) {
        if (fields === null) {
          acks.push(id); // deleted from the stream while pending: nothing left to process
          continue;
        }
        const parsed = validateEvent(fromStreamFields(fields), 0, { now: Date.now(), maxFutureSkewMs: Infinity, stored: true });
        if (!parsed.ok) {
          await this.inPlace(() => this.deadLetter(stream, id, fields, describeErrors(parsed.errors)));
          acks.push(id);
          continue;
        }
        decoded.push({ id, event: parsed.event });
      }
      toAck.set(stream, acks);
      if (decoded.length > 0) valid.push({ stream, entries: decoded });
    }
    if (valid.length > 0) {
      try {
        for (const [stream, ids] of await this.inPlace(() => this.handle(valid))) toAck.get(stream)!.push(...ids);
      } catch (err) {
        if (!isRedisTrouble(err))
          for (const b of valid)
            await this.recordFailure(
              b.stream,
              b.entries.map((d) => d.id),
              err,
            );
        throw err;
      }
    }
    // The streams' acks (and trims) at once: one round trip on one server.
    await Promise.all(
      [...toAck]
        .filter(([, ids]) => ids.length > 0)
        .map(async ([stream, ids]) => {
          await this.inPlace(() => this.base.redis.xack(stream, this.group, ...ids));
          this.processed += ids.length;
          this.base.metrics?.processed.inc({ group: this.group }, ids.length);
          const at = performance.now();
          if (at - (this.trimmedAt.get(stream) ?? -Infinity) < this.trimIntervalMs) return;
          this.trimmedAt.set(stream, at);
          await trimBelowSafeId(this.base.redis, stream).catch((err: Error) => this.log.debug({ err }, 'trim failed; the next one catches up'));
        }),
    );
    timer?.();
  }

  /** Keeps the error an entry's processing met, for its dead letter (best effort: a failure here is logged). */
  protected async recordFailure(stream: string, ids: readonly string[], err: unknown): Promise<void> {
    await recordEntryFailure(this.base.redis, this.base.keys, stream, this.group, ids, err).catch((e: unknown) =>
      this.log.debug({ err: errorText(e) }, 'could not record the error of failing entries'),
    );
  }

  /**
   * Runs one step of processing (handle, an ack, a dead letter) until Redis takes it: on
   * Redis trouble (out of memory, unreachable, loading: isRedisTrouble) it waits (0.25 s,
   * doubling to 5 s) and runs the same step again on the same entries, which stay this
   * consumer's and are not delivered again, so an outage never counts toward
   * maxDeliveries. Any other failure, or a stop, throws: the entries stay pending.
   */
  private async inPlace<T>(step: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await step();
        this.outage.succeeded();
        return result;
      } catch (err) {
        if (!isRedisTrouble(err) || this.stopping) throw err;
        this.outage.failed(err);
        const until = Date.now() + Math.min(250 * 2 ** attempt, 5000);
        while (Date.now() < until && !this.stopping) await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Trims every partition below what all groups have finished. */
  async trimAll(): Promise<number> {
    let trimmed = 0;
    for (const stream of this.streams) trimmed += Math.max(0, await trimBelowSafeId(this.base.redis, stream));
    return trimmed;
  }

  private get claimIdleMs(): number {
    return this.base.claimIdleMs ?? 30_000;
  }

  /**
   * Recovery of other consumers' work, on every partition: entries pending longer than
   * `claimIdleMs` and delivered `maxDeliveries` times go to the dead-letter stream (XADD,
   * then XACK); the other idle ones are claimed with XAUTOCLAIM and processed here (ids it
   * reports as deleted from the stream are already gone from the PEL); then consumers that
   * have been idle that long with nothing pending are removed from the group. Idle pending
   * entries of this consumer itself (a failed script) are retried the same way. Returns the
   * number of entries claimed or dead-lettered.
   */
  async recoverStale(): Promise<number> {
    const redis = this.base.redis;
    const idle = this.claimIdleMs;
    const maxDeliveries = this.base.maxDeliveries ?? 5;
    let recovered = 0;
    for (const stream of this.streams) {
      const stale = (await redis.xpending(stream, this.group, 'IDLE', idle, '-', '+', 1000)) as PendingEntry[];
      for (const [id, consumer, , deliveries] of stale) {
        if (deliveries < maxDeliveries) continue;
        const entry = await redis.xrange(stream, id, id);
        const last = await lastEntryError(redis, this.base.keys, stream, id);
        const error = `not acked after ${deliveries} deliveries (last consumer ${consumer})${last ? `; last error: ${last}` : ''}`;
        if (entry.length > 0) await this.deadLetter(stream, id, entry[0][1], error, deliveries);
        await redis.xack(stream, this.group, id);
        if (last) await forgetEntryError(redis, this.base.keys, stream, id);
        recovered++;
      }
      let cursor = '0-0';
      do {
        const [next, entries, deleted] = (await redis.call(
          'XAUTOCLAIM',
          stream,
          this.group,
          this.base.consumerName,
          idle,
          cursor,
          'COUNT',
          this.base.readCount ?? DEFAULT_READ_COUNT,
        )) as [string, StreamEntry[], string[]];
        if (deleted.length > 0) this.log.warn({ stream, ids: deleted }, 'claimed entries were deleted from the stream');
        if (entries.length > 0) {
          this.log.info({ stream, count: entries.length }, 'claimed idle entries from another consumer');
          recovered += entries.length;
          await this.processRead([{ stream, entries }]);
        }
        cursor = next;
      } while (cursor !== '0-0' && !this.stopping);
      await removeGonePeers(redis, this.base.keys, stream, this.group, this.base.consumerName, idle, this.log);
    }
    return recovered;
  }

  /** Copies an unprocessable entry to the dead-letter stream; the caller acks it afterwards. */
  protected async deadLetter(stream: string, id: string, fields: string[], error: string, deliveries = 1): Promise<void> {
    await writeDeadLetter(this.base.redis, this.base.keys, { stream, id, group: this.group, consumer: this.base.consumerName, deliveries, error, fields });
    // Said (and counted) only once the letter is written.
    this.log.warn({ stream, id, error }, 'entry dead-lettered');
    this.base.metrics?.deadLettered.inc({ group: this.group });
  }
}
