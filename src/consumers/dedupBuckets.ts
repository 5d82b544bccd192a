/**
 * Dedup buckets as the consumer's fold reads and writes them: the same layout as
 * src/lua/includes/dedup.lua (each function here names its Lua twin). Field d<j> (j: the
 * first byte of the event id's 6-byte fingerprint) holds 10-byte entries, the fingerprint
 * and the event's minute (4 bytes, big-endian); a bucket that would pass SPLIT_AT entries
 * splits into SPLIT_WAYS sub-buckets d<j>.<k> of 8-byte entries (the fingerprint's last 5
 * bytes, the minute modulo 2^24 in 3 bytes), and bit j of field D (32 bytes) says so.
 */
const MINUTE = 60_000;
export const SPLIT_AT = 128;
export const SPLIT_WAYS = 8;
const MINUTE_WRAP = 16_777_216;
const BITMAP_BYTES = 32;

/** bucketName: the bucket of fingerprint fp. */
export function bucketName(fp: Buffer): string {
  return `d${fp[0]}`;
}

/** subBucketName: the sub-bucket of fingerprint fp once its bucket is split. */
export function subBucketName(fp: Buffer): string {
  return `d${fp[0]}.${Math.floor((fp[1] * SPLIT_WAYS) / 256)}`;
}

/** isSplit: whether bit j of split bitmap D (null: none split) is set. */
export function isSplit(D: Buffer | null, j: number): boolean {
  return D !== null && ((D[j >> 3] ?? 0) >> (j & 7)) % 2 === 1;
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

/** splitBucket: a bucket's 10-byte entries as sub-bucket texts (8-byte entries), in their order. */
export function splitBucket(b: Buffer): Map<string, Buffer> {
  const parts = new Map<string, Buffer[]>();
  for (let i = 0; i < b.length; i += 10) {
    const fp = b.subarray(i, i + 6);
    const name = subBucketName(fp);
    const entry = Buffer.alloc(8);
    fp.copy(entry, 0, 1, 6);
    entry.writeUIntBE(b.readUInt32BE(i + 6) % MINUTE_WRAP, 5, 3);
    if (!parts.has(name)) parts.set(name, []);
    parts.get(name)!.push(entry);
  }
  return new Map([...parts].map(([name, list]) => [name, Buffer.concat(list)]));
}

/** The buckets one call reads and leaves: names to text, the split bitmap and whether the call moved it. */
export class DedupBuckets {
  readonly buckets = new Map<string, Buffer>();
  moved = false;

  constructor(
    public D: Buffer | null,
    private readonly read: (name: string) => Buffer | undefined,
  ) {}

  /** The fields a call's first read fetches for an event of fingerprint fp (both: the bitmap says which is used). */
  static fields(fp: Buffer): string[] {
    return [bucketName(fp), subBucketName(fp)];
  }

  /** dedupEvent: false for an id already seen; else appends its entry and returns true. */
  add(fp: Buffer, ts: number): boolean {
    const split = isSplit(this.D, fp[0]);
    const name = split ? subBucketName(fp) : bucketName(fp);
    const key = split ? fp.subarray(1, 6) : fp.subarray(0, 6);
    const entry = Buffer.alloc(split ? 8 : 10);
    key.copy(entry);
    const minute = Math.floor(ts / MINUTE);
    if (split) entry.writeUIntBE(minute % MINUTE_WRAP, 5, 3);
    else entry.writeUInt32BE(minute, 6);
    const b = this.buckets.get(name) ?? this.read(name) ?? Buffer.alloc(0);
    if (seenIn(b, key, entry.length)) return false;
    this.buckets.set(name, Buffer.concat([b, entry]));
    return true;
  }

  /** splitFull: splits every bucket of the call past SPLIT_AT entries; returns the names it replaced. */
  splitFull(): string[] {
    const full = [...this.buckets].filter(([name, b]) => b.length > SPLIT_AT * 10 && !name.includes('.'));
    for (const [name, b] of full) {
      for (const [sub, text] of splitBucket(b)) this.buckets.set(sub, text);
      this.buckets.delete(name);
      const j = Number(name.slice(1));
      const D = Buffer.alloc(BITMAP_BYTES);
      this.D?.copy(D);
      D[j >> 3] |= 1 << (j & 7);
      this.D = D;
      this.moved = true;
    }
    return full.map(([name]) => name);
  }
}
