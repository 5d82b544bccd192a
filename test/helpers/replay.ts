import { ProfileEvent } from '../../src/core/event';
import { TagConfig, longestWindow } from '../../src/core/tags';
import { listOdsFiles } from '../../src/ods/files';
import { BadLine, readOds } from '../../src/ods/readOds';
import { OfflineValues } from '../../src/batch/store';
import { WindowValue } from '../../src/batch/windows';
import { isErased } from '../../src/profile/erasure';
import { OfflineAggregator } from './offlineReference';
import { computeWindowTags } from './windowReference';

/** What replaying the ODS line by line in JS gives: the reference the batch's DuckDB compute must equal. */
export interface Replayed {
  /** Offline values of every user with an event at or before the as-of time. */
  users: Map<string, OfflineValues>;
  /** Window tags of every user with an event in the longest window before the as-of time. */
  windows: Map<string, Record<string, WindowValue>>;
  lines: number;
  events: number;
  duplicates: number;
  events_after_as_of: number;
  erased_events: number;
  badLines: BadLine[];
}

/**
 * The reference replay (the product's batch until it moved to DuckDB): every line through
 * the event validator, in file order; events of erased users up to their erasure dropped;
 * the first copy of each (user, type, event id) counts; later events ignored.
 */
export async function replayOds(
  odsDir: string,
  tags: TagConfig,
  asOf: number,
  erasures: Map<string, number>,
  range: { from?: string; to?: string } = {},
): Promise<Replayed> {
  const out: Replayed = { users: new Map(), windows: new Map(), lines: 0, events: 0, duplicates: 0, events_after_as_of: 0, erased_events: 0, badLines: [] };
  const aggregator = new OfflineAggregator(tags.offline, tags.segments, asOf);
  const state = new Map<string, { state: ReturnType<OfflineAggregator['newState']>; events: number; recent: ProfileEvent[] }>();
  const seen = new Set<string>();
  const since = asOf - longestWindow(tags.realtime);
  out.lines = await readOds(listOdsFiles(odsDir, range.from, range.to), {
    onEvent: (e) => {
      if (isErased(erasures, e.user_id, e.ts)) return void out.erased_events++;
      const key = `${e.user_id}\0${e.type}\0${e.event_id}`;
      if (seen.has(key)) return void out.duplicates++;
      seen.add(key);
      let user = state.get(e.user_id);
      if (!user) state.set(e.user_id, (user = { state: aggregator.newState(), events: 0, recent: [] }));
      if (!aggregator.add(user.state, e)) return void out.events_after_as_of++;
      out.events++;
      user.events++;
      if (e.ts >= since) user.recent.push(e);
    },
    onBadLine: (bad) => out.badLines.push(bad),
  });
  for (const [userId, user] of state) {
    if (user.events === 0) continue;
    out.users.set(userId, aggregator.values(user.state));
    if (user.recent.length > 0) out.windows.set(userId, computeWindowTags(user.recent, tags.realtime, asOf));
  }
  return out;
}
