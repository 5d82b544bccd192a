import fs from 'fs';
import os from 'os';
import path from 'path';
import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { OdsFile, listOdsFiles } from '../ods/files';
import { TagConfig } from '../core/tags';
import { BadLine } from '../ods/readOds';
import { OfflineProfileWriter, offlineProfileSchema, saveWindowResults, chunksOf, writeChunks } from './store';
import { allErasures } from '../profile/erasure';
import { computeOffline } from './engine';
import { CheckedFiles } from '../ods/checkedFiles';
import { newRunId, runUnderBatchLock } from './registry';

/** What a batch run is asked to compute: the one shape the CLI, POST /batch, the launcher and its child pass on. */
export interface BatchRequest {
  /** Time (ms) the tags are computed as of; later events are ignored. */
  asOf: number;
  /** First and last ODS date (`YYYY-MM-DD`) to read; all when absent. */
  from?: string;
  to?: string;
  /** Also compute the realtime window tags as of `asOf` (for `profile verify`). */
  windows?: boolean;
}

export interface BatchOptions extends BatchRequest {
  /** ioredis connection (locks, run registry, offline hashes, window results). */
  redis: RedisClient;
  keys: Keys;
  tags: TagConfig;
  odsDir: string;
  /**
   * Write the offline hashes the API serves. False for a `--windows` check as of a past
   * time: a check must not replace what is served with older values. @defaultValue true
   */
  publishOffline?: boolean;
  /** Run id; a new one when absent. A caller that took the lock for this id (POST /batch) passes it. */
  runId?: string;
  /** Where DuckDB spills and checked copies of files with bad lines go. @defaultValue the OS temp dir */
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
  seconds: number;
}

/**
 * One batch run: computes on DuckDB (engine.ts) every user's offline tags and segment as of
 * `asOf` from the ODS, deduplicated by (user, type, event id), then replaces each user's
 * `u:{<user>}:off`; with `windows`, also every window tag into `u:{<user>}:wb` for
 * `profile verify`. Bad lines are reported, never fatal. Holds the batch lock throughout.
 */
export async function runBatch(opts: BatchOptions): Promise<BatchSummary> {
  const started = Date.now();
  const log = (opts.logger ?? silentLogger).child({ component: 'batch' });
  const { redis, keys } = opts;
  const runId = opts.runId ?? newRunId(started);
  return runUnderBatchLock(redis, keys, runId, { as_of: opts.asOf, windows: opts.windows ? 1 : 0 }, async () => {
    const tmpDir = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'profile-batch-'));
    try {
      const files = listOdsFiles(opts.odsDir, opts.from, opts.to);
      const summary = newSummary(runId, opts.asOf, files);
      const onBadLine = (bad: BadLine) => {
        summary.bad_lines++;
        if (summary.bad_line_samples.length < 100) summary.bad_line_samples.push(bad);
        if (summary.bad_lines <= 20) log.warn(bad, 'bad ODS line skipped');
      };
      const erasures = await allErasures(redis, keys);
      await computeAndPublish(opts, { runId, summary, files, erasures, tmpDir, onBadLine });
      log.info({ ...summary, seconds: (Date.now() - started) / 1000, bad_line_samples: undefined }, 'batch run finished');
      return summary;
    } finally {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
  });
}

/** Computes every user's offline values (and window tags), then writes them a chunk at a time, a few chunks in flight. */
async function computeAndPublish(
  opts: BatchOptions,
  run: { runId: string; summary: BatchSummary; files: OdsFile[]; erasures: Map<string, number>; tmpDir: string; onBadLine: (b: BadLine) => void },
): Promise<void> {
  const { summary } = run;
  opts.progress?.('aggregate', 0, summary.bytes);
  const checked = CheckedFiles.load(opts.odsDir);
  const computed = await computeOffline({
    files: run.files,
    tags: opts.tags,
    asOf: opts.asOf,
    erasures: run.erasures,
    tmpDir: run.tmpDir,
    onBadLine: run.onBadLine,
    windows: opts.windows,
    checked,
  });
  // A run over part of the ODS (--from/--to) keeps what it did not look at.
  checked.save(opts.from || opts.to ? undefined : run.files.map((f) => f.path));
  opts.progress?.('aggregate', summary.bytes, summary.bytes);
  summary.lines = computed.lines;
  summary.events = computed.events;
  summary.duplicates = computed.duplicates;
  summary.events_after_as_of = computed.events_after_as_of;
  summary.erased_events = computed.erased_events;
  if (opts.publishOffline !== false) {
    const writer = new OfflineProfileWriter(opts.redis, opts.keys, offlineProfileSchema(opts.keys, opts.tags.offline), run.runId, Date.now());
    try {
      await writeChunks(
        chunksOf(computed.users),
        (chunk) => writer.write(chunk),
        (n) => {
          summary.users_written += n;
          opts.progress?.('write', summary.users_written, computed.users.length);
        },
      );
    } finally {
      writer.close();
    }
  }
  if (opts.windows) {
    await writeChunks(
      chunksOf(computed.windowUsers),
      (chunk) => saveWindowResults(opts.redis, opts.keys, chunk, run.runId, opts.asOf),
      (n) => {
        summary.window_users_written += n;
      },
    );
    await opts.redis.set(opts.keys.batchWindowsRun(), run.runId);
  }
}

function newSummary(runId: string, asOf: number, files: OdsFile[]): BatchSummary {
  return {
    run_id: runId,
    as_of: asOf,
    files: files.length,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    lines: 0,
    events: 0,
    duplicates: 0,
    bad_lines: 0,
    bad_line_samples: [],
    events_after_as_of: 0,
    erased_events: 0,
    users_written: 0,
    window_users_written: 0,
    seconds: 0,
  };
}
