import { RedisClient, masters } from '../redis/client';
import { Keys } from '../core/keys';
import { ProfileReader } from '../profile/reader';
import { WindowTag } from '../core/tags';
import { RUN_ID_FIELD } from './store';
import { WindowValue, sameWindowValue } from './windows';
import { NothingToVerifyError } from '../core/errors';

export interface Mismatch {
  user_id: string;
  tag: string;
  /** What the batch computed from the ODS (null: the user had no event in any window). */
  batch: WindowValue | null;
  /** What the live windows answer at the same time (null: unknown user). */
  live: WindowValue | null;
}

export interface VerifyResult {
  run_id: string;
  as_of: number;
  users_checked: number;
  /** Users with an event after the as-of time: their live windows have moved on, so they cannot be compared at it. */
  users_skipped_later_events: number;
  /** Users the batch counted whose live state has expired since (their newest event left every window): nothing to compare. */
  users_skipped_expired: number;
  mismatches: Mismatch[];
}

/** How long after its newest event a user's live state surely still exists (its keys expire a window plus a minute after it). */
const LIVE_STATE_SURELY_KEPT_MS = 60_000;

/** An empty window's value: 0, {} or null (min/max/last/avg), or no value at all. */
const isZero = (v: WindowValue | undefined) => v === undefined || v === null || v === 0 || (typeof v === 'object' && Object.keys(v).length === 0);

/** Collects every key matching `pattern` on every master (SCAN, so Redis is never blocked). */
async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

const userOf = (key: string) => key.slice(key.indexOf('{') + 1, key.lastIndexOf('}'));

/**
 * Compares the window tags of the newest `profile batch --windows` run with what the live
 * windows answer at that run's as-of time, for every user either side knows: users the
 * batch computed, and users with live realtime keys the batch did not see (whose tags
 * must then all be zero).
 */
export async function verifyWindows(redis: RedisClient, keys: Keys, tags: readonly WindowTag[], asOf?: number): Promise<VerifyResult> {
  const runId = await redis.get(keys.batchWindowsRun());
  if (!runId) throw new NothingToVerifyError('no `profile batch --windows` run to verify: run one first');
  const batch = new Map<string, Record<string, WindowValue>>();
  let runAsOf: number | undefined;
  for (const key of await scanKeys(redis, keys.userKeyPattern('wb'))) {
    const hash = await redis.hgetall(key);
    if (hash[RUN_ID_FIELD] !== runId) continue; // left over from an older run
    runAsOf = Number(hash._as_of);
    const values: Record<string, WindowValue> = {};
    for (const t of tags) if (hash[t.name] !== undefined) values[t.name] = JSON.parse(hash[t.name]) as WindowValue;
    batch.set(userOf(key), values);
  }
  if (runAsOf === undefined) {
    const run = await redis.hget(keys.batchRun(runId), 'as_of');
    runAsOf = Number(run);
  }
  if (asOf !== undefined && asOf !== runAsOf) {
    const iso = (t: number) => new Date(t).toISOString();
    throw new NothingToVerifyError(
      `the newest --windows run ${runId} is as of ${iso(runAsOf)}, not ${iso(asOf)}: run profile batch --windows --as-of ${iso(asOf)}`,
    );
  }
  const liveOnly = (await scanKeys(redis, keys.userKeyPattern('rt'))).map(userOf).filter((u) => !batch.has(u));
  const users = [...batch.keys(), ...liveOnly];
  const reader = new ProfileReader(redis, keys, tags, () => runAsOf!);
  const mismatches: Mismatch[] = [];
  let laterEvents = 0;
  let expired = 0;
  const stateMayBeGone = Date.now() > runAsOf + LIVE_STATE_SURELY_KEPT_MS;
  for (let i = 0; i < users.length; i += 100) {
    const chunk = users.slice(i, i + 100);
    const live = await reader.readMany(chunk);
    chunk.forEach((userId, j) => {
      const expected = batch.get(userId);
      // Live windows answer the as-of time exactly only for a user with no event after it
      // (a later event moves panes, distinct values' latest times and prunes); and a user
      // whose state has expired since has nothing left to compare.
      const lastEvent = live[j]?.meta.last_event_at;
      if (lastEvent !== undefined && lastEvent !== null && lastEvent > runAsOf!) {
        laterEvents++;
        return;
      }
      if (!live[j] && stateMayBeGone && expected && Object.values(expected).some((v) => !isZero(v))) {
        expired++;
        return;
      }
      for (const t of tags) {
        const want = expected?.[t.name];
        const got = live[j]?.tags[t.name] as WindowValue | undefined;
        const same = want === undefined ? isZero(got) : got === undefined ? isZero(want) : sameWindowValue(want, got);
        if (!same) mismatches.push({ user_id: userId, tag: t.name, batch: want ?? null, live: got ?? null });
      }
    });
  }
  return {
    run_id: runId,
    as_of: runAsOf,
    users_checked: users.length - laterEvents - expired,
    users_skipped_later_events: laterEvents,
    users_skipped_expired: expired,
    mismatches,
  };
}
