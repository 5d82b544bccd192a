import type { TagValue } from '../profile/reader';

/**
 * A realtime tag value as the API returns it (null: min/max/last/avg of an empty window):
 * the profile's TagValue without text (only segment_id, an offline tag, is text).
 */
export type WindowValue = Exclude<TagValue, string>;

/** True when two tag values agree (numbers within float noise: `tolerance` relative, objects key by key, null only with null). */
export function sameWindowValue(a: WindowValue | undefined, b: WindowValue | undefined, tolerance = 1e-9): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a));
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameWindowValue(a[k], b[k], tolerance));
  }
  return false;
}
