import { expect } from 'chai';
import { FakeClock, Pipeline, T0, feed, makePipeline } from '../../helpers/context';
import { SPLIT_WAYS } from '../../../src/consumers/dedupBuckets';
import { PRUNE_SLACK_MS } from '../../../src/consumers/typeFold';
import type { Redis } from 'ioredis';
import { secondCounts } from '../../helpers/secondsForm';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('sliding windows (real Redis, injected clock)', () => {
  let p: Pipeline;
  let clock: FakeClock;
  beforeEach(async () => {
    p = await makePipeline();
    clock = p.clock;
  });
  afterEach(() => p.close());

  it('computes every aggregation kind of the default tags with exact values', async () => {
    await feed(p, [
      { user_id: 'u1', type: 'impression', ts: T0 - 10 * MIN, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'u1', type: 'impression', ts: T0 - 2 * MIN, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'u1', type: 'impression', ts: T0 - 1 * MIN, ad_id: 'a2', campaign_id: 'c-9' },
      { user_id: 'u1', type: 'impression', ts: T0 - 2 * HOUR, ad_id: 'a3', campaign_id: 'c-9' },
      { user_id: 'u1', type: 'click', ts: T0 - 3 * MIN, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'u1', type: 'click', ts: T0 - 6 * HOUR, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'u1', type: 'purchase', ts: T0 - 1 * HOUR, amount: 19.99, currency: 'USD' },
      { user_id: 'u1', type: 'purchase', ts: T0 - 23 * HOUR, amount: 5.01, currency: 'USD' },
      { user_id: 'u1', type: 'purchase', ts: T0 - 25 * HOUR, amount: 100 },
    ]);
    const profile = await p.reader.read('u1');
    expect(profile).to.deep.equal({
      user_id: 'u1',
      tags: {
        views_5m: 2,
        views_1h: 3,
        clicks_5m: 1,
        clicks_24h: 2,
        purchases_24h: 2,
        spend_24h: 25,
        distinct_ads_1h: 2,
        campaign_views_1h: { 'c-7': 2, 'c-9': 1 },
      },
      meta: { as_of: T0, last_event_at: T0 - 1 * MIN },
    });
  });

  it("left edge: an event counts while its pane is one of the window's W/r panes, and leaves with its whole pane", async () => {
    // Two clicks in the same 1 s pane (its first and last ms); clicks_5m has resolution 1 s, clicks_24h 1 min.
    await feed(p, [
      { user_id: 'u1', type: 'click', ts: T0 },
      { user_id: 'u1', type: 'click', ts: T0 + 999 },
    ]);
    clock.now = T0 + 5 * MIN - 1; // the pane of T0 is the oldest of the 300 panes ending with now's
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(2);
    clock.now = T0 + 5 * MIN; // a new pane begins: the pane of T0 leaves, T0 + 999 (4 min 59.001 s old) with it
    const later = (await p.reader.read('u1'))!;
    expect(later.tags.clicks_5m).to.equal(0);
    expect(later.tags.clicks_24h).to.equal(2);
    clock.now = T0 + 24 * HOUR - 1;
    expect((await p.reader.read('u1'))!.tags.clicks_24h).to.equal(2);
    clock.now = T0 + 24 * HOUR; // the 1 min pane of T0 leaves
    expect((await p.reader.read('u1'))!.tags.clicks_24h).to.equal(0);
  });

  it("right edge: an event stamped ahead of now counts when it falls in now's pane, the next pane only once it begins", async () => {
    await feed(p, [
      { user_id: 'u1', type: 'click', ts: T0 + 999 },
      { user_id: 'u1', type: 'click', ts: T0 + 1000 },
    ]);
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(1); // now = T0: pane T0 holds T0 + 999
    clock.now = T0 + 1000;
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(2);
    // 1 min resolution: the whole minute of now counts.
    expect((await p.reader.read('u1'))!.tags.clicks_24h).to.equal(2);
  });

  it("drops an idle user's 5-minute count to 0 after 5 minutes without any write", async () => {
    await feed(p, [
      { user_id: 'idle', type: 'impression', ts: T0 - 30_000, ad_id: 'a1' },
      { user_id: 'idle', type: 'impression', ts: T0, ad_id: 'a1' },
    ]);
    expect((await p.reader.read('idle'))!.tags.views_5m).to.equal(2);
    clock.advance(4 * MIN + 29_999); // the first event's pane is the oldest of the 300 ending with now's: still in
    expect((await p.reader.read('idle'))!.tags.views_5m).to.equal(2);
    clock.advance(1); // a new 1 s pane: the first event's pane leaves
    expect((await p.reader.read('idle'))!.tags.views_5m).to.equal(1);
    clock.advance(30_000);
    const profile = (await p.reader.read('idle'))!;
    expect(profile.tags.views_5m).to.equal(0);
    expect(profile.tags.views_1h).to.equal(2);
  });

  it('counts a duplicate event_id once, across requests and within one request', async () => {
    const click = { event_id: 'ev-1', user_id: 'u1', type: 'click', ts: T0 };
    await feed(p, [click, click]);
    await feed(p, [{ ...click, ts: T0 - 1000 }]);
    const purchase = { event_id: 'ev-2', user_id: 'u1', type: 'purchase', ts: T0, amount: 10 };
    await feed(p, [purchase]);
    await feed(p, [{ ...purchase, amount: 99 }]);
    const profile = (await p.reader.read('u1'))!;
    expect(profile.tags.clicks_5m).to.equal(1);
    expect(profile.tags.purchases_24h).to.equal(1);
    expect(profile.tags.spend_24h).to.equal(10);
    // The first copy's time counts: one click in the pane of T0, none in the pane before.
    const seconds = await secondCounts(p.redis as Redis, p.keys.panes('u1', 'click'));
    expect([seconds.get(T0 / 1000), seconds.get(T0 / 1000 - 1)]).to.deep.equal([1, undefined]);
  });

  it('places out-of-order events by event time', async () => {
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 }]);
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 - 4 * MIN }]);
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 - 10 * MIN }]);
    expect((await p.reader.read('u1'))!.tags).to.include({ clicks_5m: 2, clicks_24h: 3 });
    clock.advance(MIN + 1000);
    expect((await p.reader.read('u1'))!.tags).to.include({ clicks_5m: 1, clicks_24h: 3 });
    expect((await p.reader.read('u1'))!.meta.last_event_at).to.equal(T0);
  });

  it('acks events older than the longest window without touching the windows', async () => {
    await feed(p, [{ user_id: 'old', type: 'click', ts: T0 - 24 * HOUR - 1 }]);
    expect(await p.redis.exists(p.keys.panes('old', 'click'), p.keys.paneIndex('old', 'click'), p.keys.realtime('old'))).to.equal(0);
    expect(await p.reader.read('old')).to.equal(null);
    const pending = (await p.redis.xpending(p.keys.stream(0), 'realtime')) as [number];
    const pending1 = (await p.redis.xpending(p.keys.stream(1), 'realtime')) as [number];
    expect(pending[0] + pending1[0]).to.equal(0);
  });

  it('prunes panes older than the longest window of their type on write and sets TTLs', async () => {
    await feed(p, [{ user_id: 'u1', type: 'impression', ts: T0, ad_id: 'a1', event_id: 'i1' }]);
    const m0 = T0 / MIN;
    // (The type's newest event time is in the pane hash's T field, not in the index.)
    expect(await p.redis.zrange(p.keys.paneIndex('u1', 'impression'), 0, -1)).to.deep.equal([`m${m0}`, `h${T0 / HOUR}`, 'v1:a1']);
    // (S: the one-second panes are a minute to a field.)
    expect(await p.redis.hget(p.keys.panes('u1', 'impression'), 'T')).to.match(new RegExp(`^${T0},0S\x1e`));
    // (A write prunes once the oldest member is PRUNE_SLACK_MS past the window.)
    clock.advance(HOUR + PRUNE_SLACK_MS);
    await feed(p, [{ user_id: 'u1', type: 'impression', ts: clock.now, ad_id: 'a2', event_id: 'i2' }]);
    // The first event's minute is pruned; its hour stays until the whole hour is older than the window.
    const m1 = clock.now / MIN;
    // Distinct values: the latest time of each, scored 1e13 * field index + time (a1 is gone with its minute).
    expect(await p.redis.zrange(p.keys.paneIndex('u1', 'impression'), 0, -1, 'WITHSCORES')).to.deep.equal([
      `h${T0 / HOUR}`,
      String(T0 + HOUR - MIN),
      `m${m1}`,
      String(clock.now),
      `h${T0 / HOUR + 1}`,
      String(T0 + 2 * HOUR - MIN),
      'v1:a2',
      String(1e13 + clock.now),
    ]);
    // (d<byte>: dedup buckets; T: the running totals and the type's meta; C<spec>: a count_by total.)
    const fields = (await p.redis.hkeys(p.keys.panes('u1', 'impression')))
      .filter((f) => !f.startsWith('d') && f !== 'T' && f !== 'V' && !f.startsWith('C'))
      .sort();
    // (S<minute>: the one-second panes of the minute.)
    expect(fields).to.deep.equal([`m${m1}`, `S${m1}`].sort());
    expect(await p.redis.hget(p.keys.panes('u1', 'impression'), `S${m1}`)).to.equal(`${(clock.now / 1000) % 60}:1`);
    // TTL: until the newest event leaves the 1 h window (+ the minute pruning rounds to).
    const pttl = await p.redis.pttl(p.keys.panes('u1', 'impression'));
    expect(pttl).to.be.within(HOUR + MIN - 5000, HOUR + MIN);
    expect(await p.redis.pttl(p.keys.paneIndex('u1', 'impression'))).to.be.within(HOUR + MIN - 5000, HOUR + MIN);
    // rt: as long as any pane key can live (the longest window, 24 h, + a minute), its expiry
    // rounded up to 16 minutes (2^k minutes, 60 of which fit in 24 h), so a busy user's moves
    // once in 16 minutes, not every minute.
    // (PEXPIRE is relative to Redis's own clock, which the injected one does not move: the
    // first write's expiry stands unless the second's is further away.)
    const rtExpiresIn = (at: number) => Math.ceil((at + 24 * HOUR + MIN) / (16 * MIN)) * 16 * MIN - at;
    for (const at of [T0, clock.now]) expect(rtExpiresIn(at)).to.be.within(24 * HOUR + MIN, 24 * HOUR + 17 * MIN);
    const rtTtl = Math.max(rtExpiresIn(T0), rtExpiresIn(clock.now));
    expect(await p.redis.pttl(p.keys.realtime('u1'))).to.be.within(rtTtl - 5000, rtTtl);
  });

  it('keeps the newest event time of each type in the realtime hash: last_event_at once the panes are gone', async () => {
    await feed(p, [
      { user_id: 'u1', type: 'impression', ts: T0 - 1000, ad_id: 'a1', campaign_id: 'c-1' },
      { user_id: 'u1', type: 'purchase', ts: T0, amount: 2.5 },
    ]);
    expect(await p.redis.hgetall(p.keys.realtime('u1'))).to.deep.equal({ impression: String(T0 - 1000), purchase: String(T0) });
    clock.advance(1000);
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 - 5000 }]); // older: last_event_at stays
    expect(await p.redis.hgetall(p.keys.realtime('u1'))).to.deep.equal({ impression: String(T0 - 1000), purchase: String(T0), click: String(T0 - 5000) });
    expect((await p.reader.read('u1'))!.meta.last_event_at).to.equal(T0);
    // Once every pane key has expired (the clock here moves only the scripts' now, so they are deleted by hand) the user is still known until rt expires.
    clock.advance(2 * HOUR);
    for (const type of ['impression', 'purchase', 'click'] as const) await p.redis.unlink(p.keys.panes('u1', type), p.keys.paneIndex('u1', type));
    const idle = (await p.reader.read('u1'))!;
    expect(idle.meta.last_event_at).to.equal(T0);
    expect(idle.tags).to.include({ clicks_24h: 0, purchases_24h: 0, views_1h: 0 });
  });

  it('reads a type whose newest event is older than its longest window as empty, right up to that edge', async () => {
    await feed(p, [{ user_id: 'back', type: 'impression', ts: T0, ad_id: 'a1', campaign_id: 'c-1' }]);
    clock.advance(30 * MIN);
    await feed(p, [{ user_id: 'back', type: 'click', ts: T0 + 30 * MIN, ad_id: 'a1', campaign_id: 'c-1' }]);
    // One second before the impression is an hour old it still counts in views_1h; from then
    // on the read skips the impression type (the realtime hash's newest time says it is idle).
    clock.advance(30 * MIN - 1000);
    let got = (await p.reader.read('back'))!;
    expect(got.tags).to.include({ views_1h: 1, distinct_ads_1h: 1, views_5m: 0, clicks_24h: 1 });
    expect(got.tags.campaign_views_1h).to.deep.equal({ 'c-1': 1 });
    clock.advance(1000);
    got = (await p.reader.read('back'))!;
    expect(got.tags).to.include({ views_1h: 0, distinct_ads_1h: 0, views_5m: 0, clicks_24h: 1 });
    expect(got.tags.campaign_views_1h).to.deep.equal({});
    expect(got.meta.last_event_at).to.equal(T0 + 30 * MIN);
  });

  it('keeps a count_by total in a field of its own: the meta every write reads stays small with 2,000 campaigns', async () => {
    const events = Array.from({ length: 2000 }, (_, i) => ({
      user_id: 'wide',
      type: 'impression',
      ts: T0 - (i % 600) * 1000,
      event_id: `w${i}`,
      campaign_id: `camp-${i}`,
    }));
    await feed(p, events);
    clock.advance(2 * MIN);
    await feed(p, [{ user_id: 'wide', type: 'impression', ts: clock.now, event_id: 'w-last', campaign_id: 'camp-0' }]);
    const meta = (await p.redis.hget(p.keys.panes('wide', 'impression'), 'T'))!;
    expect(meta.length).to.be.below(100);
    const total = (await p.redis.hget(p.keys.panes('wide', 'impression'), 'C2m60'))!;
    expect(total.split('\x1f')).to.have.length(4000);
    const counts = (await p.reader.read('wide'))!.tags.campaign_views_1h as Record<string, number>;
    expect(Object.keys(counts)).to.have.length(2000);
    expect(counts['camp-0']).to.equal(2);
    expect(counts['camp-1999']).to.equal(1);
  });

  it('a hot user costs what a cold one costs: 20,000 events in one batch fill a bounded number of panes', async () => {
    const events = Array.from({ length: 20_000 }, (_, i) => ({ user_id: 'bot', type: 'click', ts: T0 - (i % 240) * 1000, event_id: `b${i}` }));
    await feed(p, events);
    expect((await p.reader.read('bot'))!.tags).to.include({ clicks_5m: 20_000, clicks_24h: 20_000 });
    // 240 one-second panes (in the fields of their 5 minutes), 5 minute panes, 1 hour pane,
    // and dedup buckets: no per-event state but 8 to 10 bytes.
    const key = p.keys.panes('bot', 'click');
    const fields = await p.redis.hkeys(key);
    expect((await secondCounts(p.redis as Redis, key)).size).to.equal(240);
    expect(fields.filter((f) => f.startsWith('S'))).to.have.length(5);
    expect(fields.filter((f) => f.startsWith('m'))).to.have.length(5);
    const buckets = fields.filter((f) => f.startsWith('d'));
    expect(buckets.length).to.be.at.most(256 * (SPLIT_WAYS + 1));
    const bytes = (await p.redis.hmgetBuffer(key, ...buckets)).reduce((n, b) => n + b!.length, 0);
    expect(bytes).to.be.within(8 * 20_000, 10 * 20_000);
  });

  it('computes custom tags: sum of fractional amounts, distinct and count_by over any id field', async () => {
    await p.close();
    p = await makePipeline({
      tags: [
        { name: 'spend_10m', event: 'purchase', aggregation: 'sum', field: 'amount', window: '10m' },
        { name: 'campaigns_10m', event: 'purchase', aggregation: 'distinct', field: 'campaign_id', window: '10m' },
        { name: 'by_currency_10m', event: 'purchase', aggregation: 'count_by', field: 'currency', window: '10m' },
        { name: 'clicks_by_ad_30s', event: 'click', aggregation: 'count_by', field: 'ad_id', window: '30s' },
      ],
    });
    await feed(p, [
      { user_id: 'u2', type: 'purchase', ts: T0 - 1, amount: 0.1, campaign_id: 'c-1', currency: 'EUR' },
      { user_id: 'u2', type: 'purchase', ts: T0 - 2, amount: 0.2, campaign_id: 'c-1', currency: 'USD' },
      { user_id: 'u2', type: 'purchase', ts: T0 - 3, amount: 1234.56, campaign_id: 'c-2', currency: 'USD' },
      { user_id: 'u2', type: 'purchase', ts: T0 - 11 * MIN, amount: 1000, campaign_id: 'c-3', currency: 'GBP' },
      { user_id: 'u2', type: 'click', ts: T0 - 1000, ad_id: '__proto__' },
      { user_id: 'u2', type: 'click', ts: T0 - 2000, ad_id: '__proto__' },
      { user_id: 'u2', type: 'click', ts: T0 - 3000 },
    ]);
    const profile = (await p.reader.read('u2'))!;
    // Compared as JSON text: an object literal cannot hold an own "__proto__" key.
    expect(JSON.stringify(profile.tags)).to.equal(
      '{"spend_10m":1234.86,"campaigns_10m":2,"by_currency_10m":{"EUR":1,"USD":2},"clicks_by_ad_30s":{"__proto__":2}}',
    );
  });

  it('keeps users apart and reads many profiles in one call', async () => {
    await feed(p, [
      { user_id: 'a', type: 'click', ts: T0 },
      { user_id: 'b', type: 'click', ts: T0 },
      { user_id: 'b', type: 'click', ts: T0 - 1 },
    ]);
    const [a, missing, b] = await p.reader.readMany(['a', 'nobody', 'b']);
    expect(a!.tags.clicks_5m).to.equal(1);
    expect(missing).to.equal(null);
    expect(b!.tags.clicks_5m).to.equal(2);
  });
});
