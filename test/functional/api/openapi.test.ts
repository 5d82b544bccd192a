import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import Ajv2020 from 'ajv/dist/2020';
import { createApp } from '../../../src/api/app';
import { openApiDocument } from '../../../src/api/openapi';
import { HttpServerHandle, listen } from '../../../src/api/server';
import { BatchLauncher } from '../../../src/batch/launcher';
import { acquireBatchLock } from '../../../src/batch/registry';
import { Producer } from '../../../src/producer/producer';
import { Metrics } from '../../../src/metrics/metrics';
import { sample } from '../../helpers/metrics';
import { DEFAULT_TAGS_FILE } from '../../../src/core/tagConfig';
import { Pipeline, T0, batchChild, makePipeline } from '../../helpers/context';
import { EVERY_KIND_TAGS } from '../../helpers/windowReference';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>> };
const doc = openApiDocument as unknown as Doc;
const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/**
 * Every response of a real server, checked against the OpenAPI document: its status must be
 * documented for the route, and a JSON body must match the documented schema.
 */
describe('OpenAPI document matches real responses (real Redis, real HTTP)', function () {
  this.timeout(30_000);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(openApiDocument as unknown as object, 'doc');
  const covered = new Set<string>();
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;
  let ods: string;
  let metrics: Metrics;

  before(async () => {
    // The shipped tags (and offline config: `triggers` keeps it) and one of every kind, so the profiles checked hold each kind's JSON shape.
    const shipped = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: unknown[] };
    p = await makePipeline({ partitions: 2, now: Date.now(), tags: [...shipped.realtime, ...EVERY_KIND_TAGS], triggers: [] });
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'openapi-ods-'));
    metrics = new Metrics({ processMetrics: false });
    const child = batchChild(p, ods);
    const app = createApp({
      redis: p.redis,
      reader: p.reader,
      keys: p.keys,
      partitions: 2,
      producer: new Producer({ redis: p.redis, keys: p.keys, partitions: 2, maxFutureSkewMs: 300_000 }),
      batch: new BatchLauncher({ redis: p.redis, keys: p.keys, child, metrics }),
      metrics,
      windowTags: p.config.tags.realtime,
      odsDir: ods,
      maxEventsPerRequest: 5,
      maxProfilesPerRequest: 3,
      maxBodyBytes: 4096,
    });
    http = await listen(app, '127.0.0.1', 0);
    base = `http://127.0.0.1:${http.port}`;
  });
  after(async () => {
    await http.close();
    await p.close();
    fs.rmSync(ods, { recursive: true, force: true });
  });

  /** Sends a request and checks the response against the document; returns the parsed body. */
  async function call(method: string, template: string, url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${base}${url}`, { method, ...init });
    const status = String(res.status);
    const spec = doc.paths[template]?.[method.toLowerCase()]?.responses[status];
    expect(spec, `${method} ${template} answered ${status}, which the document does not list`).to.not.equal(undefined);
    covered.add(`${method} ${template}`);
    const type = res.headers.get('content-type') ?? '';
    if (type.startsWith('application/json')) {
      const body = await res.json();
      const validate = ajv.getSchema(`doc#/${pointer('paths', template, method.toLowerCase(), 'responses', status, 'content', 'application/json', 'schema')}`);
      expect(validate, `no JSON schema for ${method} ${template} ${status}`).to.not.equal(undefined);
      if (!validate!(body)) expect.fail(`${method} ${url} ${status}: ${ajv.errorsText(validate!.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
      return { status: res.status, body };
    }
    expect(Object.keys(spec!.content ?? {})[0]).to.equal(type.split(';')[0]);
    return { status: res.status, body: await res.text() };
  }
  const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('POST /events: 202, 400, 413, 415', async () => {
    const now = Date.now();
    expect(
      (
        await call(
          'POST',
          '/events',
          '/events',
          json([
            { user_id: 'oa', type: 'purchase', ts: now, amount: 3.5, ad_id: 'a', campaign_id: 'c' },
            { user_id: 'oa', type: 'impression', ts: now, ad_id: 'a', campaign_id: 'c' },
          ]),
        )
      ).status,
    ).to.equal(202);
    expect(
      (
        await call('POST', '/events', '/events', {
          headers: { 'content-type': 'application/x-ndjson' },
          body: JSON.stringify({ user_id: 'ob', type: 'click' }),
        })
      ).status,
    ).to.equal(202);
    expect((await call('POST', '/events', '/events', json([{ user_id: 'a{b}', type: 'x' }]))).status).to.equal(400);
    expect((await call('POST', '/events', '/events', { headers: { 'content-type': 'application/json' }, body: '{"user_id":' })).status).to.equal(400);
    expect((await call('POST', '/events', '/events', json(Array.from({ length: 6 }, () => ({ user_id: 'x', type: 'click' }))))).status).to.equal(413);
    expect((await call('POST', '/events', '/events', json('x'.repeat(5000)))).status).to.equal(413);
    expect((await call('POST', '/events', '/events', { headers: { 'content-type': 'text/plain' }, body: 'x' })).status).to.equal(415);
    p.clock.now = Date.now() + 1000; // the pipeline's clock: now past the events just sent
    await p.consumer.drain();
  });

  it('GET /profile/{userId} (both views), POST /profiles: 200, 400, 404', async () => {
    const one = await call('GET', '/profile/{userId}', '/profile/oa');
    expect(one.status).to.equal(200);
    const tags = (one.body as { tags: Record<string, unknown> }).tags;
    expect(tags).to.include({ purchases_24h: 1, spend_24h: 3.5 });
    // Every kind in its documented JSON type (the schema's oneOf took each): one purchase of 3.5, one impression of ad a.
    expect(tags).to.deep.include({
      first_20m: 3.5,
      sd_10m: 0,
      var_1h: 0,
      ads_approx_1h: 1,
      spend_hist_1h: { '<10': 1 },
      last3_ads_30m: ['a'],
      first2_amounts_2h: [3.5],
      last5_amounts_90s: [3.5],
      camp_top2_1h: { c: 1 },
    });
    expect(Object.keys(tags.spend_p_1h as object)).to.deep.equal(['p50', 'p90', 'p99.9']);
    for (const v of Object.values(tags.spend_p_1h as object)) expect(Math.abs(v - 3.5) / 3.5).to.be.below(0.01);
    // The schema is not vacuous for them: a percentile value that is not a number, or a list of objects, is refused.
    const profileSchema = ajv.getSchema('doc#/components/schemas/Profile')!;
    expect(profileSchema(one.body)).to.equal(true);
    expect(profileSchema({ ...(one.body as object), tags: { ...tags, spend_p_1h: { p50: '3.5' } } })).to.equal(false);
    expect(profileSchema({ ...(one.body as object), tags: { ...tags, last3_ads_30m: [{ v: 'a' }] } })).to.equal(false);
    expect((await call('GET', '/profile/{userId}', '/profile/nobody')).status).to.equal(404);
    // view=flat: the 200 must match FlatProfile and not Profile (oneOf); its 400 and 404 are the documented ones.
    const flat = await call('GET', '/profile/{userId}', '/profile/oa?view=flat');
    expect(flat.body).to.include({
      purchases_24h: '1',
      spend_24h: '3.5',
      first_20m: '3.5',
      sd_10m: '0',
      ads_approx_1h: '1',
      spend_hist_1h: '{"<10":1}',
      last3_ads_30m: '["a"]',
      first2_amounts_2h: '[3.5]',
      spend_p_1h: JSON.stringify(tags.spend_p_1h),
    });
    expect((await call('GET', '/profile/{userId}', '/profile/oa?view=nested')).status).to.equal(400);
    expect((await call('GET', '/profile/{userId}', '/profile/nobody?view=flat')).status).to.equal(404);
    expect((await call('GET', '/profile/{userId}', '/profile/a%7Bb%7D')).status).to.equal(400);
    const many = await call('POST', '/profiles', '/profiles', json({ user_ids: ['oa', 'ob', 'nobody'] }));
    expect(many.status).to.equal(200);
    expect((await call('POST', '/profiles', '/profiles', json({ user_ids: ['a', 'b', 'c', 'd'] }))).status).to.equal(400);
    const timeline = await call('GET', '/profile/{userId}/timeline', '/profile/oa/timeline');
    expect((timeline.body as { tags: Record<string, { counts: number[] }> }).tags.purchases_24h.counts.reduce((a, b) => a + b, 0)).to.equal(1);
    expect((await call('GET', '/profile/{userId}/timeline', '/profile/a%7Bb%7D/timeline')).status).to.equal(400);
    // An unknown user: 404, as GET /profile/{userId} answers (it was 200 with zeros).
    expect((await call('GET', '/profile/{userId}/timeline', '/profile/nobody-here/timeline')).status).to.equal(404);
    expect((await call('DELETE', '/profile/{userId}', '/profile/ob')).status).to.equal(200);
    expect((await call('DELETE', '/profile/{userId}', '/profile/a%7Bb%7D')).status).to.equal(400);
  });

  it('POST /batch and GET /batch/{runId}: 202, 200, 400, 404, 409, 415', async () => {
    fs.mkdirSync(path.join(ods, 'dt=2026-01-01'), { recursive: true });
    fs.writeFileSync(path.join(ods, 'dt=2026-01-01', 'part-x.ndjson'), JSON.stringify({ event_id: 'e1', user_id: 'oa', type: 'click', ts: T0 }) + '\n');
    expect((await call('POST', '/batch', '/batch', json({ colour: 'red' }))).status).to.equal(400);
    expect((await call('POST', '/batch', '/batch', { headers: { 'content-type': 'text/plain' }, body: 'x' })).status).to.equal(415);
    const started = await call('POST', '/batch', '/batch', json({ as_of: Date.now() }));
    expect(started.status).to.equal(202);
    const runId = (started.body as { run_id: string }).run_id;
    let state = '';
    for (let i = 0; i < 200 && !['succeeded', 'failed'].includes(state); i++) {
      await new Promise((r) => setTimeout(r, 50));
      state = ((await call('GET', '/batch/{runId}', `/batch/${runId}`)).body as { state: string }).state;
    }
    expect(state).to.equal('succeeded');
    let counted: number | undefined;
    for (let i = 0; i < 50 && counted === undefined; i++) {
      counted = sample(await metrics.text(), 'profile_batch_runs_total{state="succeeded"}');
      if (counted === undefined) await new Promise((r) => setTimeout(r, 50)); // the child's exit is seen just after its last write
    }
    expect(counted).to.equal(1);
    expect(sample(await metrics.text(), 'profile_batch_run_seconds_count')).to.equal(1);
    expect(await acquireBatchLock(p.redis, p.keys, '20260101T000000Z-000000')).to.equal(true);
    expect((await call('POST', '/batch', '/batch')).status).to.equal(409);
    // The alias answers as POST /batch does.
    expect((await call('POST', '/collect/batch', '/collect/batch')).status).to.equal(409);
    expect((await call('POST', '/collect/batch', '/collect/batch', json({ colour: 'red' }))).status).to.equal(400);
    await p.redis.del(p.keys.batchLock());
    expect((await call('GET', '/batch/{runId}', '/batch/20260101T000000Z-abcdef')).status).to.equal(404);
    expect((await call('GET', '/batch/{runId}', '/batch/nope')).status).to.equal(400);
  });

  it('GET /status, /health, /ready, /metrics, /openapi.json', async () => {
    expect((await call('GET', '/status', '/status')).status).to.equal(200);
    expect((await call('GET', '/health', '/health')).status).to.equal(200);
    expect((await call('GET', '/ready', '/ready')).status).to.equal(200);
    expect((await call('GET', '/metrics', '/metrics')).status).to.equal(200);
    expect((await call('GET', '/dashboard/stats', '/dashboard/stats')).status).to.equal(200);
    expect((await call('GET', '/triggers/stream', '/triggers/stream?name=Not-A-Name')).status).to.equal(400);
    expect((await call('GET', '/triggers/stream', '/triggers/stream', { headers: { 'last-event-id': 'nope' } })).status).to.equal(400);
    expect((await call('GET', '/', '/')).body as string).to.include('<title>profile-stream</title>');
    const self = await call('GET', '/openapi.json', '/openapi.json');
    expect(self.body).to.deep.equal(JSON.parse(JSON.stringify(openApiDocument)));
  });

  it('is a valid OpenAPI 3.1 shape, and every documented operation was exercised above', () => {
    expect(openApiDocument.openapi).to.equal('3.1.0');
    const documented = Object.entries(doc.paths).flatMap(([route, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${route}`));
    expect([...covered].sort()).to.deep.equal(documented.sort());
  });
});
