import { spawn } from 'child_process';
import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { acquireBatchLock, newRunId, readRun, recordRun, releaseBatchLock } from './registry';
import { BATCH_CHILD_SETTINGS_ENV, BatchChildSettings } from './child';
import type { Metrics } from '../metrics/metrics';
import type { BatchRequest } from './run';

export type { BatchRequest };

export interface LauncherOptions {
  redis: RedisClient;
  keys: Keys;
  /** The child's Redis, prefix, tag config, ODS and log level: this process's own. */
  child: Omit<BatchChildSettings, 'runId' | keyof BatchRequest>;
  logger?: Logger;
  /** Counts ended runs by state and observes their duration. */
  metrics?: Metrics;
}

/**
 * Starts batch runs for the HTTP API in a child process (the `child` module beside this
 * one, given its settings as typed JSON), so
 * a long replay never blocks the API's event loop. The lock is taken here, before the
 * child starts, which makes a second POST /batch fail at once.
 */
export class BatchLauncher {
  private readonly log: Logger;

  constructor(private readonly opts: LauncherOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'batch-launcher' });
  }

  /** Resolves with the new run id, or null when a run is in progress. */
  async launch(req: BatchRequest): Promise<string | null> {
    const { redis, keys } = this.opts;
    const runId = newRunId();
    if (!(await acquireBatchLock(redis, keys, runId))) return null;
    await recordRun(redis, keys, runId, { state: 'queued', started_at: Date.now(), as_of: req.asOf });
    const settings: BatchChildSettings = { ...this.opts.child, runId, asOf: req.asOf, from: req.from, to: req.to, windows: req.windows };
    const child = spawn(process.execPath, [require.resolve('./child')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, [BATCH_CHILD_SETTINGS_ENV]: JSON.stringify(settings) },
    });
    child.on('error', (err) => void this.fail(runId, `cannot start the batch process: ${err.message}`));
    child.on('exit', (code, signal) => {
      const ended = code !== 0 ? this.fail(runId, `batch process exited with ${signal ?? `code ${code}`}`) : Promise.resolve();
      void ended.then(() => this.recordMetrics(runId));
    });
    this.log.info({ runId, pid: child.pid }, 'batch run started');
    return runId;
  }

  /** Counts an ended run by its recorded state and observes its duration. */
  private async recordMetrics(runId: string): Promise<void> {
    const metrics = this.opts.metrics;
    if (!metrics) return;
    try {
      const [state, started, finished] = await this.opts.redis.hmget(this.opts.keys.batchRun(runId), 'state', 'started_at', 'finished_at');
      metrics.batchRuns.inc({ state: state ?? 'unknown' });
      if (started && finished) metrics.batchRunSeconds.observe((Number(finished) - Number(started)) / 1000);
    } catch (err) {
      this.log.warn({ err, runId }, 'cannot read the run for metrics');
    }
  }

  /** Marks a run failed unless the child already recorded how it ended. */
  private fail(runId: string, error: string): Promise<void> {
    const { redis, keys } = this.opts;
    return (async () => {
      const state = await redis.hget(keys.batchRun(runId), 'state');
      if (state === 'queued' || state === 'running') {
        await recordRun(redis, keys, runId, { state: 'failed', finished_at: Date.now(), error });
        await releaseBatchLock(redis, keys, runId); // if still ours
      }
      this.log.error({ runId, error }, 'batch run failed');
    })().catch(() => undefined);
  }

  /** A run's registry hash (state, times, summary), or null for an unknown run id. */
  status(runId: string): Promise<Record<string, unknown> | null> {
    return readRun(this.opts.redis, this.opts.keys, runId);
  }
}
