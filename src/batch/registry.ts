import { randomBytes } from 'crypto';
import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { Scripts, runScript } from '../lua/scripts';
import { BatchBusyError } from '../core/errors';

/**
 * Batch runs: the lock that lets one run at a time write the offline hashes, and the run
 * registry (`batch:run:<id>` hashes and the `batch:runs` index) that `GET /batch/:id`,
 * the dashboard and `profile verify` read. Every lock change for a run goes through here.
 */

/** The lock expires this long after its last renewal, so a dead run frees it. */
const LOCK_TTL_MS = 60_000;
/** A run's registry hash is kept this long. */
const RUN_TTL_S = 7 * 86_400;
/** How many runs the `batch:runs` index keeps. */
const RUNS_KEPT = 100;

/** A batch run's id, as newRunId makes them: start time (UTC) and 6 hex digits. */
export const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/** A new run id: UTC time plus randomness, never request data. */
export function newRunId(now = Date.now()): string {
  return `${new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Takes the batch lock for `runId`. Resolves false (and takes nothing) when another run
 * holds it; true when it is now ours (or already was).
 */
export async function acquireBatchLock(redis: RedisClient, keys: Keys, runId: string): Promise<boolean> {
  if ((await redis.set(keys.batchLock(), runId, 'PX', LOCK_TTL_MS, 'NX')) === 'OK') return true;
  return renewBatchLock(redis, keys, runId);
}

/** Extends the lock by LOCK_TTL_MS if `runId` still holds it; false when it does not. */
export async function renewBatchLock(redis: RedisClient, keys: Keys, runId: string): Promise<boolean> {
  return (await runScript(redis, Scripts.casLock(keys.batchLock(), runId, LOCK_TTL_MS))) === 1;
}

/** Releases the lock if `runId` holds it (a lock taken over by another run is left alone). */
export async function releaseBatchLock(redis: RedisClient, keys: Keys, runId: string): Promise<boolean> {
  return (await runScript(redis, Scripts.casLock(keys.batchLock(), runId, 0))) === 1;
}

/**
 * Keeps renewing the lock of a running run (every third of its TTL) until the returned
 * function is called. A failed renewal is retried at the next tick.
 */
export function keepBatchLock(redis: RedisClient, keys: Keys, runId: string): () => void {
  const timer = setInterval(() => void renewBatchLock(redis, keys, runId).catch(() => undefined), LOCK_TTL_MS / 3);
  return () => clearInterval(timer);
}

/** The run id holding the lock, or null. */
export function batchLockHolder(redis: RedisClient, keys: Keys): Promise<string | null> {
  return redis.get(keys.batchLock());
}

/** Records a run's state in its registry hash. */
export async function recordRun(redis: RedisClient, keys: Keys, runId: string, fields: Record<string, string | number>): Promise<void> {
  await redis.multi().hset(keys.batchRun(runId), fields).expire(keys.batchRun(runId), RUN_TTL_S).exec();
  if (fields.started_at !== undefined) {
    // The index of recent runs (its own key: another slot on a cluster, so not in the MULTI).
    await redis.zadd(keys.batchRuns(), Number(fields.started_at), runId);
    await redis.zremrangebyrank(keys.batchRuns(), 0, -(RUNS_KEPT + 1));
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
 * Runs `work` as batch run `runId`: takes the lock (BatchBusyError when another run holds
 * it) and keeps it, records the run as running with `fields`, then as succeeded with the
 * summary `work` returns (stamped with its seconds) or as failed with the error, and
 * releases the lock whatever happens.
 */
export async function runUnderBatchLock<S extends { seconds: number }>(
  redis: RedisClient,
  keys: Keys,
  runId: string,
  fields: Record<string, string | number>,
  work: () => Promise<S>,
): Promise<S> {
  const started = Date.now();
  if (!(await acquireBatchLock(redis, keys, runId))) throw new BatchBusyError((await batchLockHolder(redis, keys)) ?? 'unknown');
  const stopRenewing = keepBatchLock(redis, keys, runId);
  try {
    await recordRun(redis, keys, runId, { state: 'running', started_at: started, ...fields });
    const summary = await work();
    summary.seconds = (Date.now() - started) / 1000;
    await recordRun(redis, keys, runId, { state: 'succeeded', finished_at: Date.now(), summary: JSON.stringify(summary) });
    return summary;
  } catch (err) {
    await recordRun(redis, keys, runId, { state: 'failed', finished_at: Date.now(), error: (err as Error).message }).catch(() => undefined);
    throw err;
  } finally {
    stopRenewing();
    await releaseBatchLock(redis, keys, runId).catch(() => undefined);
  }
}
