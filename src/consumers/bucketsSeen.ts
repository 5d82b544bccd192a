/**
 * What the consumer's fold remembers of the sub-buckets of split dedup buckets
 * (`d<j>.<k>`, see dedupBuckets.ts) in the pane hashes it wrote: their texts as its last
 * write left them (null: none there). Only a user with tens of thousands of events in its
 * window has split buckets; its events' sub-buckets cost a third HMGET every call, which
 * grows with the window (a 100,000-event window: ~390 bytes a sub-bucket, one per event,
 * ~0.7 µs of Redis an event that an empty window does not pay). With this, the fold reads
 * only the sub-buckets it has not seen.
 *
 * Kept in the consumer's memory, not in Redis, under the rule of panesSeen.ts: an entry
 * holds for a pane hash only while the hash is as this fold wrote it. It is used only when
 * the first read returns the same write counter V and meta T the fold wrote (every write
 * that changes a bucket adds events and moves V: another consumer, updateWindows.lua; an
 * erasure or expiry removes the hash), and before the hash's expiry. A name the entry does
 * not hold is read as before.
 */

import { dropOldest } from './panesSeen';

/** Bytes of sub-bucket texts kept by default (a 100,000-event window's are ~800 KB). */
export const BUCKETS_SEEN_BYTES = 64 * 1024 * 1024;

/** What an entry costs besides its texts' bytes, per sub-bucket (name, map slot). */
const PER_NAME = 64;

interface Entry {
  version: string;
  meta: string;
  /** The consumer's clock (ms) past which the hash may have expired. */
  until: number;
  texts: ReadonlyMap<string, Buffer | null>;
  bytes: number;
}

/** Whether a pane hash field is a sub-bucket of a split dedup bucket (`d<j>.<k>`). */
export function isSubBucket(name: string): boolean {
  // (The fold asks this of every field it writes: the pattern only for names like one.)
  return name.charCodeAt(0) === 100 && name.includes('.') && /^d\d+\.\d+$/.test(name);
}

export class BucketsSeen {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes = BUCKETS_SEEN_BYTES) {}

  get size(): number {
    return this.entries.size;
  }

  /** Bytes the entries hold (texts and names). */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The sub-bucket texts known of `key` whose first read returned `version` and `meta` at `now`, or undefined. */
  known(key: string, version: string, meta: string | undefined, now: number): ReadonlyMap<string, Buffer | null> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.version !== version || e.meta !== meta || now >= e.until) {
      this.forget(key);
      return undefined;
    }
    return e.texts;
  }

  /**
   * After a write of `key` (V = `version`, T = `meta`, expiring by `until`): `texts` are
   * the sub-buckets as the hash now holds them (those read and left as they were, and
   * those written; null for one deleted or never there). Replaces what was known.
   */
  wrote(key: string, write: { version: string; meta: string; until: number }, texts: ReadonlyMap<string, Buffer | null>): void {
    this.forget(key);
    let bytes = 0;
    for (const b of texts.values()) bytes += PER_NAME + (b?.length ?? 0);
    if (texts.size === 0 || bytes > this.maxBytes) return;
    this.entries.set(key, { ...write, texts, bytes });
    this.bytes += bytes;
    if (this.bytes <= this.maxBytes) return;
    // The oldest entries, in one walk, until the bytes fit (dropOldest: no iterator a drop).
    let excess = this.bytes - this.maxBytes;
    let n = 0;
    for (const e of this.entries.values()) {
      if (excess <= 0) break;
      excess -= e.bytes;
      n++;
    }
    dropOldest(this.entries, n, (e) => (this.bytes -= e.bytes));
  }

  /** Forgets `key` (a write refused, failed or left to the script). */
  forget(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.bytes -= e.bytes;
  }
}
