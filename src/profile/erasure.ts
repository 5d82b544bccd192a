import { once } from 'events';
import fs from 'fs';
import path from 'path';
import readline from 'readline';
import { Keys } from '../core/keys';
import type { RedisClient } from '../redis/client';
import { fsyncPath, listOdsFiles } from '../ods/files';

/**
 * Erasure (right to be forgotten): a user's keys are deleted and the user is recorded in
 * the sorted set `erasures` (score: erasure time). Every event of the user with an event
 * time at or before that moment is then ignored everywhere: by the realtime consumer (even
 * if it was still in a stream), by every later batch run, and `purgeOds` removes them from
 * the archive. Events stamped after the erasure are new data and count as usual.
 */

/** Records the erasure, then deletes every key of the user (one UNLINK: one slot). Returns the keys deleted. */
export async function eraseUser(redis: RedisClient, keys: Keys, userId: string, now = Date.now()): Promise<number> {
  // Recorded first: if the process dies between the two, the user is still skipped and a
  // second call deletes the keys.
  await redis.zadd(keys.erasures(), now, userId);
  return redis.unlink(...(await everyUserKey(redis, keys, userId)));
}

/**
 * Every key the user can have, in every window state generation a change of tags has made
 * so far (the counter `generations` of the tag config hash, see src/batch/tagChange.ts).
 */
export async function everyUserKey(redis: RedisClient, keys: Keys, userId: string): Promise<string[]> {
  const made = Number((await redis.hget(keys.tagConfigs(), 'generations').catch(() => null)) ?? 0);
  return keys.withGeneration(Math.max(keys.generation, made)).userKeys(userId);
}

/** Erasure times (ms) of those of `userIds` that were erased. */
export async function erasedAt(redis: RedisClient, keys: Keys, userIds: string[]): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  return erasureTimes(userIds, (await redis.call('ZMSCORE', keys.erasures(), ...userIds)) as (string | null)[]);
}

/** The reply of `ZMSCORE erasures <userIds...>` (sent directly or in a pipeline) as user → erasure time. */
export function erasureTimes(userIds: string[], scores: (string | null)[]): Map<string, number> {
  const out = new Map<string, number>();
  scores.forEach((s, i) => {
    if (s !== null) out.set(userIds[i], Number(s));
  });
  return out;
}

/** Every erased user and the time of the erasure. */
export async function allErasures(redis: RedisClient, keys: Keys): Promise<Map<string, number>> {
  const flat = await redis.zrange(keys.erasures(), 0, -1, 'WITHSCORES');
  const out = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) out.set(flat[i], Number(flat[i + 1]));
  return out;
}

/** True when an event of `userId` at `ts` falls under an erasure. */
export function isErased(erasures: Map<string, number>, userId: string, ts: number): boolean {
  const at = erasures.get(userId);
  return at !== undefined && ts <= at;
}

export interface PurgeResult {
  files_rewritten: number;
  lines_removed: number;
}

/**
 * Rewrites every ODS file that holds events of erased users without them (lines that are
 * not JSON are kept: the batch reports them). Each file is written to a temporary file in
 * the same folder, fsynced, and renamed over the original, so a crash leaves either the old
 * or the new file. Run it while no archiver writes (the caller checks): an archiver
 * appending to a file being replaced would append to the old copy.
 */
export async function purgeOds(odsDir: string, erasures: Map<string, number>): Promise<PurgeResult> {
  const result: PurgeResult = { files_rewritten: 0, lines_removed: 0 };
  if (erasures.size === 0) return result;
  for (const file of listOdsFiles(odsDir)) {
    const tmp = path.join(path.dirname(file.path), `.${path.basename(file.path)}.purge-${process.pid}`);
    const out = fs.createWriteStream(tmp, { mode: 0o644 });
    let removed = 0;
    // Streamed line by line: ODS files can be larger than memory allows.
    const lines = readline.createInterface({ input: fs.createReadStream(file.path), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim()) {
        try {
          const e = JSON.parse(line) as { user_id?: unknown; ts?: unknown };
          if (typeof e.user_id === 'string' && typeof e.ts === 'number' && isErased(erasures, e.user_id, e.ts)) {
            removed++;
            continue;
          }
        } catch {
          // not JSON: kept for the batch to report
        }
      }
      if (!out.write(line + '\n')) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    if (removed === 0) {
      fs.rmSync(tmp);
      continue;
    }
    await fsyncPath(tmp);
    fs.renameSync(tmp, file.path);
    await fsyncPath(path.dirname(file.path));
    result.files_rewritten++;
    result.lines_removed += removed;
  }
  return result;
}
