import { RedisClient, isCluster, nodeFor, pipelineByNode } from './client';
import { Keys } from '../core/keys';
import { isNoSuchKey } from '../core/errors';

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

/** Length and per-group progress of every stream partition (XINFO STREAM + GROUPS, one pipeline per node). */
export async function streamStatus(redis: RedisClient, keys: Keys, partitions: number): Promise<PartitionStatus[]> {
  const streams = keys.streams(partitions);
  const queries = streams.flatMap((s) => [['STREAM', s], ['GROUPS', s]] as const);
  const results = await pipelineByNode(redis, queries, ([, s]) => s, (p, [what, s]) => p.xinfo(what as 'STREAM', s), 1, { direct: true });
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
