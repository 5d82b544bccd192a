import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import Redis from 'ioredis';
import { DEFAULT_TAGS_FILE, loadTagConfig, tagConfigVersion } from '../../../src/core/tagConfig';
import { Keys } from '../../../src/core/keys';
import { killAllCli, runCli, runCliToEnd } from '../../helpers/cli';
import { Scripts, runScript } from '../../../src/lua/scripts';
import { ProfileReader } from '../../../src/profile/reader';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';

/** The shipped config plus a 7-day click count (needs a backfill) and a 1-hour one (served at once), without clicks_5m. */
function nextConfig(dir: string): string {
  const doc = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: Record<string, unknown>[] };
  doc.realtime = doc.realtime.filter((t) => t.name !== 'clicks_5m');
  doc.realtime.push(
    { name: 'clicks_7d', event: 'click', aggregation: 'count', window: '7d' },
    { name: 'clicks_1h', event: 'click', aggregation: 'count', window: '1h' },
  );
  const file = path.join(dir, 'next.json');
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

describe('tag config versions (real processes)', function () {
  this.timeout(40_000);
  afterEach(killAllCli);

  it('the first process records the active config; one started with another runs the active one and says so; status, plan and show report it', async () => {
    const prefix = uniquePrefix();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tags-'));
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: prefix, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ODS_DIR: path.join(dir, 'ods') };
    const shipped = tagConfigVersion(loadTagConfig());
    const next = nextConfig(dir);
    const nextVersion = tagConfigVersion(loadTagConfig(next));

    // Before any process: nothing recorded; plan compares with the config it was given.
    const none = await runCliToEnd(['tags', 'show'], env);
    expect(none.code).to.equal(1);
    expect(none.out).to.contain('no tag config is recorded in this Redis yet');

    const first = runCli(['consume', '--consumer-name', 'c1'], env);
    const [loaded] = await first.waitFor(/\{[^\n]*"msg":"tag config loaded"\}/);
    expect(JSON.parse(loaded)).to.deep.include({ version: shipped });

    // Started with another config: one line saying so, then it runs the active config.
    const second = runCli(['consume', '--consumer-name', 'c2', '--config', next], env);
    const [warn] = await second.waitFor(/\{[^\n]*is not the active one[^\n]*\}/);
    expect(JSON.parse(warn)).to.deep.include({ version: nextVersion, active: shipped, file: next });
    const [loaded2] = await second.waitFor(/\{[^\n]*"msg":"tag config loaded"\}/);
    expect(JSON.parse(loaded2)).to.deep.include({ version: shipped });
    expect(JSON.parse(loaded2).realtime).to.include('clicks_5m').and.not.include('clicks_7d');
    expect(second.output().match(/is not the active one/g)).to.have.length(1);

    const status = await runCliToEnd(['status', '--json'], env);
    expect(status.code).to.equal(0);
    const tagConfig = JSON.parse(status.out).tag_config as {
      active: { version: string };
      processes: { id: string; roles: string[]; version: string; file: string }[];
    };
    expect(tagConfig.active.version).to.equal(shipped);
    expect(tagConfig.processes.map((p) => [p.roles, p.version])).to.deep.equal([
      [['realtime'], shipped],
      [['realtime'], shipped],
    ]);
    expect(tagConfig.processes.map((p) => p.file).sort()).to.deep.equal([DEFAULT_TAGS_FILE, next].sort());
    const table = await runCliToEnd(['status'], env);
    expect(table.out).to.match(new RegExp(`tag config: active ${shipped} since`));

    const plan = await runCliToEnd(['tags', 'plan', next], env);
    expect(plan.code).to.equal(0);
    expect(plan.out).to.contain(`from active tag config ${shipped}`);
    expect(plan.out).to.match(/clicks_7d\s+added\s+backfill\s+needs a backfill of 7d of events \(click panes are kept for 1d, the window is 7d\)/);
    expect(plan.out).to.match(/clicks_1h\s+added\s+instant/);
    expect(plan.out).to.match(/clicks_5m\s+removed\s+free/);
    expect(plan.out).to.contain('Backfill: 8 days of ODS');
    expect(plan.out).to.contain('Nothing was changed.');
    const json = JSON.parse((await runCliToEnd(['tags', 'plan', next, '--json'], env)).out);
    expect(json.to.version).to.equal(nextVersion);
    expect(json.backfill).to.deep.include({ span_ms: 7 * 86_400_000, days_needed: 8, days_in_ods: 0 });

    const show = await runCliToEnd(['tags', 'show'], env);
    expect(show.code).to.equal(0);
    expect(tagConfigVersion({ document: JSON.parse(show.out.slice(show.out.indexOf('{'))) })).to.equal(shipped);

    // Nothing changed: still the shipped config, and a clean stop drops each process's record.
    const redis = new Redis(testRedisUrl());
    try {
      expect(await redis.hget(new Keys(prefix).tagConfigs(), 'active')).to.equal(shipped);
      first.child.kill('SIGTERM');
      second.child.kill('SIGTERM');
      expect(await first.exited).to.equal(0);
      expect(await second.exited).to.equal(0);
      expect(await redis.hlen(new Keys(prefix).tagConfigProcesses())).to.equal(0);
    } finally {
      redis.disconnect();
    }
  });

  it('tags apply switches every running process at once; --no-backfill refuses a change that needs a backfill; a stale process runs the active config; rollback', async () => {
    const prefix = uniquePrefix();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tags-apply-'));
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: prefix, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ODS_DIR: path.join(dir, 'ods') };
    const doc = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: Record<string, unknown>[] };
    doc.realtime.push({ name: 'clicks_1h', event: 'click', aggregation: 'count', window: '1h' });
    const instant = path.join(dir, 'instant.json');
    fs.writeFileSync(instant, JSON.stringify(doc));
    const [shipped, instantVersion] = [tagConfigVersion(loadTagConfig()), tagConfigVersion(loadTagConfig(instant))];

    const serve = runCli(['serve', '--port', '0'], env);
    const [, port] = await serve.waitFor(/"port":(\d+),"msg":"API listening"/);
    const consume = runCli(['consume'], env);
    await consume.waitFor(/"msg":"tag config loaded"/);
    const base = `http://127.0.0.1:${port}`;
    const send = async (n: number, type = 'click') => {
      const now = Date.now();
      const events = Array.from({ length: n }, (_, i) => ({ user_id: 'u1', type, ts: now - 100 + i, ad_id: `ad-${i % 2}`, campaign_id: 'c1' }));
      const r = await fetch(`${base}/events?wait=applied&timeout_ms=5000`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      expect(((await r.json()) as { applied: boolean }).applied).to.equal(true);
    };
    const profile = async () => ((await (await fetch(`${base}/profile/u1`)).json()) as { tags: Record<string, unknown> }).tags;
    await send(3);
    expect(await profile())
      .to.include({ clicks_24h: 3 })
      .and.not.have.property('clicks_1h');
    // A bidder's library reader follows the active config too.
    const reader = await ProfileReader.connect({ redisUrl: testRedisUrl(), prefix, lag: false });
    expect((await reader.read('u1'))!.tags).to.not.have.property('clicks_1h');

    // An instant change: one switch, both processes follow, the new tag is right at once.
    const applied = await runCliToEnd(['tags', 'apply', instant], env);
    expect(applied.code, applied.out).to.equal(0);
    expect(applied.out).to.contain(`Switched the active tag config ${shipped} → ${instantVersion}.`);
    expect(applied.out).to.contain('2 of 2 running processes run it now.');
    expect(await profile()).to.include({ clicks_24h: 3, clicks_1h: 3 });
    await serve.waitFor(new RegExp(`switched to tag config ${instantVersion}`));
    await consume.waitFor(new RegExp(`switched to tag config ${instantVersion}`));
    for (let i = 0; i < 40 && !('clicks_1h' in (await reader.read('u1'))!.tags); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await reader.read('u1'))!.tags).to.include({ clicks_1h: 3 });
    // An event after the switch counts once, in the old tags and the new.
    await send(1);
    expect(await profile()).to.include({ clicks_24h: 4, clicks_1h: 4 });
    expect((await runCliToEnd(['tags', 'apply', instant], env)).out).to.contain('is already the active tag config');

    // With --no-backfill, a change that needs a backfill is refused; nothing changes.
    const next = nextConfig(dir);
    const refused = await runCliToEnd(['tags', 'apply', next, '--no-backfill'], env);
    expect(refused.code).to.equal(1);
    expect(refused.out).to.match(/Not applied \(--no-backfill\): clicks_7d need[s]? a backfill from the streams and the ODS/);
    const show = await runCliToEnd(['tags', 'show'], env);
    expect(show.out).to.contain(`active tag config ${instantVersion}`);

    // A process started after the switch with the old file runs the active config.
    const stale = runCli(['consume', '--consumer-name', 'stale'], env);
    const [warn] = await stale.waitFor(/\{[^\n]*is not the active one[^\n]*\}/);
    expect(JSON.parse(warn)).to.deep.include({ version: shipped, active: instantVersion });
    const [loaded] = await stale.waitFor(/\{[^\n]*"msg":"tag config loaded"\}/);
    expect(JSON.parse(loaded).realtime).to.include('clicks_1h');
    stale.child.kill('SIGTERM');
    expect(await stale.exited).to.equal(0);

    // Rollback: the shipped file again (removing a tag is instant).
    const back = await runCliToEnd(['tags', 'apply', DEFAULT_TAGS_FILE], env);
    expect(back.code, back.out).to.equal(0);
    expect(back.out).to.match(/clicks_1h\s+removed\s+free/);
    expect(await profile())
      .to.include({ clicks_24h: 4 })
      .and.not.have.property('clicks_1h');

    // --accept-partial switches anyway: clicks_7d counts the clicks whose panes were kept (here
    // all of them: they are minutes old; an older click would be missing until 7 days passed).
    const partial = await runCliToEnd(['tags', 'apply', next, '--accept-partial'], env);
    expect(partial.code, partial.out).to.equal(0);
    expect(partial.out).to.contain('Undercounting until a full window has passed (--accept-partial): clicks_7d.');
    await send(2);
    expect(await profile()).to.deep.include({ clicks_7d: 6 });

    // A switch planned against a version that is no longer active changes nothing.
    const redis = new Redis(testRedisUrl());
    try {
      const k = new Keys(prefix);
      expect(await runScript(redis, Scripts.switchTagConfig(k.tagConfigs(), shipped, instantVersion, Date.now()))).to.equal(0);
      expect(await redis.hget(k.tagConfigs(), 'active')).to.equal(tagConfigVersion(loadTagConfig(next)));
      expect(await redis.hget(k.tagConfigs(), 'previous')).to.equal(shipped);
    } finally {
      redis.disconnect();
    }
    await reader.close();
    serve.child.kill('SIGTERM');
    consume.child.kill('SIGTERM');
    expect([await serve.exited, await consume.exited]).to.deep.equal([0, 0]);
  });
});
