import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { prng } from '../../../src/dev/simulate';
import { ProfileEvent } from '../../../src/core/event';
import { TagConfig } from '../../../src/core/tags';
import { DEFAULT_TAGS_FILE, parseTagConfig } from '../../../src/core/tagConfig';
import { odsLine } from '../../../src/ods/files';
import { WindowValue, sameWindowValue } from '../../../src/batch/windows';
import { buildTrainingSet, printedTrainingSql, TrainingSetOptions } from '../../../src/training/trainingSet';
import { isErased } from '../../../src/profile/erasure';
import { computeWindowTags, EVERY_KIND_TAGS } from '../../helpers/windowReference';
import { OfflineAggregator } from '../../helpers/offlineReference';
import { killAllCli, runCli, runCliToEnd } from '../../helpers/cli';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const START = Date.UTC(2026, 9, 1, 0, 0, 0, 123);

/** Offline tags of every aggregation, with and without an event type and a window (one shorter than a day). */
const EVERY_KIND_OFFLINE_TAGS = [
  { name: 'clicks_total', aggregation: 'count', event: 'click' },
  { name: 'events_12h', aggregation: 'count', window: '12h' },
  { name: 'spend_2d', aggregation: 'sum', event: 'purchase', field: 'amount', window: '2d' },
  { name: 'first_click', aggregation: 'first_seen', event: 'click' },
  { name: 'first_seen_3d', aggregation: 'first_seen', window: '3d' },
  { name: 'last_purchase_5d', aggregation: 'last_seen', event: 'purchase', window: '5d' },
  { name: 'click_days_7d', aggregation: 'active_days', event: 'click', window: '7d' },
  { name: 'days_all', aggregation: 'active_days' },
  { name: 'days_6h', aggregation: 'active_days', window: '6h' },
];

/** The shipped config with window tags of every kind, resolution and top, and offline tags of every kind, added. */
const TAGS: TagConfig = (() => {
  const shipped = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: unknown[]; offline: { tags: unknown[] } };
  return parseTagConfig({
    ...shipped,
    realtime: [...shipped.realtime, ...EVERY_KIND_TAGS],
    offline: { ...shipped.offline, tags: [...shipped.offline.tags, ...EVERY_KIND_OFFLINE_TAGS] },
  });
})();

interface Stored {
  event: ProfileEvent;
  streamId: string;
}

/**
 * Events of a few users over 40 days, dense around some moments (so windows of every length
 * hold many events and slide across them), with redelivered copies (same id, later stream
 * id, other time and amount: the first copy counts) in stream order.
 */
function makeEvents(seed: number, users: string[]): Stored[] {
  const rnd = prng(seed);
  const out: Stored[] = [];
  let seq = 0;
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  for (const user of users) {
    const bursts = Array.from({ length: 6 }, () => START + Math.floor(rnd() * 40 * DAY));
    for (let i = 0; i < 260; i++) {
      const centre = pick(bursts);
      const ts = centre + Math.floor((rnd() - 0.3) * (rnd() < 0.5 ? 10 * MIN : 30 * HOUR));
      const type = pick(['impression', 'impression', 'impression', 'click', 'purchase'] as const);
      const event: ProfileEvent = {
        event_id: `e${++seq}`,
        user_id: user,
        type,
        ts,
        ad_id: pick(['a1', 'a2', 'a3', 'a4', 'a5']),
        campaign_id: pick(['c1', 'c2', 'c3', 'c4']),
      };
      if (type === 'purchase' || rnd() < 0.1) event.amount = Math.round(rnd() * 20000) / 100;
      out.push({ event, streamId: `${START + seq}-0` });
      if (rnd() < 0.05) {
        const copy = { ...event, ts: ts + Math.floor(rnd() * 2 * MIN), amount: type === 'purchase' ? 999.99 : event.amount };
        out.push({ event: copy, streamId: `${START + seq}-1` });
      }
    }
  }
  return out;
}

/** Writes events as the archiver does (canonical lines, dt= folders by event date). */
function writeOds(dir: string, stored: Stored[], file = 'part-test.ndjson'): void {
  for (const { event, streamId } of stored) {
    const folder = path.join(dir, `dt=${new Date(event.ts).toISOString().slice(0, 10)}`);
    fs.mkdirSync(folder, { recursive: true });
    fs.appendFileSync(path.join(folder, file), odsLine(event, streamId));
  }
}

/** The first copy of each (user, type, event id), in stream order, without erased events. */
function firstCopies(stored: Stored[], erasures: Map<string, number>): ProfileEvent[] {
  const seen = new Set<string>();
  const out: ProfileEvent[] = [];
  for (const { event } of stored) {
    const key = `${event.user_id}\0${event.type}\0${event.event_id}`;
    if (isErased(erasures, event.user_id, event.ts) || seen.has(key)) continue;
    seen.add(key);
    out.push(event);
  }
  return out;
}

type Row = Record<string, unknown>;

/** What a row must hold: every tag from the reference models over the user's events up to `asOf`. */
function expectedFeatures(events: ProfileEvent[], user: string, asOf: number): Row {
  const mine = events.filter((e) => e.user_id === user && e.ts <= asOf);
  const out: Row = { ...computeWindowTags(mine, TAGS.realtime, asOf) };
  const aggregator = new OfflineAggregator(TAGS.offline, TAGS.segments, asOf);
  const state = aggregator.newState();
  for (const e of mine) aggregator.add(state, e);
  const offline = mine.length ? aggregator.values(state) : {};
  for (const t of TAGS.offline) out[t.name] = offline[t.name] ?? null;
  out.segment_id = offline.segment_id ?? null;
  return out;
}

function expectRow(actual: Row, expected: Row, where: string): void {
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name];
    const same = name === 'segment_id' ? got === want : sameWindowValue(got as WindowValue, want as WindowValue);
    expect(same, `${where}: ${name} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`).to.equal(true);
  }
}

/** Runs a query in a fresh DuckDB and writes its rows as NDJSON. */
async function copyToNdjson(sql: string, out: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`COPY (${sql}) TO '${out}' (FORMAT json)`);
  } finally {
    conn.closeSync();
  }
}

const readNdjson = (file: string): Row[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row);

describe('profile training-set (point-in-time features from the ODS)', function () {
  this.timeout(120_000);
  let dir: string;
  let ods: string;
  const users = ['u-a', 'u-b', 'u-c', 'u-d', 'gone'];
  const stored = makeEvents(7, users);
  // 'gone' was erased on day 20: its events up to then are not training data.
  const erasures = new Map([['gone', START + 20 * DAY]]);
  const events = firstCopies(stored, erasures);

  /** Spine points: random times, and the edges: at an event, 1 ms before one, on pane boundaries and 1 ms before them. */
  function spinePoints(seed: number, n: number): { user_id: string; ts: number }[] {
    const rnd = prng(seed);
    const out: { user_id: string; ts: number }[] = [];
    for (let i = 0; i < n; i++) {
      const e = stored[Math.floor(rnd() * stored.length)].event;
      const step = [1000, MIN, HOUR][i % 3];
      const edges = [e.ts, e.ts - 1, e.ts + 1, Math.ceil(e.ts / step) * step, Math.ceil(e.ts / step) * step - 1, e.ts + Math.floor(rnd() * 2 * DAY)];
      out.push({ user_id: e.user_id, ts: edges[i % edges.length] });
    }
    out.push({ user_id: 'u-a', ts: START - DAY }, { user_id: 'nobody', ts: START + 10 * DAY }); // before any event; an unknown user
    return out;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'training-test-'));
    ods = path.join(dir, 'ods');
    writeOds(ods, stored);
  });
  afterEach(async () => {
    await killAllCli();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const writeSpine = (rows: object[]) => {
    const spine = path.join(dir, 'spine.ndjson');
    fs.writeFileSync(spine, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return spine;
  };
  const build = (over: Partial<TrainingSetOptions> & Pick<TrainingSetOptions, 'spine'>) =>
    buildTrainingSet({ tags: TAGS, odsDir: ods, out: path.join(dir, 'out.ndjson'), format: 'ndjson', erasures, ...over });

  it('gives every realtime tag, offline tag and segment of each row as of its time, equal to the reference models', async () => {
    const points = spinePoints(11, 600);
    const spine = path.join(dir, 'spine.ndjson');
    fs.writeFileSync(spine, points.map((p, i) => JSON.stringify({ ...p, request_id: `r${i}`, label: i % 2 })).join('\n') + '\n');
    const summary = await build({ spine: { file: spine } });
    expect(summary.rows).to.equal(points.length);
    const rows = readNdjson(path.join(dir, 'out.ndjson'));
    expect(rows).to.have.length(points.length);
    rows.forEach((row, i) => {
      // The spine's columns come through unchanged, in the spine's order.
      expect([row.user_id, row.ts, row.request_id, row.label]).to.deep.equal([points[i].user_id, points[i].ts, `r${i}`, i % 2]);
      expectRow(row, expectedFeatures(events, points[i].user_id, points[i].ts), `row ${i} (${points[i].user_id} at ${points[i].ts})`);
    });
    // Erased events are not features: 'gone' before its erasure has no events.
    const goneEarly = rows.filter((_, i) => points[i].user_id === 'gone' && points[i].ts <= START + 20 * DAY);
    expect(goneEarly).to.not.be.empty;
    for (const row of goneEarly) expect([row.first_seen, row.views_1h]).to.deep.equal([null, 0]);
    // Rows with nothing before them: counts 0, offline tags and segment null.
    const before = rows[points.length - 2];
    expect([before.views_1h, before.ltv_total, before.segment_id, before.campaign_views_1h]).to.deep.equal([0, null, null, {}]);
  });

  it("lets no event after a row's time change it: planted later events leave every row as it was", async () => {
    const points = spinePoints(12, 200);
    const spine = writeSpine(points);
    await build({ spine: { file: spine }, out: path.join(dir, 'before.ndjson') });
    // After each user's last spine time: 1 ms later (the same pane), the next second, minute and hour, of every type.
    const last = new Map<string, number>();
    for (const p of points) last.set(p.user_id, Math.max(last.get(p.user_id) ?? -Infinity, p.ts));
    const planted: Stored[] = [];
    let n = 0;
    for (const [user, t] of last) {
      for (const later of [1, 999, 1000, MIN, HOUR, 2 * DAY]) {
        for (const type of ['impression', 'click', 'purchase'] as const) {
          planted.push({
            event: { event_id: `future-${++n}`, user_id: user, type, ts: t + later, ad_id: 'a9', campaign_id: 'c9', amount: 5000 },
            streamId: `${START + 100_000 + n}-0`,
          });
        }
      }
    }
    writeOds(ods, planted, 'part-future.ndjson');
    await build({ spine: { file: spine }, out: path.join(dir, 'after.ndjson') });
    expect(readNdjson(path.join(dir, 'after.ndjson'))).to.deep.equal(readNdjson(path.join(dir, 'before.ndjson')));
  });

  it('reads Parquet spines and ISO-8601 times, writes Parquet, and gives the subset --tags names', async () => {
    const points = spinePoints(13, 50);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const values = points.map((p, i) => `('${p.user_id}', '${new Date(p.ts).toISOString()}', ${i})`).join(', ');
      await conn.run(`COPY (SELECT * FROM (VALUES ${values}) v(user_id, ts, n)) TO '${path.join(dir, 'spine.parquet')}' (FORMAT parquet)`);
      const summary = await build({
        spine: { file: path.join(dir, 'spine.parquet') },
        out: path.join(dir, 'out.parquet'),
        format: 'parquet',
        select: ['segment_id', 'views_5m', 'camp_top2_1h'],
      });
      expect(summary.features).to.deep.equal(['views_5m', 'camp_top2_1h', 'segment_id']);
      const rows = (await conn.runAndReadAll(`SELECT * FROM read_parquet('${path.join(dir, 'out.parquet')}')`)).getRowObjectsJson();
      expect(Object.keys(rows[0])).to.deep.equal(['user_id', 'ts', 'n', 'views_5m', 'camp_top2_1h', 'segment_id']);
      rows.forEach((row, i) => {
        expect(row.ts).to.equal(new Date(points[i].ts).toISOString()); // passed through as given
        const want = expectedFeatures(events, points[i].user_id, points[i].ts);
        expect(Number(row.views_5m)).to.equal(want.views_5m);
        expect(row.segment_id).to.equal(want.segment_id);
        // A Parquet MAP reads back as key/value pairs.
        const pairs = row.camp_top2_1h as { key: string; value: string }[];
        expect(Object.fromEntries(pairs.map((p) => [p.key, Number(p.value)]))).to.deep.equal(want.camp_top2_1h);
      });
    } finally {
      conn.closeSync();
    }
  });

  it('builds the CTR spine from the impressions: labelled by a click on the same ad within the time, features as of just before', async () => {
    const summary = await build({ spine: { impressions: { labels: [{ name: 'clicked_within_30m', withinMs: 30 * MIN }] } } });
    const rows = readNdjson(path.join(dir, 'out.ndjson'));
    const newest = Math.max(...events.map((e) => e.ts));
    // The impressions left out are those whose label is not known yet, and the summary says how many.
    expect(summary.newest_event).to.equal(newest);
    expect(summary.label_unknown)
      .to.equal(events.filter((e) => e.type === 'impression' && e.ts + 30 * MIN > newest).length)
      .and.to.be.greaterThan(0);
    const impressions = events
      .filter((e) => e.type === 'impression' && e.ts + 30 * MIN <= newest)
      .sort((a, b) => a.ts - b.ts || (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0) || (a.event_id < b.event_id ? -1 : 1));
    expect(rows.map((r) => r.event_id)).to.deep.equal(impressions.map((e) => e.event_id));
    let clicked = 0;
    rows.forEach((row, i) => {
      const imp = impressions[i];
      const label = events.some((c) => c.type === 'click' && c.user_id === imp.user_id && c.ad_id === imp.ad_id && c.ts >= imp.ts && c.ts <= imp.ts + 30 * MIN)
        ? 1
        : 0;
      clicked += label;
      expect([row.user_id, row.ts, row.impression_ts, row.ad_id, row.clicked_within_30m]).to.deep.equal([imp.user_id, imp.ts - 1, imp.ts, imp.ad_id, label]);
      if (i % 10 === 0) expectRow(row, expectedFeatures(events, imp.user_id, imp.ts - 1), `impression ${imp.event_id}`);
    });
    expect(clicked).to.be.greaterThan(0);
    expect(clicked).to.be.lessThan(rows.length);
    // A date range takes that range's impressions only.
    const day = new Date(impressions[0].ts).toISOString().slice(0, 10);
    await build({ spine: { impressions: { from: day, to: day, labels: [] } }, out: path.join(dir, 'day.ndjson') });
    const dayRows = readNdjson(path.join(dir, 'day.ndjson'));
    expect(dayRows.length).to.equal(events.filter((e) => e.type === 'impression' && new Date(e.ts).toISOString().startsWith(day)).length);
  });

  it('prints SQL that DuckDB runs by itself to the same rows', async () => {
    const points = spinePoints(14, 100);
    const spine = writeSpine(points);
    await build({ spine: { file: spine } });
    const sql = await printedTrainingSql({ tags: TAGS, odsDir: ods, spine: { file: spine }, erasures });
    expect(sql).to.include("read_ndjson('" + path.join(ods, 'dt=*', '*.ndjson'));
    await copyToNdjson(sql, path.join(dir, 'printed.ndjson'));
    expect(readNdjson(path.join(dir, 'printed.ndjson'))).to.deep.equal(readNdjson(path.join(dir, 'out.ndjson')));
  });

  it('prints a portable form (range joins, plain SQL) that gives the same rows', async () => {
    const points = spinePoints(16, 300);
    const spine = writeSpine(points);
    await build({ spine: { file: spine } });
    const sql = await printedTrainingSql({ tags: TAGS, odsDir: ods, spine: { file: spine }, erasures, dialect: 'portable' });
    expect(sql).not.to.match(/HISTOGRAM|RANGE BETWEEN \(\(ts %|STRUCT_PACK|COUNT\(DISTINCT [^)]*\) OVER/); // no per-row frame, no DuckDB aggregate
    // The DuckDB functions it does use, each named in its header with the kinds that use it.
    const header = sql.slice(0, sql.indexOf('\nWITH '));
    const body = sql.slice(header.length);
    for (const [fn, kinds] of [
      ['json_group_object', 'count_by, histogram'],
      ['to_json(list(', 'last_k, first_k'],
      ['json_object', 'percentile'],
      ["('0x' ||", 'approx_distinct'],
    ]) {
      expect(body).to.include(fn);
      expect(header).to.match(new RegExp(`--   ${kinds}: [^\n]*${fn.replace(/[()|]/g, '\\$&')}`));
    }
    await copyToNdjson(sql, path.join(dir, 'portable.ndjson'));
    const fast = readNdjson(path.join(dir, 'out.ndjson'));
    const portable = readNdjson(path.join(dir, 'portable.ndjson'));
    expect(portable).to.have.length(fast.length);
    const countBy = TAGS.realtime.filter((t) => ['count_by', 'histogram', 'last_k', 'first_k', 'percentile'].includes(t.aggregation)).map((t) => t.name);
    portable.forEach((row, i) => {
      for (const name of countBy) row[name] = JSON.parse(row[name] as string);
      expect([row.user_id, row.ts]).to.deep.equal([fast[i].user_id, fast[i].ts]);
      const { user_id: _u, ts: _t, ...features } = fast[i];
      expectRow(row, features, `row ${i}`);
    });
  });

  it('reads files with bad lines through the validator, reporting each, and computes the same rows', async () => {
    const points = spinePoints(15, 100);
    const spine = writeSpine(points);
    await build({ spine: { file: spine }, out: path.join(dir, 'clean.ndjson') });
    const file = path.join(ods, fs.readdirSync(ods).filter((d) => d.startsWith('dt='))[3], 'part-test.ndjson');
    fs.appendFileSync(file, '{"event_id":"x","user_id":"u-a","type":"impression","ts":"soon"}\nnot json\n');
    const bad: number[] = [];
    const summary = await build({ spine: { file: spine }, out: path.join(dir, 'dirty.ndjson'), onBadLine: (b) => bad.push(b.line) });
    expect(summary.bad_lines).to.equal(2);
    expect(bad).to.have.length(2);
    expect(readNdjson(path.join(dir, 'dirty.ndjson'))).to.deep.equal(readNdjson(path.join(dir, 'clean.ndjson')));
  });

  describe('the command', () => {
    const env = () => ({ REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), ODS_DIR: ods, LOG_FORMAT: 'json' });
    let spines = 0;
    const spineOf = (text: string) => {
      const file = path.join(dir, `spine-${++spines}.ndjson`);
      fs.writeFileSync(file, text);
      return file;
    };

    it('writes Parquet by default and says what it wrote', async () => {
      const spine = spineOf(`{"user_id":"u-a","ts":${START + 5 * DAY}}\n{"user_id":"u-b","ts":"${new Date(START + 9 * DAY).toISOString()}"}\n`);
      const { code, out } = await runCliToEnd(['training-set', '--spine', spine, '--out', path.join(dir, 'train.parquet')], env());
      expect(code, out).to.equal(0);
      expect(out).to.match(/^training set: 2 rows × \d+ features → .*train\.parquet \(parquet\)/m);
      expect(fs.readFileSync(path.join(dir, 'train.parquet')).subarray(0, 4).toString()).to.equal('PAR1');
    });

    it('says why an impressions spine has no row (a range without impressions)', async () => {
      const { code, out } = await runCliToEnd(
        ['training-set', '--spine-from', 'impressions', '--from', '2001-01-01', '--to', '2001-01-02', '--out', path.join(dir, 'none.parquet')],
        env(),
      );
      expect(code, out).to.equal(0);
      expect(out).to.match(/^training set: 0 rows × \d+ features/m);
      expect(out).to.match(
        /^no impression in the ODS between --from 2001-01-01 and --to 2001-01-02: the ODS holds \d+ files \(profile status shows their dates\)$/m,
      );
    });

    it('stops on Ctrl-C: exit 130, nothing written, no partial file left', async () => {
      const db = await DuckDBInstance.create(':memory:');
      const conn = await db.connect();
      const spine = path.join(dir, 'big.parquet');
      try {
        // Two million rows: several seconds of work, so the signal comes mid-query.
        await conn.run(
          `COPY (SELECT 'u-' || chr(97 + CAST(i % 4 AS INTEGER)) AS user_id, ${START} + i * 1000 AS ts FROM range(2000000) r(i)) TO '${spine}' (FORMAT parquet)`,
        );
      } finally {
        conn.closeSync();
      }
      const out = path.join(dir, 'out', 'train.parquet');
      fs.mkdirSync(path.dirname(out));
      const run = runCli(['training-set', '--spine', spine, '--out', out], env());
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = Date.now();
      run.child.kill('SIGINT');
      expect(await run.exited, run.output()).to.equal(130);
      expect(Date.now() - t0).to.be.lessThan(5000);
      expect(run.output()).to.include(`training-set interrupted: nothing written to ${out}`);
      expect(fs.readdirSync(path.dirname(out))).to.deep.equal([]);
    });

    it('refuses what it cannot use with one line and exit 2', async () => {
      const cases: [string[], RegExp][] = [
        [['--out', 'x.parquet'], /needs --spine <file> or --spine-from impressions/],
        [['--spine', spineOf('{"user":"u-a","ts":1}\n'), '--out', 'x.parquet'], /has no user_id column/],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1795743206000}\n{"user_id":"u-b","ts":"yesterday"}\n'), '--out', 'x.parquet'],
          /spine row 2: ts "yesterday" is neither epoch ms nor an ISO-8601 time/,
        ],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1795743206000}\n{"user_id":"u-b","ts":1e300}\n'), '--out', 'x.parquet'],
          /^profile: spine row 2: ts "1e\+300" is neither epoch ms nor an ISO-8601 time up to year 9999$/m,
        ],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1000000000000000000}\n'), '--out', 'x.parquet'],
          /^profile: spine row 1: ts "1000000000000000000" is neither epoch ms nor an ISO-8601 time up to year 9999$/m,
        ],
        [['--spine', spineOf('{"user_id":"u-a","ts":1795743206000,"views_5m":3}\n'), '--out', 'x.parquet'], /column views_5m has the name of a feature/],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1795743206000}\n{"user_id":"u-a","ts":1795743206}\n'), '--out', 'x.parquet'],
          /spine row 2: ts 1795743206 is 1970-01-21T\S+ as epoch ms: epoch seconds\?/,
        ],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1795743206000}\n'), '--tags', 'views_5m,nope', '--out', 'x.parquet'],
          /--tags: nope is not a tag of the config/,
        ],
        [['--spine', path.join(dir, 'missing.ndjson'), '--out', 'x.parquet'], /the spine .*missing\.ndjson does not exist/],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1795743206000}\n'), '--label', 'clicked_within=30m', '--out', 'x.parquet'],
          /--label, --from and --to go with --spine-from impressions/,
        ],
        [['--spine-from', 'impressions', '--label', 'clicked_within=soon', '--out', 'x.parquet'], /--label must be clicked_within=<duration>/],
        [
          ['--spine', spineOf('{"user_id":"u-a","ts":1795743206000}\n'), '--out', path.join(dir, 'no', 'such', 'x.parquet')],
          /--out .*: the folder .* does not exist or is not writable/,
        ],
      ];
      for (const [args, message] of cases) {
        const { code, out } = await runCliToEnd(['training-set', ...args.map((a) => (a === 'x.parquet' ? path.join(dir, a) : a))], env());
        expect(code, `${args.join(' ')}: ${out}`).to.equal(2);
        expect(out, args.join(' ')).to.match(message);
        expect(out, args.join(' ')).not.to.match(/\n\s+at /); // no stack
      }
    });
  });
});
