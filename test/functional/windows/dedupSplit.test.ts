import { expect } from 'chai';
import { Pipeline, T0, extraRealtimeConsumer, feed, makePipeline } from '../../helpers/context';
import { eventFingerprint } from '../../../src/consumers/windowWriter';
import { DedupBuckets, SPLIT_AT, SPLIT_MARK, SPLIT_WAYS, olderWrapped, splitBucket } from '../../../src/consumers/dedupBuckets';
import { RealtimeConsumer } from '../../../src/consumers/realtime';
import { BucketsSeen, isSubBucket } from '../../../src/consumers/bucketsSeen';

const MIN = 60_000;
const BUCKET = 7;

/** `n` event ids whose fingerprints start with byte `j`: all in one dedup bucket. */
function sameBucket(n: number, j: number, tag: string): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < n; i++) if (eventFingerprint(`${tag}-${i}`)[0] === j) ids.push(`${tag}-${i}`);
  return ids;
}

const clicks = (ids: readonly string[], ts: number) => ids.map((event_id, i) => ({ event_id, user_id: 'hot', type: 'click', ts: ts - (i % 50) * 1000 }));

/** The user's dedup buckets (name -> bytes) and sub-buckets. */
async function bucketsOf(p: Pipeline): Promise<{ buckets: Map<string, string>; subs: Map<string, Buffer> }> {
  const key = p.keys.panes('hot', 'click');
  const names = (await p.redis.hkeys(key)).filter((f) => /^d\d+(\.\d+)?$/.test(f));
  const values = names.length ? await p.redis.hmgetBuffer(key, ...names) : [];
  const all = names.map((n, i) => [n, values[i]!] as const);
  return {
    buckets: new Map(all.filter(([n]) => !n.includes('.')).map(([n, b]) => [n, b.length === 1 ? b.toString() : `${b.length} bytes`])),
    subs: new Map(all.filter(([n]) => n.includes('.'))),
  };
}

const subBytes = (subs: Map<string, Buffer>) => [...subs.values()].reduce((n, b) => n + b.length, 0);

async function clicks24h(p: Pipeline): Promise<number> {
  return (await p.reader.read('hot'))!.tags.clicks_24h as number;
}

describe('dedup buckets split as a window grows (a hot user moves a few hundred bytes of them per event)', function () {
  this.timeout(60_000);

  describe('the layout (pure)', () => {
    it('compares wrapped minutes across 2^24 and splits a bucket into sub-buckets that keep every entry in order', () => {
      const wrap = 2 ** 24;
      expect(olderWrapped(3, wrap + 5)).to.equal(true);
      expect(olderWrapped(10, wrap + 5)).to.equal(false);
      expect(olderWrapped(wrap - 1, wrap + 5)).to.equal(true);
      expect(olderWrapped(5, wrap + 5)).to.equal(false);
      const ids = sameBucket(SPLIT_AT + 1, BUCKET, 'u');
      const dedup = new DedupBuckets(() => undefined);
      for (const [i, id] of ids.entries()) expect(dedup.add(eventFingerprint(id), T0 + i * MIN)).to.equal(true);
      expect(dedup.add(eventFingerprint(ids[3]), T0)).to.equal(false);
      dedup.splitFull();
      expect(dedup.buckets.get(`d${BUCKET}`)!.toString()).to.equal(SPLIT_MARK);
      let entries = 0;
      for (const [name, b] of [...dedup.buckets].filter(([n]) => n.includes('.'))) {
        expect(name).to.match(new RegExp(`^d${BUCKET}\\.[0-${SPLIT_WAYS - 1}]$`));
        entries += b.length / 8;
      }
      expect(entries).to.equal(ids.length);
      // After the split every id is still seen, and a new one is not.
      for (const id of ids) expect(dedup.add(eventFingerprint(id), T0)).to.equal(false);
      expect(dedup.add(eventFingerprint(sameBucket(SPLIT_AT + 2, BUCKET, 'u')[SPLIT_AT + 1]), T0)).to.equal(true);
      const parts = splitBucket(Buffer.concat(ids.map((id, i) => Buffer.concat([eventFingerprint(id), Buffer.from([0, 0, 0, i])]))));
      const minutes = [...parts.values()].flatMap((b) => Array.from({ length: b.length / 8 }, (_, i) => b.readUIntBE(i * 8 + 5, 3)));
      expect(minutes.sort((a, b) => a - b)).to.deep.equal(ids.map((_, i) => i));
    });
  });

  for (const foldInConsumer of [true, false]) {
    describe(`folded ${foldInConsumer ? 'in the consumer' : 'by updateWindows.lua'} (real Redis)`, () => {
      let p: Pipeline;
      before(async () => {
        p = await makePipeline({ now: T0, foldInConsumer });
      });
      after(async () => p.close());

      it('splits one bucket past 128 entries; every resend counts once, before, across and after the split', async () => {
        const ids = sameBucket(300, BUCKET, `f${foldInConsumer}`);
        await feed(p, clicks(ids.slice(0, 100), T0));
        let state = await bucketsOf(p);
        expect(state.buckets.get(`d${BUCKET}`)).to.equal('1000 bytes');
        expect(state.subs.size).to.equal(0);
        // 50 resends and 50 new ones, then 50 more: 150 distinct, past SPLIT_AT.
        await feed(p, clicks([...ids.slice(50, 100), ...ids.slice(100, 150)], T0));
        await feed(p, clicks([...ids.slice(0, 20), ...ids.slice(150, 200)], T0));
        expect(await clicks24h(p)).to.equal(200);
        state = await bucketsOf(p);
        expect(state.buckets.get(`d${BUCKET}`)).to.equal(SPLIT_MARK);
        expect(subBytes(state.subs)).to.equal(200 * 8);
        const script = p.consumer.foldCounts.leftToScript;
        await feed(p, clicks(ids, T0));
        await feed(p, clicks(ids, T0));
        expect(await clicks24h(p)).to.equal(300);
        // The consumer fold read the sub-buckets itself (none of it was left to the script).
        if (foldInConsumer) expect(p.consumer.foldCounts.leftToScript).to.equal(script);
        expect((await p.reader.read('hot'))!.tags.clicks_5m).to.equal(300);
      });
    });
  }

  describe('the sub-buckets the consumer fold remembers (pure)', () => {
    it('answers only for the V and T it wrote, before the expiry, and drops the oldest entries past its bytes', () => {
      const texts = (n: number) =>
        new Map<string, Buffer | null>([
          ['d1.0', Buffer.alloc(n)],
          ['d1.1', null],
        ]);
      const seen = new BucketsSeen(1000);
      seen.wrote('a', { version: '3', meta: 'T3', until: 100 }, texts(100));
      expect(seen.known('a', '3', 'T3', 50)!.get('d1.0')!.length).to.equal(100);
      expect(seen.known('a', '3', 'T3', 50)!.get('d1.1')).to.equal(null);
      expect(seen.known('a', '4', 'T3', 50)).to.equal(undefined); // another writer moved V
      expect(seen.known('a', '3', 'T3', 50)).to.equal(undefined); // and it was forgotten
      seen.wrote('a', { version: '3', meta: 'T3', until: 100 }, texts(100));
      expect(seen.known('a', '3', 'T4', 50)).to.equal(undefined); // T differs
      seen.wrote('a', { version: '3', meta: 'T3', until: 100 }, texts(100));
      expect(seen.known('a', '3', 'T3', 100)).to.equal(undefined); // may have expired
      expect(seen.known('a', '3', undefined, 50)).to.equal(undefined);
      // 228 bytes an entry (two names at 64, 100 bytes of text): the fifth drops the first.
      for (const k of ['a', 'b', 'c', 'd']) seen.wrote(k, { version: '1', meta: 'T', until: 100 }, texts(100));
      expect([seen.size, seen.heldBytes]).to.deep.equal([4, 912]);
      seen.wrote('e', { version: '1', meta: 'T', until: 100 }, texts(100));
      expect(seen.known('a', '1', 'T', 0)).to.equal(undefined);
      expect(seen.known('e', '1', 'T', 0)).to.not.equal(undefined);
      expect([seen.size, seen.heldBytes]).to.deep.equal([4, 912]);
      seen.wrote('f', { version: '1', meta: 'T', until: 100 }, texts(2000)); // larger than all: not kept
      expect(seen.known('f', '1', 'T', 0)).to.equal(undefined);
      seen.wrote('e', { version: '2', meta: 'T', until: 100 }, new Map()); // nothing to keep: forgotten
      expect(seen.known('e', '1', 'T', 0)).to.equal(undefined);
      expect([seen.size, seen.heldBytes]).to.deep.equal([3, 684]);
      expect(['d12.3', 'd0.0', 'd12', 'T', '2m5.1', 'd1.2x'].map(isSubBucket)).to.deep.equal([true, true, false, false, false, false]);
    });
  });

  describe('both folds on one pipeline', () => {
    let p: Pipeline;
    let script: RealtimeConsumer;
    before(async () => {
      p = await makePipeline({ now: T0, foldInConsumer: true });
      script = extraRealtimeConsumer(p, 'script-fold', { foldInConsumer: false });
      await script.init();
    });
    after(async () => {
      await script.stop();
      await p.close();
    });

    it('a bucket split by one fold dedups in the other; the sweep empties split buckets once their events leave the window', async () => {
      const ids = sameBucket(320, BUCKET, 'mix');
      const counts = () => p.consumer.foldCounts;
      await feed(p, clicks(ids.slice(0, 200), T0)); // the consumer fold splits it
      expect((await bucketsOf(p)).buckets.get(`d${BUCKET}`)).to.equal(SPLIT_MARK);
      // The consumer fold's next calls take the sub-buckets it wrote from what it remembers:
      // resends count nothing, new ids count once, no sub-bucket is read.
      let before = counts();
      await feed(p, clicks([...ids.slice(150, 200), ...ids.slice(200, 210)], T0));
      await feed(p, clicks(ids.slice(0, 210), T0));
      expect(await clicks24h(p)).to.equal(210);
      expect(counts().subBucketsRead - before.subBucketsRead).to.equal(0);
      expect(counts().subBucketsKnown - before.subBucketsKnown).to.be.greaterThan(0);
      const ingest = async (events: Record<string, unknown>[]) => expect((await p.producer.ingest(events)).ok).to.equal(true);
      await ingest(clicks(ids.slice(100, 260), T0)); // 110 resends, 50 new: the script fold (it moves V)
      expect(await script.drain()).to.be.greaterThan(0);
      expect(await clicks24h(p)).to.equal(260);
      // What the consumer fold remembered is no longer the hash: it reads the sub-buckets
      // again, and the script's entries dedup the resends.
      before = counts();
      await feed(p, clicks(ids.slice(0, 260), T0)); // all resent: the consumer fold again
      expect(await clicks24h(p)).to.equal(260);
      expect(counts().subBucketsRead - before.subBucketsRead).to.be.greaterThan(0);
      // A write of another kind that moves V (as any writer must), with the same T: read again.
      const panes = p.keys.panes('hot', 'click');
      await feed(p, clicks(ids.slice(0, 270), T0)); // 10 new: every sub-bucket read, then remembered
      expect(await clicks24h(p)).to.equal(270);
      await p.redis.hincrby(panes, 'V', 1);
      before = counts();
      await feed(p, clicks(ids.slice(0, 280), T0));
      expect(await clicks24h(p)).to.equal(280);
      expect(counts().subBucketsRead - before.subBucketsRead).to.be.greaterThan(0);
      expect(counts().leftToScript).to.equal(before.leftToScript);
      // A day and a bit later, at a second whose sweep is this bucket: the write prunes
      // (the script fold) and the old entries of every sub-bucket go.
      let now = T0 + 25 * 60 * MIN;
      while (Math.floor(now / 1000) % 256 !== BUCKET) now += 1000;
      p.clock.now = now;
      const late = sameBucket(321, BUCKET, 'mix')[320];
      await feed(p, clicks([late], now));
      expect(await clicks24h(p)).to.equal(1);
      const state = await bucketsOf(p);
      expect([...state.subs.values()].map((b) => b.length)).to.deep.equal([8]);
      expect(state.buckets.get(`d${BUCKET}`)).to.equal(SPLIT_MARK);
    });
  });
});
