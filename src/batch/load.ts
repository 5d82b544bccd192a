import fs from 'fs';
import readline from 'readline';
import type { RedisClient } from '../redis/client';
import { ID_PATTERN } from '../core/event';
import { Keys } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { SEGMENT_TAG, TagConfig } from '../core/tags';
import { ConfigError } from '../core/errors';
import { OfflineProfileWriter, OfflineValues, offlineProfileSchema, writeChunks } from './store';
import { newRunId, runUnderBatchLock } from './registry';
import { sqlString } from './sql';

/**
 * `profile batch load <file>`: publishes an offline table computed anywhere (by
 * `profile batch --print-sql` run on DuckDB, Spark SQL or Trino) into the offline hashes,
 * with a batch run's lock, registry entry and replace-per-user writes.
 */

export interface LoadOptions {
  redis: RedisClient;
  keys: Keys;
  tags: TagConfig;
  /** NDJSON (one object a line) or Parquet (`.parquet`): `user_id`, offline tags, `segment_id`. */
  file: string;
  runId?: string;
  logger?: Logger;
  /** Progress: rows read so far. */
  progress?: (rows: number) => void;
}

export interface LoadSummary {
  run_id: string;
  file: string;
  rows: number;
  users_written: number;
  bad_rows: number;
  /** The first bad rows (at most 100): row number (1-based) and why. */
  bad_row_samples: { row: number; reason: string }[];
  seconds: number;
}

const WRITE_CHUNK = 1000;

/** Checks one row against the tag config; the user's values, or the reason it is refused. */
export function offlineRow(row: unknown, tags: TagConfig): [userId: string, values: OfflineValues] | string {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return 'not an object';
  const r = row as Record<string, unknown>;
  if (typeof r.user_id !== 'string' || !ID_PATTERN.test(r.user_id)) return 'user_id is missing or not a valid id';
  const values: OfflineValues = {};
  for (const [key, value] of Object.entries(r)) {
    if (key === 'user_id' || value === null || value === undefined) continue;
    if (key === SEGMENT_TAG) {
      if (!tags.segments.some((s) => s.id === value)) return `segment_id "${String(value).slice(0, 64)}" is not a configured segment`;
      values[key] = value as string;
    } else if (tags.offline.some((t) => t.name === key)) {
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) return `${key} must be a number`;
      values[key] = n;
    } else {
      return `unknown column "${key.slice(0, 64)}"`;
    }
  }
  return [r.user_id, values];
}

/** The rows of the file, one at a time: NDJSON read line by line, Parquet through DuckDB. */
async function* tableRows(file: string): AsyncGenerator<unknown> {
  if (file.endsWith('.parquet')) {
    // Parquet needs a columnar reader: DuckDB, loaded only for such files.
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const result = await conn.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(file)})`);
      for (const row of result.getRowObjects()) yield row;
    } finally {
      conn.closeSync();
    }
    return;
  }
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    try {
      yield JSON.parse(line);
    } catch {
      yield Symbol.for('unparsable');
    }
  }
}

/** The file's valid rows, WRITE_CHUNK at a time; bad rows are counted in `summary` and logged. */
async function* validChunks(file: string, tags: TagConfig, summary: LoadSummary, log: Logger): AsyncGenerator<[string, OfflineValues][]> {
  let chunk: [string, OfflineValues][] = [];
  for await (const row of tableRows(file)) {
    summary.rows++;
    const parsed = typeof row === 'symbol' ? 'not JSON' : offlineRow(row, tags);
    if (typeof parsed === 'string') {
      summary.bad_rows++;
      if (summary.bad_row_samples.length < 100) summary.bad_row_samples.push({ row: summary.rows, reason: parsed });
      if (summary.bad_rows <= 20) log.warn({ row: summary.rows, reason: parsed }, 'bad row skipped');
      continue;
    }
    chunk.push(parsed);
    if (chunk.length >= WRITE_CHUNK) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** Loads the table under the batch lock; bad rows are skipped and reported, never fatal. */
export async function loadOfflineTable(opts: LoadOptions): Promise<LoadSummary> {
  if (!fs.existsSync(opts.file)) throw new ConfigError(`no such file: ${opts.file}`);
  const started = Date.now();
  const log = (opts.logger ?? silentLogger).child({ component: 'batch-load' });
  const { redis, keys } = opts;
  const runId = opts.runId ?? newRunId(started);
  return runUnderBatchLock(redis, keys, runId, { source: opts.file }, async () => {
    const summary: LoadSummary = { run_id: runId, file: opts.file, rows: 0, users_written: 0, bad_rows: 0, bad_row_samples: [], seconds: 0 };
    const writer = new OfflineProfileWriter(redis, keys, offlineProfileSchema(keys, opts.tags.offline), runId, Date.now());
    try {
      await writeChunks(validChunks(opts.file, opts.tags, summary, log), (chunk) => writer.write(chunk), (n) => {
        summary.users_written += n;
        opts.progress?.(summary.rows);
      });
    } finally {
      writer.close();
    }
    log.info({ ...summary, bad_row_samples: undefined }, 'offline table loaded');
    return summary;
  });
}
