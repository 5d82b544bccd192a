import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { ArchiveConsumer } from '../../../src/consumers/archive';
import { runBatch } from '../../../src/batch/run';
import { verifyWindows } from '../../../src/batch/verify';
import { TrafficGenerator, prng } from '../../../src/dev/simulate';
import { Pipeline, T0, makePipeline } from '../../helpers/context';
import { EVERY_KIND_TAGS } from '../../helpers/windowReference';

describe('online/offline consistency (real pipeline, batch --windows, verify)', function () {
  this.timeout(60_000);
  let p: Pipeline;
  let ods: string;
  let archive: ArchiveConsumer;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 3 });
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'consistency-'));
    archive = new ArchiveConsumer({ redis: p.redis, keys: p.keys, partitions: 3, consumerName: 'arch', odsDir: ods, trimIntervalMs: 0 });
  });
  afterEach(async () => {
    await archive.stop();
    await p.close();
    fs.rmSync(ods, { recursive: true, force: true });
  });

  it('replaying the ODS gives exactly the window values the live windows serve, for every user', async () => {
    // Two hours of traffic in 1-minute steps, out of order within each step, with resubmitted duplicates.
    const gen = new TrafficGenerator(60, 11);
    let sent = 0;
    for (let minute = 0; minute < 120; minute++) {
      p.clock.now = T0 + minute * 60_000;
      const events = Array.from({ length: 40 }, (_, i) => ({ ...gen.next(p.clock.now - ((i * 7919) % 60_000)) }));
      const dupes = events.slice(0, 3);
      const r = await p.producer.ingest([...events, ...dupes]);
      expect(r.ok).to.equal(true);
      sent += events.length;
      await p.consumer.drain();
      await archive.drain();
    }
    const asOf = p.clock.now + 30_000;
    const summary = await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf, windows: true });
    expect(summary).to.deep.include({ events: sent, duplicates: 360, bad_lines: 0 });
    expect(summary.window_users_written).to.be.greaterThan(30);
    const result = await verifyWindows(p.redis, p.keys, p.config.tags.realtime, asOf);
    expect(result.users_checked).to.equal(summary.window_users_written);
    expect(result.mismatches).to.deep.equal([]);

    // verify is not vacuous: take the newest impression out of every pane level of a live
    // window and out of its running counts (field T: "<newest>,...\x1e<spec>=<d>:<count>",
    // the count of the completed panes before pane floor(newest / res) - d: when it holds
    // that second) and it is found.
    const user = 'user-1';
    const panes = p.keys.panes(user, 'impression');
    const second = Math.max(...(await p.redis.hkeys(panes)).filter((f) => /^s\d+$/.test(f)).map((f) => Number(f.slice(1))));
    for (const field of [`s${second}`, `m${Math.floor(second / 60)}`, `h${Math.floor(second / 3600)}`]) {
      if (await p.redis.hexists(panes, field)) await p.redis.hincrby(panes, field, -1);
    }
    const totals = (await p.redis.hget(panes, 'T'))!;
    const newest = Number(totals.split(',')[0]) / 1000;
    await p.redis.hset(
      panes,
      'T',
      totals.replace(/\x1e(s|m|h)(\d+)=(-?\d+):(\d+)/g, (all, level: string, steps: string, d: string, n: string) => {
        const res = { s: 1, m: 60, h: 3600 }[level]!;
        const pane = Math.floor(newest / res) - Number(d);
        return second < pane * res ? `\x1e${level}${steps}=${d}:${Number(n) - 1}` : all;
      }),
    );
    const tampered = await verifyWindows(p.redis, p.keys, p.config.tags.realtime);
    expect(tampered.mismatches.map((m) => `${m.user_id}:${m.tag}`)).to.include.members([`${user}:views_5m`, `${user}:views_1h`]);
    const views = tampered.mismatches.find((m) => m.tag === 'views_1h')!;
    expect(views.batch).to.equal((views.live as number) + 1);
  });

  it('verify agrees with the live windows on every aggregation kind (purchases with amounts, impressions with ads, duplicates, out of order, ties)', async () => {
    await archive.stop();
    await p.close();
    p = await makePipeline({ tags: EVERY_KIND_TAGS, partitions: 3 });
    archive = new ArchiveConsumer({ redis: p.redis, keys: p.keys, partitions: 3, consumerName: 'arch', odsDir: ods, trimIntervalMs: 0 });
    // Seven hours (past the longest window, 6 h) in 5-minute steps: each step's events anywhere
    // in the 10 minutes before it (out of order, across pane edges), some resent, some sharing a ms.
    const random = prng(29);
    const users = Array.from({ length: 12 }, (_, i) => `k${i}`);
    let sent = 0;
    let resent = 0;
    for (let step = 0; step < 84; step++) {
      p.clock.now = T0 + step * 5 * 60_000;
      const events: Record<string, unknown>[] = [];
      for (let i = 0; i < 25; i++) {
        const user = users[Math.floor(random() ** 2 * users.length)];
        const ts = p.clock.now - Math.floor(random() * 10 * 60_000);
        const e: Record<string, unknown> =
          random() < 0.5
            ? { event_id: `v${step}-${i}`, user_id: user, type: 'purchase', ts, amount: Math.round(random() * 50_000) / 100 }
            : {
                event_id: `v${step}-${i}`,
                user_id: user,
                type: 'impression',
                ts,
                ad_id: `ad-${Math.floor(random() * 30)}`,
                campaign_id: `c-${Math.floor(random() * 6)}`,
              };
        events.push(e);
        // Same ms, another value.
        if (random() < 0.1) events.push({ ...e, event_id: `v${step}-${i}t`, ...(e.type === 'purchase' ? { amount: 7.5 } : { ad_id: 'ad-tie' }) });
      }
      // The last step: a purchase and an impression of each user in the last 30 s, for the shortest windows.
      if (step === 83) {
        users.forEach((user, i) => {
          events.push({ event_id: `v${step}-${user}`, user_id: user, type: 'purchase', ts: p.clock.now - 1000 * i, amount: 10 * i });
          events.push({
            event_id: `v${step}-${user}-i`,
            user_id: user,
            type: 'impression',
            ts: p.clock.now - 1000 * i - 500,
            ad_id: `ad-new-${i}`,
            campaign_id: 'c-9',
          });
        });
      }
      const dupes = events.slice(0, 2);
      const r = await p.producer.ingest([...events, ...dupes]);
      expect(r.ok).to.equal(true);
      sent += events.length;
      resent += dupes.length;
      await p.consumer.drain();
      await archive.drain();
    }
    const asOf = p.clock.now + 5_000;
    p.clock.now = asOf;
    const summary = await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf, windows: true });
    expect(summary).to.deep.include({ events: sent, duplicates: resent, bad_lines: 0 });
    expect(summary.window_users_written).to.equal(users.length);
    const result = await verifyWindows(p.redis, p.keys, p.config.tags.realtime, asOf);
    expect(result).to.deep.include({ users_checked: users.length, users_skipped_later_events: 0, users_skipped_expired: 0 });
    // Every kind exactly as the batch has it: a stddev read through its running total of a
    // window of equal values (one purchase) is 0, not the square root of the total's rounding.
    expect(result.mismatches).to.deep.equal([]);

    // Not vacuous: every kind has a value that is not empty for some user, and a changed pane is found.
    const live = await p.reader.readMany(users);
    for (const t of p.config.tags.realtime) {
      const v = live.map((l) => l!.tags[t.name]);
      expect(
        v.some((x) => x !== null && x !== 0 && !(Array.isArray(x) && x.length === 0) && !(typeof x === 'object' && Object.keys(x ?? {}).length === 0)),
        t.name,
      ).to.equal(true);
    }
    // Take the newest second's and minute's panes (numeric, histogram, list, percentile, sketch) out of one user's purchases and impressions: found.
    const user = users[0];
    for (const type of ['purchase', 'impression'] as const) {
      const panes = p.keys.panes(user, type);
      const fields = await p.redis.hkeys(panes);
      const second = Math.max(...fields.filter((f) => /^\d*s\d+$/.test(f)).map((f) => Number(f.slice(f.indexOf('s') + 1))));
      await p.redis.hdel(panes, ...fields.filter((f) => f.endsWith(`s${second}`) || f.endsWith(`m${Math.floor(second / 60)}`)));
    }
    const tampered = await verifyWindows(p.redis, p.keys, p.config.tags.realtime, asOf);
    expect(tampered.mismatches.filter((m) => m.user_id === user).map((m) => m.tag)).to.include.members([
      'n_90s',
      'last_30m',
      'spend_hist_30s',
      'last3_ads_30m',
      'last5_amounts_90s',
      'var_1h',
      'spend_p_90s',
      'ads_approx_k16_2m',
      'sd_10m',
    ]);
  });

  it('refuses to verify another as-of time than the newest --windows run', async () => {
    await p.producer.ingest([{ user_id: 'u', type: 'click', ts: T0 }]);
    await p.consumer.drain();
    await archive.drain();
    await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: T0, windows: true });
    let err: Error | undefined;
    await verifyWindows(p.redis, p.keys, p.config.tags.realtime, T0 + 1).catch((e: Error) => (err = e));
    expect(err?.message).to.match(
      /is as of 2026-01-01T00:00:00\.000Z, not 2026-01-01T00:00:00\.001Z: run profile batch --windows --as-of 2026-01-01T00:00:00\.001Z/,
    );
    expect((await verifyWindows(p.redis, p.keys, p.config.tags.realtime, T0)).mismatches).to.deep.equal([]);
  });

  it('verify as of a past time on a live pipeline: no mismatch, users with later events skipped and counted, served offline tags left as they were', async () => {
    // Events before and after T, every minute for 20 minutes; T in the middle.
    const gen = new TrafficGenerator(40, 5);
    const T = T0 + 10 * 60_000 + 30_000;
    for (let minute = 0; minute < 20; minute++) {
      p.clock.now = T0 + minute * 60_000;
      expect((await p.producer.ingest(Array.from({ length: 30 }, (_, i) => gen.next(p.clock.now - ((i * 7919) % 60_000))))).ok).to.equal(true);
      await p.consumer.drain();
      await archive.drain();
    }
    // Users seen only before T keep their state as at T.
    p.clock.now = T0 + 20 * 60_000;
    for (const u of ['quiet-1', 'quiet-2']) {
      expect((await p.producer.ingest([{ event_id: `${u}-e`, user_id: u, type: 'click', ts: T - 60_000 }])).ok).to.equal(true);
    }
    await p.consumer.drain();
    await archive.drain();
    await p.redis.hset(p.keys.offline('quiet-1'), { ltv_total: '123', _run_id: 'served' });

    // The README's check, from the command line: the offline tags the API serves stay as they were.
    const { runCliToEnd } = await import('../../helpers/cli');
    const { testRedisUrl } = await import('../../helpers/context');
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, PROFILE_PARTITIONS: '3', ODS_DIR: ods, LOG_LEVEL: 'silent' };
    const batch = await runCliToEnd(['batch', '--windows', '--as-of', new Date(T).toISOString()], env);
    expect(batch.code, batch.out).to.equal(0);
    expect(batch.out).to.include('offline tags not published: a --windows run as of a past time is a check for profile verify');
    expect(await p.redis.hgetall(p.keys.offline('quiet-1'))).to.deep.equal({ ltv_total: '123', _run_id: 'served' });

    const result = await verifyWindows(p.redis, p.keys, p.config.tags.realtime, T);
    expect(result.mismatches).to.deep.equal([]);
    expect(result.users_skipped_later_events).to.be.greaterThan(10);
    expect(result.users_checked).to.be.at.least(2); // the quiet users at least
  });
});
