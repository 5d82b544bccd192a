import fs from 'fs';
import os from 'os';
import path from 'path';
import type { RedisClient, RedisTarget } from '../redis/client';
import { ProfileEvent } from '../core/event';
import { Keys, partitionFor } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { OdsFile, listOdsFiles } from '../ods/files';
import { TagConfig, longestWindow } from '../core/tags';
import { OfflineAggregator, OfflineValues } from './offline';
import { BadLine, readOds } from './reader';
import { OfflineProfileStore, OfflineProfileWriter, offlineProfileSchema, saveWindowResults, chunksOf, writeChunks } from './store';
import { allErasures, isErased } from '../profile/erasure';
import { WindowValue, computeWindowTags } from './windows';
import { computeOffline } from './engine';
import { newRunId, runUnderBatchLock } from './registry';

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

const WRITE_CHUNK = 1000;

/** One user's state while a source is replayed. */
interface UserReplay {
  state: ReturnType<OfflineAggregator['newState']>;
  events: number;
  /** Events inside the longest window before `asOf` (for --windows). */
  recent: ProfileEvent[];
}

/** What every source of one run shares. */
interface RunContext {
  opts: BatchOptions;
  runId: string;
  summary: BatchSummary;
  aggregator: OfflineAggregator;
  erasures: Map<string, number>;
  windowSpan: number;
  batchAt: number;
  store: OfflineProfileStore;
  onBadLine: (bad: BadLine) => void;
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
  return runUnderBatchLock(redis, keys, runId, { as_of: opts.asOf, windows: opts.windows ? 1 : 0 }, async () => {
    let store: OfflineProfileStore | undefined;
    let splitDir: string | undefined;
    try {
      const files = listOdsFiles(opts.odsDir, opts.from, opts.to);
      const summary = newSummary(runId, opts.asOf, files);
      const onBadLine = (bad: BadLine) => {
        summary.bad_lines++;
        if (summary.bad_line_samples.length < 100) summary.bad_line_samples.push(bad);
        if (summary.bad_lines <= 20) log.warn(bad, 'bad ODS line skipped');
      };
      splitDir = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'profile-batch-'));
      const erasures = await allErasures(redis, keys);
      if (!opts.windows) {
        // Compute on DuckDB, then load: the tags of every user in one query (see engine.ts).
        await computeAndPublish(opts, { runId, summary, files, erasures, tmpDir: splitDir, onBadLine });
        log.info({ ...summary, seconds: (Date.now() - started) / 1000, bad_line_samples: undefined }, 'batch run finished');
        return summary;
      }
      // --windows: the JS replay, which also computes the window tags for profile verify.
      store = await OfflineProfileStore.connect(opts.target, keys, opts.tags.offline);
      let sources: OdsFile[][] = [files];
      const splitBytes = opts.splitBytes ?? 256 * 1024 * 1024;
      if (summary.bytes > splitBytes) {
        sources = await splitByUser(files, Math.ceil(summary.bytes / splitBytes), splitDir, summary, onBadLine, opts.progress);
        summary.splits = sources.length;
      }
      const ctx: RunContext = {
        opts, runId, summary, store, onBadLine,
        aggregator: new OfflineAggregator(opts.tags.offline, opts.tags.segments, opts.asOf),
        erasures,
        windowSpan: longestWindow(opts.tags.realtime),
        batchAt: Date.now(),
      };
      for (const [i, source] of sources.entries()) {
        const phase = sources.length > 1 ? `aggregate ${i + 1}/${sources.length}` : 'read';
        await publishUsers(ctx, await aggregateSource(ctx, source, phase, sources.length === 1));
      }
      await redis.set(keys.batchWindowsRun(), runId);
      log.info({ ...summary, seconds: (Date.now() - started) / 1000, bad_line_samples: undefined }, 'batch run finished');
      return summary;
    } finally {
      await store?.close().catch(() => undefined);
      if (splitDir) fs.rmSync(splitDir, { recursive: true, force: true });
    }
  });
}

/** The DuckDB path: compute every user's offline values, then write them a chunk at a time, a few chunks in flight. */
async function computeAndPublish(
  opts: BatchOptions,
  run: { runId: string; summary: BatchSummary; files: OdsFile[]; erasures: Map<string, number>; tmpDir: string; onBadLine: (b: BadLine) => void },
): Promise<void> {
  const { summary } = run;
  opts.progress?.('aggregate', 0, summary.bytes);
  const computed = await computeOffline({ files: run.files, tags: opts.tags, asOf: opts.asOf, erasures: run.erasures, tmpDir: run.tmpDir, onBadLine: run.onBadLine });
  opts.progress?.('aggregate', summary.bytes, summary.bytes);
  summary.lines = computed.lines;
  summary.events = computed.events;
  summary.duplicates = computed.duplicates;
  summary.events_after_as_of = computed.events_after_as_of;
  summary.erased_events = computed.erased_events;
  const batchAt = Date.now();
  const writer = new OfflineProfileWriter(opts.redis, opts.keys, offlineProfileSchema(opts.keys, opts.tags.offline), run.runId, batchAt);
  try {
    await writeChunks(chunksOf(computed.users), (chunk) => writer.write(chunk), (n) => {
      summary.users_written += n;
      opts.progress?.('write', summary.users_written, computed.users.length);
    });
  } finally {
    writer.close();
  }
}

function newSummary(runId: string, asOf: number, files: OdsFile[]): BatchSummary {
  return {
    run_id: runId, as_of: asOf, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0), lines: 0, events: 0,
    duplicates: 0, bad_lines: 0, bad_line_samples: [], events_after_as_of: 0, erased_events: 0, users_written: 0,
    window_users_written: 0, splits: 1, seconds: 0,
  };
}

/**
 * Reads one source (all the ODS, or one split of it by user) and folds its events into
 * per-user state: erased events and duplicates by (user, type, event id) are skipped.
 */
async function aggregateSource(ctx: RunContext, source: OdsFile[], phase: string, countLines: boolean): Promise<Map<string, UserReplay>> {
  const { opts, summary, aggregator, erasures, windowSpan } = ctx;
  const seen = new Set<string>();
  const users = new Map<string, UserReplay>();
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
    onBadLine: ctx.onBadLine,
    onBytes: (n) => opts.progress?.(phase, n, total),
  });
  if (countLines) summary.lines = lines;
  return users;
}

/** Writes the offline tags (and --windows results) of a source's users, WRITE_CHUNK users at a time. */
async function publishUsers(ctx: RunContext, users: Map<string, UserReplay>): Promise<void> {
  const { opts, summary, store, runId } = ctx;
  const offline: [string, OfflineValues][] = [];
  const windows: [string, Record<string, WindowValue>][] = [];
  const flush = async () => {
    await store.saveMany(offline.splice(0), runId, ctx.batchAt);
    if (windows.length > 0) await saveWindowResults(opts.redis, opts.keys, windows.splice(0), runId, opts.asOf);
  };
  for (const [userId, user] of users) {
    if (user.events === 0) continue; // only events after the as-of time
    offline.push([userId, ctx.aggregator.values(user.state)]);
    summary.users_written++;
    if (opts.windows && user.recent.length > 0) {
      windows.push([userId, computeWindowTags(user.recent, opts.tags.realtime, opts.asOf)]);
      summary.window_users_written++;
    }
    if (offline.length >= WRITE_CHUNK) await flush();
  }
  await flush();
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
