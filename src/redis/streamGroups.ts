import { RedisClient, isCluster, nodeFor, pipelineByNode } from './client';
import { Scripts, runScript } from '../lua/scripts';
import { Keys } from '../core/keys';
import { isNoSuchKey, isRedisError, isRedisTrouble } from '../core/errors';
import { compareEntryIds } from '../core/streamIds';

/**
 * The stream partitions and their consumer groups, in one place: the groups' names and
 * creation, trimming below what every group finished, and what XINFO says of partitions,
 * groups and consumers (status, lag, who archives).
 */
/** Consumer group names. */
export const GROUPS = { realtime: 'realtime', archive: 'archive' } as const;
export type GroupName = (typeof GROUPS)[keyof typeof GROUPS];

/** Every group that must have finished an entry before it may be trimmed. */
export const REQUIRED_GROUPS: GroupName[] = [GROUPS.realtime, GROUPS.archive];

/**
 * Creates each group on every stream (creating empty streams as needed) reading from the
 * beginning, so entries written before a group existed are still processed by it.
 * Existing groups are left as they are.
 */
export async function ensureGroups(redis: RedisClient, streams: string[], groups: readonly string[] = REQUIRED_GROUPS): Promise<void> {
  await Promise.all(
    streams.flatMap((stream) =>
      groups.map(async (group) => {
        try {
          await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
        } catch (err) {
          if (isRedisError(err, 'BUSYGROUP')) return;
          // A Redis out of memory refuses XGROUP CREATE even for a group that exists: a
          // process may still start when every group is there.
          if (isRedisTrouble(err) && (await groupExists(redis, stream, group).catch(() => false))) return;
          throw err;
        }
      }),
    ),
  );
}

async function groupExists(redis: RedisClient, stream: string, group: string): Promise<boolean> {
  const groups = (await nodeFor(redis, stream).xinfo('GROUPS', stream)) as unknown[][];
  return groups.map(parseGroup).some((g) => g.name === group);
}

/**
 * Trims `stream` below the lowest id any group still needs (trimStream.lua); never below
 * an entry some group has not finished, and not at all while a required group is missing.
 * Returns the number of entries removed (-1: a required group is missing).
 */
export async function trimBelowSafeId(redis: RedisClient, stream: string): Promise<number> {
  return runScript(redis, Scripts.trimStream(stream, REQUIRED_GROUPS));
}

/**
 * Archive consumers seen on any of the partitions within `activeWithinMs` (the claim
 * time): they may be writing the ODS right now, so the ODS must not be rewritten.
 */
export async function activeArchivers(redis: RedisClient, keys: Keys, partitions: number, activeWithinMs: number): Promise<string[]> {
  const active = new Set<string>();
  for (const stream of keys.streams(partitions)) {
    const consumers = await groupConsumers(redis, stream, GROUPS.archive).catch(() => []); // no stream or group: nobody archives it
    for (const c of consumers) if (c.idle < activeWithinMs) active.add(c.name);
  }
  return [...active];
}

/** One stream entry as XREADGROUP returns it; `fields` is null for an entry deleted while pending. */
export type StreamEntry = [id: string, fields: string[] | null];
/** XREADGROUP's reply: per stream, its entries. */
export type ReadReply = [stream: string, entries: StreamEntry[]][] | null;

/** One consumer group's progress on one stream partition. */
export interface GroupStatus {
  name: string;
  consumers: number;
  /** Delivered but not yet acked. */
  pending: number;
  /** Entries not yet delivered to the group (null when Redis cannot tell, e.g. after XDEL). */
  lag: number | null;
  /** Entries delivered to the group since it was created (null when Redis cannot tell). */
  entries_read: number | null;
  last_delivered_id: string;
}

export interface PartitionStatus {
  partition: number;
  stream: string;
  /** `host:port` of the cluster master serving the partition (absent on a single server). */
  node?: string;
  length: number;
  /** Entries ever added to the partition (trimmed ones included). */
  entries_added: number;
  /** Id of the newest entry ever added ("0-0" for a stream never written). */
  last_id: string;
  /** Id of the oldest entry still in the stream, or null when it is empty. */
  first_id: string | null;
  groups: GroupStatus[];
}

/**
 * Past this many entries a group's lag is not counted entry by entry (see exactLag). The
 * count is an XRANGE that returns the entries: 100 cost Redis 0.08 ms, 10,000 (the bound
 * before) 7.8 ms (15.6 on a busy machine), and a status of 8 partitions with both groups
 * behind counted 16 of them while the backlog waited, every 100 ms when `profile simulate`
 * polls GET /status until the realtime group has caught up.
 */
const COUNT_LAG_UP_TO = 100;

/**
 * Length and per-group progress of every stream partition (XINFO STREAM + GROUPS, one
 * pipeline per node), with each group's lag made exact (exactLag), counted entry by entry
 * up to `countLagUpTo` (0: whether a group has caught up is still exact, see exactLag).
 */
export async function streamStatus(redis: RedisClient, keys: Keys, partitions: number, countLagUpTo = COUNT_LAG_UP_TO): Promise<PartitionStatus[]> {
  const status = await rawStreamStatus(redis, keys, partitions);
  await exactLag(redis, status, countLagUpTo);
  return status;
}

/**
 * XINFO's lag is entries-added minus the group's entries-read, and Redis 7.0 does not restore
 * entries-read from the AOF: after a restart it stayed thousands too high, on empty streams
 * too. The entries a group has not read are exactly those after its last-delivered id, and
 * they are all still in the stream (nothing a group has not finished is trimmed): the lag
 * is 0 when that id is the stream's newest, the stream's length when its oldest entry is
 * newer, and otherwise counted by XRANGE (up to `upTo`; past it, the smaller of Redis's
 * figure and the length, and at least 1).
 */
async function exactLag(redis: RedisClient, status: PartitionStatus[], upTo: number): Promise<void> {
  const toCount: [PartitionStatus, GroupStatus][] = [];
  const behind = (p: PartitionStatus, g: GroupStatus) => Math.max(1, Math.min(g.lag ?? p.length, p.length));
  for (const p of status) {
    for (const g of p.groups) {
      if (compareEntryIds(g.last_delivered_id, p.last_id) >= 0) g.lag = 0;
      else if (p.first_id === null) g.lag = 0;
      else if (compareEntryIds(p.first_id, g.last_delivered_id) > 0) g.lag = p.length;
      else if (upTo > 0) toCount.push([p, g]);
      else g.lag = behind(p, g);
    }
  }
  if (toCount.length === 0) return;
  const counted = await pipelineByNode(
    redis,
    toCount,
    ([p]) => p.stream,
    (pipe, [p, g]) => pipe.xrange(p.stream, `(${g.last_delivered_id}`, '+', 'COUNT', upTo + 1),
  );
  toCount.forEach(([p, g], i) => {
    const [err, entries] = counted[i];
    const n = err ? null : (entries as unknown[]).length;
    g.lag = n !== null && n <= upTo ? n : behind(p, g);
  });
}

async function rawStreamStatus(redis: RedisClient, keys: Keys, partitions: number): Promise<PartitionStatus[]> {
  const streams = keys.streams(partitions);
  const queries = streams.flatMap(
    (s) =>
      [
        ['STREAM', s],
        ['GROUPS', s],
      ] as const,
  );
  const results = await pipelineByNode(
    redis,
    queries,
    ([, s]) => s,
    (p, [what, s]) => p.xinfo(what as 'STREAM', s),
    1,
    { direct: true },
  );
  return streams.map((stream, partition) => {
    const [streamErr, streamInfo] = results[partition * 2];
    const [groupsErr, groups] = results[partition * 2 + 1];
    // A stream that does not exist yet answers "no such key": report it empty.
    if (streamErr && !isNoSuchKey(streamErr)) throw streamErr;
    const info = streamErr ? {} : pairs(streamInfo as unknown[]);
    const first = info['first-entry'] as [string, unknown] | null | undefined;
    const node = isCluster(redis) ? nodeFor(redis, stream).options : undefined;
    return {
      partition,
      stream,
      ...(node ? { node: `${node.host}:${node.port}` } : {}),
      length: Number(info.length ?? 0),
      entries_added: Number(info['entries-added'] ?? 0),
      last_id: String(info['last-generated-id'] ?? '0-0'),
      first_id: first ? first[0] : null,
      groups: groupsErr ? [] : (groups as unknown[][]).map(parseGroup),
    };
  });
}

/** One consumer of a group on one partition, as XINFO CONSUMERS reports it. */
export interface ConsumerInfo {
  name: string;
  pending: number;
  /** ms since the consumer last read or claimed. */
  idle: number;
}

/**
 * The consumers of `group` on `stream` (XINFO CONSUMERS, sent to the stream's master by
 * hand: ioredis cannot find XINFO's key). Throws when the stream or group does not exist.
 */
export async function groupConsumers(redis: RedisClient, stream: string, group: string): Promise<ConsumerInfo[]> {
  const reply = (await nodeFor(redis, stream).xinfo('CONSUMERS', stream, group)) as unknown[][];
  return reply.map((flat) => {
    const info = pairs(flat);
    return { name: String(info.name), pending: Number(info.pending), idle: Number(info.idle) };
  });
}

/** What `group` has done on one partition: see groupProgress. */
export interface GroupProgress {
  /** Redis's clock (ms) when read; only when asked for (`withTime`). */
  nowMs?: number;
  /** False when the stream does not exist (nothing was ever added to it). */
  streamExists: boolean;
  /** The group's last-delivered id and the oldest id it has pending (null: none); undefined when the group does not exist. */
  group?: { lastDelivered: string; oldestPending: string | null };
}

/**
 * How far `group` has got on `stream`, read on the node that serves it in one round trip:
 * XINFO GROUPS and the XPENDING summary pipelined (TIME first with `withTime`). Any other
 * error (a Redis user without XPENDING, Redis gone) throws.
 */
export async function groupProgress(redis: RedisClient, stream: string, group: GroupName, withTime = false): Promise<GroupProgress> {
  const pipeline = nodeFor(redis, stream).pipeline();
  if (withTime) pipeline.time();
  const replies = ((await pipeline.xinfo('GROUPS', stream).xpending(stream, group).exec()) ?? []) as [Error | null, unknown][];
  const out: GroupProgress = { streamExists: true };
  if (withTime) {
    const [err, time] = replies.shift()!;
    if (err) throw err;
    const [s, us] = time as [string, string];
    out.nowMs = Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }
  const [[groupsErr, groups], [pendingErr, pending]] = replies;
  if (groupsErr) {
    if (!isNoSuchKey(groupsErr)) throw groupsErr;
    return { ...out, streamExists: false };
  }
  const info = (groups as unknown[][]).map(pairs).find((g) => g.name === group);
  if (!info) return out;
  if (pendingErr) throw pendingErr;
  return { ...out, group: { lastDelivered: String(info['last-delivered-id']), oldestPending: (pending as [number, string | null])[1] } };
}

/** A flat [name, value, ...] reply (XINFO) as an object. */
function pairs(flat: unknown[]): Record<string, unknown> {
  const info: Record<string, unknown> = {};
  for (let i = 0; i < flat.length; i += 2) info[flat[i] as string] = flat[i + 1];
  return info;
}

/**
 * True when `group` has processed everything in the partition: nothing pending and
 * nothing undelivered. Uses XINFO's lag, or the ids when Redis reports the lag as unknown.
 */
export function groupCaughtUp(p: PartitionStatus, group: string): boolean {
  const g = p.groups.find((x) => x.name === group);
  if (!g) return p.length === 0;
  if (g.pending > 0) return false;
  if (g.lag !== null) return g.lag === 0;
  return g.last_delivered_id === p.last_id;
}

function parseGroup(flat: unknown[]): GroupStatus {
  const info = pairs(flat);
  return {
    name: String(info.name),
    consumers: Number(info.consumers),
    pending: Number(info.pending),
    lag: info.lag === null || info.lag === undefined ? null : Number(info.lag),
    entries_read: info['entries-read'] === null || info['entries-read'] === undefined ? null : Number(info['entries-read']),
    last_delivered_id: String(info['last-delivered-id']),
  };
}
