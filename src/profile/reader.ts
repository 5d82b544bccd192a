import { RedisClient, RedisTarget, connectTarget, pipelineByNode } from '../redis/client';
import { createHash } from 'crypto';
import { EventType } from '../core/event';
import { Keys } from '../core/keys';
import { ReadProfileReply, Scripts, TagSelection, queueScript, runScript, sendLoadingScripts } from '../lua/scripts';
import { windowPlan } from '../lua/windowPlan';
import { NUMERIC_FIELDS, SEGMENT_TAG, TagConfig, WindowTag } from '../core/tags';
import { StaleProfileError, UnknownTagError } from '../core/errors';
import { RealtimeLag } from './lag';
import { loadTagConfig } from '../core/tagConfig';
import { followActiveTagConfig, watchActiveTagConfig } from '../redis/tagConfigs';
import { silentLogger } from '../core/logger';
import { estimateDistinctText, percentilesFromSigned, signedCounts } from '../core/sketch';

/** A tag value: a number, a per-key object (count_by, histogram: counts; percentile: p50 → value), a list (last_k, first_k), or text (offline segment ids). */
export type TagValue = number | string | Record<string, number> | (number | string)[] | null;

/** The fused profile GET /profile/:userId returns. */
export interface Profile {
  user_id: string;
  tags: Record<string, TagValue>;
  meta: {
    /** The time (ms) window tags were evaluated at. */
    as_of: number;
    /** Time (ms) of the user's newest event in any window, or null. */
    last_event_at: number | null;
    /**
     * How far behind the realtime path is for the user's partition (ms): the age of the
     * oldest event accepted there and not yet applied, 0 when caught up; null when not
     * known. Present when the reader tracks the lag (trackLag; connect() does).
     */
    lag_ms?: number | null;
    /** Id and time of the batch run that wrote the offline tags, when there are any. */
    batch_run_id?: string;
    batch_at?: number;
  };
}

/** Offline hash fields that describe the batch run rather than being tags. */
const OFFLINE_META: Record<string, 'batch_run_id' | 'batch_at'> = { _run_id: 'batch_run_id', _batch_at: 'batch_at' };
const NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;
/** A window tag's value over a window without events, in the script's reply form. */
const EMPTY_VALUE: Record<WindowTag['aggregation'], unknown> = {
  count: 0,
  distinct: 0,
  sum: '0',
  count_by: [],
  avg: null,
  min: null,
  max: null,
  last: null,
  variance: null,
  stddev: null,
  first: null,
  histogram: [],
  last_k: '',
  first_k: '',
  percentile: [],
  approx_distinct: '',
};

/** What one read returns: every tag (the default), or only those named in `tags` (window and offline tags). */
export interface ReadOptions {
  tags?: readonly string[];
  /**
   * read() only: refuse (StaleProfileError, before any Redis call) when the user's partition
   * is more than this many ms behind, or its lag is not known (see lagMs).
   */
  maxLagMs?: number;
}

/** The names of a tag config's offline tags: the offline hash fields a read may ask for. */
export function offlineTagNames(config: Pick<TagConfig, 'offline'>): string[] {
  return [...config.offline.map((t) => t.name), SEGMENT_TAG];
}

/** Where and what {@link ProfileReader.connect} reads: a Redis URL or cluster seed nodes, the tags, the key prefix. */
export interface ReaderOptions extends RedisTarget {
  /** The tag config, or the path of its JSON file. @defaultValue config/tags.json */
  tags?: TagConfig | string;
  /** The key prefix the pipeline writes with (PROFILE_PREFIX). @defaultValue '' */
  prefix?: string;
  /** Stream partitions of the pipeline (PROFILE_PARTITIONS), for the realtime lag. @defaultValue 4 */
  partitions?: number;
  /** Track the realtime lag (meta.lag_ms, maxLagMs), sampled in the background. @defaultValue true */
  lag?: boolean;
  /**
   * Read with the pipeline's active tag config (recorded in Redis, see `profile tags`) and
   * follow its switches, as the API does; `tags` is then used only while none is recorded.
   * False: always `tags`. @defaultValue true
   */
  followActiveConfig?: boolean;
}

/**
 * A count_by value from readProfile.lua's signed value-pane texts ("+", "v\x1fn\x1f...",
 * "-", ...): the counts per value (those above 0), the `top` largest only (ties: the smaller
 * value; 0: all), keys in sorted order. Merging here keeps that work off the Redis thread.
 */
export function mergeCounts(signed: readonly string[], top: number): Record<string, number> {
  const counts = signedCounts(signed);
  let keys = [...counts.keys()].filter((k) => counts.get(k)! > 0);
  if (top > 0 && keys.length > top) {
    keys.sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : 1));
    keys = keys.slice(0, top);
  }
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // No prototype: a campaign id such as "__proto__" is valid and must stay a plain key.
  const out: Record<string, number> = Object.create(null);
  for (const k of keys) out[k] = counts.get(k)!;
  return out;
}

/** What a reader reads with: one tag config's window plan and names (replaced whole by setTags). */
interface ReaderView {
  types: EventType[];
  plan: Buffer;
  /** The plan's id (the first 16 bytes of its SHA-256, hex): what a read sends in its place. */
  planId: string;
  /** Window tags in config order (the script answers them grouped by event type, and only of the types the user has). */
  tagOrder: WindowTag[];
  windowNames: Set<string>;
  offlineNames?: Set<string>;
  /** The keys of the config's window state generation. */
  keys: Keys;
}

function readerView(keys: Keys, tags: readonly WindowTag[], offlineNames?: readonly string[]): ReaderView {
  const plan = windowPlan(tags);
  return {
    keys,
    types: plan.types,
    plan: plan.bin,
    planId: createHash('sha256').update(plan.bin).digest('hex').slice(0, 32),
    tagOrder: [...tags],
    windowNames: new Set(tags.map((t) => t.name)),
    offlineNames: offlineNames ? new Set(offlineNames) : undefined,
  };
}

/** Reads fused profiles with readProfile.lua: one script call (one round trip) per user; two the first time a server sees the reader's tag plan (it is sent by id). */
export class ProfileReader {
  /** Each read takes this once, so a read started before setTags is answered whole by the old config. */
  private view: ReaderView;
  private readonly clock: () => number;
  /** The connection this reader opened itself (connect): closed by close(). */
  private owned = false;

  /**
   * A reader on its own connection, for a Node program (a bidder) that reads profiles
   * straight from Redis: the same fused profile as GET /profile/:userId, one EVALSHA_RO per
   * user (one pipeline per node for many).
   *
   * @example
   *   const reader = await ProfileReader.connect({ redisUrl: 'redis://127.0.0.1:6379' });
   *   const profile = await reader.read('user-1'); // null for an unknown user
   *   await reader.close();
   */
  static async connect(opts: ReaderOptions): Promise<ProfileReader> {
    const tags = typeof opts.tags === 'object' ? opts.tags : loadTagConfig(opts.tags);
    const redis = await connectTarget(opts);
    const keys = new Keys(opts.prefix ?? '');
    const follow = opts.followActiveConfig !== false;
    const active = follow ? await followActiveTagConfig(redis, keys, tags, silentLogger) : { config: tags, generation: 0, written: '' };
    const config = active.config;
    const reader = new ProfileReader(redis, keys, config.realtime, undefined, offlineTagNames(config));
    reader.setTags(config.realtime, offlineTagNames(config), active.generation);
    reader.owned = true;
    if (follow) {
      const follower = (a: { config: TagConfig; generation: number }) => reader.setTags(a.config.realtime, offlineTagNames(a.config), a.generation);
      reader.watch = watchActiveTagConfig(redis, keys, active.written, follower, silentLogger);
    }
    if (opts.lag !== false) {
      const lag = new RealtimeLag(redis, keys, opts.partitions ?? 4);
      await lag.start();
      reader.trackLag(lag);
    }
    return reader;
  }

  /** Closes the connection connect() opened (a reader on a caller's connection leaves it open), and its lag sampling. */
  async close(): Promise<void> {
    if (this.owned) {
      await this.watch?.stop();
      await this.lag?.stop();
      await this.redis.quit();
    }
  }

  private lag?: RealtimeLag;
  /** connect()'s following of the active tag config. */
  private watch?: { stop(): Promise<void> };

  /** Answers meta.lag_ms (and honours maxLagMs) from `lag`, a started RealtimeLag of this pipeline. */
  trackLag(lag: RealtimeLag): this {
    this.lag = lag;
    return this;
  }

  /**
   * The realtime lag (ms) of `userId`'s partition, from the last sample: null when not
   * known (no lag tracked, or its sampling fails).
   */
  lagMs(userId: string): number | null {
    return this.lag?.lagMs(userId) ?? null;
  }

  /** Every partition's realtime lag (ms; null: not known); empty when no lag is tracked. */
  partitionLags(): (number | null)[] {
    return this.lag?.all() ?? [];
  }

  /**
   * `offlineNames`: the offline tags a read may ask for by name (offlineTagNames of the
   * config); without them any name that is not a window tag is read as an offline field.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    tags: readonly WindowTag[],
    clock?: () => number,
    offlineNames?: readonly string[],
  ) {
    this.clock = clock ?? Date.now;
    this.view = readerView(keys, tags, offlineNames);
  }

  /**
   * Reads with another tag config from now on (a switch of the active config, see
   * redis/tagConfigs.ts), whose window state is in pane keys of `generation`; reads already
   * started finish with the one they started with.
   */
  setTags(tags: readonly WindowTag[], offlineNames?: readonly string[], generation = 0): void {
    this.view = readerView(this.keys.withGeneration(generation), tags, offlineNames);
  }

  /** The names in `tags` that are no tag this reader knows (none: every one may be read). */
  unknownTags(tags: readonly string[], view = this.view): string[] {
    return tags.filter((t) => !view.windowNames.has(t) && view.offlineNames !== undefined && !view.offlineNames.has(t));
  }

  /**
   * The profile of `userId` at the reader's clock, or null when no key of the user exists.
   * With `tags`, only those tags are evaluated (in Redis) and returned; an unknown name
   * throws UnknownTagError.
   */
  async read(userId: string, opts: ReadOptions = {}): Promise<Profile | null> {
    const now = this.clock();
    const view = this.view;
    const select = this.selection(view, opts.tags);
    if (opts.maxLagMs !== undefined) {
      const lag = this.lagMs(userId);
      if (lag === null || lag > opts.maxLagMs) throw new StaleProfileError(userId, lag, opts.maxLagMs);
    }
    let reply = await runScript(this.redis, this.script(view, userId, now, select));
    // The server's library load has not seen this plan yet (a new server, a restart): once more with it.
    if (reply[0] === -1) reply = await runScript(this.redis, this.script(view, userId, now, select, true));
    return this.toProfile(view, userId, now, reply, select);
  }

  /** What a read with `tags` asks Redis for; undefined: everything. */
  private selection(view: ReaderView, tags: readonly string[] | undefined): TagSelection | undefined {
    if (tags === undefined) return undefined;
    const unknown = this.unknownTags(tags, view);
    if (unknown.length > 0) throw new UnknownTagError(unknown);
    const asked = new Set(tags);
    const offline = [...asked].filter((t) => !view.windowNames.has(t));
    return { window: view.tagOrder.filter((t) => asked.has(t.name)).map((t) => t.name), offline: [...offline, ...Object.keys(OFFLINE_META)] };
  }

  /**
   * Profiles of many users, one pipeline per node sent in parallel (one round trip on a
   * single server); null for unknown users.
   */
  async readMany(userIds: string[], opts: ReadOptions = {}): Promise<(Profile | null)[]> {
    const now = this.clock();
    const view = this.view;
    const select = this.selection(view, opts.tags);
    const send = (ids: readonly string[], withPlan: boolean) =>
      sendLoadingScripts(this.redis, ids, (list) =>
        pipelineByNode(
          this.redis,
          list,
          (id) => this.keys.realtime(id),
          (p, id) => queueScript(p, this.script(view, id, now, select, withPlan)),
        ),
      );
    const results = await send(userIds, false);
    // Users on a server whose library load has not seen this plan yet: once more with it.
    const again = results.map(([, reply], i) => ((reply as ReadProfileReply | null)?.[0] === -1 ? i : -1)).filter((i) => i >= 0);
    if (again.length > 0)
      (
        await send(
          again.map((i) => userIds[i]),
          true,
        )
      ).forEach((r, j) => (results[again[j]] = r));
    return results.map(([err, reply], i) => {
      if (err) throw err;
      return this.toProfile(view, userIds[i], now, reply as ReadProfileReply, select);
    });
  }

  private script(view: ReaderView, userId: string, now: number, select?: TagSelection, withPlan = false) {
    const k = view.keys;
    const types = view.types.map((type) => ({ panesKey: k.panes(userId, type), indexKey: k.paneIndex(userId, type) }));
    const plan = { id: view.planId, bin: view.plan, withBinary: withPlan };
    return Scripts.readProfile({ types, realtimeKey: k.realtime(userId), offlineKey: k.offline(userId) }, now, plan, select);
  }

  private toProfile(view: ReaderView, userId: string, now: number, reply: ReadProfileReply, select?: TagSelection): Profile | null {
    if (reply[0] === 0) return null;
    if (reply[0] === -1) throw new Error(`Redis answered that it lacks the read's plan ${view.planId} after it was sent`);
    const [, lastEventAt, flatTags, offline] = reply;
    const profile: Profile = {
      user_id: userId,
      tags: {},
      meta: { as_of: now, last_event_at: lastEventAt === null ? null : Number(lastEventAt) },
    };
    if (this.lag) profile.meta.lag_ms = this.lag.lagMs(userId);
    const byName = new Map<string, unknown>();
    for (let i = 0; i < flatTags.length; i += 2) byName.set(flatTags[i] as string, flatTags[i + 1]);
    const wanted = select ? new Set(select.window) : undefined;
    for (const { name, aggregation, top, field, k, p } of view.tagOrder) {
      if (wanted && !wanted.has(name)) continue;
      // A tag of an event type the user has no state for: its empty value (as the script gives it).
      const value = byName.has(name) ? byName.get(name) : EMPTY_VALUE[aggregation];
      if (aggregation === 'last_k' || aggregation === 'first_k') {
        // "v\x1fv\x1f...": the values of the k newest / oldest events (numbers for a numeric field).
        const values = value ? String(value).split('\x1f') : [];
        profile.tags[name] = field && NUMERIC_FIELDS.includes(field) ? values.map(Number) : values;
      } else if (aggregation === 'approx_distinct') {
        // The hashes of the panes covering the window, concatenated: the estimate is made here, off the Redis thread.
        profile.tags[name] = estimateDistinctText(Array.isArray(value) ? value.join('') : (value as string), k!);
      } else if (aggregation === 'percentile') {
        // Counts per log bucket, as count_by's: the percentiles are read off them here.
        profile.tags[name] = percentilesFromSigned(value as string[], p!);
      } else if (Array.isArray(value)) {
        profile.tags[name] = mergeCounts(value as string[], top ?? 0);
      } else {
        // null: min/max/last/avg of a window without values.
        profile.tags[name] = value === null ? null : Number(value);
      }
    }
    for (let i = 0; i < offline.length; i += 2) {
      const [field, value] = [offline[i], offline[i + 1]];
      const metaField = OFFLINE_META[field];
      if (metaField === 'batch_at') profile.meta.batch_at = Number(value);
      else if (metaField === 'batch_run_id') profile.meta.batch_run_id = value;
      else profile.tags[field] = NUMBER.test(value) ? Number(value) : value;
    }
    return profile;
  }
}
