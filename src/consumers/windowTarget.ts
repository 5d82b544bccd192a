import type { EventType } from '../core/event';
import type { Keys } from '../core/keys';
import type { WindowTag } from '../core/tags';
import { queueScript, sendLoadingScripts } from '../lua/scripts';
import { RedisClient, chunkBySlot, pipelineByNode, throwRedisTrouble } from '../redis/client';
import { NodeFold } from './nodeFold';
import type { FoldConnection } from './foldConnection';
import { UserWindowUpdate, WindowWriter } from './windowWriter';

/**
 * A second place window updates go besides the active config's: another tag config's
 * window state, in its own generation of pane keys (Keys.withGeneration), without
 * triggers. While `profile tags apply` backfills a new config, the realtime consumers fold
 * every event into it too (and the backfill folds the older events into it the same way);
 * after the switch, into the previous config's state during the grace period, so a
 * rollback is instant. Each target dedups by event id in its own keys, so an event folded
 * twice into one (a redelivery, a replay that overlaps the live traffic) counts once.
 */
export class WindowTarget {
  readonly writer: WindowWriter;
  private readonly nodeFold?: NodeFold;

  constructor(
    private readonly redis: RedisClient,
    readonly keys: Keys,
    tags: readonly WindowTag[],
    private readonly usersPerCall: number,
    foldInConsumer = true,
    /** The consumer's connection for WATCH … EXEC (none: applyFolds.lua). */
    tx?: FoldConnection,
  ) {
    this.writer = new WindowWriter(keys, tags);
    if (foldInConsumer) this.nodeFold = new NodeFold(redis, keys, this.writer.windowPlan, usersPerCall, tx);
  }

  /** Folds the users' events (those it keeps) at `now`; throws when a write failed (every write is idempotent: send them again). */
  async fold(users: readonly UserWindowUpdate[], now: number): Promise<number> {
    const updates = users.map((u) => keptBy(this.writer, u, now)).filter((u): u is UserWindowUpdate => u !== null);
    if (updates.length === 0) return 0;
    const done = this.nodeFold ? await this.nodeFold.fold(updates, now) : new Set<string>();
    const rest = updates.filter((u) => !done.has(u.userId));
    const calls = chunkBySlot(this.redis, rest, (u) => this.keys.realtime(u.userId), this.usersPerCall);
    const results = await sendLoadingScripts(this.redis, calls, (list) =>
      pipelineByNode(
        this.redis,
        list,
        (call) => this.keys.realtime(call[0].userId),
        (pipeline, call) => queueScript(pipeline, this.writer.update(call, now)),
      ),
    );
    throwRedisTrouble(results);
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    return updates.length;
  }
}

/** The part of `u` that `writer` keeps at `now` (types its tags use, events within their longest window), or null. */
export function keptBy(writer: WindowWriter, u: UserWindowUpdate, now: number): UserWindowUpdate | null {
  const events: UserWindowUpdate['events'] = {};
  let any = false;
  for (const [type, args] of Object.entries(u.events) as [EventType, NonNullable<UserWindowUpdate['events'][EventType]>][]) {
    const longest = writer.longest(type);
    if (longest === undefined) continue;
    const kept: typeof args = [];
    for (let i = 0; i < args.length; i += 3) if (Number(args[i]) >= now - longest) kept.push(args[i], args[i + 1], args[i + 2]);
    if (kept.length > 0) {
      events[type] = kept;
      any = true;
    }
  }
  return any ? { userId: u.userId, events, lastEventId: u.lastEventId } : null;
}
