import fs from 'fs';
import readline from 'readline';
import type { RedisClient } from '../redis/client';
import { ID_PATTERN, parseIsoTime } from '../core/event';
import { Keys } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { SEGMENT_TAG, TagConfig } from '../core/tags';
import { ConfigError } from '../core/errors';
import { OfflineProfileWriter, OfflineValues, offlineProfileSchema, writeChunks } from './store';
import { newRunId, runUnderBatchLock } from './registry';
import { sqlString } from '../ods/sql';

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
  /** Rows of a user an earlier row of the file already had (the last row wins; users_written counts the user once). */
  duplicate_rows: number;
  /** The first users with more than one row (at most 100). */
  duplicate_users: string[];
  seconds: number;
}

const WRITE_CHUNK = 1000;

/** A decimal number as text (what DECIMAL, BIGINT and HUGEINT columns are read as, to stay exact). */
const NUMBER_TEXT = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/** One offline tag value as written to Redis: a number, or exact decimal text; else why not. */
function offlineValue(key: string, value: unknown, time: boolean): number | string | { error: string } {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { error: `${key} must be a finite number` };
    // JSON.parse has already rounded such an integer: refuse it rather than store a wrong value.
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return {
        error: `${key} ${value} is an integer above 2^53 that a JSON number cannot carry exactly: write it as a string ("${BigInt(value)}" is what was read)`,
      };
    return value;
  }
  if (typeof value === 'string') {
    if (NUMBER_TEXT.test(value) && value.length <= 64) return value;
    if (time && Number.isFinite(parseIsoTime(value))) return parseIsoTime(value);
  }
  return { error: `${key} must be a number${time ? ' (epoch ms) or an ISO-8601 time' : ''}` };
}

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
      continue;
    }
    const tag = tags.offline.find((t) => t.name === key);
    if (!tag) return `unknown column "${key.slice(0, 64)}"`;
    const v = offlineValue(key, value, tag.aggregation === 'first_seen' || tag.aggregation === 'last_seen');
    if (typeof v === 'object') return v.error;
    values[key] = v;
  }
  return [r.user_id, values];
}

/**
 * A Parquet column as the loader reads it: ids and segments as text; DECIMAL and 64/128-bit
 * integers as exact decimal text; timestamps and dates as epoch ms; other numbers as they
 * are. Any other type is refused by name before anything is written.
 */
function parquetColumnSql(name: string, type: string): string {
  const col = `"${name.replace(/"/g, '""')}"`;
  const t = type.toUpperCase();
  if (name === 'user_id' || name === SEGMENT_TAG) return `CAST(${col} AS VARCHAR) AS ${col}`;
  if (/^(DECIMAL|NUMERIC|BIGINT|HUGEINT|UBIGINT|UHUGEINT)/.test(t)) return `CAST(${col} AS VARCHAR) AS ${col}`;
  if (/^(TIMESTAMP|DATE)/.test(t)) return `epoch_ms(CAST(${col} AS TIMESTAMPTZ)) AS ${col}`;
  if (/^(TINYINT|SMALLINT|INTEGER|UTINYINT|USMALLINT|UINTEGER|FLOAT|DOUBLE|REAL)$/.test(t)) return col;
  throw new ConfigError(
    `column ${name} is of type ${type}: an offline tag column must be a number (integer, DECIMAL, FLOAT, DOUBLE) or a TIMESTAMP/DATE, user_id and segment_id text`,
  );
}

/**
 * The rows of the file, one at a time: NDJSON read line by line, Parquet streamed through
 * DuckDB a chunk (at most 2,048 rows) at a time, so memory is bounded by a chunk, not the file.
 */
async function* tableRows(file: string): AsyncGenerator<unknown> {
  if (file.endsWith('.parquet')) {
    // Parquet needs a columnar reader: DuckDB, loaded only for such files.
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const source = `read_parquet(${sqlString(file)})`;
      const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects();
      const select = described.map((c) => parquetColumnSql(String(c.column_name), String(c.column_type))).join(', ');
      const result = await conn.stream(`SELECT ${select} FROM ${source}`);
      const names = result.columnNames();
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        for (const row of chunk.getRowObjects(names)) yield row;
      }
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
      // The summary lists them (CLI, API): a log line each would say it twice.
      if (summary.bad_rows <= 20) log.debug({ row: summary.rows, reason: parsed }, 'bad row skipped');
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
    const summary: LoadSummary = {
      run_id: runId,
      file: opts.file,
      rows: 0,
      users_written: 0,
      bad_rows: 0,
      bad_row_samples: [],
      duplicate_rows: 0,
      duplicate_users: [],
      seconds: 0,
    };
    const writer = new OfflineProfileWriter(redis, keys, offlineProfileSchema(keys, opts.tags.offline), runId, Date.now());
    try {
      await writeChunks(
        validChunks(opts.file, opts.tags, summary, log),
        (chunk) => writer.write(chunk),
        (n, again) => {
          // A user this run had written already (an earlier row): the last row wins, counted once.
          summary.users_written += n - again.length;
          summary.duplicate_rows += again.length;
          for (const userId of again)
            if (summary.duplicate_users.length < 100 && !summary.duplicate_users.includes(userId)) summary.duplicate_users.push(userId);
          opts.progress?.(summary.rows);
        },
      );
    } finally {
      writer.close();
    }
    if (summary.duplicate_rows > 0)
      log.warn(
        { duplicate_rows: summary.duplicate_rows, users: summary.duplicate_users.slice(0, 10) },
        'users with more than one row: the last row of each was kept',
      );
    log.info({ ...summary, bad_row_samples: undefined, duplicate_users: undefined }, 'offline table loaded');
    return summary;
  });
}
