import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { TagConfig } from '../core/tags';
import { tagConfigVersion } from '../core/tagConfig';
import { ConfigChange, planTagChange } from '../core/configChange';
import { activeTagConfig } from '../redis/tagConfigs';
import { listOdsFiles, odsDate } from '../ods/files';
import { lastRunId, readRun } from './registry';

const DAY_MS = 86_400_000;

/** What `profile tags plan` prints: the changes from the active config to a new one, and what they need. */
export interface TagChangePlan {
  /** The config compared with: the active one in Redis, or (none recorded yet) the one given as the current. */
  from: { version: string; source: string; active: boolean; since?: number };
  to: { version: string; source: string };
  changes: ConfigChange[];
  /** When some realtime tag needs a backfill: the ODS it reads. */
  backfill: {
    /** How far back the events must be replayed (ms): the longest window among the tags needing one. */
    span_ms: number;
    /** The ODS date partitions that span covers (`YYYY-MM-DD`, UTC), and what the ODS holds of them. */
    from_date: string;
    to_date: string;
    days_needed: number;
    days_in_ods: number;
    files: number;
    bytes: number;
    /** At the newest `profile batch` run's rate (bytes of ODS a second); null when no run has finished. */
    seconds_estimate: number | null;
    rate_bytes_per_s: number | null;
  } | null;
  /** Offline tags or segments change: a `profile batch` run computes them. */
  batch_needed: boolean;
}

/** The newest finished batch run's rate over the ODS (bytes a second), or null. */
async function batchRate(redis: RedisClient, keys: Keys): Promise<number | null> {
  const id = await lastRunId(redis, keys).catch(() => null);
  const run = id ? await readRun(redis, keys, id).catch(() => null) : null;
  const s = run?.summary as { bytes?: number; seconds?: number } | undefined;
  return s && s.bytes && s.seconds ? s.bytes / s.seconds : null;
}

/**
 * The plan of changing the active tag config (in Redis; `current` when none is recorded
 * yet) to `next`: changes nothing.
 */
export async function planTagConfigChange(
  redis: RedisClient,
  keys: Keys,
  next: TagConfig,
  current: TagConfig,
  odsDir: string,
  now = Date.now(),
): Promise<TagChangePlan> {
  const active = await activeTagConfig(redis, keys);
  const base = active?.config ?? current;
  const changes = planTagChange(base, next);
  const span = Math.max(0, ...changes.map((c) => c.backfillMs ?? 0));
  let backfill: TagChangePlan['backfill'] = null;
  if (span > 0) {
    const fromDate = odsDate(now - span);
    const toDate = odsDate(now);
    const files = listOdsFiles(odsDir, fromDate, toDate);
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    const rate = await batchRate(redis, keys);
    backfill = {
      span_ms: span,
      from_date: fromDate,
      to_date: toDate,
      days_needed: Math.round((Date.parse(toDate) - Date.parse(fromDate)) / DAY_MS) + 1,
      days_in_ods: new Set(files.map((f) => f.date)).size,
      files: files.length,
      bytes,
      seconds_estimate: rate ? Number((bytes / rate).toFixed(1)) : null,
      rate_bytes_per_s: rate ? Math.round(rate) : null,
    };
  }
  return {
    from: active
      ? { version: active.version, source: active.config.source, active: true, since: active.since }
      : { version: tagConfigVersion(current), source: current.source, active: false },
    to: { version: tagConfigVersion(next), source: next.source },
    changes,
    backfill,
    batch_needed: changes.some((c) => c.effect === 'batch'),
  };
}
