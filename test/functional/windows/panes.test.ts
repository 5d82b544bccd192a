import { expect } from 'chai';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';
import { sameWindowValue } from '../../../src/batch/windows';
import { EVERY_KIND_TAGS as TAGS, computeWindowTags } from '../../helpers/windowReference';
import { ProfileEvent } from '../../../src/core/event';
import { coverPanes, tagLevels, windowRange } from '../../../src/core/panes';
import { parseTagConfig } from '../../../src/core/tagConfig';
import { prng } from '../../../src/dev/simulate';
import type { Redis } from 'ioredis';
import { toFieldPerSecond } from '../../helpers/secondsForm';

const SEC = 1000;
const MIN = 60_000;
const HOUR = 60 * MIN;

// Every aggregation kind, at every resolution, over windows that do and do not use coarser levels.

describe('window panes', () => {
  it('covers a window with fine panes at the edges and coarse ones in the middle, and nothing twice', () => {
    const from = T0 - 3 * HOUR + 17 * SEC;
    const to = T0 + 42 * SEC;
    const pieces = coverPanes(from, to, [SEC, MIN, HOUR]);
    const spans = pieces.map(([level, idx]) => [idx * level, (idx + 1) * level]).sort((a, b) => a[0] - b[0]);
    expect(spans[0][0]).to.equal(from);
    expect(spans[spans.length - 1][1]).to.equal(to);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).to.equal(spans[i - 1][1]);
    // 43 s + 59 min + 2 full hours + 42 s: 43 + 59 + 2 + 42 panes instead of 10,825 seconds.
    expect(pieces.length).to.equal(43 + 59 + 2 + 42);
    const tags = parseTagConfig({ realtime: [{ name: 'v', event: 'click', aggregation: 'count', window: '1h' }] }).realtime;
    expect(tagLevels(tags[0])).to.deep.equal([SEC, MIN]);
    expect(windowRange(tags[0], T0 + 1500)).to.deep.equal([T0 + 1000 - HOUR + SEC, T0 + 2000]);
  });

  it('refuses resolutions that are not a pane level, windows that are not whole steps, and misplaced options', () => {
    const bad = (tag: Record<string, unknown>) => () => parseTagConfig({ realtime: [{ name: 't', event: 'click', ...tag }] });
    expect(bad({ aggregation: 'count', window: '5m', resolution: '10s' })).to.throw(/"resolution" must be "1s", "1m" or "1h"/);
    expect(bad({ aggregation: 'count', window: '90s', resolution: '1m' })).to.throw(/whole number of resolution steps/);
    expect(bad({ aggregation: 'count', window: '1500ms' })).to.throw(/whole number of resolution steps/);
    expect(bad({ aggregation: 'count', window: '5m', top: 3 })).to.throw(/"top" is only for count_by/);
    expect(bad({ aggregation: 'avg', field: 'ad_id', window: '5m' })).to.throw(/avg needs a numeric field/);
    expect(bad({ aggregation: 'percentile', field: 'ad_id', p: [50], window: '5m' })).to.throw(/percentile needs a numeric field/);
    expect(bad({ aggregation: 'percentile', field: 'amount', window: '5m' })).to.throw(/"p" must be 1 to 10 ascending percentiles/);
    expect(bad({ aggregation: 'percentile', field: 'amount', p: [90, 50], window: '5m' })).to.throw(/"p" must be 1 to 10 ascending/);
    expect(bad({ aggregation: 'percentile', field: 'amount', p: [99.95], window: '5m' })).to.throw(/each to a tenth/);
    expect(bad({ aggregation: 'count', window: '5m', p: [50] })).to.throw(/"p" is only for percentile/);
    expect(bad({ aggregation: 'approx_distinct', field: 'amount', window: '5m' })).to.throw(/approx_distinct needs an id field/);
    expect(bad({ aggregation: 'approx_distinct', field: 'ad_id', k: 8, window: '5m' })).to.throw(/"k" must be an integer from 16 to 4096/);
    expect(parseTagConfig({ realtime: [{ name: 't', event: 'click', aggregation: 'approx_distinct', field: 'ad_id', window: '5m' }] }).realtime[0].k).to.equal(
      1024,
    );
    const defaults = parseTagConfig({
      realtime: [
        { name: 'a', event: 'click', aggregation: 'count', window: '1h' },
        { name: 'b', event: 'click', aggregation: 'count', window: '2h' },
        { name: 'c', event: 'click', aggregation: 'distinct', field: 'ad_id', window: '5m' },
        { name: 'd', event: 'click', aggregation: 'count_by', field: 'ad_id', window: '30s' },
      ],
    }).realtime.map((t) => t.resolutionMs);
    expect(defaults).to.deep.equal([SEC, MIN, MIN, SEC]);
  });

  for (const foldInConsumer of [true, false]) {
    describe(`against a brute-force reference (real Redis), folded ${foldInConsumer ? 'in the consumer where it can' : 'by updateWindows.lua only'}`, () => {
      let p: Pipeline;
      before(async () => {
        p = await makePipeline({ tags: TAGS, now: T0, foldInConsumer });
      });
      after(() => p.close());

      it('every aggregation kind equals computeWindowTags over random events, duplicates and read times', async function () {
        this.timeout(60_000);
        const random = prng(20261126);
        const tags = p.config.tags.realtime;
        const users = ['r1', 'r2', 'r3', 'r4'];
        // User 'tie' gets only events that share their millisecond with others of different
        // values (below), so first/last/first_k/last_k answer by the tie rule: the larger value.
        const readUsers = [...users, 'tie'];
        const all = new Map<string, ProfileEvent[]>(readUsers.map((u) => [u, []]));
        const applied = new Set<string>();
        const record = (e: Record<string, unknown>) => {
          const key = `${e.user_id}\0${e.type}\0${e.event_id}`;
          // The reference: the first applied copy of an id counts; a copy older than its type's longest window is not applied.
          const longest = Math.max(...tags.filter((t) => t.event === e.type).map((t) => t.windowMs));
          if (!applied.has(key) && (e.ts as number) >= p.clock.now - longest) {
            all.get(e.user_id as string)!.push(e as unknown as ProfileEvent);
            applied.add(key);
          }
        };
        let tieAt = 0;
        // Events over the last 3.5 h (some older than every window), some a little ahead of now, some resent.
        for (let round = 0; round < 6; round++) {
          const batch: Record<string, unknown>[] = [];
          for (let i = 0; i < 150; i++) {
            const user = users[Math.floor(random() * users.length)];
            const type = random() < 0.5 ? 'purchase' : 'impression';
            const ts = p.clock.now - Math.floor(random() ** 2 * 3.5 * HOUR) + (random() < 0.05 ? Math.floor(random() * 4 * MIN) : 0);
            // A resend of a recent event (its dedup entry lives as long as it can be in a window): same id, another time.
            const recent = all.get(user)!.filter((old) => old.ts >= p.clock.now - 30 * MIN);
            const resend = random() < 0.1 && recent.length > 0;
            const e: Record<string, unknown> = resend
              ? { ...recent[Math.floor(random() * recent.length)], ts }
              : { event_id: `e${round}-${i}`, user_id: user, type, ts };
            if (!resend && type === 'purchase') e.amount = Math.round(random() * 100000) / 100;
            if (!resend && type === 'impression') {
              if (random() < 0.9) e.ad_id = `ad-${Math.floor(random() * 40)}`;
              e.campaign_id = `c-${Math.floor(random() * 5)}`;
            }
            batch.push(e);
            record(e);
          }
          // Ties: three purchases in one ms (two in the batch, in either order, one in a later
          // write), and two impressions in one ms with different ads; rounds 1 and 3 at the
          // previous round's ms, so the tie spans writes minutes apart.
          const at = round % 2 === 1 ? tieAt : p.clock.now - ((round * 7919) % (3 * MIN)) - 1;
          tieAt = at;
          const amounts = [
            [12.5, 40, 25],
            [40, 12.5, 25],
            [25, 12.5, 40],
            [12.5, 25, 0],
            [40, 40, 12.5],
            [0, 12.5, 25],
          ][round];
          const ties: Record<string, unknown>[] = amounts.map((amount, i) => ({
            event_id: `tie${round}-${i}`,
            user_id: 'tie',
            type: 'purchase',
            ts: at,
            amount,
          }));
          ties.push(
            { event_id: `tie${round}-a`, user_id: 'tie', type: 'impression', ts: at, ad_id: `ad-${round % 2 ? 'b' : 'y'}`, campaign_id: 'c-1' },
            { event_id: `tie${round}-b`, user_id: 'tie', type: 'impression', ts: at, ad_id: `ad-${round % 2 ? 'x' : 'c'}`, campaign_id: 'c-2' },
          );
          batch.push(...ties.slice(0, 2), ...ties.slice(3));
          ties.forEach(record);
          await feed(p, batch);
          await feed(p, [ties[2]]);
          // Read at several times, on and around pane edges, each against the reference.
          for (const offset of [0, 1, 999, 1000, 59_999, 60_000, 61_234]) {
            p.clock.now += offset;
            const profiles = await p.reader.readMany(readUsers);
            readUsers.forEach((user, i) => {
              const expected = computeWindowTags(all.get(user)!, tags, p.clock.now);
              for (const t of tags) {
                const got = profiles[i]?.tags[t.name];
                expect(
                  sameWindowValue(expected[t.name], got as never),
                  `${user} ${t.name} at ${p.clock.now - T0}: ${JSON.stringify(got)} vs ${JSON.stringify(expected[t.name])}`,
                ).to.equal(true);
              }
            });
          }
          p.clock.now += 7 * MIN + 13 * SEC;
        }
        // Both folds ran: the consumer's, and the script's for what it does not take.
        const counts = p.consumer.foldCounts;
        if (foldInConsumer) expect(counts.folded).to.be.greaterThan(0);
        else expect(counts).to.include({ folded: 0, leftToScript: 0 });
        expect(counts.leftToScript).to.satisfy((n: number) => !foldInConsumer || n > 0);
      });
    });
  }

  describe('state written before running totals (no T field, the old realtime hash)', () => {
    let p: Pipeline;
    beforeEach(async () => {
      p = await makePipeline({ tags: TAGS, now: T0 });
    });
    afterEach(() => p.close());

    it('reads it through the time index, and the next write gives it totals that agree with the reference', async function () {
      this.timeout(30_000);
      const random = prng(20261206);
      const events: ProfileEvent[] = [];
      const make = (i: number, at: number) => {
        const type = random() < 0.5 ? 'purchase' : 'impression';
        const e: Record<string, unknown> = { event_id: `old-${i}`, user_id: 'v2', type, ts: at - Math.floor(random() * 2 * HOUR) };
        if (type === 'purchase') e.amount = Math.round(random() * 10000) / 100;
        else Object.assign(e, { ad_id: `ad-${i % 7}`, campaign_id: `c-${i % 3}` });
        return e;
      };
      const first = Array.from({ length: 120 }, (_, i) => make(i, p.clock.now));
      await feed(p, first);
      events.push(...(first as unknown as ProfileEvent[]));
      // Make it look like the previous version wrote it: no totals, the realtime hash of then.
      for (const type of ['impression', 'purchase'] as const) {
        // (It had no T field, and the type's newest event time as member L of the time index.)
        const newest = Math.max(...events.filter((e) => e.type === type).map((e) => e.ts));
        await toFieldPerSecond(p.redis as Redis, p.keys.panes('v2', type));
        await p.redis.hdel(p.keys.panes('v2', type), 'T');
        await p.redis.zadd(p.keys.paneIndex('v2', type), newest, 'L');
      }
      await p.redis.del(p.keys.realtime('v2'));
      await p.redis.hset(p.keys.realtime('v2'), { last_event_at: String(Math.max(...events.map((e) => e.ts))), updated_at: String(p.clock.now) });
      const check = async (when: string) => {
        const got = (await p.reader.read('v2'))!;
        const expected = computeWindowTags(events, p.config.tags.realtime, p.clock.now);
        for (const t of p.config.tags.realtime) {
          expect(
            sameWindowValue(expected[t.name], got.tags[t.name] as never),
            `${when} ${t.name}: ${JSON.stringify(got.tags[t.name])} vs ${JSON.stringify(expected[t.name])}`,
          ).to.equal(true);
        }
      };
      await check('before any write');
      p.clock.advance(37 * SEC);
      await check('later, still without totals');
      const second = Array.from({ length: 30 }, (_, i) => make(1000 + i, p.clock.now));
      await feed(p, second);
      events.push(...(second as unknown as ProfileEvent[]));
      expect(await p.redis.hget(p.keys.panes('v2', 'impression'), 'T')).to.match(/\x1e/);
      await check('after the first write with totals');
      for (const step of [1, 999, 59_000, 61_234, 20 * MIN]) {
        p.clock.advance(step);
        await check(`${step} ms on`);
      }
    });
  });

  describe('migration from the v1 layout (one sorted-set member per event)', () => {
    let p: Pipeline;
    beforeEach(async () => {
      p = await makePipeline();
    });
    afterEach(() => p.close());

    /** Writes a v1 window as the previous version did: member event id, score time, packed values. */
    async function writeV1(user: string, type: 'impression' | 'click', events: { id: string; ts: number; ad?: string; campaign?: string }[]) {
      for (const e of events) {
        await p.redis.zadd(p.keys.legacyWindow(user, type), e.ts, e.id);
        await p.redis.hset(p.keys.legacyWindowValues(user, type), e.id, [e.ad ?? '', e.campaign ?? '', '', ''].join('\x1f'));
      }
    }

    it('profile migrate folds v1 windows into panes once, deletes them, and is idempotent', async () => {
      await writeV1('m1', 'impression', [
        { id: 'v1-a', ts: T0 - 2 * MIN, ad: 'a1', campaign: 'c-1' },
        { id: 'v1-b', ts: T0 - 10 * MIN, ad: 'a2', campaign: 'c-1' },
        { id: 'v1-old', ts: T0 - 2 * HOUR, ad: 'a3' }, // outside every window: dropped
      ]);
      await writeV1('m2', 'click', [{ id: 'v1-c', ts: T0 - 30 * SEC }]);
      const { migrateLegacyWindows } = await import('../../../src/consumers/migrate');
      expect(await migrateLegacyWindows(p.redis, p.keys, p.config.tags.realtime, T0)).to.deep.equal({ windows: 2, events_folded: 3 });
      expect(
        await p.redis.exists(p.keys.legacyWindow('m1', 'impression'), p.keys.legacyWindowValues('m1', 'impression'), p.keys.legacyWindow('m2', 'click')),
      ).to.equal(0);
      expect((await p.reader.read('m1'))!.tags).to.deep.include({ views_5m: 1, views_1h: 2, distinct_ads_1h: 2, campaign_views_1h: { 'c-1': 2 } });
      expect((await p.reader.read('m2'))!.tags).to.include({ clicks_5m: 1, clicks_24h: 1 });
      expect(await migrateLegacyWindows(p.redis, p.keys, p.config.tags.realtime, T0)).to.deep.equal({ windows: 0, events_folded: 0 });
    });

    it('rolling restart: a v1 window and the same events redelivered to a v2 consumer count once', async () => {
      // An old consumer applied e1 and e2, then died before acking e2: it is redelivered to a new one.
      await writeV1('r', 'click', [
        { id: 'e1', ts: T0 - 3 * SEC },
        { id: 'e2', ts: T0 - 2 * SEC },
      ]);
      await feed(p, [
        { event_id: 'e2', user_id: 'r', type: 'click', ts: T0 - 2 * SEC },
        { event_id: 'e3', user_id: 'r', type: 'click', ts: T0 - SEC },
      ]);
      // The new consumer's first write for the user folded the v1 window: e1, e2, e3 once each.
      expect(await p.redis.exists(p.keys.legacyWindow('r', 'click'))).to.equal(0);
      expect((await p.reader.read('r'))!.tags).to.include({ clicks_5m: 3, clicks_24h: 3 });
    });
  });
});
