import type { Redis } from 'ioredis';

/** Consumer group names. */
export const GROUPS = { realtime: 'realtime' } as const;

/**
 * Creates `group` on every stream (creating empty streams as needed) reading from the
 * beginning, so entries written before the group existed are still processed.
 * An existing group is left as it is.
 */
export async function ensureGroup(redis: Redis, streams: string[], group: string): Promise<void> {
  await Promise.all(
    streams.map(async (stream) => {
      try {
        await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      }
    }),
  );
}

/** One stream entry as XREADGROUP returns it; `fields` is null for an entry deleted while pending. */
export type StreamEntry = [id: string, fields: string[] | null];
/** XREADGROUP's reply: per stream, its entries. */
export type ReadReply = [stream: string, entries: StreamEntry[]][] | null;
