/**
 * Dedup buckets as the consumer's fold reads and writes them: the same layout as
 * src/lua/includes/dedup.lua (each function here names its Lua twin). Field d<j> (j: the
 * first byte of the event id's 6-byte fingerprint) holds 10-byte entries, the fingerprint
 * and the event's minute (4 bytes, big-endian); a bucket that would pass SPLIT_AT entries
 * splits into SPLIT_WAYS sub-buckets d<j>.<k> of 8-byte entries (the fingerprint's last 5
 * bytes, the minute modulo 2^24 in 3 bytes), and d<j> keeps only the mark SPLIT_MARK.
 */
const MINUTE = 60_000;
export const SPLIT_AT = 128;
export const SPLIT_WAYS = 8;
export const SPLIT_MARK = '*';
const MINUTE_WRAP = 16_777_216;
const MARK = Buffer.from(SPLIT_MARK);

/** bucketName: the bucket of fingerprint fp. */
export function bucketName(fp: Buffer): string {
  return `d${fp[0]}`;
}

/** subBucketName: the sub-bucket of fingerprint fp once its bucket is split. */
export function subBucketName(fp: Buffer): string {
  return `d${fp[0]}.${Math.floor((fp[1] * SPLIT_WAYS) / 256)}`;
}

/** Whether a bucket's text (as read) is the mark of a split bucket. */
export function isMark(text: Buffer | null | undefined): boolean {
  return text !== null && text !== undefined && text.equals(MARK);
}

/** The entry size of a bucket name's entries: 8 in a sub-bucket, else 10. */
export function entrySize(name: string): 8 | 10 {
  return name.includes('.') ? 8 : 10;
}

/** seenIn: whether `key` (the fingerprint, or its last 5 bytes in a sub-bucket) starts one of the `size`-byte entries of bucket b. */
export function seenIn(bucket: Buffer, key: Buffer, size: number): boolean {
  for (let i = bucket.indexOf(key); i >= 0; i = bucket.indexOf(key, i + 1)) if (i % size === 0) return true;
  return false;
}

/** olderWrapped: whether a sub-bucket entry's minute m (modulo 2^24) is before cutoffMinute. */
export function olderWrapped(m: number, cutoffMinute: number): boolean {
  const d = (((cutoffMinute - m) % MINUTE_WRAP) + MINUTE_WRAP) % MINUTE_WRAP;
  return d > 0 && d < MINUTE_WRAP / 2;
}

function entryOlder(b: Buffer, i: number, size: number, cutoffMinute: number): boolean {
  return size === 10 ? b.readUInt32BE(i + 6) < cutoffMinute : olderWrapped(b.readUIntBE(i + 5, 3), cutoffMinute);
}

/** dropLeading: the bucket without its leading entries older than cutoffMinute. */
export function dropLeading(bucket: Buffer, cutoffMinute: number, size: number): Buffer {
  let i = 0;
  while (i < bucket.length && entryOlder(bucket, i, size, cutoffMinute)) i += size;
  return i === 0 ? bucket : bucket.subarray(i);
}

/** pruneBucket: the bucket without any entry older than cutoffMinute. */
export function pruneBucket(bucket: Buffer, cutoffMinute: number, size: number): Buffer {
  const kept: Buffer[] = [];
  for (let i = 0; i < bucket.length; i += size) if (!entryOlder(bucket, i, size, cutoffMinute)) kept.push(bucket.subarray(i, i + size));
  return Buffer.concat(kept);
}

/** The bucket a write that prunes sweeps at `now` (writeType.lua: one a second). */
export function sweptBucket(now: number): string {
  return `d${Math.floor(now / 1000) % 256}`;
}

/** A bucket entry: the 6-byte fingerprint and the minute (4 bytes). */
function bucketEntry(fp: Buffer, minute: number): Buffer {
  const entry = Buffer.alloc(10);
  fp.copy(entry, 0, 0, 6);
  entry.writeUInt32BE(minute, 6);
  return entry;
}

/** subEntry: a sub-bucket entry, the fingerprint's last 5 bytes and the minute modulo 2^24 (3 bytes). */
function subEntry(fp: Buffer, minute: number): Buffer {
  const entry = Buffer.alloc(8);
  fp.copy(entry, 0, 1, 6);
  entry.writeUIntBE(minute % MINUTE_WRAP, 5, 3);
  return entry;
}

/** splitBucket: a bucket's 10-byte entries as sub-bucket texts (8-byte entries), in their order. */
export function splitBucket(b: Buffer): Map<string, Buffer> {
  const parts = new Map<string, Buffer[]>();
  for (let i = 0; i < b.length; i += 10) {
    const fp = b.subarray(i, i + 6);
    const name = subBucketName(fp);
    if (!parts.has(name)) parts.set(name, []);
    parts.get(name)!.push(subEntry(fp, b.readUInt32BE(i + 6)));
  }
  return new Map([...parts].map(([name, list]) => [name, Buffer.concat(list)]));
}

/** The buckets one call reads and leaves (name to text); `read` answers a bucket's text as read. */
export class DedupBuckets {
  readonly buckets = new Map<string, Buffer>();

  constructor(private readonly read: (name: string) => Buffer | undefined) {}

  /**
   * The sub-buckets the events need that `read` does not have yet: those of the events
   * whose bucket is split (the fold reads them in a second HMGET; only a split bucket's
   * events cost one).
   */
  static missing(
    events: readonly { ts: number; fp: Buffer }[],
    cutoff: number,
    read: (name: string) => Buffer | undefined,
    has: (name: string) => boolean,
  ): string[] {
    const out = new Set<string>();
    for (const e of events) if (e.ts >= cutoff && isMark(read(bucketName(e.fp))) && !has(subBucketName(e.fp))) out.add(subBucketName(e.fp));
    return [...out];
  }

  /** dedupEvent: false for an id already seen; else appends its entry and returns true. */
  add(fp: Buffer, ts: number): boolean {
    const bucket = bucketName(fp);
    const split = isMark(this.buckets.get(bucket) ?? this.read(bucket));
    const name = split ? subBucketName(fp) : bucket;
    const key = split ? fp.subarray(1, 6) : fp.subarray(0, 6);
    const minute = Math.floor(ts / MINUTE);
    const entry = split ? subEntry(fp, minute) : bucketEntry(fp, minute);
    const b = this.buckets.get(name) ?? this.read(name) ?? Buffer.alloc(0);
    if (seenIn(b, key, entry.length)) return false;
    this.buckets.set(name, Buffer.concat([b, entry]));
    return true;
  }

  /** splitFull: splits every bucket of the call past SPLIT_AT entries (it keeps the mark). */
  splitFull(): void {
    const full = [...this.buckets].filter(([name, b]) => b.length > SPLIT_AT * 10 && !name.includes('.'));
    for (const [name, b] of full) {
      for (const [sub, text] of splitBucket(b)) this.buckets.set(sub, text);
      this.buckets.set(name, MARK);
    }
  }
}
