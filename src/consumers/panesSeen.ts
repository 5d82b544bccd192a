/**
 * What the consumer's fold remembers of the pane hashes it wrote: for each, the seconds
 * and minutes that hold events. A seconds running total (views_5m) that moves subtracts
 * the one-second panes that left its range; without this, the fold's second HMGET names
 * every second of that range (18 of its ~21 fields on the Zipf hour, nearly all of them
 * missing: a user with an event every 15 s moves its total by 15 panes, one of which holds
 * an event), and the panes its new events land in, which are mostly new. With it, the fold
 * names only panes that can exist.
 *
 * Kept in the consumer's memory, not in Redis: an entry holds for a pane hash only while the
 * hash is as this fold wrote it. It is used only when the first read returns the same
 * write counter V and the same meta T the fold wrote (every writer moves V: another
 * consumer, updateWindows.lua, the tag backfill; an erasure or expiry removes the hash),
 * and before the hash's expiry. A miss costs nothing but the fields named as before.
 */
export interface KnownPanes {
  /** Panes starting at second `floor` or later are known: one exists only if an event fell in it. */
  floor: number;
  /** The seconds (epoch seconds) and minutes that hold events, ascending, without repeats. */
  seconds: number[];
  minutes: number[];
}

interface Entry extends KnownPanes {
  version: string;
  meta: string;
  /** The consumer's clock (ms) past which the hash may have expired. */
  until: number;
}

/**
 * Entries kept by default: ~200 bytes for a user with an event every 15 s, ~2.5 KB for one
 * with events in every second of a 5-minute window (8 bytes a second).
 */
export const PANES_SEEN_ENTRIES = 100_000;

/** Whether a pane of `level` (ms: 1000 or 60,000; others are never known) and `index` can exist by `known`. */
export function paneMayExist(known: KnownPanes, level: number, index: number): boolean {
  if (level === 1000) return index < known.floor || has(known.seconds, index);
  if (level === 60_000) return index * 60 < known.floor || has(known.minutes, index);
  return true;
}

/** The position of the first element of ascending `list` not below `x` (binary search). */
function lowerBound(list: readonly number[], x: number): number {
  let [lo, hi] = [0, list.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether ascending `list` holds `x`. */
function has(list: readonly number[], x: number): boolean {
  const at = lowerBound(list, x);
  return at < list.length && list[at] === x;
}

/** How far past its bound a map of `max` entries grows before dropOldest brings it back (a 64th). */
export function evictionBatch(max: number): number {
  return max >> 6;
}

/**
 * Drops the `n` oldest entries of `map` (in insertion order) in one walk. Not one at a time
 * through `map.keys().next()`: a Map keeps deleted entries as holes until it rehashes, and
 * every new iterator walks the holes at its front: at 100,000 entries a bare Map took ~30 µs
 * an insertion evicting one at a time against ~0.6 µs evicting a 64th at once (PanesSeen's
 * write: 13 against 6.7 µs).
 */
export function dropOldest<K, V>(map: Map<K, V>, n: number, dropped?: (value: V) => void): void {
  for (const [key, value] of map) {
    if (n-- <= 0) break;
    map.delete(key);
    dropped?.(value);
  }
}

export class PanesSeen {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = PANES_SEEN_ENTRIES) {}

  get size(): number {
    return this.entries.size;
  }

  /** What is known of `key` whose first read returned `version` and `meta` at `now`, or undefined. */
  known(key: string, version: string, meta: string | undefined, now: number): KnownPanes | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.version !== version || e.meta !== meta || now >= e.until) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /**
   * After a write of `key` (V = `version`, T = `meta`) that folded events at `times` (ms):
   * `before` is what was known before it (undefined: nothing, and then `floor` is the first
   * second no pane can have held before the write; -Infinity for a new hash). Seconds below
   * `keepFrom` are forgotten (and the floor rises to it).
   */
  wrote(
    key: string,
    write: { version: string; meta: string; until: number },
    before: KnownPanes | undefined,
    floor: number,
    times: Iterable<number>,
    keepFrom: number,
  ): void {
    // What was known from keepFrom on (ascending) merged with the write's seconds (few): no
    // Set and no sort of a busy hash's thousands of seconds on every write.
    // (No reads past an array's end, which take V8's slow path: `last` holds the tail.)
    const old = before?.seconds ?? [];
    const fresh: number[] = [];
    for (const t of times) if (t >= keepFrom * 1000) fresh.push(Math.floor(t / 1000));
    if (fresh.length > 1) fresh.sort((a, b) => a - b);
    const seconds: number[] = [];
    const minutes: number[] = [];
    let [i, j, last, lastMinute] = [lowerBound(old, keepFrom), 0, NaN, NaN];
    while (i < old.length || j < fresh.length) {
      const x = j >= fresh.length || (i < old.length && old[i] <= fresh[j]) ? old[i++] : fresh[j++];
      if (x === last) continue;
      seconds.push((last = x));
      const m = Math.floor(x / 60);
      if (m !== lastMinute) minutes.push((lastMinute = m));
    }
    // (A minute that starts before the floor is not known: paneMayExist.)
    const entry: Entry = {
      version: write.version,
      meta: write.meta,
      until: write.until,
      floor: Math.max(before ? before.floor : floor, keepFrom),
      seconds,
      minutes,
    };
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.maxEntries + evictionBatch(this.maxEntries)) dropOldest(this.entries, this.entries.size - this.maxEntries);
  }

  /** Forgets `key` (a write refused, failed or left to the script). */
  forget(key: string): void {
    this.entries.delete(key);
  }
}
