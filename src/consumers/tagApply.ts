import fs from 'fs';
import readline from 'readline';
import { randomUUID } from 'crypto';
import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { TagConfig } from '../core/tags';
import { ProfileEvent, fromStreamFields, validateEvent } from '../core/event';
import { canonicalJson } from '../core/tagConfig';
import { ProcessRecord, runningProcesses } from '../redis/tagConfigs';
import { Scripts, runScript } from '../lua/scripts';
import { listOdsFiles, odsDate } from '../ods/files';
import { parseOdsLine } from '../ods/readOds';
import { erasedAt, isErased } from '../profile/erasure';
import type { ConfigChange } from '../core/configChange';
import { WindowTarget } from './windowTarget';
import { UserWindowUpdate, WindowWriter } from './windowWriter';

/**
 * `profile tags apply`: makes a new tag config the active one on a live system. A change
 * the state kept already answers switches at once (one compare-and-set). A change that
 * needs a backfill (a realtime tag over state the active config does not keep) builds the
 * new config's window state whole, in a generation of pane keys of its own, while every
 * process goes on serving the old config:
 *
 * 1. the new config becomes `pending` with a new generation (startTagBackfill.lua); every
 *    realtime consumer then folds each batch into it too (WindowTarget), and `apply` waits
 *    until each has said so;
 * 2. the cut: each partition's newest entry id at that moment. Every event after it is
 *    folded into the new state by the consumers; every event up to it is still in the
 *    stream or already in the ODS, and is replayed from there (the stream first: an entry
 *    archived meanwhile is then in the ODS) through the same fold;
 * 3. one compare-and-set makes it active: readers, consumers and triggers switch at their
 *    next check; the old config's state is still written for the grace period, so
 *    applying the old file again within it switches back at once, and then expires.
 *
 * Each generation dedups by event id in its own keys, so an event the replay and a
 * consumer (or two replays) both fold counts once: a killed `apply` run again resumes
 * with the same generation. A lock refuses a second `apply` while one runs.
 */

/** What apply needs of a plan (batch/tagChange.ts's planTagConfigChange makes one). */
export interface AppliedPlan {
  from: { version: string; active: boolean };
  to: { version: string };
  changes: ConfigChange[];
}

/** What `profile tags apply` did. */
export interface TagChangeApplied<P extends AppliedPlan = AppliedPlan> {
  plan: P;
  /**
   * switched: the new config is active; same: it already was; refused: a change needs a
   * backfill and none was allowed (nothing changed).
   */
  outcome: 'switched' | 'same' | 'refused';
  /** How: at once (the state kept answers it), after a backfill, back to the previous config's state (within its grace), or partial (acceptPartial). */
  how?: 'instant' | 'backfill' | 'rollback' | 'partial';
  /** The realtime tags that need a backfill (refused, or switched with acceptPartial: they undercount until a window has passed). */
  partial: string[];
  /** The backfill: the generation built, events replayed from the streams and the ODS, time. */
  backfill?: BackfillResult & { generation: number };
  /** After a switch: the running processes, and those that did not report the new version within the wait. */
  processes: ProcessRecord[];
  lagging: ProcessRecord[];
}

export interface ApplyOptions {
  /** The stream partitions (the cut takes each one's newest entry). */
  partitions: number;
  /** Switch without the backfill: the tags needing one undercount until a full window has passed. */
  acceptPartial?: boolean;
  /** Switch without the backfill is refused rather than backfilled (the earlier behaviour). */
  noBackfill?: boolean;
  /** How long to wait for the running processes (ms). @defaultValue 10 s */
  waitMs?: number;
  /** How long the old config's state is still written after the switch (ms). @defaultValue 1 h */
  graceMs?: number;
  /** Progress lines (to stderr in the CLI). */
  onProgress?: (line: string) => void;
  /** Replay at most this many events a second (default: as fast as Redis takes them), leaving Redis time to the live pipeline. */
  pace?: number;
  /** Current time in ms: what the replay folds at, as the consumers' clock. @defaultValue Date.now */
  clock?: () => number;
  /** Called between the backfill's steps (tests stop the process there). */
  onStep?: (step: 'pending' | 'writers' | 'replayed') => Promise<void> | void;
}

/**
 * Makes `next` the active tag config as `plan` (planTagConfigChange) planned it. Throws
 * TagConfigChangedError when the active config changed since the plan, ApplyRunningError
 * when another apply holds the lock.
 */
export async function applyTagConfigChange<P extends AppliedPlan>(
  redis: RedisClient,
  keys: Keys,
  next: TagConfig,
  plan: P,
  odsDir: string,
  opts: ApplyOptions,
): Promise<TagChangeApplied<P>> {
  const partial = plan.changes.filter((c) => c.effect === 'backfill').map((c) => c.name);
  const none = { processes: [], lagging: [] };
  const from = plan.from.active ? plan.from.version : '';
  const to = plan.to.version;
  if (plan.from.active && from === to) return { plan, outcome: 'same', partial: [], ...none };
  const key = keys.tagConfigs();
  const graceMs = opts.graceMs ?? 3_600_000;
  await redis.hsetnx(key, `doc:${to}`, canonicalJson(next.document));
  const [previous, previousUntil, gPrevious, gActive] = await redis.hmget(key, 'previous', 'previous_until', `gen:${to}`, `gen:${from}`);
  const switchTo = async (
    how: TagChangeApplied['how'],
    extra: { pending?: string; generation?: number } = {},
    backfill?: TagChangeApplied['backfill'],
  ): Promise<TagChangeApplied<P>> => {
    const switched = await runScript(redis, Scripts.switchTagConfig(key, from, to, Date.now(), { graceMs, ...extra }));
    if (switched !== 1) throw new TagConfigChangedError(plan.from.active ? from : null);
    const { processes, lagging } = await waitForProcesses(redis, keys, (p) => p.version === to, opts.waitMs ?? 10_000);
    return { plan, outcome: 'switched' as const, how, partial: how === 'partial' ? partial : [], backfill, processes, lagging };
  };
  // Back to the previous config while its state is still written: at once.
  const rollback = previous === to && Number(previousUntil ?? 0) > Date.now() && (gPrevious ?? '0') !== (gActive ?? '0');
  if (rollback) return switchTo('rollback', { generation: Number(gPrevious ?? 0) });
  if (partial.length === 0) return switchTo('instant');
  if (opts.acceptPartial) return switchTo('partial');
  if (opts.noBackfill) return { plan, outcome: 'refused', partial, ...none };
  const lock = await ApplyLock.take(redis, keys);
  try {
    const generation = await runScript(redis, Scripts.startTagBackfill(key, from, to, Date.now()));
    if (generation === 0) throw new TagConfigChangedError(plan.from.active ? from : null);
    if (generation < 0) throw new Error(`tag config ${to} is not recorded`);
    const say = opts.onProgress ?? (() => undefined);
    say(`backfill of ${to} into generation ${generation}: waiting for the realtime consumers to write it too`);
    await opts.onStep?.('pending');
    const written = `${to}@${generation}`;
    const writers = await waitForProcesses(
      redis,
      keys,
      (p) => !p.roles.includes('realtime') || (p.writes ?? []).includes(written),
      Math.max(opts.waitMs ?? 10_000, 30_000),
    );
    if (writers.lagging.length > 0) {
      throw new Error(`realtime consumers did not start writing ${written}: ${writers.lagging.map((p) => p.id).join(', ')}; run apply again (it resumes)`);
    }
    await opts.onStep?.('writers');
    const cut = await streamCut(redis, keys, opts.partitions);
    const result = await replayInto(redis, keys, next, generation, cut, odsDir, say, opts.clock ?? Date.now, opts.pace);
    await opts.onStep?.('replayed');
    say(`replayed ${result.stream_events} stream and ${result.ods_events} ODS events in ${result.seconds} s: switching`);
    return await switchTo('backfill', { pending: to, generation }, { ...result, generation });
  } finally {
    await lock.release();
  }
}

/** Waits up to `waitMs` until every running process satisfies `done`. */
async function waitForProcesses(
  redis: RedisClient,
  keys: Keys,
  done: (p: ProcessRecord) => boolean,
  waitMs: number,
): Promise<{ processes: ProcessRecord[]; lagging: ProcessRecord[] }> {
  const deadline = Date.now() + waitMs;
  let processes = await runningProcesses(redis, keys);
  while (processes.some((p) => !done(p)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    processes = await runningProcesses(redis, keys);
  }
  return { processes, lagging: processes.filter((p) => !done(p)) };
}

/** Each partition's newest entry id (none: the stream is empty). */
async function streamCut(redis: RedisClient, keys: Keys, partitions: number): Promise<Map<string, string>> {
  const cut = new Map<string, string>();
  for (const stream of keys.streams(partitions)) {
    const [newest] = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
    if (newest) cut.set(stream, newest[0]);
  }
  return cut;
}

export interface BackfillResult {
  stream_events: number;
  ods_events: number;
  seconds: number;
}

/** Events folded per round trip of the replay. */
const REPLAY_BATCH = 5000;

/**
 * Folds into `config`'s state in `generation` every event up to the cut still in the
 * streams, then every event of the ODS within the config's longest window (events after
 * the cut are folded too: each counts once).
 */
async function replayInto(
  redis: RedisClient,
  keys: Keys,
  config: TagConfig,
  generation: number,
  cut: Map<string, string>,
  odsDir: string,
  say: (line: string) => void,
  clock: () => number,
  pace?: number,
): Promise<BackfillResult> {
  const started = Date.now();
  let replayed = 0;
  const now = clock();
  const target = new WindowTarget(redis, keys.withGeneration(generation), config.realtime, 100);
  const longest = Math.max(0, ...config.realtime.map((t) => t.windowMs));
  const pending = new Map<string, UserWindowUpdate>();
  let queued = 0;
  const flush = async () => {
    if (pending.size === 0) return;
    const at = clock();
    const erased = await erasedAt(redis, keys, [...pending.keys()]);
    const users = [...pending.values()].filter((u) => !erased.has(u.userId) || keepAfterErasure(u, erased));
    replayed += queued;
    pending.clear();
    queued = 0;
    await target.fold(users, at);
    // At most `pace` events a second: Redis's time stays the live pipeline's.
    const due = pace ? started + (replayed / pace) * 1000 : 0;
    if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
  };
  const add = async (e: ProfileEvent) => {
    if (e.ts < now - longest) return;
    const u = pending.get(e.user_id) ?? { userId: e.user_id, events: {} };
    pending.set(e.user_id, u);
    (u.events[e.type] ??= []).push(...WindowWriter.eventArgs(e));
    if (++queued >= REPLAY_BATCH) await flush();
  };
  let streamEvents = 0;
  for (const [stream, upTo] of cut) {
    let start = '-';
    for (;;) {
      const entries = (await redis.xrange(stream, start, upTo, 'COUNT', 1000)) as [string, string[]][];
      for (const [, fields] of entries) {
        const parsed = validateEvent(fromStreamFields(fields), 0, { now, maxFutureSkewMs: Infinity, stored: true });
        if (parsed.ok) {
          streamEvents++;
          await add(parsed.event);
        }
      }
      if (entries.length < 1000) break;
      start = `(${entries[entries.length - 1][0]}`;
    }
  }
  await flush();
  say(`replayed ${streamEvents} events still in the streams; now the ODS`);
  let odsEvents = 0;
  const files = listOdsFiles(odsDir, odsDate(now - longest), odsDate(now + 86_400_000));
  for (const [i, file] of files.entries()) {
    const lines = readline.createInterface({ input: fs.createReadStream(file.path), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === '') continue;
      // `profile batch` reports bad lines; the replay skips them as it does.
      const parsed = parseOdsLine(line);
      if (parsed?.ok) {
        odsEvents++;
        await add(parsed.event);
      }
    }
    await flush();
    say(`replayed ODS file ${i + 1} of ${files.length} (${file.date})`);
  }
  return { stream_events: streamEvents, ods_events: odsEvents, seconds: Number(((Date.now() - started) / 1000).toFixed(2)) };
}

/** Whether any event of `u` is after the user's erasure (those count as new data); the rest are dropped from `u`. */
function keepAfterErasure(u: UserWindowUpdate, erased: Map<string, number>): boolean {
  let any = false;
  for (const [type, args] of Object.entries(u.events) as [string, NonNullable<UserWindowUpdate['events'][keyof UserWindowUpdate['events']]>][]) {
    const kept: typeof args = [];
    for (let i = 0; i < args.length; i += 3) if (!isErased(erased, u.userId, Number(args[i]))) kept.push(args[i], args[i + 1], args[i + 2]);
    (u.events as Record<string, typeof args>)[type] = kept;
    if (kept.length > 0) any = true;
    else delete (u.events as Record<string, typeof args>)[type];
  }
  return any;
}

/** The lock that keeps two `profile tags apply` runs from backfilling at once (renewed while held). */
class ApplyLock {
  private constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly owner: string,
    private readonly timer: NodeJS.Timeout,
  ) {}

  static readonly TTL_MS = 15_000;

  static async take(redis: RedisClient, keys: Keys): Promise<ApplyLock> {
    const key = keys.tagApplyLock();
    const owner = randomUUID();
    if ((await redis.set(key, owner, 'PX', ApplyLock.TTL_MS, 'NX')) !== 'OK') {
      throw new ApplyRunningError(await redis.pttl(key));
    }
    const timer = setInterval(() => void runScript(redis, Scripts.casLock(key, owner, ApplyLock.TTL_MS)).catch(() => undefined), ApplyLock.TTL_MS / 3);
    timer.unref();
    return new ApplyLock(redis, key, owner, timer);
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await runScript(this.redis, Scripts.casLock(this.key, this.owner, 0)).catch(() => undefined);
  }
}

/** Another `profile tags apply` is backfilling (its lock is held): nothing was changed. */
export class ApplyRunningError extends Error {
  constructor(ttlMs: number) {
    super(`another \`profile tags apply\` is running (its lock expires in ${Math.max(0, Math.ceil(ttlMs / 1000))} s unless renewed): nothing was changed`);
    this.name = 'ApplyRunningError';
  }
}

/** The active tag config changed between the plan and the switch (another apply ran): nothing was changed. */
export class TagConfigChangedError extends Error {
  constructor(planned: string | null) {
    super(`the active tag config is no longer ${planned ?? '(none)'}: another \`profile tags apply\` switched it meanwhile; nothing was changed (plan again)`);
    this.name = 'TagConfigChangedError';
  }
}
