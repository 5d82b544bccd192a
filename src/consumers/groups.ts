import { RedisClient, nodeFor } from '../redis/client';
import { Scripts, runScript } from '../lua/scripts';
import { Keys } from '../core/keys';
import { groupConsumers } from '../redis/streamStatus';
import { isRedisError, isRedisTrouble } from '../core/errors';

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
  return groups.some((g) => g[1] === group);
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
