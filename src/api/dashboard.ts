import { TagConfigStatus, tagConfigStatus } from '../redis/tagConfigs';
import fs from 'fs';
import path from 'path';
import { Keys } from '../core/keys';
import { listOdsFiles } from '../ods/files';
import { RedisClient } from '../redis/client';
import { streamStatus } from '../redis/streamGroups';
import { Trigger } from '../core/tags';
import { FiringSummary, recentFirings } from '../profile/triggers';
import { lastRunId, readRun } from '../batch/registry';

/** The dashboard page: one self-contained HTML file (no CDN, no build step), read once. */
let page: string | undefined;
export function dashboardPage(): string {
  page ??= fs.readFileSync(path.join(__dirname, 'dashboard.html'), 'utf8');
  return page;
}

const MINUTE = 60_000;

/**
 * Counts the users of the events this API instance accepted, per minute, for the
 * dashboard's "most active users" (the last 5 minutes). In memory only: no Redis work on
 * the ingest path; each minute keeps at most 10,000 users.
 */
export class ActivityTracker {
  private readonly minutes = new Map<number, Map<string, number>>();

  constructor(private readonly clock: () => number = Date.now) {}

  record(userIds: Iterable<string>): void {
    const minute = Math.floor(this.clock() / MINUTE);
    let counts = this.minutes.get(minute);
    if (!counts) {
      this.minutes.set(minute, (counts = new Map()));
      for (const m of this.minutes.keys()) if (m < minute - 5) this.minutes.delete(m);
    }
    for (const u of userIds) {
      const n = counts.get(u);
      if (n !== undefined) counts.set(u, n + 1);
      else if (counts.size < 10_000) counts.set(u, 1);
    }
  }

  /** The `n` users with the most events in the last 5 minutes. */
  top(n: number): { user_id: string; events: number }[] {
    const now = Math.floor(this.clock() / MINUTE);
    const total = new Map<string, number>();
    for (const [m, counts] of this.minutes) {
      if (m <= now - 5) continue;
      for (const [u, c] of counts) total.set(u, (total.get(u) ?? 0) + c);
    }
    return [...total]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, n)
      .map(([user_id, events]) => ({ user_id, events }));
  }
}

export interface DashboardStats {
  at: number;
  /** Per partition: entries ever added, length, and per group entries read, lag, pending, consumers. */
  partitions: Awaited<ReturnType<typeof streamStatus>>;
  /** Per partition: the realtime lag (ms; null: not known), as reads answer it in meta.lag_ms. */
  realtime_lag_ms: (number | null)[];
  dead_letters: number;
  ods: { files: number; bytes: number } | null;
  last_batch: Record<string, unknown> | null;
  top_users: { user_id: string; events: number }[];
  /** Per configured trigger: its newest firings (up to 5, among the newest 20 of each partition). */
  triggers: { name: string; recent: FiringSummary[] }[];
  /** The active tag config version and the running processes with the version each runs. */
  tag_config: TagConfigStatus;
}

/** Everything the pipeline view shows, in one call; rates are derived by the page from successive calls. */
export async function dashboardStats(
  redis: RedisClient,
  keys: Keys,
  partitions: number,
  activity: ActivityTracker,
  odsDir?: string,
  triggers: readonly Trigger[] = [],
  lags: (number | null)[] = [],
): Promise<DashboardStats> {
  const [parts, dead, runId, firings, tagConfig] = await Promise.all([
    streamStatus(redis, keys, partitions),
    redis.xlen(keys.deadLetters()),
    lastRunId(redis, keys),
    triggers.length > 0 ? recentFirings(redis, keys, partitions) : Promise.resolve([]),
    tagConfigStatus(redis, keys),
  ]);
  const lastBatch = runId ? await readRun(redis, keys, runId) : null;
  if (lastBatch?.summary) {
    // The page shows four figures of the summary; the rest (bad-line samples) stays out of every poll.
    const s = lastBatch.summary as Record<string, unknown>;
    lastBatch.summary = { events: s.events, users_written: s.users_written, bad_lines: s.bad_lines, seconds: s.seconds };
  }
  const files = odsDir ? listOdsFiles(odsDir) : null;
  return {
    at: Date.now(),
    partitions: parts,
    realtime_lag_ms: parts.map((p) => lags[p.partition] ?? null),
    dead_letters: dead,
    ods: files ? { files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) } : null,
    last_batch: lastBatch,
    top_users: activity.top(10),
    triggers: triggers.map((t) => ({ name: t.name, recent: firings.filter((f) => f.trigger === t.name).slice(0, 5) })),
    tag_config: tagConfig,
  };
}
