import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { TagConfig } from '../core/tags';
import { canonicalJson, tagConfigVersion } from '../core/tagConfig';
import { ConfigChange, planTagChange } from '../core/configChange';
import { ProcessRecord, activeTagConfig, runningProcesses } from '../redis/tagConfigs';
import { Scripts, runScript } from '../lua/scripts';
import { listOdsFiles } from '../ods/files';
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
    const fromDate = new Date(now - span).toISOString().slice(0, 10);
    const toDate = new Date(now).toISOString().slice(0, 10);
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

/** What `profile tags apply` did. */
export interface TagChangeApplied {
  plan: TagChangePlan;
  /** switched: the new config is active; same: it already was; refused: a change needs a backfill (nothing changed). */
  outcome: 'switched' | 'same' | 'refused';
  /** The realtime tags that need a backfill (refused, or switched with acceptPartial: they undercount until a window has passed). */
  partial: string[];
  /** After a switch: the running processes, and those that did not report the new version within the wait. */
  processes: ProcessRecord[];
  lagging: ProcessRecord[];
}

/**
 * Makes `next` the active tag config, as planned by planTagConfigChange: one compare-and-set
 * of the active version (so two applies at once cannot both switch, and a plan made against
 * another config is never applied), after which every running process switches at its next
 * check (within TAG_CONFIG_POLL_MS; a consumer between two batches, a read whole with one
 * config or the other). Refuses, changing nothing, when a realtime tag needs a backfill,
 * unless `acceptPartial` (those tags then count only the events whose state was kept, until
 * a full window has passed). Waits up to `waitMs` for the running processes to report the
 * new version.
 */
export async function applyTagConfigChange(
  redis: RedisClient,
  keys: Keys,
  next: TagConfig,
  current: TagConfig,
  odsDir: string,
  opts: { acceptPartial?: boolean; waitMs?: number } = {},
): Promise<TagChangeApplied> {
  const plan = await planTagConfigChange(redis, keys, next, current, odsDir);
  const partial = plan.changes.filter((c) => c.effect === 'backfill').map((c) => c.name);
  const none = { processes: [], lagging: [] };
  if (plan.from.active && plan.from.version === plan.to.version) return { plan, outcome: 'same', partial: [], ...none };
  if (partial.length > 0 && !opts.acceptPartial) return { plan, outcome: 'refused', partial, ...none };
  await redis.hsetnx(keys.tagConfigs(), `doc:${plan.to.version}`, canonicalJson(next.document));
  const switched = await runScript(redis, Scripts.switchTagConfig(keys.tagConfigs(), plan.from.active ? plan.from.version : '', plan.to.version, Date.now()));
  if (switched !== 1) throw new TagConfigChangedError(plan.from.active ? plan.from.version : null);
  // Every running process follows within a check or two.
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  let processes = await runningProcesses(redis, keys);
  while (processes.some((p) => p.version !== plan.to.version) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    processes = await runningProcesses(redis, keys);
  }
  return { plan, outcome: 'switched', partial, processes, lagging: processes.filter((p) => p.version !== plan.to.version) };
}

/** The active tag config changed between the plan and the switch (another apply ran): nothing was changed. */
export class TagConfigChangedError extends Error {
  constructor(planned: string | null) {
    super(`the active tag config is no longer ${planned ?? '(none)'}: another \`profile tags apply\` switched it meanwhile; nothing was changed (plan again)`);
    this.name = 'TagConfigChangedError';
  }
}
