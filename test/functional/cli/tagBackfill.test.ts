import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import Redis from 'ioredis';
import { DEFAULT_TAGS_FILE, loadTagConfig, tagConfigVersion } from '../../../src/core/tagConfig';
import { Keys } from '../../../src/core/keys';
import { ProfileEvent } from '../../../src/core/event';
import { TagConfig } from '../../../src/core/tags';
import { followActiveTagConfig } from '../../../src/redis/tagConfigs';
import { planTagConfigChange } from '../../../src/batch/tagChange';
import { applyTagConfigChange } from '../../../src/consumers/tagApply';
import { ProfileReader } from '../../../src/profile/reader';
import { silentLogger } from '../../../src/core/logger';
import { killAllCli, runCli, runCliToEnd } from '../../helpers/cli';
import { computeWindowTags } from '../../helpers/windowReference';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';

const DAY = 86_400_000;

/**
 * The shipped config plus a 7-day click count, a count_by over a field no tag counted by
 * for clicks (ad_id), and purchases_24h at a finer resolution (1 s): all three need a
 * backfill (click panes are kept for 1 day, without values by ad; purchase panes at 1 min and 1 h).
 */
function backfillConfig(dir: string): string {
  const doc = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as {
    realtime: Record<string, unknown>[];
    offline: { segments: Record<string, unknown>[] };
  };
  doc.realtime = doc.realtime.map((t) => (t.name === 'purchases_24h' ? { ...t, resolution: '1s' } : t));
  doc.realtime.push(
    { name: 'clicks_7d', event: 'click', aggregation: 'count', window: '7d' },
    { name: 'clicks_by_ad_7d', event: 'click', aggregation: 'count_by', field: 'ad_id', window: '7d' },
  );
  // A changed segment (a batch run computes it; the switch does not wait for it).
  doc.offline.segments = [{ id: 'clicker', when: [{ tag: 'impressions_30d', op: '>=', value: 1 }] }, ...doc.offline.segments];
  const file = path.join(dir, 'backfill.json');
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

/** Reads every user at one time `at` with the active config (and its generation), as the API does. */
async function readAll(redis: Redis, prefix: string, users: string[], at: number): Promise<Record<string, Record<string, unknown>>> {
  const keys = new Keys(prefix);
  const active = await followActiveTagConfig(redis, keys, loadTagConfig(), silentLogger);
  const reader = new ProfileReader(redis, keys, active.config.realtime, () => at);
  reader.setTags(active.config.realtime, undefined, active.generation);
  const out: Record<string, Record<string, unknown>> = {};
  for (const u of users) out[u] = (await reader.read(u))?.tags ?? {};
  return out;
}

/** The window model's values of `tags` for each user at `at` over `events`. */
function reference(events: ProfileEvent[], config: TagConfig, users: string[], at: number): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    users.map((u) => [
      u,
      computeWindowTags(
        events.filter((e) => e.user_id === u),
        config.realtime,
        at,
      ),
    ]),
  );
}

describe('tags apply with a backfill (real processes, 30 days of ODS, live traffic)', function () {
  this.timeout(180_000);
  afterEach(killAllCli);

  it('builds the new state from the streams and the ODS while the old config is served, counts live events once, survives kill -9, refuses a second run, rolls back at once', async () => {
    const prefix = uniquePrefix();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tags-backfill-'));
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: prefix, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ODS_DIR: path.join(dir, 'ods') };
    const next = backfillConfig(dir);
    const [shipped, nextVersion] = [loadTagConfig(), loadTagConfig(next)];
    const serve = runCli(['serve', '--port', '0'], env);
    const [, port] = await serve.waitFor(/"port":(\d+),"msg":"API listening"/);
    const consume = runCli(['consume'], env);
    const archive = runCli(['archive'], env);
    await consume.waitFor(/"msg":"tag config loaded"/);
    await archive.waitFor(/"msg":"tag config loaded"/);
    const base = `http://127.0.0.1:${port}`;
    const users = ['u1', 'u2', 'u3', 'u4'];
    const all: ProfileEvent[] = [];
    let seq = 0;
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    /** Clicks (and a few impressions) of every user, spread over the last `spanMs`, through POST /events. */
    const send = async (perUser: number, spanMs: number, wait = true) => {
      const now = Date.now();
      const events: ProfileEvent[] = [];
      for (const u of users)
        for (let i = 0; i < perUser; i++) {
          const type = i % 5 === 4 ? 'impression' : i % 7 === 3 ? 'purchase' : 'click';
          const ts = now - Math.floor(rand() * spanMs);
          const e = { event_id: `e${seq++}`, user_id: u, type, ts, ad_id: `ad-${Math.floor(rand() * 3)}`, campaign_id: 'c1' } as ProfileEvent;
          if (type === 'purchase') e.amount = 5 + (i % 4);
          events.push(e);
        }
      const r = await fetch(`${base}/events${wait ? '?wait=applied&timeout_ms=10000' : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      expect(r.status).to.equal(202);
      if (wait) expect(((await r.json()) as { applied: boolean }).applied).to.equal(true);
      all.push(...events);
    };
    const redis = new Redis(testRedisUrl());
    const cfg = new Keys(prefix).tagConfigs();
    let consumer = consume;
    const extra: ReturnType<typeof runCli>[] = [];
    try {
      // Thirty days of traffic: the consumer keeps a day of clicks, the archive writes all to the ODS.
      await send(60, 30 * DAY);
      const odsLines = () => {
        const files = fs.existsSync(env.ODS_DIR)
          ? fs
              .readdirSync(env.ODS_DIR, { recursive: true })
              .map(String)
              .filter((f) => f.endsWith('.ndjson'))
          : [];
        return files.reduce((n, f) => n + fs.readFileSync(path.join(env.ODS_DIR, f), 'utf8').split('\n').filter(Boolean).length, 0);
      };
      for (let i = 0; i < 100 && odsLines() < all.length; i++) await new Promise((r) => setTimeout(r, 100));
      expect(odsLines()).to.equal(all.length);
      // The archive stops: the last hour's traffic is only in the streams (and the old state).
      archive.child.kill('SIGTERM');
      expect(await archive.exited).to.equal(0);
      await send(10, 3_600_000);

      // Backfills killed with -9 at three points: once the config is pending, after the
      // streams' replay, in the middle of the ODS's. Nothing is switched; while the lock
      // lasts a second apply is refused.
      for (const point of [/waiting for the realtime consumers/, /events still in the streams; now the ODS/, /replayed ODS file 3 of/]) {
        // (--pace: the replay takes a second or two, so each kill lands where it says)
        const killed = runCli(['tags', 'apply', next, '--pace', '150'], env);
        await killed.waitFor(point, 30_000);
        killed.child.kill('SIGKILL');
        await killed.exited;
        expect(await redis.hmget(cfg, 'active', 'pending')).to.deep.equal([tagConfigVersion(shipped), tagConfigVersion(nextVersion)]);
        const twice = await runCliToEnd(['tags', 'apply', next], env);
        expect(twice.code).to.equal(1);
        expect(twice.out).to.contain('another `profile tags apply` is running');
        await redis.del(new Keys(prefix).tagApplyLock()); // as if its 15 s had passed
      }
      const status = JSON.parse((await runCliToEnd(['status', '--json'], env)).out).tag_config;
      expect(status.pending).to.deep.include({ version: tagConfigVersion(nextVersion), generation: 1 });
      expect((await runCliToEnd(['status'], env)).out).to.contain(`backfilling ${tagConfigVersion(nextVersion)} (generation 1)`);
      // Cancelled: the consumers stop writing generation 1; the next apply starts a fresh one.
      const cancel = await runCliToEnd(['tags', 'cancel'], env);
      expect(cancel.out).to.contain(`cancelled the backfill of ${tagConfigVersion(nextVersion)}`);
      expect(await redis.hget(cfg, 'pending')).to.equal(null);

      // Run again (in this process, to act between its steps).
      const keys = new Keys(prefix);
      const plan = await planTagConfigChange(redis, keys, nextVersion, shipped, env.ODS_DIR);
      expect(
        plan.changes
          .filter((c) => c.effect === 'backfill')
          .map((c) => c.name)
          .sort(),
      ).to.deep.equal(['clicks_7d', 'clicks_by_ad_7d', 'purchases_24h']);
      let during: Record<string, Record<string, unknown>> = {};
      let duringReference: Record<string, Record<string, unknown>> = {};
      const applied = await applyTagConfigChange(redis, keys, nextVersion, plan, env.ODS_DIR, {
        partitions: 4,
        waitMs: 10_000,
        onStep: async (step) => {
          if (step !== 'writers') return;
          // Live traffic during the backfill, and a consumer killed with -9 meanwhile: its
          // batch comes back to the one started in its place, which writes both configs.
          await send(5, 60_000);
          consumer.child.kill('SIGKILL');
          await consumer.exited;
          await send(3, 60_000, false);
          consumer = runCli(['consume'], env);
          extra.push(consumer);
          await consumer.waitFor(/"msg":"tag config loaded"/);
          // Reads meanwhile: exactly the old config's values.
          for (let i = 0; i < 100; i++) {
            const at = Date.now();
            during = await readAll(redis, prefix, users, at);
            duringReference = reference(all, shipped, users, at);
            if (JSON.stringify(during) === JSON.stringify(duringReference)) break;
            await new Promise((r) => setTimeout(r, 100));
          }
        },
      });
      expect(applied.outcome).to.equal('switched');
      expect(applied.how).to.equal('backfill');
      expect(applied.backfill!.generation).to.equal(2);
      expect(applied.backfill!.ods_events).to.be.greaterThan(0);
      expect(applied.backfill!.stream_events).to.be.greaterThan(0);
      expect(during).to.deep.equal(duringReference);
      expect(Object.keys(during.u1)).to.not.include('clicks_7d');

      // Right after the switch: the new tags equal the window model over every event, each once.
      const at = Date.now();
      const after = await readAll(redis, prefix, users, at);
      expect(after).to.deep.equal(reference(all, nextVersion, users, at));
      expect(after.u1.clicks_7d).to.be.greaterThan(after.u1.clicks_24h as number);
      // The API and the consumer switched: an event now counts once under the new config.
      await serve.waitFor(new RegExp(`switched to tag config ${tagConfigVersion(nextVersion)}`));
      await consumer.waitFor(new RegExp(`switched to tag config ${tagConfigVersion(nextVersion)}`));
      // A consumer started now with the old file runs the new config, in its generation.
      const stale = runCli(['consume', '--consumer-name', 'stale'], env);
      extra.push(stale);
      await stale.waitFor(/is not the active one/);
      await stale.waitFor(/"msg":"tag config loaded"/);
      await send(2, 1000);
      const at2 = Date.now();
      expect(await readAll(redis, prefix, users, at2)).to.deep.equal(reference(all, nextVersion, users, at2));
      const api = (await (await fetch(`${base}/profile/u2`)).json()) as { tags: Record<string, unknown> };
      expect(api.tags).to.have.property('clicks_by_ad_7d');

      // Rollback within the grace period: at once, and the old state counted the new events too.
      const back = await runCliToEnd(['tags', 'apply', DEFAULT_TAGS_FILE], env);
      expect(back.code, back.out).to.equal(0);
      expect(back.out).to.contain("Back to the previous config's window state");
      const at3 = Date.now();
      expect(await readAll(redis, prefix, users, at3)).to.deep.equal(reference(all, shipped, users, at3));
      await serve.waitFor(new RegExp(`switched to tag config ${tagConfigVersion(shipped)}`));
      expect(((await (await fetch(`${base}/profile/u2`)).json()) as { tags: Record<string, unknown> }).tags).to.not.have.property('clicks_7d');
    } finally {
      redis.disconnect();
    }
    for (const p of [serve, ...extra]) p.child.kill('SIGTERM');
    expect(await Promise.all([serve, ...extra].map((p) => p.exited))).to.deep.equal([serve, ...extra].map(() => 0));
  });
});
