import { expect } from 'chai';
import { HttpServerHandle } from '../../../src/api/server';
import { BAD_VIEW } from '../../../src/api/routes/profiles';
import { ID_RULE } from '../../../src/core/event';
import type { TagValue } from '../../../src/profile/reader';
import { Pipeline, T0, feed, makePipeline, serveApp } from '../../helpers/context';
import { computeWindowTags } from '../../helpers/windowReference';
import { WindowValue, sameWindowValue } from '../../../src/batch/windows';
import type { ProfileEvent } from '../../../src/core/event';

/** The shipped realtime tags, and the kinds that read null over a window without values. */
const TAGS = [
  { name: 'views_5m', event: 'impression', aggregation: 'count', window: '5m' },
  { name: 'clicks_24h', event: 'click', aggregation: 'count', window: '24h' },
  { name: 'purchases_24h', event: 'purchase', aggregation: 'count', window: '24h' },
  { name: 'spend_24h', event: 'purchase', aggregation: 'sum', field: 'amount', window: '24h' },
  { name: 'avg_spend_1h', event: 'purchase', aggregation: 'avg', field: 'amount', window: '1h' },
  { name: 'max_spend_1h', event: 'purchase', aggregation: 'max', field: 'amount', window: '1h' },
  { name: 'last_spend_1h', event: 'purchase', aggregation: 'last', field: 'amount', window: '1h' },
  { name: 'distinct_ads_1h', event: 'impression', aggregation: 'distinct', field: 'ad_id', window: '1h' },
  { name: 'campaign_views_1h', event: 'impression', aggregation: 'count_by', field: 'campaign_id', window: '1h' },
];

/** A tag value as the flat view writes it: numbers and text through String(), count_by as JSON. */
const asText = (v: Exclude<TagValue, null>) => (typeof v === 'object' ? JSON.stringify(v) : String(v));

describe('GET /profile/:userId?view=flat: the original flat map of strings (real Redis, real HTTP)', () => {
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;

  before(async () => {
    p = await makePipeline({ tags: TAGS, now: T0 });
    ({ http, base } = await serveApp(p, { maxEventsPerRequest: 100, maxProfilesPerRequest: 10, maxBodyBytes: 65536 }));
    await feed(p, [
      { user_id: 'flat-1', type: 'impression', ts: T0 - 3000, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'flat-1', type: 'impression', ts: T0 - 2000, ad_id: 'a2', campaign_id: 'c-7' },
      { user_id: 'flat-1', type: 'impression', ts: T0 - 1000, ad_id: 'a2', campaign_id: 'c-9' },
      { user_id: 'flat-1', type: 'click', ts: T0 - 500, ad_id: 'a2', campaign_id: 'c-9' },
      { user_id: 'flat-2', type: 'purchase', ts: T0 - 100, amount: 12.25 },
      { user_id: 'flat-2', type: 'purchase', ts: T0, amount: 3 },
    ]);
    // Offline tags as a batch run writes them; _run_id and _batch_at are meta, not tags.
    await p.redis.hset(
      p.keys.offline('flat-1'),
      'ltv_total',
      '470.5',
      'purchases_total',
      '3',
      'segment_id',
      'high_value_user',
      '_run_id',
      '20260101T000000Z-abcdef',
      '_batch_at',
      String(T0),
    );
  });
  after(async () => {
    await http.close();
    await p.close();
  });

  const get = async (url: string, method = 'GET') => {
    const res = await fetch(`${base}${url}`, { method });
    return { status: res.status, type: res.headers.get('content-type'), length: res.headers.get('content-length'), text: await res.text() };
  };

  it('answers exactly one flat object of strings: every non-null tag of the fused profile, as String() of its value', async () => {
    for (const user of ['flat-1', 'flat-2']) {
      const fused = JSON.parse((await get(`/profile/${user}`)).text) as { tags: Record<string, TagValue> };
      const flat = await get(`/profile/${user}?view=flat`);
      expect(flat.status).to.equal(200);
      expect(flat.type).to.match(/^application\/json/);
      const body = JSON.parse(flat.text) as Record<string, unknown>;
      const expected = Object.fromEntries(Object.entries(fused.tags).flatMap(([name, v]) => (v === null ? [] : [[name, asText(v)]])));
      expect([user, body]).to.deep.equal([user, expected]);
    }
  });

  it("is the old system's shape: realtime and offline tags, count_by as JSON text, segment_id as is, no null, no user_id or meta", async () => {
    const fused = JSON.parse((await get('/profile/flat-1')).text) as { tags: Record<string, TagValue>; meta: Record<string, unknown> };
    expect(fused.tags).to.include({ avg_spend_1h: null, max_spend_1h: null, last_spend_1h: null }); // what the flat view leaves out
    expect(fused.meta.batch_run_id).to.equal('20260101T000000Z-abcdef');
    expect(JSON.parse((await get('/profile/flat-1?view=flat')).text)).to.deep.equal({
      views_5m: '3',
      clicks_24h: '1',
      purchases_24h: '0',
      spend_24h: '0',
      distinct_ads_1h: '2',
      campaign_views_1h: JSON.stringify(fused.tags.campaign_views_1h),
      ltv_total: '470.5',
      purchases_total: '3',
      segment_id: 'high_value_user',
    });
    expect(JSON.parse(JSON.stringify(fused.tags.campaign_views_1h))).to.deep.equal({ 'c-7': 2, 'c-9': 1 });
    expect(JSON.parse((await get('/profile/flat-2?view=flat')).text)).to.include({
      purchases_24h: '2',
      spend_24h: '15.25',
      avg_spend_1h: '7.625',
      max_spend_1h: '12.25',
      last_spend_1h: '3',
    });
  });

  it('answers the normal 404 for an unknown user, and the 400 naming the id rule for a malformed id', async () => {
    const normal = await get('/profile/nobody');
    expect([normal.status, JSON.parse(normal.text)]).to.deep.equal([404, { error: 'unknown user', user_id: 'nobody' }]);
    expect(await get('/profile/nobody?view=flat')).to.deep.equal(normal);
    const bad = await get('/profile/a%7Bb%7D?view=flat');
    expect([bad.status, JSON.parse(bad.text)]).to.deep.equal([400, { error: `user id must be ${ID_RULE}` }]);
  });

  it('answers 400 with a clear message for any other view, and ignores other query parameters', async () => {
    for (const query of ['view=full', 'view=fused', 'view=FLAT', 'view=', 'view', 'view=flat&view=flat', 'view=flat&view=full', 'x=1&view=nested']) {
      const res = await get(`/profile/flat-1?${query}`);
      expect([query, res.status, JSON.parse(res.text)]).to.deep.equal([query, 400, BAD_VIEW]);
    }
    expect(BAD_VIEW.error).to.include('"flat"');
    const flat = (await get('/profile/flat-1?view=flat')).text;
    for (const query of ['x=1&view=flat', 'view=fla%74', 'view=flat&x=', 'VIEW=full&view=flat']) {
      expect([query, (await get(`/profile/flat-1?${query}`)).text]).to.deep.equal([query, flat]);
    }
    const fused = JSON.parse((await get('/profile/flat-1')).text);
    for (const query of ['', 'x=1', 'views=flat']) {
      expect([query, JSON.parse((await get(`/profile/flat-1?${query}`)).text)]).to.deep.equal([query, fused]);
    }
  });

  it('answers HEAD ?view=flat with the status and headers of GET and no body', async () => {
    for (const url of ['/profile/flat-1?view=flat', '/profile/nobody?view=flat', '/profile/flat-1?view=full']) {
      const got = await get(url);
      const head = await get(url, 'HEAD');
      expect([url, head.status, head.type, head.length, head.text]).to.deep.equal([url, got.status, got.type, got.length, '']);
    }
  });
});

/** One tag of each kind the flat view writes as JSON text or whose value is a sketch's or a spread's. */
const NEW_KINDS = [
  { name: 'spend_p_1h', event: 'purchase', aggregation: 'percentile', field: 'amount', p: [50, 99], window: '1h' },
  { name: 'last2_ads_1h', event: 'impression', aggregation: 'last_k', field: 'ad_id', k: 2, window: '1h' },
  { name: 'first2_spend_1h', event: 'purchase', aggregation: 'first_k', field: 'amount', k: 2, window: '1h' },
  { name: 'spend_hist_1h', event: 'purchase', aggregation: 'histogram', field: 'amount', buckets: [10, 100], window: '1h' },
  { name: 'ads_approx_1h', event: 'impression', aggregation: 'approx_distinct', field: 'ad_id', window: '1h' },
  { name: 'spend_sd_1h', event: 'purchase', aggregation: 'stddev', field: 'amount', window: '1h' },
  { name: 'first_spend_1h', event: 'purchase', aggregation: 'first', field: 'amount', window: '1h' },
];

describe('percentile, last_k, first_k, histogram, approx_distinct, stddev and first in the fused profile, ProfileReader and ?view=flat (real Redis, real HTTP)', () => {
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;
  const events = [
    { user_id: 'kinds-1', type: 'purchase', ts: T0 - 2000, amount: 120 },
    { user_id: 'kinds-1', type: 'purchase', ts: T0 - 100, amount: 12.25 },
    { user_id: 'kinds-1', type: 'purchase', ts: T0 - 50, amount: 3 },
    { user_id: 'kinds-1', type: 'impression', ts: T0 - 3000, ad_id: 'a1' },
    { user_id: 'kinds-1', type: 'impression', ts: T0 - 2000, ad_id: 'a2' },
    { user_id: 'kinds-1', type: 'impression', ts: T0 - 1000, ad_id: 'a3' },
    { user_id: 'kinds-0', type: 'impression', ts: T0 - 1000, ad_id: 'a1' },
  ];

  before(async () => {
    p = await makePipeline({ tags: NEW_KINDS, now: T0 });
    ({ http, base } = await serveApp(p, { maxEventsPerRequest: 100, maxProfilesPerRequest: 10, maxBodyBytes: 65536 }));
    await feed(p, events);
  });
  after(async () => {
    await http.close();
    await p.close();
  });

  const getJson = async (url: string) => (await fetch(`${base}${url}`)).json() as Promise<Record<string, unknown>>;

  it('the reader and GET /profile answer each kind with its JSON type and the reference value', async () => {
    const read = (await p.reader.read('kinds-1'))!;
    const fused = (await getJson('/profile/kinds-1')) as { tags: Record<string, TagValue> };
    expect(fused.tags).to.deep.equal(JSON.parse(JSON.stringify(read.tags)));
    const t = fused.tags;
    // The reference model gives the same values (the percentile: the sketch's bucket values, within 1 % of 12.25 and 120).
    const mine = events.filter((e) => e.user_id === 'kinds-1') as ProfileEvent[];
    const model = computeWindowTags(mine, p.config.tags.realtime, T0);
    for (const tag of NEW_KINDS) expect(sameWindowValue(t[tag.name] as WindowValue, model[tag.name]), tag.name).to.equal(true);
    expect(Object.keys(t.spend_p_1h as object)).to.deep.equal(['p50', 'p99']);
    expect(Object.values(t.spend_p_1h as object).map((v) => typeof v)).to.deep.equal(['number', 'number']);
    const { p50, p99 } = t.spend_p_1h as { p50: number; p99: number };
    expect(Math.abs(p50 - 12.25) / 12.25).to.be.below(0.01);
    expect(Math.abs(p99 - 120) / 120).to.be.below(0.01);
    expect(t.last2_ads_1h).to.deep.equal(['a3', 'a2']);
    expect(t.first2_spend_1h).to.deep.equal([120, 12.25]);
    expect(t.spend_hist_1h).to.deep.equal({ '<10': 1, '[10,100)': 1, '>=100': 1 });
    expect(t.ads_approx_1h).to.equal(3);
    // Population: the square root of Σ(x - mean)² / 3, mean 45.0833….
    expect(t.spend_sd_1h).to.be.a('number').and.to.be.closeTo(53.1085105128, 1e-9);
    expect(t.first_spend_1h).to.equal(120);
    // A user with no purchase: null percentile, stddev and first; an empty first_k list and histogram.
    expect((await getJson('/profile/kinds-0')).tags).to.deep.equal({
      spend_p_1h: null,
      last2_ads_1h: ['a1'],
      first2_spend_1h: [],
      spend_hist_1h: {},
      ads_approx_1h: 1,
      spend_sd_1h: null,
      first_spend_1h: null,
    });
  });

  it('?view=flat writes percentile, last_k, first_k and histogram as JSON text, approx_distinct, stddev and first as decimal text, and leaves nulls out', async () => {
    const fused = (await getJson('/profile/kinds-1')) as { tags: Record<string, TagValue> };
    const flat = await getJson('/profile/kinds-1?view=flat');
    expect(flat).to.deep.equal({
      spend_p_1h: JSON.stringify(fused.tags.spend_p_1h),
      last2_ads_1h: '["a3","a2"]',
      first2_spend_1h: '[120,12.25]',
      spend_hist_1h: JSON.stringify(fused.tags.spend_hist_1h),
      ads_approx_1h: '3',
      spend_sd_1h: String(fused.tags.spend_sd_1h),
      first_spend_1h: '120',
    });
    expect(JSON.parse(flat.spend_p_1h as string)).to.deep.equal(fused.tags.spend_p_1h);
    expect(JSON.parse(flat.spend_hist_1h as string)).to.deep.equal({ '<10': 1, '[10,100)': 1, '>=100': 1 });
    expect(flat.spend_sd_1h).to.equal('53.108510512807');
    expect(await getJson('/profile/kinds-0?view=flat')).to.deep.equal({
      last2_ads_1h: '["a1"]',
      first2_spend_1h: '[]',
      spend_hist_1h: '{}',
      ads_approx_1h: '1',
    });
  });
});
