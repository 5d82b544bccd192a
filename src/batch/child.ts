import type { RedisTarget } from '../redis/client';
import { connectTarget } from '../redis/client';
import { Keys } from '../core/keys';
import { createLogger } from '../core/logger';
import { parseTagConfig } from '../core/tagConfig';
import { BatchRequest, runBatch } from './run';

/**
 * The batch process that `POST /batch` starts (see BatchLauncher): a run never blocks the
 * API's event loop. Its settings come as one typed JSON object in an environment variable,
 * not as CLI flags, so renaming a flag cannot break it and the batch role's Redis password
 * never shows in the process list.
 */

/** Everything a launched run needs: where Redis and the ODS are, the tags, and the request. */
export interface BatchChildSettings extends BatchRequest {
  /** The Redis the batch writes (with ACLs: as the `batch` user). */
  target: RedisTarget;
  prefix: string;
  /** The tag config the API runs (its `document`: the active config, which may be no file of this host), and where it came from. */
  tags: unknown;
  tagsSource: string;
  odsDir: string;
  logLevel: string;
  /** The run id whose lock the launcher already holds. */
  runId: string;
}

/** The environment variable that carries the settings (JSON). */
export const BATCH_CHILD_SETTINGS_ENV = 'PROFILE_BATCH_CHILD_SETTINGS';

/** Runs the batch these settings describe; the run reports through its registry hash. */
export async function runBatchChild(settings: BatchChildSettings): Promise<void> {
  const logger = createLogger(settings.logLevel);
  const redis = await connectTarget(settings.target);
  try {
    await runBatch({
      redis,
      keys: new Keys(settings.prefix),
      tags: parseTagConfig(settings.tags, settings.tagsSource),
      odsDir: settings.odsDir,
      asOf: settings.asOf,
      from: settings.from,
      to: settings.to,
      windows: settings.windows,
      runId: settings.runId,
      logger,
    });
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

if (require.main === module) {
  const raw = process.env[BATCH_CHILD_SETTINGS_ENV];
  if (!raw) {
    process.stderr.write(`batch child: ${BATCH_CHILD_SETTINGS_ENV} is not set (this module is started by POST /batch)\n`);
    process.exit(2);
  }
  runBatchChild(JSON.parse(raw) as BatchChildSettings).catch((err: Error) => {
    process.stderr.write(`batch child: ${err.message}\n`);
    process.exit(1);
  });
}
