/**
 * `profile training-set` against DuckDB running the command's printed SQL by itself, in the same run.
 *   node dist/bench/trainingSet.js [events=2000000] [users=100000] [spine=1000000]
 * Generates the batch benchmark's ODS (30 days), samples a spine of `spine` (user, time)
 * points from its events (user_id, ts, the event's id and a label) into Parquet, starts a private redis-server (the command
 * reads the erasures from it), then times, alternating:
 *   - command: `profile training-set --spine spine.parquet --out train.parquet` as a process
 *     (start-up, Redis, the ODS check, the query, the Parquet written); its first run checks
 *     every ODS file, the next one finds them in the check cache;
 *   - duckdb: a process that runs `COPY (<the --print-sql output>) TO 'direct.parquet'`.
 * Prints JSON: seconds of each, rows per second, and the command's time over DuckDB's.
 */
import { execFileSync, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { generateOds } from './batch';
import { runMain, withScratchRedis } from './scratchRedis';

const CLI = path.join(__dirname, '..', 'cli.js');

/** Seconds a process takes from spawn to exit (it must exit 0). */
function timed(args: string[], env: Record<string, string> = {}): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

export async function measureTrainingSet(events: number, users: number, spineRows: number): Promise<Record<string, number>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-training-'));
  const ods = path.join(work, 'ods');
  const spine = path.join(work, 'spine.parquet');
  const asOf = Date.UTC(2026, 10, 26);
  try {
    await generateOds(ods, events, users, 30, asOf);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`COPY (
      SELECT user_id, ts, event_id AS request_id, CAST(hash(event_id) % 20 = 0 AS INTEGER) AS label
      FROM read_ndjson('${ods}/dt=*/*.ndjson', columns = {event_id: 'VARCHAR', user_id: 'VARCHAR', ts: 'BIGINT'})
      USING SAMPLE reservoir(${spineRows} ROWS) REPEATABLE (42)
    ) TO '${spine}' (FORMAT parquet)`);
    const rows = Number((await conn.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${spine}')`)).getRowObjects()[0].n);
    conn.closeSync();
    return await withScratchRedis('training', async (_redis, url) => {
      const env = { REDIS_URL: url, ODS_DIR: ods, LOG_LEVEL: 'warn' };
      const sqlFile = path.join(work, 'training.sql');
      fs.writeFileSync(
        sqlFile,
        execFileSync(process.execPath, [CLI, 'training-set', '--spine', spine, '--print-sql'], {
          env: { ...process.env, ...env },
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        }),
      );
      const command = () => timed([CLI, 'training-set', '--spine', spine, '--out', path.join(work, 'train.parquet')], env);
      const duckdb = () => timed([__filename, '--run-sql', sqlFile, path.join(work, 'direct.parquet')]);
      // A B A B: the command's first run checks every ODS file; its second finds them in the check cache.
      const first = command();
      const direct = [duckdb()];
      const rerun = command();
      direct.push(duckdb());
      const duckdbS = median(direct);
      return {
        training_spine_rows: rows,
        training_ods_events: events,
        training_s: Number(first.toFixed(2)),
        training_rows_per_s: Math.round(rows / first),
        training_rerun_s: Number(rerun.toFixed(2)),
        training_duckdb_s: Number(duckdbS.toFixed(2)),
        training_duckdb_rows_per_s: Math.round(rows / duckdbS),
        training_over_duckdb: Number((first / duckdbS).toFixed(2)),
        training_rerun_over_duckdb: Number((rerun / duckdbS).toFixed(2)),
      };
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The DuckDB side: a fresh process, a fresh in-memory database, the printed SQL copied to Parquet. */
async function runSql(sqlFile: string, out: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`COPY (${fs.readFileSync(sqlFile, 'utf8')}) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`);
  conn.closeSync();
}

async function main() {
  if (process.argv[2] === '--run-sql') return runSql(process.argv[3], process.argv[4]);
  const [events, users, spine] = [2_000_000, 100_000, 1_000_000].map((d, i) => Number(process.argv[2 + i] ?? d));
  console.log(JSON.stringify({ ...(await measureTrainingSet(events, users, spine)), cores: os.cpus().length, node: process.version }));
}

if (require.main === module) runMain(main);
