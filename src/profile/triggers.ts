import type { Redis } from 'ioredis';
import { RedisClient, duplicateRedis, nodeFor } from '../redis/client';
import { Keys, partitionFor } from '../core/keys';

/** One trigger firing as read from its partition's stream. */
export interface Firing {
  /** Stream entry id in trig:{p<partition>}. */
  entryId: string;
  partition: number;
  trigger: string;
  user_id: string;
  /** When it fired (ms): the realtime consumer's time of the window update. */
  at: number;
  /** The last event of the update that made the condition true. */
  event_id: string;
  /** The condition's tags and their values then (null: no value). */
  values: Record<string, number | null>;
  /** The reader's cursor just after this firing (what to resume from once it is handled). */
  cursor: string;
}

const ENTRY_ID = /^\d+-\d+$/;
const MAX_U64 = 2n ** 64n - 1n;

/** A stream entry id Redis accepts: two unsigned 64-bit integers (ms-seq). */
function validEntryId(id: string): boolean {
  return ENTRY_ID.test(id) && id.split('-').every((part) => BigInt(part) <= MAX_U64);
}

/**
 * Reads the trigger streams of every partition from a cursor (one stream id per
 * partition, comma-separated: what an SSE client sends back as Last-Event-ID), blocking
 * until firings arrive. Each node's streams are read on a connection of its own (a blocked
 * XREAD holds it), one XREAD per node over all its partitions.
 */
export class FiringReader {
  private readonly ids: string[];
  private readonly nodes: Map<Redis, { conn: Redis; partitions: number[] }>;
  private readonly inflight = new Map<Redis, Promise<[Redis, [string, [string, string[]][]][] | null]>>();
  private readonly partitionOf = new Map<string, number>();

  private constructor(
    private readonly keys: Keys,
    ids: string[],
    nodes: Map<Redis, { conn: Redis; partitions: number[] }>,
  ) {
    this.ids = ids;
    this.nodes = nodes;
    ids.forEach((_, p) => this.partitionOf.set(keys.triggerStream(p), p));
  }

  /** A cursor's stream ids, or null when it is not one id per partition. */
  static parseCursor(text: string, partitions: number): string[] | null {
    const ids = text.split(',');
    return ids.length === partitions && ids.every(validEntryId) ? ids : null;
  }

  /** A reader after `cursor` (parseCursor's ids), or after the newest firing of every partition. */
  static async open(redis: RedisClient, keys: Keys, partitions: number, cursor?: string[]): Promise<FiringReader> {
    const ids = cursor ?? (await newestFiringIds(redis, keys, partitions));
    // Each node's partitions, read on a ready connection of its own.
    const nodes = new Map<Redis, { conn: Redis; partitions: number[] }>();
    for (let p = 0; p < partitions; p++) {
      const node = nodeFor(redis, keys.triggerStream(p));
      const group = nodes.get(node) ?? { conn: node, partitions: [] };
      group.partitions.push(p);
      nodes.set(node, group);
    }
    try {
      for (const group of nodes.values()) group.conn = (await duplicateRedis(group.conn)) as Redis;
    } catch (err) {
      for (const group of nodes.values()) if (!nodes.has(group.conn)) group.conn.disconnect();
      throw err;
    }
    return new FiringReader(keys, ids, nodes);
  }

  /** The position after every firing returned so far: the cursor to resume from. */
  cursor(): string {
    return this.ids.join(',');
  }

  /** The next firings (oldest first per partition), waiting up to `blockMs` for some; [] when none came. */
  async next(blockMs: number): Promise<Firing[]> {
    for (const [node, group] of this.nodes) {
      if (this.inflight.has(node)) continue;
      const streams = group.partitions.map((p) => this.keys.triggerStream(p));
      const read = group.conn.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', ...streams, ...group.partitions.map((p) => this.ids[p]));
      this.inflight.set(
        node,
        read.then((reply) => [node, reply as [string, [string, string[]][]][] | null]),
      );
    }
    const [node, reply] = await Promise.race(this.inflight.values());
    this.inflight.delete(node);
    const out: Firing[] = [];
    for (const [stream, entries] of reply ?? []) {
      const partition = this.partitionOf.get(stream)!;
      for (const [entryId, fields] of entries) {
        this.ids[partition] = entryId;
        out.push(toFiring(entryId, partition, fields, this.cursor()));
      }
    }
    return out;
  }

  close(): void {
    for (const { conn } of this.nodes.values()) conn.disconnect();
  }
}

function toFiring(entryId: string, partition: number, fields: string[], cursor: string): Firing {
  const f: Firing = { entryId, partition, trigger: '', user_id: '', at: 0, event_id: '', values: {}, cursor };
  for (let i = 0; i < fields.length; i += 2) {
    const [name, value] = [fields[i], fields[i + 1]];
    if (name === 'trigger' || name === 'user_id' || name === 'event_id') f[name] = value;
    else if (name === 'at') f.at = Number(value);
    else f.values[name] = value === '' ? null : Number(value);
  }
  return f;
}

/** The firings of one partition after entry `after` up to `upTo` (inclusive), oldest first. */
export async function firingsAfter(redis: RedisClient, keys: Keys, partition: number, after: string, upTo: string): Promise<Firing[]> {
  const out: Firing[] = [];
  let from = `(${after}`;
  for (;;) {
    const entries = await redis.xrange(keys.triggerStream(partition), from, upTo, 'COUNT', 1000);
    for (const [entryId, fields] of entries) out.push(toFiring(entryId, partition, fields, ''));
    if (entries.length < 1000) return out;
    from = `(${entries[entries.length - 1][0]}`;
  }
}

/** The newest firing's id of every partition ('0-0' for an empty one). */
export function newestFiringIds(redis: RedisClient, keys: Keys, partitions: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      const [last] = await redis.xrevrange(keys.triggerStream(p), '+', '-', 'COUNT', 1);
      return last ? last[0] : '0-0';
    }),
  );
}

/** A firing as the dashboard shows it. */
export type FiringSummary = Omit<Firing, 'cursor' | 'entryId' | 'partition'>;

const summary = (entryId: string, p: number, fields: string[]): FiringSummary => {
  const { cursor: _c, entryId: _e, partition: _p, ...f } = toFiring(entryId, p, fields, '');
  return f;
};

/** The newest firings of every partition (`perPartition` each), newest first. */
export async function recentFirings(redis: RedisClient, keys: Keys, partitions: number, perPartition = 20): Promise<FiringSummary[]> {
  const lists = await Promise.all(
    Array.from({ length: partitions }, async (_, p) =>
      (await redis.xrevrange(keys.triggerStream(p), '+', '-', 'COUNT', perPartition)).map(([id, fields]) => summary(id, p, fields)),
    ),
  );
  return lists.flat().sort((a, b) => b.at - a.at);
}

/** A user's firings among the newest `scan` of their partition's stream, newest first (bounded work). */
export async function userFirings(redis: RedisClient, keys: Keys, partitions: number, userId: string, scan = 1000): Promise<FiringSummary[]> {
  const p = partitionFor(userId, partitions);
  const entries = await redis.xrevrange(keys.triggerStream(p), '+', '-', 'COUNT', scan);
  return entries.map(([id, fields]) => summary(id, p, fields)).filter((f) => f.user_id === userId);
}
