import { Keys } from '../core/keys';
import { RedisClient, nodeFor } from '../redis/client';
import { WindowTag } from '../core/tags';
import { LEVEL_PREFIX, parseSeconds, secondsFieldOfMinute, typePanePlan } from '../core/panes';

export interface TagTimeline {
  event: string;
  window_ms: number;
  bucket_ms: number;
  /** Events of the tag's type in each bucket, oldest first; the last bucket ends at `as_of`. */
  counts: number[];
}

/**
 * For each window tag, the user's events of its type over (about) its window, counted in
 * `buckets` equal slices read from the type's panes: the coarsest pane level that still
 * gives each slice at least one pane (one pipeline of HMGETs: one slot). Slices end with
 * the pane holding `now`.
 */
export async function profileTimeline(
  redis: RedisClient,
  keys: Keys,
  tags: readonly WindowTag[],
  userId: string,
  now: number,
  buckets = 30,
): Promise<{ user_id: string; as_of: number; tags: Record<string, TagTimeline> } | null> {
  const pipeline = nodeFor(redis, keys.realtime(userId)).pipeline();
  // Unknown to the product (no key of the user, as GET /profile/:userId decides): null, a 404.
  const types = [...new Set(tags.map((t) => t.event))];
  pipeline.exists(keys.realtime(userId), keys.offline(userId), ...types.flatMap((t) => [keys.panes(userId, t), keys.paneIndex(userId, t)]));
  const plan = tags.map((t) => {
    const levels = typePanePlan(tags, t.event).numericLevels;
    const level = [...levels].reverse().find((l) => l * buckets <= t.windowMs) ?? levels[0];
    const bucketMs = Math.ceil(t.windowMs / buckets / level) * level;
    const to = (Math.floor(now / level) + 1) * level;
    const from = to - bucketMs * buckets;
    const names: string[] = [];
    for (let at = from; at < to; at += level) names.push(`${LEVEL_PREFIX[level]}${at / level}`);
    // One-second panes kept a minute to a field (S<minute>: a count-only type's, see
    // typeFold.ts's secondsForm) are read with them: a hash holds one form or the other.
    const minutes: string[] = [];
    if (level === 1000) for (let m = Math.floor(from / 60_000); m * 60_000 < to; m++) minutes.push(secondsFieldOfMinute(m));
    pipeline.hmget(keys.panes(userId, t.event), ...names, ...minutes);
    return { tag: t, bucketMs, first: from / level, panes: names.length };
  });
  const [[existsErr, exists], ...results] = (await pipeline.exec()) ?? [];
  if (existsErr) throw existsErr;
  if (exists === 0) return null;
  const out: Record<string, TagTimeline> = {};
  plan.forEach(({ tag, bucketMs, first, panes: n }, k) => {
    const [err, panes] = results[k];
    if (err) throw err;
    const got = panes as (string | null)[];
    const perPane = got.slice(0, n).map((p) => (p === null ? 0 : parseInt(p, 10)));
    got.slice(n).forEach((text, j) => {
      const base = (Math.floor(first / 60) + j) * 60;
      for (const [sec, c] of parseSeconds(text)) if (base + sec - first >= 0 && base + sec - first < n) perPane[base + sec - first] += c;
    });
    const panesPerBucket = perPane.length / buckets;
    const counts = Array.from({ length: buckets }, (_, i) => perPane.slice(i * panesPerBucket, (i + 1) * panesPerBucket).reduce((a, b) => a + b, 0));
    out[tag.name] = { event: tag.event, window_ms: tag.windowMs, bucket_ms: bucketMs, counts };
  });
  return { user_id: userId, as_of: now, tags: out };
}
