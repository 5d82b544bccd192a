import fs from 'fs';
import os from 'os';
import path from 'path';
import { randomBytes } from 'crypto';
import type { RedisClient, RedisTarget } from '../redis/client';
import { ProfileEvent } from '../core/event';
import { Keys, partitionFor } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { callScript } from '../lua/scripts';
import { OdsFile, listOdsFiles } from '../ods/files';
import { TagConfig, longestWindow } from '../core/tags';
import { OfflineAggregator, OfflineValues } from './offline';
import { BadLine, readOds } from './reader';
import { OfflineProfileStore, saveWindowResults } from './store';
import { allErasures, isErased } from '../profile/erasure';
import { WindowValue, computeWindowTags } from './windows';
import { BatchBusyError } from '../core/errors';

export interface BatchOptions {
  /** ioredis connection (locks, run registry, window results). */
  redis: RedisClient;
  /** The same Redis (URL or cluster nodes), for the redis-om writer. */
  target: RedisTarget;
  keys: Keys;
  tags: TagConfig;
  odsDir: string;
  /** Time (ms) the tags are computed as of; later events are ignored. */
  asOf: number;
  /** First and last ODS date (`YYYY-MM-DD`) to read; all when absent. */
  from?: string;
  to?: string;
  /** Also compute the realtime window tags as of `asOf` (for `profile verify`). */
  windows?: boolean;
  /** Run id; a new one when absent. A caller that took the lock for this id (POST /batch) passes it. */
  runId?: string;
  /**
   * Input above this many bytes is first split by user into files of about this size, so
   * memory holds one split's dedup set at a time. @defaultValue 256 MiB
   */
  splitBytes?: number;
  /** Where split files go. @defaultValue the OS temp dir */
  tmpDir?: string;
  logger?: Logger;
  /** Progress: bytes read of the bytes to read, in the current phase. */
  progress?: (phase: string, bytes: number, total: number) => void;
}

export interface BatchSummary {
  run_id: string;
  as_of: number;
  files: number;
  bytes: number;
  lines: number;
  events: number;
  duplicates: number;
  bad_lines: number;
  /** The first bad lines (at most 100), each with file and line number. */
  bad_line_samples: BadLine[];
  events_after_as_of: number;
  /** Events skipped because their user was erased after them. */
  erased_events: number;
  users_written: number;
  window_users_written: number;
  splits: number;
  seconds: number;
}

const LOCK_TTL_MS = 60_000;
const RUN_TTL_S = 7 * 86_400;
const WRITE_CHUNK = 1000;

/** A new run id: UTC time plus randomness, never request data. */
export function newRunId(now = Date.now()): string {
  return `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Takes the batch lock for `runId`. Resolves false (and takes nothing) when another run
 * holds it; true when it is now ours (or already was).
 */
export async function acquireBatchLock(redis: RedisClient, keys: Keys, runId: string): Promise<boolean> {
  if ((await redis.set(keys.batchLock(), runId, 'PX', LOCK_TTL_MS, 'NX')) === 'OK') return true;
  return (await callScript(redis, 'casLock', [keys.batchLock(), runId, LOCK_TTL_MS])) === 1;
}

/** Records a run's state in its registry hash. */
export async function recordRun(redis: RedisClient, keys: Keys, runId: string, fields: Record<string, string | number>): Promise<void> {
  await redis.multi().hset(keys.batchRun(runId), fields).expire(keys.batchRun(runId), RUN_TTL_S).exec();
  if (fields.started_at !== undefined) {
    // The index of recent runs (its own key: another slot on a cluster, so not in the MULTI).
    await redis.zadd(keys.batchRuns(), Number(fields.started_at), runId);
    await redis.zremrangebyrank(keys.batchRuns(), 0, -101);
  }
}

/** A run's registry hash (state, times, summary), or null for an unknown run id. */
export async function readRun(redis: RedisClient, keys: Keys, runId: string): Promise<Record<string, unknown> | null> {
  const hash = await redis.hgetall(keys.batchRun(runId));
  if (Object.keys(hash).length === 0) return null;
  const out: Record<string, unknown> = { run_id: runId, state: hash.state };
  for (const f of ['started_at', 'finished_at', 'as_of']) if (hash[f] !== undefined) out[f] = Number(hash[f]);
  if (hash.summary) out.summary = JSON.parse(hash.summary);
  if (hash.error) out.error = hash.error;
  return out;
}

/** The newest batch run's id, or null. */
export async function lastRunId(redis: RedisClient, keys: Keys): Promise<string | null> {
  const [id] = await redis.zrange(keys.batchRuns(), 0, 0, 'REV');
  return id ?? null;
}

/**
 * One batch run: replays the ODS, deduplicates by (user, type, event id), computes the
 * offline tags and segment of every user as of `asOf`, and replaces each user's
 * `u:{<user>}:off`. Bad lines are reported, never fatal. Holds the batch lock throughout.
 */
export async function runBatch(opts: BatchOptions): Promise<BatchSummary> {
  const started = Date.now();
  const log = (opts.logger ?? silentLogger).child({ component: 'batch' });
  const { redis, keys } = opts;
  const runId = opts.runId ?? newRunId(started);
  if (!(await acquireBatchLock(redis, keys, runId))) {
    throw new BatchBusyError((await redis.get(keys.batchLock())) ?? 'unknown');
  }
  const renew = setInterval(() => void callScript(redis, 'casLock', [keys.batchLock(), runId, LOCK_TTL_MS]).catch(() => undefined), LOCK_TTL_MS / 3);
  await recordRun(redis, keys, runId, { state: 'running', started_at: started, as_of: opts.asOf, windows: opts.windows ? 1 : 0 });
  let store: OfflineProfileStore | undefined;
  let splitDir: string | undefined;
  try {
    store = await OfflineProfileStore.connect(opts.target, keys, opts.tags.offline);
    const files = listOdsFiles(opts.odsDir, opts.from, opts.to);
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    const summary: BatchSummary = {
      run_id: runId, as_of: opts.asOf, files: files.length, bytes, lines: 0, events: 0, duplicates: 0, bad_lines: 0,
      bad_line_samples: [], events_after_as_of: 0, erased_events: 0, users_written: 0, window_users_written: 0, splits: 1, seconds: 0,
    };
    const onBadLine = (bad: BadLine) => {
      summary.bad_lines++;
      if (summary.bad_line_samples.length < 100) summary.bad_line_samples.push(bad);
      if (summary.bad_lines <= 20) log.warn(bad, 'bad ODS line skipped');
    };
    const splitBytes = opts.splitBytes ?? 256 * 1024 * 1024;
    let sources: OdsFile[][];
    if (bytes > splitBytes) {
      splitDir = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'profile-batch-'));
      sources = await splitByUser(files, Math.ceil(bytes / splitBytes), splitDir, summary, onBadLine, opts.progress);
      summary.splits = sources.length;
    } else {
      sources = [files];
    }
    const erasures = await allErasures(redis, keys);
    const aggregator = new OfflineAggregator(opts.tags.offline, opts.tags.segments, opts.asOf);
    const windowSpan = longestWindow(opts.tags.realtime);
    const batchAt = Date.now();
    for (const [i, source] of sources.entries()) {
      const seen = new Set<string>();
      const users = new Map<string, { state: ReturnType<OfflineAggregator['newState']>; events: number; recent: ProfileEvent[] }>();
      const total = source.reduce((n, f) => n + f.bytes, 0);
      const lines = await readOds(source, {
        onEvent: (e) => {
          if (isErased(erasures, e.user_id, e.ts)) {
            summary.erased_events++;
            return;
          }
          const key = `${e.user_id}\0${e.type}\0${e.event_id}`;
          if (seen.has(key)) {
            summary.duplicates++;
            return;
          }
          seen.add(key);
          let user = users.get(e.user_id);
          if (!user) users.set(e.user_id, (user = { state: aggregator.newState(), events: 0, recent: [] }));
          if (!aggregator.add(user.state, e)) {
            summary.events_after_as_of++;
            return;
          }
          summary.events++;
          user.events++;
          if (opts.windows && e.ts >= opts.asOf - windowSpan) user.recent.push(e);
        },
        onBadLine,
        onBytes: (n) => opts.progress?.(sources.length > 1 ? `aggregate ${i + 1}/${sources.length}` : 'read', n, total),
      });
      if (sources.length === 1) summary.lines = lines;
      seen.clear();
      const offline: [string, OfflineValues][] = [];
      const windows: [string, Record<string, WindowValue>][] = [];
      const flush = async () => {
        await store!.saveMany(offline.splice(0), runId, batchAt);
        if (windows.length > 0) await saveWindowResults(redis, keys, windows.splice(0), runId, opts.asOf);
      };
      for (const [userId, user] of users) {
        if (user.events === 0) continue; // only events after the as-of time
        const values = aggregator.values(user.state);
        offline.push([userId, values]);
        summary.users_written++;
        if (opts.windows && user.recent.length > 0) {
          windows.push([userId, computeWindowTags(user.recent, opts.tags.realtime, opts.asOf)]);
          summary.window_users_written++;
        }
        if (offline.length >= WRITE_CHUNK) await flush();
      }
      await flush();
    }
    if (opts.windows) await redis.set(keys.batchWindowsRun(), runId);
    summary.seconds = (Date.now() - started) / 1000;
    await recordRun(redis, keys, runId, { state: 'succeeded', finished_at: Date.now(), summary: JSON.stringify(summary) });
    log.info({ ...summary, bad_line_samples: undefined }, 'batch run finished');
    return summary;
  } catch (err) {
    await recordRun(redis, keys, runId, { state: 'failed', finished_at: Date.now(), error: (err as Error).message }).catch(() => undefined);
    throw err;
  } finally {
    clearInterval(renew);
    await callScript(redis, 'casLock', [keys.batchLock(), runId, 0]).catch(() => undefined);
    await store?.close().catch(() => undefined);
    if (splitDir) fs.rmSync(splitDir, { recursive: true, force: true });
  }
}

/**
 * Phase 1 for large inputs: reads the ODS once (reporting bad lines) and writes every
 * valid event to one of `n` split files by user, so each user's events land in one split.
 * Plain synchronous appends of 64 KiB buffers: simple, and they apply backpressure to the
 * reader by construction.
 */
async function splitByUser(
  files: OdsFile[], n: number, dir: string, summary: BatchSummary, onBadLine: (b: BadLine) => void,
  progress: BatchOptions['progress'],
): Promise<OdsFile[][]> {
  const total = files.reduce((s, f) => s + f.bytes, 0);
  const outs = Array.from({ length: n }, (_, i) => {
    const file = path.join(dir, `split-${i}.ndjson`);
    return { file, fd: fs.openSync(file, 'w'), buffer: '' };
  });
  try {
    summary.lines = await readOds(files, {
      onEvent: (e) => {
        const o = outs[partitionFor(e.user_id, n)];
        o.buffer += JSON.stringify(e) + '\n';
        if (o.buffer.length >= 65_536) {
          fs.writeSync(o.fd, o.buffer);
          o.buffer = '';
        }
      },
      onBadLine,
      onBytes: (b) => progress?.('split', b, total),
    });
    for (const o of outs) fs.writeSync(o.fd, o.buffer);
  } finally {
    for (const o of outs) fs.closeSync(o.fd);
  }
  return outs.map((o) => [{ path: o.file, date: '', bytes: fs.statSync(o.file).size }]);
}
