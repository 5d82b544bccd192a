import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { Logger, errorText } from '../core/logger';
import { groupConsumers } from '../redis/streamGroups';

/**
 * Who is in a consumer group (KafkaJS keeps this apart from its read loop too): a running
 * consumer vouches for itself in keys.liveConsumers; a clean stop leaves the group; a
 * consumer gone without one is removed by a peer once it is idle, holds nothing and no
 * process vouches for it.
 */

/** How often a running consumer renews its live mark, and how long one mark lasts (ms). */
export const LIVE_EVERY_MS = 5_000;
const LIVE_FOR_MS = 15_000;

/** Says `consumer` is alive until LIVE_FOR_MS from now; best effort. */
export async function vouch(redis: RedisClient, keys: Keys, group: string, consumer: string, log: Logger): Promise<void> {
  const key = keys.liveConsumers(group);
  try {
    await redis
      .multi()
      .hset(key, consumer, String(Date.now() + LIVE_FOR_MS))
      .pexpire(key, LIVE_FOR_MS * 4)
      .exec();
  } catch (err) {
    log.debug({ err: errorText(err) }, 'could not renew the live-consumer mark');
  }
}

/**
 * After a clean stop: drops the live mark and removes `consumer` from the group on every
 * partition where it holds nothing pending (DELCONSUMER would drop pending entries, so
 * those stay and are re-read on restart or claimed by others). Tools can then tell a
 * stopped consumer from a live one at once, instead of after the claim time.
 */
export async function leaveGroup(redis: RedisClient, keys: Keys, streams: readonly string[], group: string, consumer: string, log: Logger): Promise<void> {
  await redis.hdel(keys.liveConsumers(group), consumer).catch(() => undefined);
  for (const stream of streams) {
    try {
      const pending = (await redis.xpending(stream, group, '-', '+', 1, consumer)) as unknown[];
      if (pending.length === 0) await redis.xgroup('DELCONSUMER', stream, group, consumer);
    } catch (err) {
      log.debug({ err, stream }, 'could not leave the group; others remove this consumer after the claim time');
    }
  }
}

/**
 * Removes from the group, on `stream`, every consumer other than `self` idle longer than
 * `idleMs` with nothing pending that no process vouches for (idle on a quiet partition is
 * not gone).
 */
export async function removeGonePeers(redis: RedisClient, keys: Keys, stream: string, group: string, self: string, idleMs: number, log: Logger): Promise<void> {
  const idlePeers = (await groupConsumers(redis, stream, group)).filter((c) => c.name !== self && c.pending === 0 && c.idle > idleMs);
  if (idlePeers.length === 0) return;
  const until = await redis.hmget(keys.liveConsumers(group), ...idlePeers.map((c) => c.name));
  for (const [i, c] of idlePeers.entries()) {
    if (Number(until[i] ?? 0) > Date.now()) continue;
    await redis.xgroup('DELCONSUMER', stream, group, c.name);
    log.info({ stream, consumer: c.name }, 'removed idle consumer with nothing pending');
  }
}
