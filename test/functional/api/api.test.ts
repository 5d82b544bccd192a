import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { HttpServerHandle } from '../../../src/api/server';
import { ID_RULE } from '../../../src/core/event';
import { Metrics } from '../../../src/metrics/metrics';
import { sample } from '../../helpers/metrics';
import { Pipeline, T0, makePipeline, serveApp } from '../../helpers/context';

describe('HTTP API (real Redis, real HTTP)', () => {
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;

  beforeEach(async () => {
    p = await makePipeline({ partitions: 4 });
    ({ http, base } = await serveApp(p, { maxEventsPerRequest: 10_000, maxProfilesPerRequest: 100, maxBodyBytes: 16 * 1024 * 1024 }));
  });
  afterEach(async () => {
    await http.close();
    await p.close();
  });

  const post = (path: string, body: string, type = 'application/json') => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  const streamLengths = async () => {
    let total = 0;
    for (const s of p.keys.streams(4)) total += await p.redis.xlen(s);
    return total;
  };

  it('accepts one event object with 202 and its assigned event id', async () => {
    const res = await post('/events', JSON.stringify({ user_id: 'u1', type: 'click', ts: T0 }));
    expect(res.status).to.equal(202);
    const body = (await res.json()) as { accepted: number; event_ids: string[] };
    expect(body.accepted).to.equal(1);
    expect(body.event_ids).to.have.length(1);
    expect(await streamLengths()).to.equal(1);
  });

  it('answers 400 naming item and field, and writes nothing of the request', async () => {
    const res = await post(
      '/events',
      JSON.stringify([
        { user_id: 'u1', type: 'click', ts: T0 },
        { user_id: 'u1', type: 'purchase', ts: T0 },
        { user_id: 'u{1}', type: 'click', ts: T0, colour: 'red' },
      ]),
    );
    expect(res.status).to.equal(400);
    expect(await res.json()).to.deep.equal({
      errors: [
        { index: 1, field: 'amount', message: 'is required for a purchase' },
        { index: 2, field: 'colour', message: 'unknown field' },
        { index: 2, field: 'user_id', message: 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ -' },
      ],
    });
    expect(await streamLengths()).to.equal(0);
  });

  it('answers 400 for a body that is not JSON, 415 for other content types, 413 past the event limit', async () => {
    const bad = await post('/events', '{"user_id": ');
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.deep.equal({ errors: [{ index: 0, field: '', message: 'body is not valid JSON' }] });
    const text = await post('/events', 'user_id=u1', 'text/plain');
    expect(text.status).to.equal(415);
    const many = Array.from({ length: 10_001 }, () => ({ user_id: 'u', type: 'click' }));
    const tooMany = await post('/events', JSON.stringify(many));
    expect(tooMany.status).to.equal(413);
    // An empty body is named as such, whatever its type says (it was 415 for JSON, and "user_id is required" for -d '').
    const empty = { errors: [{ index: 0, field: '', message: 'empty body: send one event object, a JSON array of events, or NDJSON lines' }] };
    for (const type of ['application/json', 'application/x-ndjson', 'application/x-www-form-urlencoded']) {
      const r = await post('/events', '', type);
      expect([type, r.status, await r.json()]).to.deep.equal([type, 400, empty]);
    }
    const blank = await post('/events', '\n \n', 'application/x-ndjson');
    expect([blank.status, await blank.json()]).to.deep.equal([400, empty]);
    expect(await streamLengths()).to.equal(0);
  });

  it('ingests 10,000 events of bulk NDJSON in one request and the consumer folds all of them', async () => {
    const lines = [];
    for (let i = 0; i < 10_000; i++) {
      lines.push(JSON.stringify({ user_id: `user-${i % 100}`, type: 'impression', ts: T0 - (i % 60) * 1000, ad_id: `ad-${i % 7}`, campaign_id: `c-${i % 3}` }));
    }
    const res = await post('/events', lines.join('\n') + '\n', 'application/x-ndjson');
    expect(res.status).to.equal(202);
    expect(((await res.json()) as { accepted: number }).accepted).to.equal(10_000);
    expect(await streamLengths()).to.equal(10_000);
    expect(await p.consumer.drain()).to.equal(10_000);
    const profile = (await (await fetch(`${base}/profile/user-42`)).json()) as { tags: Record<string, unknown> };
    // user-42 gets i = 42 + 100k (k = 0..99): i % 3 = k % 3 (34 zeros), i % 7 takes all 7 values.
    expect(profile.tags.views_5m).to.equal(100);
    expect(profile.tags.distinct_ads_1h).to.equal(7);
    expect(profile.tags.campaign_views_1h).to.deep.equal({ 'c-0': 34, 'c-1': 33, 'c-2': 33 });
  });

  it('reports NDJSON syntax errors by line and writes nothing', async () => {
    const res = await post('/events', '{"user_id":"u","type":"click"}\n{oops}\n', 'application/x-ndjson');
    expect(res.status).to.equal(400);
    expect(await res.json()).to.deep.equal({ errors: [{ index: 1, field: '', message: 'line 2: not valid JSON' }] });
    expect(await streamLengths()).to.equal(0);
  });

  it('answers 404 JSON for an unknown user and 400 for an invalid id', async () => {
    const missing = await fetch(`${base}/profile/nobody`);
    expect(missing.status).to.equal(404);
    expect(await missing.json()).to.deep.equal({ error: 'unknown user', user_id: 'nobody' });
    const invalid = await fetch(`${base}/profile/${encodeURIComponent('a{b}')}`);
    expect(invalid.status).to.equal(400);
    const long = await fetch(`${base}/profile/${'x'.repeat(129)}`);
    expect(long.status).to.equal(400);
  });

  it('answers HEAD /profile/:id with the status and headers of GET and no body, and counts both reads', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const own = await serveApp(p, { metrics, maxEventsPerRequest: 10, maxProfilesPerRequest: 10, maxBodyBytes: 1 << 20 });
    try {
      await post('/events', JSON.stringify({ user_id: 'head-1', type: 'click', ts: T0 }));
      await p.consumer.drain();
      for (const id of ['head-1', 'nobody', 'a%7Bb%7D', '%E0%A4%A']) {
        const get = await fetch(`${own.base}/profile/${id}`);
        const head = await fetch(`${own.base}/profile/${id}`, { method: 'HEAD' });
        expect([id, head.status, head.headers.get('content-type'), head.headers.get('content-length')]).to.deep.equal([
          id,
          get.status,
          get.headers.get('content-type'),
          get.headers.get('content-length'),
        ]);
        expect(await head.text()).to.equal('');
      }
      expect(sample(await metrics.text(), 'profile_read_seconds_count{kind="single"}')).to.equal(4); // head-1 and nobody, GET and HEAD
    } finally {
      await own.http.close();
    }
  });

  it('answers 400 naming the id rule for a user id whose percent-encoding is malformed', async () => {
    for (const route of ['/profile/%E0%A4%A', '/profile/%zz', '/profile/a%']) {
      const res = await fetch(`${base}${route}`);
      expect([route, res.status]).to.deep.equal([route, 400]);
      expect(await res.json()).to.deep.equal({ error: `user id must be ${ID_RULE}` });
    }
  });

  it('serves the full path: HTTP in, consumer, fused profile out', async () => {
    const events = [
      { user_id: 'full', type: 'impression', ts: T0 - 1000, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'full', type: 'impression', ts: T0 - 2000, ad_id: 'a2', campaign_id: 'c-7' },
      { user_id: 'full', type: 'click', ts: T0 - 500, ad_id: 'a1', campaign_id: 'c-7' },
      { user_id: 'full', type: 'purchase', ts: T0, amount: 42.5, currency: 'USD' },
    ];
    expect((await post('/events', JSON.stringify(events))).status).to.equal(202);
    await p.consumer.drain();
    const res = await fetch(`${base}/profile/full`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(await res.json()).to.deep.equal({
      user_id: 'full',
      tags: {
        views_5m: 2,
        views_1h: 2,
        clicks_5m: 1,
        clicks_24h: 1,
        purchases_24h: 1,
        spend_24h: 42.5,
        distinct_ads_1h: 2,
        campaign_views_1h: { 'c-7': 2 },
      },
      meta: { as_of: T0, last_event_at: T0 },
    });
  });

  it('reads a profile in exactly one Redis command (one FCALL_RO round trip)', async () => {
    await post('/events', JSON.stringify([{ user_id: 'one', type: 'purchase', ts: T0, amount: 1, campaign_id: 'c' }]));
    await p.consumer.drain();
    await fetch(`${base}/profile/one`); // the first call may load the functions
    // MONITOR shows every command with its source: the client's, and the script's ("lua").
    const monitor = await (p.redis as Redis).monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua' && args[0] !== 'monitor') seen.push(`${args[0].toLowerCase()} ${args[3] ?? ''}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const res = await fetch(`${base}/profile/one`);
    expect(res.status).to.equal(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.disconnect();
    expect(seen).to.deep.equal([`fcall_ro ${p.keys.panes('one', 'impression')}`]);
  });

  it('returns many profiles with POST /profiles, in request order', async () => {
    await post(
      '/events',
      JSON.stringify([
        { user_id: 'x', type: 'click', ts: T0 },
        { user_id: 'y', type: 'click', ts: T0 },
      ]),
    );
    await p.consumer.drain();
    const res = await post('/profiles', JSON.stringify({ user_ids: ['y', 'ghost', 'x'] }));
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { profiles: { user_id: string; error?: string; tags?: Record<string, number> }[] };
    expect(body.profiles.map((pr) => [pr.user_id, pr.error ?? pr.tags!.clicks_5m])).to.deep.equal([
      ['y', 1],
      ['ghost', 'unknown user'],
      ['x', 1],
    ]);
    const tooMany = await post('/profiles', JSON.stringify({ user_ids: Array.from({ length: 101 }, (_, i) => `u${i}`) }));
    expect(tooMany.status).to.equal(400);
    const badId = await post('/profiles', JSON.stringify({ user_ids: ['ok', 'no spaces'] }));
    expect(badId.status).to.equal(400);
    expect(await badId.json()).to.deep.equal({ error: 'user_ids[1] must be 1-128 characters of A-Z a-z 0-9 . _ : @ -' });
  });

  it('answers only the tags asked for (?tags=, POST /profiles tags), evaluating only those in Redis; 400 naming an unknown tag', async () => {
    await post(
      '/events',
      JSON.stringify([
        { user_id: 'sel', type: 'impression', ts: T0, ad_id: 'a1', campaign_id: 'c1' },
        { user_id: 'sel', type: 'purchase', ts: T0, amount: 4 },
      ]),
    );
    await p.consumer.drain();
    await p.redis.hset(p.keys.offline('sel'), { ltv_total: '40', segment_id: 'regular' });
    const res = await fetch(`${base}/profile/sel?tags=campaign_views_1h,ltv_total`);
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { tags: unknown }).tags).to.deep.equal({ campaign_views_1h: { c1: 1 }, ltv_total: 40 });
    expect(await (await fetch(`${base}/profile/sel?tags=spend_24h&view=flat`)).json()).to.deep.equal({ spend_24h: '4' });
    // Only the impression type's state is read: the purchase type's keys are never touched.
    const monitor = await (p.redis as Redis).monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source === 'lua') seen.push(`${args[0].toLowerCase()} ${args[1]}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fetch(`${base}/profile/sel?tags=views_5m`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.disconnect();
    expect(seen.some((c) => c.includes(p.keys.panes('sel', 'impression')))).to.equal(true);
    expect(seen.filter((c) => c.includes(p.keys.panes('sel', 'purchase')))).to.deep.equal([]);
    for (const [query, error] of [
      ['tags=views_5m,nope,also_not', 'unknown tags: nope, also_not'],
      ['tags=', 'tags must list'],
      ['tags=a&tags=b', 'tags must list'],
    ]) {
      const bad = await fetch(`${base}/profile/sel?${query}`);
      expect([query, bad.status]).to.deep.equal([query, 400]);
      expect(((await bad.json()) as { error: string }).error).to.include(error);
    }
    const many = await post('/profiles', JSON.stringify({ user_ids: ['sel', 'ghost'], tags: ['views_5m', 'segment_id'] }));
    expect(await many.json()).to.deep.equal({
      profiles: [
        { user_id: 'sel', tags: { views_5m: 1, segment_id: 'regular' }, meta: { as_of: T0, last_event_at: T0 } },
        { user_id: 'ghost', error: 'unknown user' },
      ],
    });
    const unknown = await post('/profiles', JSON.stringify({ user_ids: ['sel'], tags: ['views_6m'] }));
    expect([unknown.status, await unknown.json()]).to.deep.equal([400, { error: 'unknown tag: views_6m' }]);
  });

  it('answers /health and /status with per-partition group progress', async () => {
    expect(await (await fetch(`${base}/health`)).json()).to.deep.equal({ status: 'ok' });
    await post('/events', JSON.stringify([{ user_id: 'u1', type: 'click', ts: T0 }]));
    const before = (await (await fetch(`${base}/status`)).json()) as { partitions: { length: number; groups: { name: string; lag: number }[] }[] };
    expect(before.partitions).to.have.length(4);
    expect(before.partitions.reduce((n, x) => n + x.length, 0)).to.equal(1);
    expect(before.partitions.reduce((n, x) => n + x.groups.find((g) => g.name === 'realtime')!.lag, 0)).to.equal(1);
    expect(before.partitions.map((x) => x.groups.map((g) => g.name).sort())).to.deep.equal(Array(4).fill(['archive', 'realtime']));
    await p.consumer.drain();
    const after = (await (await fetch(`${base}/status`)).json()) as typeof before;
    expect(after.partitions.reduce((n, x) => n + x.groups.find((g) => g.name === 'realtime')!.lag, 0)).to.equal(0);
  });

  it('answers unknown routes with 404 JSON', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).to.equal(404);
    expect(await res.json()).to.deep.equal({ error: 'no such route' });
  });
});
