import { expect } from 'chai';
import { FakeClock, Pipeline, T0, feed, makePipeline } from '../helpers/context';

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

  it('counts an event at exactly the window length and drops it 1 ms later', async () => {
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 }]);
    clock.now = T0 + 5 * MIN;
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(1);
    clock.now = T0 + 5 * MIN + 1;
    const later = (await p.reader.read('u1'))!;
    expect(later.tags.clicks_5m).to.equal(0);
    expect(later.tags.clicks_24h).to.equal(1);
    clock.now = T0 + 24 * HOUR;
    expect((await p.reader.read('u1'))!.tags.clicks_24h).to.equal(1);
    clock.now = T0 + 24 * HOUR + 1;
    expect((await p.reader.read('u1'))!.tags.clicks_24h).to.equal(0);
  });

  it("drops an idle user's 5-minute count to 0 after 5 minutes without any write", async () => {
    await feed(p, [
      { user_id: 'idle', type: 'impression', ts: T0 - 30_000, ad_id: 'a1' },
      { user_id: 'idle', type: 'impression', ts: T0, ad_id: 'a1' },
    ]);
    expect((await p.reader.read('idle'))!.tags.views_5m).to.equal(2);
    clock.advance(4 * MIN + 30_000); // the first event is exactly 5 min old: still in
    expect((await p.reader.read('idle'))!.tags.views_5m).to.equal(2);
    clock.advance(1);
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
    expect(await p.redis.zscore(p.keys.window('u1', 'click'), 'ev-1')).to.equal(String(T0));
  });

  it('places out-of-order events by event time', async () => {
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 }]);
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 - 4 * MIN }]);
    await feed(p, [{ user_id: 'u1', type: 'click', ts: T0 - 10 * MIN }]);
    expect((await p.reader.read('u1'))!.tags).to.include({ clicks_5m: 2, clicks_24h: 3 });
    clock.advance(MIN + 1);
    expect((await p.reader.read('u1'))!.tags).to.include({ clicks_5m: 1, clicks_24h: 3 });
    expect((await p.reader.read('u1'))!.meta.last_event_at).to.equal(T0);
  });

  it('acks events older than the longest window without touching the windows', async () => {
    await feed(p, [{ user_id: 'old', type: 'click', ts: T0 - 24 * HOUR - 1 }]);
    expect(await p.redis.exists(p.keys.window('old', 'click'), p.keys.realtime('old'))).to.equal(0);
    expect(await p.reader.read('old')).to.equal(null);
    const pending = (await p.redis.xpending(p.keys.stream(0), 'realtime')) as [number];
    const pending1 = (await p.redis.xpending(p.keys.stream(1), 'realtime')) as [number];
    expect(pending[0] + pending1[0]).to.equal(0);
  });

  it('trims events older than the longest window of their type on write and sets TTLs', async () => {
    await feed(p, [{ user_id: 'u1', type: 'impression', ts: T0, ad_id: 'a1', event_id: 'i1' }]);
    clock.advance(HOUR + 1);
    await feed(p, [{ user_id: 'u1', type: 'impression', ts: clock.now, ad_id: 'a2', event_id: 'i2' }]);
    expect(await p.redis.zrange(p.keys.window('u1', 'impression'), 0, -1)).to.deep.equal(['i2']);
    expect(await p.redis.hkeys(p.keys.windowValues('u1', 'impression'))).to.deep.equal(['i2']);
    // TTL: until the newest event leaves the 1 h window (+1 ms).
    const pttl = await p.redis.pttl(p.keys.window('u1', 'impression'));
    expect(pttl).to.be.within(HOUR - 5000, HOUR + 1);
    const rtTtl = await p.redis.pttl(p.keys.realtime('u1'));
    expect(rtTtl).to.be.within(24 * HOUR - 5000, 24 * HOUR + 1);
  });

  it('writes the realtime tag hash for inspection', async () => {
    await feed(p, [
      { user_id: 'u1', type: 'impression', ts: T0 - 1000, ad_id: 'a1', campaign_id: 'c-1' },
      { user_id: 'u1', type: 'purchase', ts: T0, amount: 2.5 },
    ]);
    expect(await p.redis.hgetall(p.keys.realtime('u1'))).to.deep.equal({
      last_event_at: String(T0),
      updated_at: String(T0),
      'tags_at:impression': String(T0),
      'tags_at:purchase': String(T0),
      views_5m: '1',
      views_1h: '1',
      distinct_ads_1h: '1',
      campaign_views_1h: '{"c-1":1}',
      purchases_24h: '1',
      spend_24h: '2.5',
    });
  });

  it('leaves the realtime hash at the state after the last event of a batch', async () => {
    const events = Array.from({ length: 5 }, (_, i) => ({ user_id: 'busy', type: 'impression', ts: T0 - i * 1000, ad_id: `a${i % 2}`, campaign_id: 'c-1' }));
    await feed(p, events);
    expect(await p.redis.hgetall(p.keys.realtime('busy'))).to.deep.equal({
      last_event_at: String(T0), updated_at: String(T0), 'tags_at:impression': String(T0),
      views_5m: '5', views_1h: '5', distinct_ads_1h: '2', campaign_views_1h: '{"c-1":5}',
    });
  });

  it('rewrites the realtime hash of a window of N > 100 events at most once per N ms; reads stay exact', async () => {
    const burst = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => ({ user_id: 'bot', type: 'click', ts: clock.now - 1000, event_id: `b${from + i}` }));
    await feed(p, burst(100, 0));
    expect(await p.redis.hget(p.keys.realtime('bot'), 'clicks_5m')).to.equal('100');
    clock.advance(100);
    await feed(p, burst(1, 100)); // 101 events, last rewrite 100 ms ago: skipped
    expect(await p.redis.hmget(p.keys.realtime('bot'), 'clicks_5m', 'last_event_at')).to.deep.equal(['100', String(T0 - 1000 + 100)]);
    expect((await p.reader.read('bot'))!.tags.clicks_5m).to.equal(101);
    clock.advance(101);
    await feed(p, burst(1, 101)); // 102 events, 201 ms since the last rewrite: rewritten
    expect(await p.redis.hget(p.keys.realtime('bot'), 'clicks_5m')).to.equal('102');
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
