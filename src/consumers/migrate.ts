import { EVENT_TYPES, EventType } from '../core/event';
import { Keys } from '../core/keys';
import { WindowTag } from '../core/tags';
import { runScript } from '../lua/scripts';
import { RedisClient, masters, nodeFor } from '../redis/client';
import { WindowWriter, windowsReply } from './windowWriter';

export interface MigrationResult {
  /** v1 window keys found (one per user and event type). */
  windows: number;
  /** In-window events folded into the panes (events already there, or too old, add nothing). */
  events_folded: number;
}

/**
 * Folds every window of the v1 layout (u:{user}:w:<type> with u:{user}:wv:<type>: one
 * member per event) into the v2 panes, through the window script and its dedup, then
 * deletes it. Idempotent and safe beside running consumers: the fold of one user and type
 * is one script, and an event both consumers saw counts once. Consumers fold a v1 window
 * themselves on their next write for that user; this command is for the users who have
 * none (their reads see the panes only).
 */
export async function migrateLegacyWindows(redis: RedisClient, keys: Keys, tags: readonly WindowTag[], now = Date.now()): Promise<MigrationResult> {
  const writer = new WindowWriter(keys, tags);
  const result: MigrationResult = { windows: 0, events_folded: 0 };
  const pattern = keys.userKeyPattern('w:*');
  const prefix = `${keys.prefix}u:{`;
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of found) {
        const close = key.lastIndexOf('}:w:');
        const userId = key.slice(prefix.length, close);
        const type = key.slice(close + 4) as EventType;
        if (!key.startsWith(prefix) || !(EVENT_TYPES as readonly string[]).includes(type)) continue;
        result.windows++;
        if (writer.longest(type) === undefined) {
          await redis.unlink(key, keys.legacyWindowValues(userId, type)); // no tag uses the type any more
          continue;
        }
        result.events_folded += windowsReply(await runScript(nodeFor(redis, key), writer.update([{ userId, events: { [type]: [] } }], now))).added;
      }
    } while (cursor !== '0');
  }
  return result;
}
