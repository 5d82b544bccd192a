import type { Profile } from './reader';

/**
 * The profile in the shape the system this one replaces answered: one flat object of
 * strings, one entry per realtime and offline tag. Numbers become their decimal text
 * (`String`: 3 → "3", 470.5 → "470.5"; an `approx_distinct` count too), a `count_by`, `histogram`, `percentile`, `last_k` or `first_k` tag its JSON text, text tags (such as
 * `segment_id`) stay as they are. A null tag (avg, min, max, last, first, variance, stddev or percentile of a
 * window without values) is left out: the old shape had no null. `user_id` and `meta` are not part of it.
 */
export function flatProfile(profile: Profile): Record<string, string> {
  // No prototype: an offline field named "__proto__" stays a plain key.
  const flat: Record<string, string> = Object.create(null);
  for (const name in profile.tags) {
    const value = profile.tags[name];
    if (value === null) continue;
    flat[name] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return flat;
}
