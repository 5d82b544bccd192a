import type { Redis } from 'ioredis';
import { EventType, ProfileEvent, fromStreamFields, validateEvent } from '../event';
import { Keys } from '../keys';
import { callScript } from '../lua/scripts';
import { Logger, silentLogger } from '../logger';
import { WINDOW_FIELDS, WindowTag, longestWindow, longestWindowFor } from '../tags';
import { GROUPS, ReadReply, StreamEntry, ensureGroup } from './groups';

export interface RealtimeConsumerOptions {
  /** Connection for scripts and acks. */
  redis: Redis;
  /** Dedicated connection for blocking XREADGROUP; created from `redis` when absent (and then closed by `stop`). */
  blockingRedis?: Redis;
  keys: Keys;
  partitions: number;
  tags: readonly WindowTag[];
  consumerName: string;
  /** Entries per read. @defaultValue 500 */
  readCount?: number;
  /** Block time of a read (ms). @defaultValue 2000 */
  blockMs?: number;
  /** Current time in ms, passed to the window script as "now". @defaultValue Date.now */
  clock?: () => number;
  logger?: Logger;
}

/**
 * The realtime hash (for people, not for bidders) gets its tags rewritten on every batch
 * for windows of up to RT_EXACT_MAX_EVENTS events; a larger window of N events at most
 * once per N * RT_MS_PER_EVENT ms, so rewrites scan at most ~1000 events per window and
 * second however fast a user's events come.
 */
const RT_EXACT_MAX_EVENTS = 1000;
const RT_MS_PER_EVENT = 1;

interface TypePlan {
  longest: number;
  tagArgs: (string | number)[];
}

/**
 * The realtime consumer: reads the stream partitions as a member of group `realtime`,
 * folds each event into the user's sliding windows with one EVALSHA of updateWindows.lua,
 * and acks an entry only after its script returned.
 */
export class RealtimeConsumer {
  readonly group = GROUPS.realtime;
  private readonly streams: string[];
  private readonly plans = new Map<EventType, TypePlan>();
  private readonly overallLongest: number;
  private readonly clock: () => number;
  private readonly log: Logger;
  /** Per stream: the id to read from; '0'-based ids while recovering own pending entries, then '>'. */
  private readonly cursor = new Map<string, string>();
  private blocking?: Redis;
  /** CLIENT ID of the blocking connection, fetched while it is idle (see stop()). */
  private blockingId?: number;
  private ownsBlocking = false;
  private running?: Promise<void>;
  private stopping = false;
  /** Events folded into windows, duplicates and too-old ones included (for summaries). */
  processed = 0;

  constructor(private readonly opts: RealtimeConsumerOptions) {
    this.streams = opts.keys.streams(opts.partitions);
    this.clock = opts.clock ?? Date.now;
    this.log = (opts.logger ?? silentLogger).child({ component: 'realtime', consumer: opts.consumerName });
    this.overallLongest = longestWindow(opts.tags);
    for (const type of new Set(opts.tags.map((t) => t.event))) {
      const tags = opts.tags.filter((t) => t.event === type);
      const tagArgs: (string | number)[] = [tags.length];
      for (const t of tags) tagArgs.push(t.name, t.aggregation, t.field ? WINDOW_FIELDS.indexOf(t.field) + 1 : 0, t.windowMs);
      this.plans.set(type, { longest: longestWindowFor(opts.tags, type), tagArgs });
    }
    for (const s of this.streams) this.cursor.set(s, '0');
  }

  /** Creates the consumer group where missing. */
  async init(): Promise<void> {
    await ensureGroup(this.opts.redis, this.streams, this.group);
  }

  /** Starts the read loop in the background; resolves once the groups exist. */
  async start(): Promise<void> {
    await this.init();
    if (!this.opts.blockingRedis) {
      this.blocking = this.opts.redis.duplicate();
      this.ownsBlocking = true;
    } else {
      this.blocking = this.opts.blockingRedis;
    }
    const blocking = this.blocking;
    const fetchId = async () => {
      this.blockingId = (await blocking.client('ID')) as number;
    };
    await fetchId();
    blocking.on('ready', () => void fetchId().catch(() => undefined));
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.processOnce(true);
      } catch (err) {
        if (this.stopping) break;
        this.log.error({ err }, 'read loop failed; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /**
   * Stops reading, lets the batch in flight finish (its entries processed and acked), and
   * closes the blocking connection if this consumer created it.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.blockingId !== undefined && this.running) {
      // Wake the blocked XREADGROUP now instead of waiting out its block time; it then
      // returns as on a timeout, so no entry is read and left unprocessed.
      try {
        await this.opts.redis.client('UNBLOCK', this.blockingId);
      } catch (err) {
        this.log.debug({ err }, 'CLIENT UNBLOCK failed; waiting for the read to time out');
      }
    }
    await this.running;
    this.running = undefined;
    if (this.ownsBlocking) this.blocking?.disconnect();
  }

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
   * One read and its processing. Returns the number of entries read (0 = nothing to do).
   * While recovering this consumer's own pending entries (after a restart) it reads
   * history, which never blocks; then it reads new entries with `>`.
   */
  async processOnce(block: boolean): Promise<number> {
    for (;;) {
      const recovering = this.streams.some((s) => this.cursor.get(s) !== '>');
      const read = await this.readAndProcess(block);
      // A history read that came back empty has switched its streams to '>': read new entries now.
      if (read > 0 || !recovering) return read;
    }
  }

  private async readAndProcess(block: boolean): Promise<number> {
    const ids = this.streams.map((s) => this.cursor.get(s)!);
    const recovering = ids.some((id) => id !== '>');
    const conn = block ? (this.blocking ?? this.opts.redis) : this.opts.redis;
    const args: (string | number)[] = ['GROUP', this.group, this.opts.consumerName, 'COUNT', this.opts.readCount ?? 500];
    if (block && !recovering) args.push('BLOCK', this.opts.blockMs ?? 2000);
    args.push('STREAMS', ...this.streams, ...ids);
    const reply = (await conn.call('XREADGROUP', ...args)) as ReadReply;
    const byStream = new Map<string, StreamEntry[]>(reply ?? []);
    let read = 0;
    for (const stream of this.streams) {
      const entries = byStream.get(stream) ?? [];
      const cursor = this.cursor.get(stream)!;
      if (cursor !== '>') {
        // Pending history exhausted: switch this stream to new entries.
        if (entries.length === 0) this.cursor.set(stream, '>');
        else this.cursor.set(stream, entries[entries.length - 1][0]);
      }
      if (entries.length === 0) continue;
      read += entries.length;
      await this.processEntries(stream, entries);
    }
    return read;
  }

  private async processEntries(stream: string, entries: StreamEntry[]): Promise<void> {
    const now = this.clock();
    const toAck: string[] = [];
    const scripted: string[] = [];
    const pipeline = this.opts.redis.pipeline();
    const parsedEntries = entries.map(([id, fields]) => ({
      id,
      fields,
      parsed: fields === null ? null : validateEvent(fromStreamFields(fields), 0, { now, maxFutureSkewMs: Infinity, stored: true }),
    }));
    // The realtime hash shows tags as of each user's and type's last event of the batch.
    const lastOfUserType = new Map<string, string>();
    for (const { id, parsed } of parsedEntries) {
      if (parsed?.ok) lastOfUserType.set(`${parsed.event.user_id}\0${parsed.event.type}`, id);
    }
    for (const { id, fields, parsed } of parsedEntries) {
      if (fields === null || parsed === null) {
        // Deleted from the stream while pending: nothing left to process.
        toAck.push(id);
        continue;
      }
      if (!parsed.ok) {
        await this.deadLetter(stream, id, fields, parsed.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
        toAck.push(id);
        continue;
      }
      const e = parsed.event;
      const args = this.scriptArgs(e, now, lastOfUserType.get(`${e.user_id}\0${e.type}`) === id);
      if (args === null) {
        toAck.push(id); // no tag uses this type, or older than its longest window
        continue;
      }
      callScript(pipeline, 'updateWindows', args);
      scripted.push(id);
    }
    if (scripted.length > 0) {
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([err], i) => {
        if (err) this.log.error({ err, stream, id: scripted[i] }, 'window update failed; entry left pending for retry');
        else toAck.push(scripted[i]);
      });
    }
    if (toAck.length > 0) await this.opts.redis.xack(stream, this.group, ...toAck);
    this.processed += toAck.length;
  }

  /** KEYS and ARGV of updateWindows.lua for one event, or null when the event touches no window. */
  private scriptArgs(e: ProfileEvent, now: number, writeTags: boolean): (string | number)[] | null {
    const plan = this.plans.get(e.type);
    if (!plan || e.ts < now - plan.longest) return null;
    const k = this.opts.keys;
    const packed = WINDOW_FIELDS.map((f) => (e[f] === undefined ? '' : String(e[f]))).join('\x1f');
    return [
      k.window(e.user_id, e.type),
      k.windowValues(e.user_id, e.type),
      k.realtime(e.user_id),
      now,
      e.ts,
      e.event_id,
      packed,
      plan.longest,
      this.overallLongest,
      writeTags ? 1 : 0,
      RT_EXACT_MAX_EVENTS,
      RT_MS_PER_EVENT,
      e.type,
      ...plan.tagArgs,
    ];
  }

  /** Copies an unprocessable entry to the dead-letter stream (before it is acked). */
  private async deadLetter(stream: string, id: string, fields: string[], error: string): Promise<void> {
    this.log.warn({ stream, id, error }, 'invalid entry dead-lettered');
    await this.opts.redis.xadd(
      this.opts.keys.deadLetters(), '*',
      'stream', stream, 'id', id, 'group', this.group, 'consumer', this.opts.consumerName,
      'error', error, 'fields', JSON.stringify(fields),
    );
  }
}
