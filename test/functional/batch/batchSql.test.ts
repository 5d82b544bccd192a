import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { runBatch } from '../../../src/batch/run';
import { offlineTagsSql, windowTagsSql } from '../../../src/batch/sql';
import { loadOfflineTable } from '../../../src/batch/load';
import { eraseUser, allErasures } from '../../../src/profile/erasure';
import { prng } from '../../../src/dev/simulate';
import { Pipeline, T0, makePipeline, testRedisUrl } from '../../helpers/context';
import { CLI, runCliToEnd } from '../../helpers/cli';
import { replayOds } from '../../helpers/replay';
import { EVERY_KIND_TAGS } from '../../helpers/windowReference';
import { WindowValue, sameWindowValue } from '../../../src/batch/windows';
import { ProfileEvent } from '../../../src/core/event';
import { parseTagConfig } from '../../../src/core/tagConfig';
import { odsLine } from '../../../src/ods/files';

const DAY = 86_400_000;
const AS_OF = T0 + 40 * DAY;

/** Runs SQL in an in-memory DuckDB; rows as plain objects with numbers (BIGINT/DECIMAL as Number). */
async function duckdb(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const rows = (await conn.runAndReadAll(sql)).getRowObjects();
    return rows.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v === null || typeof v === 'string' ? v : Number(v)])),
    );
  } finally {
    conn.closeSync();
  }
}

describe('profile batch on DuckDB and --print-sql, against the reference replay in JS', () => {
  let p: Pipeline;
  let ods: string;
  before(async () => {
    p = await makePipeline({ partitions: 2 });
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-sql-'));
    // 60 days of events for 80 users: every type, some events after the as-of time, copies of
    // the same id (redeliveries), a torn last line, and one erased user.
    const random = prng(7);
    const lines = new Map<string, string[]>();
    let seq = 0;
    for (let i = 0; i < 3000; i++) {
      const user = `u${Math.floor(random() ** 2 * 80)}`;
      const type = random() < 0.8 ? 'impression' : random() < 0.7 ? 'click' : 'purchase';
      const ts = AS_OF - Math.floor(random() * 60 * DAY) + (random() < 0.05 ? 2 * DAY : 0);
      const e: Record<string, unknown> = { event_id: `e${seq}`, user_id: user, type, ts, stream_id: `${1000 + seq}-0`, ingested_at: 1 };
      if (type === 'purchase') e.amount = Math.round(random() * 50000) / 100;
      const dt = `dt=${new Date(ts).toISOString().slice(0, 10)}`;
      const copies = random() < 0.05 ? 2 : 1;
      for (let c = 0; c < copies; c++) lines.set(dt, [...(lines.get(dt) ?? []), JSON.stringify({ ...e, stream_id: `${1000 + seq + c * 100_000}-0` })]);
      seq++;
    }
    for (const [dt, l] of lines) {
      fs.mkdirSync(path.join(ods, dt), { recursive: true });
      fs.writeFileSync(path.join(ods, dt, 'part-a.ndjson'), l.join('\n') + '\n');
    }
    // A torn last line (a crash mid-write): skipped by both.
    const [first] = [...lines.keys()].sort();
    fs.appendFileSync(path.join(ods, first, 'part-a.ndjson'), '{"event_id":"torn","user_id":"u1","ty');
    await eraseUser(p.redis, p.keys, 'u3', AS_OF - 20 * DAY);
  });
  after(async () => {
    await p.close();
    fs.rmSync(ods, { recursive: true, force: true });
  });

  for (const [label, range] of [
    ['all of the ODS', {}],
    ['a date range', { from: new Date(AS_OF - 30 * DAY).toISOString().slice(0, 10), to: new Date(AS_OF - 5 * DAY).toISOString().slice(0, 10) }],
  ] as const) {
    it(`gives every user's offline tags and segment exactly as the replay does, over ${label}`, async () => {
      const erasures = await allErasures(p.redis, p.keys);
      const replay = await replayOds(ods, p.config.tags, AS_OF, erasures, range);
      const rows = await duckdb(offlineTagsSql(p.config.tags, { odsDir: ods, asOf: AS_OF, erasures, ...range }));
      expect(rows.length).to.equal(replay.users.size).and.to.be.greaterThan(40);
      for (const row of rows) {
        const replayed = Object.fromEntries(Object.entries(replay.users.get(String(row.user_id))!).map(([k, v]) => [k, String(v)]));
        const fromSql = Object.fromEntries(
          Object.entries(row)
            .filter(([k, v]) => k !== 'user_id' && v !== null)
            .map(([k, v]) => [k, String(v)]),
        );
        expect(fromSql, String(row.user_id)).to.deep.equal(replayed);
      }
      // The erased user's events up to the erasure are gone in both.
      expect(rows.find((r) => r.user_id === 'u3')?.purchases_total ?? 0).to.equal(replay.users.get('u3')?.purchases_total ?? 0);
      expect(replay.erased_events).to.be.greaterThan(0);
    });
  }

  it('profile batch computes on DuckDB what the JS replay computes, summary and bad-line report included', async () => {
    // Lines that are JSON but fail the event schema, in a file of their own among good ones.
    const bad = path.join(ods, `dt=${new Date(AS_OF - DAY).toISOString().slice(0, 10)}`, 'part-bad.ndjson');
    fs.mkdirSync(path.dirname(bad), { recursive: true });
    const good = { event_id: 'g1', user_id: 'u1', type: 'purchase', ts: AS_OF - DAY, amount: 3, stream_id: '9000-0', ingested_at: 1 };
    fs.writeFileSync(
      bad,
      [
        JSON.stringify(good),
        JSON.stringify({ ...good, event_id: 'b1', type: 'view' }),
        JSON.stringify({ ...good, event_id: 'b2', amount: -1 }),
        JSON.stringify({ ...good, event_id: 'b3', colour: 'red' }),
        JSON.stringify({ ...good, event_id: 'b4', ad_id: null }),
        JSON.stringify({ ...good, event_id: 'b5', ts: new Date(AS_OF - DAY).toISOString() }), // valid: ISO time
        'not json at all',
      ].join('\n') + '\n',
    );
    try {
      const replay = await replayOds(ods, p.config.tags, AS_OF, await allErasures(p.redis, p.keys));
      const engine = await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: AS_OF });
      expect(replay.users.size).to.be.greaterThan(40);
      for (const [user, values] of replay.users) {
        const { _run_id: runId, _batch_at: _b, ...hash } = await p.redis.hgetall(p.keys.offline(user));
        expect(runId).to.equal(engine.run_id);
        expect(hash, user).to.deep.equal(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)])));
      }
      const counts = {
        lines: engine.lines,
        events: engine.events,
        duplicates: engine.duplicates,
        bad_lines: engine.bad_lines,
        after: engine.events_after_as_of,
        erased: engine.erased_events,
        users: engine.users_written,
      };
      expect(counts).to.deep.equal({
        lines: replay.lines,
        events: replay.events,
        duplicates: replay.duplicates,
        bad_lines: replay.badLines.length,
        after: replay.events_after_as_of,
        erased: replay.erased_events,
        users: replay.users.size,
      });
      const where = (b: { file: string; line: number }) => `${path.basename(b.file)}:${b.line}`;
      expect(engine.bad_line_samples.map(where)).to.include.members([
        'part-bad.ndjson:2',
        'part-bad.ndjson:3',
        'part-bad.ndjson:4',
        'part-bad.ndjson:5',
        'part-bad.ndjson:7',
      ]);
      expect(engine.bad_line_samples.map(where).sort()).to.deep.equal(replay.badLines.map(where).sort());
    } finally {
      fs.rmSync(bad);
    }
  });

  it('profile batch --print-sql prints that query for the configured tags and runs nothing', async () => {
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, ODS_DIR: ods };
    const runsBefore = await p.redis.zcard(p.keys.batchRuns());
    const { code, out } = await runCliToEnd(['batch', '--print-sql', '--as-of', String(AS_OF)], env);
    expect(code, out).to.equal(0);
    expect(out).to.equal(offlineTagsSql(p.config.tags, { odsDir: ods, asOf: AS_OF, erasures: await allErasures(p.redis, p.keys) }));
    expect(await p.redis.zcard(p.keys.batchRuns())).to.equal(runsBefore);
    expect((await duckdb(out)).length).to.be.greaterThan(40);
    // --windows: the window tags query instead, which DuckDB runs as printed.
    const recent = String(AS_OF - 3 * DAY);
    const windows = await runCliToEnd(['batch', '--print-sql', '--windows', '--as-of', recent], env);
    expect(windows.code, windows.out).to.equal(0);
    expect(windows.out).to.equal(windowTagsSql(p.config.tags, { odsDir: ods, asOf: Number(recent), erasures: await allErasures(p.redis, p.keys) }));
    const rows = await duckdb(windows.out);
    expect(rows.length).to.be.greaterThan(0);
    expect(Object.keys(rows[0])).to.deep.equal([
      'user_id',
      ...p.config.tags.realtime.filter((t) => t.aggregation !== 'count_by').map((t) => t.name),
      ...p.config.tags.realtime.filter((t) => t.aggregation === 'count_by').map((t) => t.name),
    ]);
  });

  it('profile batch --windows gives every window tag of every kind as the reference does, from checked and suspect files alike', async () => {
    const tags = parseTagConfig({ realtime: EVERY_KIND_TAGS });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-windows-'));
    try {
      const random = prng(11);
      const lines: string[] = [];
      for (let i = 0; i < 4000; i++) {
        const user = `w${Math.floor(random() ** 2 * 25)}`;
        const type = random() < 0.5 ? 'purchase' : 'impression';
        // The last 7 h (older than every window too), some events after the as-of time, some exactly on pane edges.
        const ts =
          random() < 0.05 ? AS_OF - Math.floor(random() * 40) * 60_000 : AS_OF - Math.floor(random() ** 2 * 7 * 3_600_000) + (random() < 0.03 ? 90_000 : 0);
        const e: ProfileEvent = { event_id: `x${i % 3900}`, user_id: user, type, ts };
        if (type === 'purchase') e.amount = Math.round(random() * 100000) / 100;
        else {
          if (random() < 0.9) e.ad_id = `ad-${Math.floor(random() * 12)}`;
          e.campaign_id = `c-${Math.floor(random() * 5)}`;
        }
        lines.push(odsLine(e, `${1000 + i}-0`)); // stream ids in file order: "first by stream id" is the first line
      }
      const day = path.join(dir, `dt=${new Date(AS_OF).toISOString().slice(0, 10)}`);
      fs.mkdirSync(day, { recursive: true });
      fs.writeFileSync(path.join(day, 'part-a.ndjson'), lines.slice(0, 3000).join(''));
      // Not as the archiver writes (a space after each comma): the validator's path, same events.
      fs.writeFileSync(
        path.join(day, 'part-b.ndjson'),
        lines
          .slice(3000)
          .map((l) => l.replace(/,"/g, ', "'))
          .join(''),
      );
      const summary = await runBatch({ redis: p.redis, keys: p.keys, tags, odsDir: dir, asOf: AS_OF, windows: true });
      const replay = await replayOds(dir, tags, AS_OF, new Map());
      expect(summary.window_users_written).to.equal(replay.windows.size).and.to.be.greaterThan(15);
      expect(summary.bad_lines).to.equal(0);
      for (const [user, expected] of replay.windows) {
        const { _run_id: runId, _as_of: asOf, ...stored } = await p.redis.hgetall(p.keys.batchWindows(user));
        expect([runId, asOf]).to.deep.equal([summary.run_id, String(AS_OF)]);
        expect(Object.keys(stored).sort()).to.deep.equal(tags.realtime.map((t) => t.name).sort());
        for (const t of tags.realtime) {
          const got = JSON.parse(stored[t.name]) as WindowValue;
          expect(sameWindowValue(got, expected[t.name]), `${user} ${t.name}: ${stored[t.name]} vs ${JSON.stringify(expected[t.name])}`).to.equal(true);
        }
      }
      expect(await p.redis.get(p.keys.batchWindowsRun())).to.equal(summary.run_id);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('profile batch load: a table computed outside the product into the offline hashes', () => {
    /** The offline hashes of every user, without the run fields. */
    async function offlineHashes(users: string[]): Promise<Record<string, Record<string, string>>> {
      const out: Record<string, Record<string, string>> = {};
      for (const u of users) {
        const { _run_id: _r, _batch_at: _b, ...rest } = await p.redis.hgetall(p.keys.offline(u));
        out[u] = rest;
      }
      return out;
    }

    for (const format of ['ndjson', 'parquet'] as const) {
      it(`loads the --print-sql result, written by DuckDB as ${format}, to exactly what profile batch wrote`, async () => {
        await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: AS_OF });
        const sql = offlineTagsSql(p.config.tags, { odsDir: ods, asOf: AS_OF, erasures: await allErasures(p.redis, p.keys) });
        const users = (await duckdb(sql)).map((r) => String(r.user_id));
        const written = await offlineHashes(users);
        for (const u of users) await p.redis.del(p.keys.offline(u));
        const file = path.join(ods, `..`, `${path.basename(ods)}-table.${format}`);
        await duckdb(`COPY (${sql.replace(/\n--[^\n]*/g, '').replace(/^--[^\n]*\n/gm, '')}) TO '${file}' (FORMAT ${format === 'ndjson' ? 'JSON' : 'PARQUET'})`);
        const summary = await loadOfflineTable({ redis: p.redis, keys: p.keys, tags: p.config.tags, file });
        fs.rmSync(file);
        expect(summary).to.deep.include({ rows: users.length, users_written: users.length, bad_rows: 0 });
        expect(await offlineHashes(users)).to.deep.equal(written);
        const run = await p.redis.hgetall(p.keys.batchRun(summary.run_id));
        expect(run.state).to.equal('succeeded');
        expect(await p.redis.hget(p.keys.offline(users[0]), '_run_id')).to.equal(summary.run_id);
        expect(await p.redis.exists(p.keys.batchLock())).to.equal(0);
      });
    }

    it('reads what Spark and Trino write (DECIMAL, TIMESTAMP, BIGINT past 2^53) exactly, reports duplicate users, refuses other column types by name', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-types-'));
      const file = path.join(dir, 'spark.parquet');
      await duckdb(`COPY (SELECT * FROM (VALUES
        ('t1', CAST(1234567.89 AS DECIMAL(18,2)), CAST(9007199254740993 AS BIGINT), TIMESTAMP '2026-11-01 10:00:00', 'regular'),
        ('t2', CAST(0.10 AS DECIMAL(18,2)), CAST(3 AS BIGINT), TIMESTAMP '2026-12-01 00:00:00.250', NULL),
        ('t1', CAST(5.00 AS DECIMAL(18,2)), CAST(1 AS BIGINT), NULL, 'regular')
      ) AS t(user_id, ltv_total, purchases_total, first_seen, segment_id)) TO '${file}' (FORMAT PARQUET)`);
      const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, LOG_LEVEL: 'silent' };
      const { code, out } = await runCliToEnd(['batch', 'load', file], env);
      expect(code, out).to.equal(0);
      expect(out)
        .to.include('rows       3')
        .and.include('bad rows   0')
        .and.include('users      2 offline profiles written')
        .and.include('duplicates 1 rows of users an earlier row had (the last row of each kept): t1');
      const t1 = await p.redis.hgetall(p.keys.offline('t1'));
      expect(t1).to.deep.include({ ltv_total: '5.00', purchases_total: '1', segment_id: 'regular' }); // the last row of t1
      expect(t1).to.not.have.property('first_seen');
      expect(await p.redis.hgetall(p.keys.offline('t2'))).to.deep.include({
        ltv_total: '0.10',
        purchases_total: '3',
        first_seen: String(Date.parse('2026-12-01T00:00:00.250Z')),
      });
      // One row per user: the BIGINT past 2^53 and the TIMESTAMP arrive exact.
      await duckdb(
        `COPY (SELECT 't3' AS user_id, CAST(9007199254740993 AS BIGINT) AS purchases_total, TIMESTAMP '2026-11-01 10:00:00' AS first_seen) TO '${file}' (FORMAT PARQUET)`,
      );
      expect((await runCliToEnd(['batch', 'load', file], env)).code).to.equal(0);
      expect(await p.redis.hgetall(p.keys.offline('t3'))).to.deep.include({
        purchases_total: '9007199254740993',
        first_seen: String(Date.parse('2026-11-01T10:00:00Z')),
      });
      // A column of another type: refused by name before anything is written.
      await duckdb(`COPY (SELECT 't4' AS user_id, [1, 2] AS ltv_total) TO '${file}' (FORMAT PARQUET)`);
      const refused = await runCliToEnd(['batch', 'load', file], env);
      expect([refused.code, refused.out.trim()]).to.deep.equal([
        2,
        'profile: column ltv_total is of type INTEGER[]: an offline tag column must be a number (integer, DECIMAL, FLOAT, DOUBLE) or a TIMESTAMP/DATE, user_id and segment_id text',
      ]);
      expect(await p.redis.exists(p.keys.offline('t4'))).to.equal(0);
      // NDJSON: an integer past 2^53 is refused (JSON.parse has rounded it); as a string it is exact; ISO times for first_seen/last_seen.
      const ndjson = path.join(dir, 'big.ndjson');
      fs.writeFileSync(
        ndjson,
        '{"user_id":"t5","purchases_total":9007199254740993}\n{"user_id":"t6","purchases_total":"9007199254740993","last_seen":"2026-12-01T08:00:00Z"}\n',
      );
      const big = await runCliToEnd(['batch', 'load', ndjson], env);
      expect(big.out).to.include(
        'row 1: purchases_total 9007199254740992 is an integer above 2^53 that a JSON number cannot carry exactly: write it as a string',
      );
      expect(await p.redis.hgetall(p.keys.offline('t6'))).to.deep.include({
        purchases_total: '9007199254740993',
        last_seen: String(Date.parse('2026-12-01T08:00:00Z')),
      });
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('streams a large Parquet file in bounded memory', async function () {
      this.timeout(120_000);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-big-'));
      const file = path.join(dir, 'big.parquet');
      const users = 300_000;
      await duckdb(
        `COPY (SELECT 'big-' || i AS user_id, CAST(i AS DECIMAL(18,2)) AS ltv_total, i AS purchases_total FROM range(${users}) t(i)) TO '${file}' (FORMAT PARQUET)`,
      );
      // The CLI with a hook that prints its peak RSS at exit.
      const hook = path.join(dir, 'rss.js');
      fs.writeFileSync(hook, "process.on('exit', () => process.stderr.write(`maxrss_kb=${process.resourceUsage().maxRSS}\\n`));\n");
      const { code, out } = await runCliToEnd(
        ['-r', hook, CLI, 'batch', 'load', file],
        { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, LOG_LEVEL: 'silent' },
        false,
        process.execPath,
      );
      expect(code, out).to.equal(0);
      expect(out).to.include(`users      ${users} offline profiles written`);
      const rssMb = Number(/maxrss_kb=(\d+)/.exec(out)![1]) / 1024;
      expect(rssMb, `peak RSS ${rssMb.toFixed(0)} MB`).to.be.below(400);
      expect(await p.redis.hget(p.keys.offline(`big-${users - 1}`), 'ltv_total')).to.equal(`${users - 1}.00`);
      const keys: string[] = [];
      for (let i = 0; i < users; i++) keys.push(p.keys.offline(`big-${i}`));
      for (let i = 0; i < keys.length; i += 10_000) await p.redis.unlink(...keys.slice(i, i + 10_000));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('skips and reports bad rows, replaces each user whole, and runs from the CLI', async () => {
      const file = path.join(os.tmpdir(), `load-${process.pid}.ndjson`);
      await p.redis.hset(p.keys.offline('l1'), { ltv_total: '1', stale_field: 'x' });
      fs.writeFileSync(
        file,
        [
          JSON.stringify({ user_id: 'l1', ltv_total: 12.5, purchases_total: 2, segment_id: 'regular' }),
          JSON.stringify({ user_id: 'l2', ltv_total: 'a lot' }),
          JSON.stringify({ user_id: 'l3', colour: 'red' }),
          JSON.stringify({ user_id: 'l4', segment_id: 'vip' }),
          JSON.stringify({ user_id: 'bad id!' }),
          '{"user_id": "l5", "ltv',
          JSON.stringify({ user_id: 'l6', first_seen: null, purchases_total: 0, segment_id: 'window_shopper' }),
        ].join('\n') + '\n',
      );
      const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, LOG_LEVEL: 'silent' };
      const { code, out } = await runCliToEnd(['batch', 'load', file], { ...env, LOG_LEVEL: 'warn' });
      // Any bad row is exit 1 (the good rows are loaded), said once; --allow-bad-rows makes it 0.
      expect(code, out).to.equal(1);
      expect(out).to.include('profile: 5 of 7 rows were bad and skipped (the others are loaded): exit 1; --allow-bad-rows accepts that');
      expect(out.match(/ltv_total must be a number/g)).to.have.length(1);
      expect((await runCliToEnd(['batch', 'load', '--allow-bad-rows', file], env)).code).to.equal(0);
      fs.rmSync(file);
      expect(out).to.include('rows       7').and.include('bad rows   5').and.include('users      2 offline profiles written');
      for (const reason of [
        'row 2: ltv_total must be a number',
        'row 3: unknown column "colour"',
        'row 4: segment_id "vip" is not a configured segment',
        'row 5: user_id is missing or not a valid id',
        'row 6: not JSON',
      ])
        expect(out).to.include(reason);
      const { _run_id: _r, _batch_at: _b, ...l1 } = await p.redis.hgetall(p.keys.offline('l1'));
      expect(l1).to.deep.equal({ ltv_total: '12.5', purchases_total: '2', segment_id: 'regular' }); // the stale field is gone
      expect(await p.redis.hget(p.keys.offline('l6'), 'segment_id')).to.equal('window_shopper');
      expect(await p.redis.exists(p.keys.offline('l2'), p.keys.offline('l3'), p.keys.offline('l4'))).to.equal(0);
    });
  });
});
