/**
 * `profile batch` against DuckDB on the same ODS, in the same run.
 *   node dist/bench/batch.js [events=2000000] [users=100000] [days=30]
 * Generates an ODS of `events` events (Zipf users over `days` days, 1 % redelivered
 * duplicates), starts a private redis-server, then times:
 *   - batch: runBatch (check every file, DuckDB dedup + offline tags + segments, load every user into Redis);
 *   - duckdb: the same dedup and aggregations with read_ndjson, GROUP BY user (no Redis writes).
 * Prints JSON with seconds and events/s of each and their ratio.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { resolveConfig } from '../src/core/config';
import { Keys } from '../src/core/keys';
import { connectRedis } from '../src/redis/client';
import { startRedisServer } from '../src/redis/embeddedServer';
import { runBatch } from '../src/batch/run';
import { offlineTagsSql } from '../src/batch/sql';
import { loadOfflineTable } from '../src/batch/load';
import { TrafficGenerator } from '../src/dev/simulate';
import { odsLine } from '../src/ods/files';
import { validateEvent } from '../src/core/event';
import { redisBenchmark, runMain } from './scratchRedis';

const DAY = 86_400_000;

export async function generateOds(dir: string, events: number, users: number, days: number, asOf: number): Promise<number> {
  const gen = new TrafficGenerator(users, 42);
  const perDay = Math.ceil(events / days);
  let written = 0;
  for (let d = 0; d < days && written < events; d++) {
    const dayStart = asOf - (days - d) * DAY;
    const dt = path.join(dir, `dt=${new Date(dayStart).toISOString().slice(0, 10)}`);
    fs.mkdirSync(dt, { recursive: true });
    const out = fs.createWriteStream(path.join(dt, 'part-bench.ndjson'));
    let chunk: string[] = [];
    const n = Math.min(perDay, events - written);
    for (let i = 0; i < n; i++) {
      const ts = dayStart + Math.floor((i / n) * DAY);
      const r = validateEvent(gen.next(ts), 0, { now: ts, maxFutureSkewMs: 0 });
      if (!r.ok) throw new Error('generator made an invalid event');
      const line = odsLine(r.event, `${ts}-${i}`);
      chunk.push(line);
      if (i % 100 === 99) chunk.push(line); // 1 % duplicates, as after redelivery
      if (chunk.length >= 5000) {
        if (!out.write(chunk.join(''))) await new Promise<void>((res) => out.once('drain', () => res()));
        chunk = [];
      }
    }
    out.write(chunk.join(''));
    await new Promise<void>((res) => out.end(() => res()));
    written += n;
  }
  return written;
}

const DUCKDB_SQL = (glob: string, asOf: number) => `
WITH raw AS (
  SELECT * FROM read_ndjson('${glob}', columns = {
    event_id: 'VARCHAR', user_id: 'VARCHAR', type: 'VARCHAR', ts: 'BIGINT', ad_id: 'VARCHAR',
    campaign_id: 'VARCHAR', amount: 'DOUBLE', currency: 'VARCHAR', stream_id: 'VARCHAR', ingested_at: 'BIGINT'
  }, ignore_errors = true)
), ev AS (
  SELECT DISTINCT ON (user_id, type, event_id) * FROM raw WHERE ts <= ${asOf}
), tags AS (
  SELECT user_id,
    COALESCE(SUM(amount) FILTER (WHERE type = 'purchase'), 0) AS ltv_total,
    COUNT(*) FILTER (WHERE type = 'purchase') AS purchases_total,
    MIN(ts) AS first_seen, MAX(ts) AS last_seen,
    COUNT(DISTINCT ts // ${DAY}) FILTER (WHERE ts >= ${asOf - 30 * DAY}) AS active_days_30d,
    COUNT(*) FILTER (WHERE type = 'impression' AND ts >= ${asOf - 30 * DAY}) AS impressions_30d
  FROM ev GROUP BY user_id
)
SELECT user_id, ltv_total, purchases_total, first_seen, last_seen, active_days_30d, impressions_30d,
  CASE WHEN ltv_total >= 400 THEN 'high_value_user'
       WHEN ${asOf} - first_seen <= ${7 * DAY} THEN 'new_user'
       WHEN ${asOf} - last_seen > ${30 * DAY} THEN 'churn_risk'
       WHEN purchases_total = 0 AND impressions_30d >= 50 THEN 'window_shopper'
       ELSE 'regular' END AS segment_id
FROM tags`;

/** redis-benchmark HSET of an offline-profile-sized hash field set, 64 per pipeline, as a ceiling for the load step. */
function hsetBenchmark(port: number, n: number): number {
  return redisBenchmark(port, [
    '-n',
    String(Math.max(n, 10_000)),
    '-P',
    '64',
    '-r',
    '100000',
    'HSET',
    'bench:u:__rand_int__',
    'ltv_total',
    '470.5',
    'purchases_total',
    '3',
    'first_seen',
    '1795687801377',
    'last_seen',
    '1795687801377',
    'active_days_30d',
    '12',
    'impressions_30d',
    '80',
    'segment_id',
    'high_value_user',
    '_run_id',
    '20261126T000000Z-abcdef',
    '_batch_at',
    '1795687801377',
  ]);
}

/** Batch vs DuckDB on one generated ODS; every figure from the same run. */
export async function measureBatch(events: number, users: number, days: number): Promise<Record<string, number>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-batch-'));
  const ods = path.join(work, 'ods');
  const asOf = Date.UTC(2026, 10, 26);
  const t0 = Date.now();
  await generateOds(ods, events, users, days, asOf);
  const generateS = (Date.now() - t0) / 1000;
  const server = await startRedisServer({ dir: path.join(work, 'redis'), appendonly: false });
  const redis = await connectRedis(server.url);
  const config = resolveConfig({ redisUrl: server.url });
  try {
    const b0 = process.hrtime.bigint();
    const summary = await runBatch({ redis, keys: new Keys(''), tags: config.tags, odsDir: ods, asOf });
    const batchS = Number(process.hrtime.bigint() - b0) / 1e9;
    // The next run over the same ODS (a nightly run over unchanged days): the files' check is kept.
    const r0 = process.hrtime.bigint();
    await runBatch({ redis, keys: new Keys(''), tags: config.tags, odsDir: ods, asOf });
    const rerunS = Number(process.hrtime.bigint() - r0) / 1e9;

    const d0 = process.hrtime.bigint();
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const reader = await conn.runAndReadAll(DUCKDB_SQL(`${ods}/dt=*/*.ndjson`, asOf));
    const rows = reader.getRowObjects();
    const duckdbS = Number(process.hrtime.bigint() - d0) / 1e9;

    // The load step alone: the table DuckDB computes from the printed query, written as NDJSON,
    // published with profile batch load; against redis-benchmark HSET, 64 per pipeline, same server.
    const table = path.join(work, 'offline.ndjson');
    const printed = offlineTagsSql(config.tags, { odsDir: ods, asOf, erasures: new Map() }).replace(/^--[^\n]*\n/gm, '');
    await conn.run(`COPY (${printed}) TO '${table}' (FORMAT JSON)`);
    const l0 = process.hrtime.bigint();
    const loaded = await loadOfflineTable({ redis, keys: new Keys('load:'), tags: config.tags, file: table });
    const loadS = Number(process.hrtime.bigint() - l0) / 1e9;
    const hsetPerS = hsetBenchmark(server.port, loaded.users_written);
    conn.closeSync();

    // Same answers? Compare segments and purchase counts of up to 2,000 users.
    let mismatches = 0;
    for (const row of rows.slice(0, 2000)) {
      const off = await redis.hmget(`u:{${String(row.user_id)}}:off`, 'segment_id', 'purchases_total');
      if (off[0] !== row.segment_id || Number(off[1]) !== Number(row.purchases_total)) mismatches++;
    }
    return {
      batch_events: summary.events,
      batch_lines: summary.lines,
      batch_duplicates: summary.duplicates,
      batch_users: summary.users_written,
      ods_bytes: summary.bytes,
      generate_s: generateS,
      batch_s: Number(batchS.toFixed(2)),
      batch_events_per_s: Math.round(summary.lines / batchS),
      duckdb_s: Number(duckdbS.toFixed(2)),
      duckdb_events_per_s: Math.round(summary.lines / duckdbS),
      duckdb_users: rows.length,
      batch_over_duckdb: Number((batchS / duckdbS).toFixed(2)),
      batch_rerun_s: Number(rerunS.toFixed(2)),
      batch_rerun_over_duckdb: Number((rerunS / duckdbS).toFixed(2)),
      batch_checked_users: Math.min(rows.length, 2000),
      batch_mismatches: mismatches,
      load_users_per_s: Math.round(loaded.users_written / loadS),
      redis_hset_pipelined_per_s: hsetPerS,
      load_over_hset: Number((loaded.users_written / loadS / hsetPerS).toFixed(3)),
    };
  } finally {
    await redis.quit();
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** `[events] [users] [days]` of an ODS bench's command line (default: the bench's 2M-event, 30-day ODS). */
export function odsBenchArgs(): [events: number, users: number, days: number] {
  const [events, users, days] = [2_000_000, 100_000, 30].map((d, i) => Number(process.argv[2 + i] ?? d));
  return [events, users, days];
}

async function main() {
  const [events, users, days] = odsBenchArgs();
  console.log(JSON.stringify({ ...(await measureBatch(events, users, days)), cores: os.cpus().length, node: process.version }));
}

if (require.main === module) runMain(main);
