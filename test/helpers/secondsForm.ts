import type { Redis } from 'ioredis';
import { parseSeconds } from '../../src/core/panes';

/**
 * A count-only type's one-second panes are kept a minute to a field (S<minute> =
 * "<second>:<count>,...", see src/lua/includes/panes.lua): these read them as one count
 * per epoch second, and write them back a field a second as versions before this one did.
 */

/** The one-second panes of hash fields `fields` (HGETALL's object): epoch second → count. */
export function secondsOf(fields: Record<string, string>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [name, text] of Object.entries(fields)) {
    if (!/^S\d+$/.test(name)) continue;
    const base = Number(name.slice(1)) * 60;
    for (const [sec, count] of parseSeconds(text)) out.set(base + sec, count);
  }
  return out;
}

/** The one-second panes of pane hash `key`: epoch second → count. */
export async function secondCounts(redis: Redis, key: string): Promise<Map<number, number>> {
  return secondsOf(await redis.hgetall(key));
}

/** Rewrites pane hash `key` as versions before the S form wrote it: a field s<second> a second, T without its S. */
export async function toFieldPerSecond(redis: Redis, key: string): Promise<void> {
  const fields = await redis.hgetall(key);
  const seconds = secondsOf(fields);
  const minutes = Object.keys(fields).filter((f) => /^S\d+$/.test(f));
  if (seconds.size > 0) await redis.hset(key, Object.fromEntries([...seconds].map(([s, c]) => [`s${s}`, String(c)])));
  if (minutes.length > 0) await redis.hdel(key, ...minutes);
  if (fields.T !== undefined) await redis.hset(key, 'T', fields.T.replace(/^([^\x1e]*?)S(?=\x1e|$)/, '$1'));
}
