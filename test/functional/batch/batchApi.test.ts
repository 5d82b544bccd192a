import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { HttpServerHandle } from '../../../src/api/server';
import { BatchLauncher } from '../../../src/batch/launcher';
import { acquireBatchLock } from '../../../src/batch/registry';
import { Pipeline, T0, batchChild, makePipeline, serveApp } from '../../helpers/context';

describe('batch over HTTP: POST /batch, GET /batch/:id (real child process)', function () {
  this.timeout(30_000);
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;
  let ods: string;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 2 });
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-api-'));
    const batch = new BatchLauncher({
      redis: p.redis,
      keys: p.keys,
      child: batchChild(p, ods),
    });
    ({ http, base } = await serveApp(p, { batch, maxEventsPerRequest: 100, maxProfilesPerRequest: 100, maxBodyBytes: 1 << 20 }));
  });
  afterEach(async () => {
    await http.close();
    await p.close();
    fs.rmSync(ods, { recursive: true, force: true });
  });
  const postBatch = (body?: unknown) =>
    fetch(
      `${base}/batch`,
      body === undefined ? { method: 'POST' } : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );

  it('runs a batch in a child process and reports its summary; the profile then carries the offline tags', async () => {
    const dt = path.join(ods, 'dt=2026-01-01');
    fs.mkdirSync(dt, { recursive: true });
    fs.writeFileSync(
      path.join(dt, 'part-x.ndjson'),
      [
        { event_id: 'p1', user_id: 'buyer', type: 'purchase', ts: T0, amount: 250, stream_id: '1-0', ingested_at: 1 },
        { event_id: 'p2', user_id: 'buyer', type: 'purchase', ts: T0 + 1000, amount: 250, stream_id: '1-1', ingested_at: 1 },
      ]
        .map((e) => JSON.stringify(e))
        .join('\n') + '\n',
    );
    const res = await postBatch({ as_of: T0 + 60_000 });
    expect(res.status).to.equal(202);
    const { run_id } = (await res.json()) as { run_id: string };
    expect(run_id).to.match(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    let status: Record<string, unknown> = {};
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      status = (await (await fetch(`${base}/batch/${run_id}`)).json()) as Record<string, unknown>;
      if (status.state === 'succeeded' || status.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).to.deep.include({ run_id, state: 'succeeded', as_of: T0 + 60_000 });
    expect(status.summary).to.deep.include({ files: 1, lines: 2, events: 2, duplicates: 0, bad_lines: 0, users_written: 1 });
    const profile = (await (await fetch(`${base}/profile/buyer`)).json()) as { tags: Record<string, unknown>; meta: Record<string, unknown> };
    expect(profile.tags).to.deep.include({ ltv_total: 500, purchases_total: 2, first_seen: T0, last_seen: T0 + 1000, segment_id: 'high_value_user' });
    expect(profile.meta.batch_run_id).to.equal(run_id);
    expect(profile.meta.batch_at).to.be.a('number');
    // The lock is released once the run has finished: a new run may start, here through the
    // original system's trigger (POST /collect/batch, an alias), and it runs the same way.
    const again = await fetch(`${base}/collect/batch`, { method: 'POST' });
    expect(again.status).to.equal(202);
    const second = ((await again.json()) as { run_id: string }).run_id;
    let state = '';
    while (Date.now() < deadline + 20_000 && state !== 'succeeded' && state !== 'failed') {
      await new Promise((r) => setTimeout(r, 50));
      state = ((await (await fetch(`${base}/batch/${second}`)).json()) as { state: string }).state;
    }
    expect(state).to.equal('succeeded');
  });

  it('answers 409 while a run holds the lock', async () => {
    await acquireBatchLock(p.redis, p.keys, '20260101T000000Z-abcdef');
    const res = await postBatch({});
    expect(res.status).to.equal(409);
    expect(await res.json()).to.deep.equal({ error: 'a batch run is in progress', run_id: '20260101T000000Z-abcdef' });
  });

  it('validates the request and the run id', async () => {
    expect((await postBatch({ as_of: 'yesterday' })).status).to.equal(400);
    expect(await (await postBatch({ from: '2026/01/01' })).json()).to.deep.equal({ error: 'from must be a date YYYY-MM-DD' });
    expect(await (await postBatch({ wat: 1 })).json()).to.deep.equal({ error: 'unknown field "wat"' });
    expect((await fetch(`${base}/batch/..%2F..%2Fetc`)).status).to.equal(400);
    expect((await fetch(`${base}/batch/20260101T000000Z-000000`)).status).to.equal(404);
  });
});
