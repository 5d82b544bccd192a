import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { DEFAULT_TAGS_FILE } from '../../../src/core/tagConfig';
import { listOdsFiles } from '../../../src/ods/files';
import { prng } from '../../../src/dev/simulate';
import { WindowValue, sameWindowValue } from '../../../src/batch/windows';
import { EVERY_KIND_TAGS } from '../../helpers/windowReference';
import { killAllCli, runCli, runCliToEnd } from '../../helpers/cli';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';
import { writeClock } from '../../helpers/clockFile';

const SECOND = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

interface Answer {
  user_id: string;
  as_of: number;
  /** The tags GET /profile answered; null: 404, no state for the user then. */
  tags: Record<string, unknown> | null;
}

/**
 * The headline promise: a training set built from the ODS holds, for each (user, time), the
 * tags GET /profile answered at that time. Real traffic goes through `profile up` on a clock
 * the test moves (over 40 days, in steps from seconds to weeks), the test records answers,
 * then builds the training set for those points and compares every tag; offline tags are
 * compared with what GET /profile serves after `profile batch --as-of` those times.
 */
describe('training set equals what GET /profile answered (profile up on a moved clock)', function () {
  this.timeout(180_000);
  let dir: string;
  afterEach(async () => {
    await killAllCli();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every realtime tag at every recorded answer, offline tags and segment at batch times, erasure honoured', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'training-live-'));
    const clock = path.join(dir, 'clock');
    const ods = path.join(dir, 'ods');
    const config = path.join(dir, 'tags.json');
    const shipped = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: unknown[] };
    fs.writeFileSync(config, JSON.stringify({ ...shipped, realtime: [...shipped.realtime, ...EVERY_KIND_TAGS] }));
    const realtime = [...(shipped.realtime as { name: string; aggregation: string }[]), ...EVERY_KIND_TAGS];
    // What an empty window reads (a 404: the user had no state then).
    const empty = (aggregation: string) =>
      aggregation === 'count_by' || aggregation === 'histogram'
        ? {}
        : aggregation === 'last_k' || aggregation === 'first_k'
          ? []
          : ['avg', 'min', 'max', 'last', 'variance', 'stddev', 'first', 'percentile'].includes(aggregation)
            ? null
            : 0;
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), ODS_DIR: ods, PROFILE_CONFIG: config, LOG_FORMAT: 'json' };
    let now = Date.UTC(2026, 9, 1, 8, 0, 0, 0);
    writeClock(clock, now);
    const up = runCli(['up', '--port', '0'], {
      ...env,
      LOG_LEVEL: 'info',
      TEST_CLOCK_FILE: clock,
      NODE_OPTIONS: `--require ${path.join(__dirname, '..', '..', 'helpers', 'clockFile.js')}`,
    });
    const [, port] = await up.waitFor(/"port":(\d+),"msg":"API listening"/);
    await up.waitFor(/archive consumer started/);
    const api = `http://127.0.0.1:${port}`;
    const post = async (events: unknown[]) => {
      const res = await fetch(`${api}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
      expect(res.status, await res.clone().text()).to.equal(202);
    };
    const get = async (user: string) => {
      const res = await fetch(`${api}/profile/${user}`);
      expect([200, 404]).to.include(res.status);
      return res.status === 404 ? null : ((await res.json()) as { tags: Record<string, unknown>; meta: { as_of: number; last_event_at: number | null } });
    };

    const rnd = prng(42);
    const users = ['live-a', 'live-b', 'live-c', 'live-d'];
    // live-e is active in the first step only (later its windows are empty); live-never has no event (GET /profile: 404).
    const readers = [...users, 'live-e', 'live-never'];
    const answers: Answer[] = [];
    let sent = 0;
    let seq = 0;
    let lastAsOf = now - 30 * DAY; // no answer yet: the first events may be from any time before
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const resend: unknown[] = [];
    /** One step: events stamped after every answer so far (the API had them all when it answered later), then answers at three times. */
    const step = async (advance: number, n: number, active = users) => {
      now += advance;
      writeClock(clock, now);
      const events: Record<string, unknown>[] = [];
      const newest = now - 2 * SECOND;
      for (let i = 0; i < n; i++) {
        const spread = pick([10 * SECOND, 5 * MIN, 2 * HOUR, 26 * HOUR]);
        const ts = Math.max(lastAsOf + 1, newest - Math.floor(rnd() * spread));
        const type = pick(['impression', 'impression', 'impression', 'click', 'purchase'] as const);
        const e: Record<string, unknown> = {
          event_id: `ev-${++seq}`,
          user_id: pick(active),
          type,
          ts,
          ad_id: pick(['a1', 'a2', 'a3', 'a4']),
          campaign_id: pick(['c1', 'c2', 'c3']),
        };
        if (type === 'purchase' || rnd() < 0.1) e.amount = Math.round(rnd() * 20000) / 100;
        events.push(e);
        if (rnd() < 0.05) resend.push(e); // sent again in a later step: a redelivery counts once
      }
      // Each user's marker comes last: when its time is the user's last_event_at, all of the step is applied.
      const markers = active.map((u) => ({ event_id: `mark-${++seq}`, user_id: u, type: 'click', ts: newest, ad_id: 'a1', campaign_id: 'c1' }));
      const batch = [...events, ...resend.splice(0), ...markers];
      for (let i = 0; i < batch.length; i += 500) await post(batch.slice(i, i + 500));
      sent += batch.length;
      const deadline = Date.now() + 20_000;
      for (const u of active) {
        for (;;) {
          const p = await get(u);
          if (p && p.meta.last_event_at === newest) break;
          if (Date.now() > deadline) throw new Error(`events of ${u} not applied: ${JSON.stringify(p?.meta)}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      // Answers now, a moment later, and after windows slid (no event in between).
      for (const later of [0, 1500 + Math.floor(rnd() * 3 * SECOND), pick([40 * SECOND, 4 * MIN, 50 * MIN, 3 * HOUR])]) {
        now += later;
        writeClock(clock, now);
        for (const u of readers) {
          const p = await get(u);
          answers.push({ user_id: u, as_of: p ? p.meta.as_of : now, tags: p ? p.tags : null });
          if (p) lastAsOf = Math.max(lastAsOf, p.meta.as_of);
        }
      }
      lastAsOf = Math.max(lastAsOf, now + 10); // answers of 404 carry no time: keep events after the clock
    };

    const steps: [number, number][] = [
      [0, 300],
      [20 * SECOND, 80],
      [90 * SECOND, 150],
      [7 * MIN, 200],
      [30 * MIN, 250],
      [2 * HOUR, 300],
      [5 * HOUR, 150],
      [20 * HOUR, 300],
      [26 * HOUR, 200],
      [3 * DAY, 250],
      [9 * DAY, 150],
      [2 * HOUR, 100],
      [33 * DAY, 200],
      [1 * HOUR, 120],
    ];
    const batchTimes: number[] = [];
    let erasedAt = Infinity;
    for (const [i, [advance, n]] of steps.entries()) {
      await step(advance, n, i === 0 ? [...users, 'live-e'] : users);
      if (i === 6) {
        // live-d asks to be forgotten: its events up to now are no training data from here on.
        const res = await fetch(`${api}/profile/live-d`, { method: 'DELETE' });
        expect(res.status).to.equal(200);
        erasedAt = ((await res.json()) as { erased_at: number }).erased_at;
        lastAsOf = Math.max(lastAsOf, erasedAt);
      }
      if (i === 4 || i === 9 || i === 13) batchTimes.push(lastAsOf);
    }

    // Every event archived: the ODS holds every line sent.
    const lines = () => listOdsFiles(ods).reduce((n, f) => n + fs.readFileSync(f.path, 'utf8').split('\n').filter(Boolean).length, 0);
    const deadline = Date.now() + 20_000;
    while (lines() < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lines()).to.equal(sent);

    // The training set for every answer, and for every user at the batch times.
    const spine = [...answers.map((a) => ({ user_id: a.user_id, ts: a.as_of })), ...batchTimes.flatMap((t) => users.map((u) => ({ user_id: u, ts: t })))];
    fs.writeFileSync(path.join(dir, 'spine.ndjson'), spine.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const built = await runCliToEnd(['training-set', '--spine', path.join(dir, 'spine.ndjson'), '--out', path.join(dir, 'train.ndjson')], env);
    expect(built.code, built.out).to.equal(0);
    const rows = fs
      .readFileSync(path.join(dir, 'train.ndjson'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).to.have.length(spine.length);

    let compared = 0;
    let nonZero = 0;
    answers.forEach((a, i) => {
      const row = rows[i];
      expect([row.user_id, row.ts]).to.deep.equal([a.user_id, a.as_of]);
      for (const { name, aggregation } of realtime) {
        // Erased data is no training data: live-d's rows up to its erasure see no event (the API had them then).
        const erased = a.user_id === 'live-d' && a.as_of <= erasedAt;
        const want = a.tags && !erased ? a.tags[name] : empty(aggregation);
        const same = sameWindowValue(row[name] as WindowValue, want as WindowValue);
        expect(
          same,
          `${a.user_id} at ${new Date(a.as_of).toISOString()}: ${name} is ${JSON.stringify(row[name])} in the training set, GET /profile said ${JSON.stringify(want)}`,
        ).to.equal(true);
        compared++;
        if (typeof want === 'number' && want !== 0) nonZero++;
      }
    });
    expect(answers.filter((a) => a.tags === null).length, 'some answers were 404s (live-never)').to.be.greaterThan(0);
    expect(
      answers.filter((a) => a.user_id === 'live-d' && a.as_of > erasedAt && a.tags !== null).length,
      'live-d has answers after its erasure',
    ).to.be.greaterThan(0);
    expect(nonZero, `most compared values are not empty windows (${nonZero} of ${compared})`).to.be.greaterThan(compared / 4);

    // Offline tags: what GET /profile serves after `profile batch --as-of T` equals the training set's row at T.
    const offlineNames = ['ltv_total', 'purchases_total', 'first_seen', 'last_seen', 'active_days_30d', 'impressions_30d', 'segment_id'];
    for (const [k, t] of batchTimes.entries()) {
      const batch = await runCliToEnd(['batch', '--as-of', String(t)], env);
      expect(batch.code, batch.out).to.equal(0);
      for (const [j, u] of users.entries()) {
        const row = rows[answers.length + k * users.length + j];
        expect([row.user_id, row.ts]).to.deep.equal([u, t]);
        const served = await get(u);
        for (const name of offlineNames) {
          const want = served?.tags[name] ?? null;
          expect(row[name], `${u}: ${name} as of ${new Date(t).toISOString()}`).to.deep.equal(want);
        }
      }
    }
    up.child.kill('SIGTERM');
    expect(await up.exited).to.equal(0);
  });
});
