import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { runBatch } from '../../../src/batch/run';
import { acquireBatchLock } from '../../../src/batch/registry';
import { BatchBusyError } from '../../../src/core/errors';
import { parseTagConfig, loadTagConfig } from '../../../src/core/tagConfig';
import { Pipeline, T0, makePipeline } from '../../helpers/context';
import { ProfileEvent } from '../../../src/core/event';
import { odsLine } from '../../../src/ods/files';

const DAY = 86_400_000;
const AS_OF = T0 + 100 * DAY; // 2026-04-11

type Line = Record<string, unknown>;
let seq = 0;
const ev = (user: string, type: string, daysAgo: number, extra: Line = {}): Line => ({
  event_id: `h${++seq}`,
  user_id: user,
  type,
  ts: AS_OF - Math.round(daysAgo * DAY),
  stream_id: `${seq}-0`,
  ingested_at: seq,
  ...extra,
});

/** Writes NDJSON files into dt= folders by event date. */
function writeOds(dir: string, events: Line[], name = 'part-test.ndjson'): void {
  for (const e of events) {
    const dt = `dt=${new Date(e.ts as number).toISOString().slice(0, 10)}`;
    fs.mkdirSync(path.join(dir, dt), { recursive: true });
    fs.appendFileSync(path.join(dir, dt, name), JSON.stringify(e) + '\n');
  }
}

describe('profile batch (real Redis, temp ODS)', () => {
  let p: Pipeline;
  let ods: string;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 2 });
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-test-'));
  });
  afterEach(async () => {
    await p.close();
    fs.rmSync(ods, { recursive: true, force: true });
  });
  const run = (extra: Partial<Parameters<typeof runBatch>[0]> = {}) =>
    runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: AS_OF, ...extra });
  const off = (user: string) => p.redis.hgetall(p.keys.offline(user));

  /** A dataset that hits every segment rule, including the boundaries. */
  function handMade(): Line[] {
    const out: Line[] = [];
    // high_value_user: ltv exactly 400 (>= 400), although also new (first match wins).
    out.push(ev('hv', 'purchase', 1, { amount: 150.25 }), ev('hv', 'purchase', 2, { amount: 249.75 }), ev('hv', 'impression', 3));
    // new_user: first seen exactly 7 days ago; ltv 399.99.
    out.push(ev('newbie', 'impression', 7), ev('newbie', 'purchase', 0.5, { amount: 399.99 }));
    // churn_risk: last seen 30 days + 1 minute ago.
    out.push(ev('churner', 'impression', 60), ev('churner', 'click', 30 + 1 / 1440));
    // window_shopper: no purchase, exactly 50 impressions in 30 days (plus 5 older ones).
    for (let i = 0; i < 50; i++) out.push(ev('shopper', 'impression', 10 + (i % 20) * 0.5));
    for (let i = 0; i < 5; i++) out.push(ev('shopper', 'impression', 31 + i));
    // regular: 49 impressions in 30 days, no purchase, first seen 20 days ago.
    for (let i = 0; i < 49; i++) out.push(ev('looker', 'impression', 20 - (i % 10)));
    // regular: seen 8 and 30 days ago exactly (not churn: 30 days is not over 30 days).
    out.push(ev('reg', 'impression', 8), ev('reg', 'purchase', 30, { amount: 5 }));
    return out;
  }

  it('computes exact offline tags and the segment of every rule', async () => {
    const events = handMade();
    writeOds(ods, events);
    const dates = new Set(events.map((e) => new Date(e.ts as number).toISOString().slice(0, 10)));
    const summary = await run();
    expect(summary).to.deep.include({ files: dates.size, events: 113, duplicates: 0, bad_lines: 0, users_written: 6, events_after_as_of: 0 });
    const base = { _run_id: summary.run_id };
    expect(await off('hv')).to.deep.include({
      ...base,
      ltv_total: '400',
      purchases_total: '2',
      first_seen: String(AS_OF - 3 * DAY),
      last_seen: String(AS_OF - DAY),
      active_days_30d: '3',
      impressions_30d: '1',
      segment_id: 'high_value_user',
    });
    expect(await off('newbie')).to.deep.include({
      ltv_total: '399.99',
      purchases_total: '1',
      first_seen: String(AS_OF - 7 * DAY),
      last_seen: String(AS_OF - DAY / 2),
      active_days_30d: '2',
      impressions_30d: '1',
      segment_id: 'new_user',
    });
    expect(await off('churner')).to.deep.include({
      ltv_total: '0',
      purchases_total: '0',
      last_seen: String(AS_OF - 30 * DAY - 60_000),
      active_days_30d: '0',
      impressions_30d: '0',
      segment_id: 'churn_risk',
    });
    expect(await off('shopper')).to.deep.include({ impressions_30d: '50', purchases_total: '0', active_days_30d: '11', segment_id: 'window_shopper' });
    expect(await off('looker')).to.deep.include({ impressions_30d: '49', active_days_30d: '10', segment_id: 'regular' });
    expect(await off('reg')).to.deep.include({ ltv_total: '5', active_days_30d: '2', segment_id: 'regular' });
    expect(Number((await off('reg'))._batch_at)).to.be.closeTo(Date.now(), 60_000);
  });

  it('deduplicates by event id across files and reports bad lines with file and line number', async () => {
    const events = [ev('d', 'purchase', 1, { amount: 10 }), ev('d', 'purchase', 2, { amount: 20 })];
    writeOds(ods, events, 'part-a.ndjson');
    writeOds(ods, events, 'part-b.ndjson'); // the same two events written again (redelivery)
    const dir = path.join(ods, `dt=${new Date(AS_OF - DAY).toISOString().slice(0, 10)}`);
    const bad = path.join(dir, 'part-c.ndjson');
    fs.writeFileSync(
      bad,
      [
        JSON.stringify(ev('d', 'click', 1)),
        'not json at all',
        JSON.stringify({ ...ev('d', 'click', 1), type: 'view' }),
        '',
        JSON.stringify({ ...ev('d', 'click', 1), colour: 'red' }),
        JSON.stringify(ev('d', 'click', 1)),
      ].join('\n') + '\n{"event_id":"x","user',
    );
    const summary = await run();
    expect(summary.bad_line_samples).to.deep.equal([
      { file: bad, line: 2, reason: 'not valid JSON' },
      { file: bad, line: 3, reason: 'type: must be one of impression, click, purchase' },
      { file: bad, line: 5, reason: 'colour: unknown field' },
      { file: bad, line: 7, reason: 'torn last line (no newline, not JSON)' },
    ]);
    expect(summary).to.deep.include({ lines: 10, events: 4, duplicates: 2, bad_lines: 4 });
    expect(await off('d')).to.deep.include({ ltv_total: '30', purchases_total: '2' });
  });

  it('replaces the offline hash whole: no stale field survives a re-run', async () => {
    writeOds(ods, [ev('s', 'purchase', 1, { amount: 10 })]);
    await p.redis.hset(p.keys.offline('s'), 'old_tag', '7', 'segment_id', 'stale');
    const withExtra = parseTagConfig({
      realtime: loadTagConfig().realtime.map((t) => ({ name: t.name, event: t.event, aggregation: t.aggregation, field: t.field, window: t.windowMs })),
      offline: {
        tags: [
          { name: 'ltv_total', aggregation: 'sum', event: 'purchase', field: 'amount' },
          { name: 'extra_total', aggregation: 'count' },
        ],
      },
    });
    await run({ tags: withExtra });
    expect(await off('s')).to.have.keys('ltv_total', 'extra_total', '_run_id', '_batch_at');
    const second = await run();
    const fields = await off('s');
    expect(fields).to.not.have.any.keys('extra_total', 'old_tag');
    expect(fields._run_id).to.equal(second.run_id);
    expect(fields.segment_id).to.equal('new_user');
  });

  it('honours --from/--to and ignores events after --as-of', async () => {
    writeOds(ods, [ev('f', 'purchase', 50, { amount: 1 }), ev('f', 'purchase', 10, { amount: 2 }), ev('f', 'purchase', -0.5, { amount: 4 })]);
    const d = (daysAgo: number) => new Date(AS_OF - daysAgo * DAY).toISOString().slice(0, 10);
    const ranged = await run({ from: d(20), to: d(0) });
    expect(ranged).to.deep.include({ files: 2, events: 1, events_after_as_of: 1 });
    expect((await off('f')).ltv_total).to.equal('2');
    await run();
    expect((await off('f')).ltv_total).to.equal('3');
  });

  it('gives the same offline tags with --windows, and again on a re-run', async () => {
    const events: Line[] = [];
    for (let i = 0; i < 300; i++) events.push(ev(`user-${i % 37}`, i % 3 ? 'impression' : 'purchase', (i % 40) + 0.1, i % 3 ? {} : { amount: i }));
    writeOds(ods, [...events, ...events.slice(0, 40)]);
    const whole = await run();
    expect([whole.events, whole.duplicates, whole.lines]).to.deep.equal([300, 40, 340]);
    const snapshot = await Promise.all(Array.from({ length: 37 }, (_, i) => off(`user-${i}`)));
    const windows = await run({ windows: true });
    expect([windows.events, windows.duplicates, windows.lines, windows.users_written]).to.deep.equal([whole.events, whole.duplicates, whole.lines, 37]);
    const again = await Promise.all(Array.from({ length: 37 }, (_, i) => off(`user-${i}`)));
    const strip = (h: Record<string, string>) => ({ ...h, _run_id: '', _batch_at: '' });
    expect(again.map(strip)).to.deep.equal(snapshot.map(strip));
  });

  it('skips the check of files an earlier run found canonical, and checks again any file that changed', async () => {
    const canonical = ({ stream_id: streamId, ingested_at: _i, ...e }: Line) => odsLine(e as unknown as ProfileEvent, String(streamId));
    const write = (file: string, events: Line[]) => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, events.map(canonical).join(''));
    };
    const day = path.join(ods, `dt=${new Date(AS_OF - DAY).toISOString().slice(0, 10)}`);
    const a = path.join(day, 'part-a.ndjson');
    const b = path.join(day, 'part-b.ndjson');
    write(a, [ev('c1', 'purchase', 1, { amount: 1 }), ev('c2', 'impression', 1)]);
    write(b, [ev('c3', 'click', 1)]);
    fs.appendFileSync(b, '{"not": "an event"}\n'); // b is not canonical: never listed
    expect((await run()).bad_lines).to.equal(1);
    const list = JSON.parse(fs.readFileSync(path.join(ods, '.batch-checked.json'), 'utf8'));
    expect(Object.keys(list.files)).to.deep.equal([path.relative(ods, a)]);
    expect(list.files[path.relative(ods, a)].lines).to.equal(2);

    // Unchanged (same inode, size and time): trusted without reading it again. Shown by a
    // same-length edit whose times are put back, which the check would have refused.
    const stat = fs.statSync(a);
    const text = fs.readFileSync(a, 'utf8');
    fs.writeFileSync(a, text.replace('"type":"impression"', '"type":"impressio!"'));
    fs.utimesSync(a, stat.atime, stat.mtime);
    expect((await run()).bad_lines).to.equal(1);

    // Changed (an append): checked again, and the bad line found.
    fs.appendFileSync(a, canonical(ev('c4', 'click', 1)));
    const again = await run();
    expect(again.bad_lines).to.equal(2);
    expect(again.bad_line_samples.map((l) => `${path.basename(l.file)}:${l.line}`)).to.include('part-a.ndjson:2');
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(ods, '.batch-checked.json'), 'utf8')).files)).to.deep.equal([]);

    // A read-only ODS: the run works, no list is kept.
    fs.writeFileSync(a, text);
    fs.rmSync(path.join(ods, '.batch-checked.json'));
    fs.chmodSync(ods, 0o555);
    try {
      const readOnly = await run();
      expect([readOnly.bad_lines, readOnly.users_written]).to.deep.equal([1, 3]);
      if (process.getuid?.() !== 0) expect(fs.existsSync(path.join(ods, '.batch-checked.json'))).to.equal(false); // root writes anyway
    } finally {
      fs.chmodSync(ods, 0o755);
    }
  });

  it('refuses to run while another run holds the lock', async () => {
    expect(await acquireBatchLock(p.redis, p.keys, 'someone-else')).to.equal(true);
    let err: unknown;
    await run().catch((e) => (err = e));
    expect(err).to.be.instanceOf(BatchBusyError);
    expect((err as Error).message).to.equal('another batch run is in progress (someone-else)');
  });
});
