/**
 * The fold of one user's events of one type into its window state, computed in the
 * consumer rather than in Redis: the same result as src/lua/includes/writeType.lua for the
 * common case, from what two HMGETs of the pane hash returned. Redis then only checks that
 * nothing changed in between (the field V, a write counter every writer moves) and writes
 * the new fields (applyFolds.lua). A visit this fold does not take — state written before
 * V existed, legacy state, distinct values ahead of now, a prune due — says so (`lua`),
 * and the user goes through updateWindows.lua, which handles every case.
 */
import type { TagPlan, TypePlan } from '../lua/windowPlan';
import { LEVEL_PREFIX, formatSeconds, parseSeconds, secondsField, secondsFieldOfMinute, windowRange } from '../core/panes';
import { COUNTED_AGGREGATIONS, bucketLabel } from '../core/tags';
import { mergeSketch, percentileKey, sketchHash } from '../core/sketch';
import {
  DISTINCT_BASE,
  NumericPane,
  PaneMeta,
  addValues,
  coverNames,
  formatMeta,
  formatList,
  formatNumeric,
  formatSpreadTotal,
  formatSumTotal,
  formatValues,
  mergeNumeric,
  orderList,
  ownField,
  packedField,
  paneCount,
  parseList,
  parseMeta,
  parseNumeric,
  spreadTotal,
  sumTotal,
} from './paneText';
import { DedupBuckets, bucketName, dropLeading, entrySize, isMark, pruneBucket, sweptBucket } from './dedupBuckets';
import { KnownPanes, paneMayExist } from './panesSeen';

const MINUTE = 60_000;

/** One event as the fold takes it: time, 6-byte id fingerprint, packed window fields. */
export interface FoldEvent {
  ts: number;
  fp: Buffer;
  packed: string;
  /** Its key per value field (a count_by field's value, a histogram's bucket), set by the fold. */
  keys?: Map<number, string>;
}

/** A total's move: the range it counts now, and the panes to add and subtract to get there from its old value. */
interface TotalJob {
  tag: TagPlan;
  from: number;
  done: number;
  p: number;
  keep?: string;
  base?: string;
  /** The total's value is in field C<spec> and the move starts from it (fetched with the panes). */
  baseInOwnField?: boolean;
  adds: string[];
  subs: string[];
}

/** The call's new events of the type, folded (foldEvent in writeType.lua). */
interface Deltas {
  added: number;
  newest?: number;
  members: Map<string, number>;
  events: FoldEvent[];
  numeric: Map<string, NumericPane | number>;
  values: Map<string, Map<string, number>>;
  /** last_k / first_k list panes: the call's entries [ts, value] per pane, with their list's spec. */
  lists: Map<string, { spec: TypePlan['values'][number]; entries: [number, string][] }>;
  future: boolean;
}

/** A visit after its first read: what to fetch next, or why the Lua fold must take it. */
export interface PlannedVisit {
  lua?: string;
  /** Sub-buckets of split dedup buckets to read before the visit can be planned (planVisit again with them). */
  more?: string[];
  added: number;
  /** V as read ('' for a new type). */
  version: string;
  /** The type's one-second panes are kept a minute to a field (see secondsForm): the fold names s<second>, fetches and writes S<minute>. */
  secondsForm?: boolean;
  oldNewest?: number;
  meta: PaneMeta | null;
  deltas: Deltas;
  /** The dedup buckets the call appended to (split ones keep the mark). */
  dedup: DedupBuckets;
  jobs: TotalJob[];
  /** Fields of the second HMGET: panes to update, panes the totals move over, count_by totals' values. */
  fetch: string[];
  /**
   * A prune is due (step 5 of writeType.lua): the swept dedup bucket as the first read
   * returned it, and, with their scores, the time index's pane members the prune deletes
   * and the lowest of the others, which the second read adds (two ZRANGEBYSCOREs, as
   * writeType.lua reads them: the old ones, and the lowest left).
   */
  prune?: {
    bucket: string;
    text?: Buffer;
    members?: string[];
    /** What the fold knows of the hash's seconds (panesSeen.ts): a pruned minute's seconds named only where they can exist. */
    known?: KnownPanes;
  };
  /**
   * A prune of one-second panes due (secondsPruned types, writeType.lua's step 5): the
   * minutes from `from` to `upTo` (time index scores) lose theirs; the second read adds the
   * time index's members in that range.
   */
  secondsPrune?: { from: number; upTo: number; members?: string[]; known?: KnownPanes };
}

/** What a write that prunes deletes: panes of the members that left, and index ranges (ZREMRANGEBYSCORE min max). */
export interface PruneWrites {
  drops: string[];
  ranges: [min: string, max: string][];
}

/** What the fold writes for one visit; `ttl`: 'GT' or 'SET' (or none) with the keys' expiry (ms from now). */
export interface VisitWrites {
  writes: (string | Buffer)[];
  drops: string[];
  members: (string | number)[];
  ttl?: 'GT' | 'SET';
  expireInMs: number;
  newest: number;
  prune?: PruneWrites;
  /** The T and V it writes. */
  meta: string;
  version: string;
}

/** The fields of the first HMGET: the write counter, the meta, waiting distinct values and the events' dedup buckets. */
export function firstFields(tp: TypePlan, events: readonly FoldEvent[], now: number): string[] {
  const cutoff = now - tp.longest;
  const fields = new Set(['V', 'T', ...tp.distinct.map((f) => `F${f}`)]);
  for (const e of events) if (e.ts >= cutoff) fields.add(bucketName(e.fp));
  return [...fields];
}

const skip = (lua: string) => ({ lua }) as PlannedVisit;

/**
 * Whether a type keeps its one-second panes a minute to a field (panes.lua's SECONDS_FORM:
 * S<minute> = "<second>:<count>,..."): a count-only type with one-second panes. State
 * written before in one field a second is moved by updateWindows.lua's first write.
 */
export function secondsForm(tp: TypePlan): boolean {
  return !tp.numeric && tp.numericLevels.includes(1000);
}

/**
 * A prune is due once the oldest pane member is this far past the type's longest window
 * (PRUNE_SLACK in writeType.lua, the same rule). The fold prunes in its transaction; with
 * applyFolds.lua (a cluster) it leaves such a visit to updateWindows.lua.
 */
export const PRUNE_SLACK_MS = 600_000;

/** Dedups and folds the events against the first read (fields as firstFields named them), and plans the second. */
export function planVisit(
  tp: TypePlan,
  events: readonly FoldEvent[],
  now: number,
  fields: string[],
  got: (Buffer | null)[],
  known?: KnownPanes,
  /** Whether the fold may prune (its writes go in MULTI/EXEC); else a prune due leaves the visit to the script. */
  canPrune = false,
): PlannedVisit {
  const text = new Map<string, Buffer>();
  fields.forEach((f, i) => got[i] !== null && text.set(f, got[i]!));
  const version = text.get('V')?.toString() ?? '';
  const meta = parseMeta(text.get('T')?.toString() ?? null);
  if (!version && text.size > 0) return skip('state written before the write counter');
  if (version && !meta) return skip('no meta');
  if (meta && secondsForm(tp) && !meta.secondsForm) return skip('one-second panes not yet a minute to a field');
  if (tp.distinct.some((f) => text.has(`F${f}`))) return skip('distinct values waiting');
  const cutoff = now - tp.longest;
  const pruneDue = meta !== null && meta.oldest <= cutoff - PRUNE_SLACK_MS;
  // (meta: a new type has no seconds to prune.)
  const secondsFrom = secondsPruned(tp) && meta ? (meta.seconds ?? meta.oldest) : undefined;
  const upTo = secondsUpTo(tp, now);
  const secondsDue = secondsFrom !== undefined && secondsFrom <= upTo - PRUNE_SLACK_MS;
  if ((pruneDue || secondsDue) && !canPrune) return skip('prune due');
  const swept = sweptBucket(now);
  const read = (name: string) => text.get(name);
  const more = DedupBuckets.missing(events, cutoff, read, (name) => fields.includes(name));
  // A prune sweeps one more bucket, read with the sub-buckets the events need (if any).
  if (pruneDue && !fields.includes(swept)) more.push(swept);
  if (more.length > 0) return { more } as PlannedVisit;
  // (A split swept bucket needs its sub-buckets: the script sweeps those.)
  if (pruneDue && isMark(text.get(swept))) return skip('prune due, swept bucket split');
  const d: Deltas = { added: 0, members: new Map(), events: [], numeric: new Map(), values: new Map(), lists: new Map(), future: false };
  const dedup = new DedupBuckets(read);
  for (const e of events) if (e.ts >= cutoff && dedup.add(e.fp, e.ts)) foldEvent(d, tp, e, now);
  if (d.future) return skip('distinct value ahead of now');
  const visit: PlannedVisit = { added: d.added, version, oldNewest: meta?.newest, meta, deltas: d, dedup, jobs: [], fetch: [], secondsForm: secondsForm(tp) };
  if (pruneDue) visit.prune = { bucket: swept, text: text.get(swept), known };
  if (secondsDue) visit.secondsPrune = { from: secondsFrom, upTo, known };
  if (d.added > 0) planTotals(visit, tp, now, known);
  return visit;
}

/** foldEvent: counts one new event into the deltas. */
function foldEvent(d: Deltas, tp: TypePlan, e: FoldEvent, now: number): void {
  d.added++;
  if (d.newest === undefined || e.ts > d.newest) d.newest = e.ts;
  const minute = Math.floor(e.ts / MINUTE);
  const hour = Math.floor(e.ts / 3_600_000);
  d.members.set(`m${minute}`, minute * MINUTE);
  d.members.set(`h${hour}`, (hour + 1) * 3_600_000 - MINUTE);
  d.events.push(e);
  const raw = tp.numeric ? packedField(e.packed, tp.numericField) : '';
  const v = raw === '' || !Number.isFinite(Number(raw)) ? undefined : Number(raw);
  for (const level of tp.numericLevels) {
    const name = `${LEVEL_PREFIX[level]}${Math.floor(e.ts / level)}`;
    if (tp.numeric) {
      const p = (d.numeric.get(name) as NumericPane | undefined) ?? { c: 0 };
      d.numeric.set(name, p);
      p.c++;
      if (v !== undefined)
        mergeNumeric(p, {
          c: 0,
          n: 1,
          s: v,
          mn: v,
          mx: v,
          lt: e.ts,
          lv: v,
          m2: tp.spread ? 0 : undefined,
          ft: tp.first ? e.ts : undefined,
          fv: tp.first ? v : undefined,
        });
    } else {
      d.numeric.set(name, ((d.numeric.get(name) as number | undefined) ?? 0) + 1);
    }
  }
  for (const f of tp.distinct) {
    const value = packedField(e.packed, f);
    if (value === '') continue;
    if (e.ts > now) {
      d.future = true;
      continue;
    }
    const member = `v${f}:${value}`;
    const score = f * DISTINCT_BASE + e.ts;
    if ((d.members.get(member) ?? -Infinity) < score) d.members.set(member, score);
  }
  for (const spec of tp.values) {
    let value: string;
    if (spec.list) {
      // A last_k / first_k list: the event goes into its panes' lists, not counts; an
      // approx_distinct sketch: its value's hash does.
      const v = packedField(e.packed, spec.source!);
      if (v !== '') {
        const entry: [number, string] = spec.list.sketch ? [0, sketchHash(v)] : [e.ts, v];
        for (const level of spec.levels) {
          const name = `${spec.field}${LEVEL_PREFIX[level]}${Math.floor(e.ts / level)}`;
          const l = d.lists.get(name) ?? { spec, entries: [] };
          d.lists.set(name, l);
          l.entries.push(entry);
        }
      }
      continue;
    } else if (spec.edges) {
      const raw = packedField(e.packed, spec.source!);
      value = raw !== '' && Number.isFinite(Number(raw)) ? bucketLabel(spec.edges, spec.labels!, Number(raw)) : '';
    } else if (spec.percentile) {
      const raw = packedField(e.packed, spec.source!);
      value = raw !== '' && Number.isFinite(Number(raw)) ? percentileKey(Number(raw)) : '';
    } else {
      value = packedField(e.packed, spec.field);
    }
    if (value === '') continue;
    (e.keys ??= new Map()).set(spec.field, value);
    for (const level of spec.levels) {
      const name = `${spec.field}${LEVEL_PREFIX[level]}${Math.floor(e.ts / level)}`;
      const counts = d.values.get(name) ?? new Map<string, number>();
      d.values.set(name, counts);
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
  }
}

/**
 * Step 3 of writeType.lua: the panes to update, and each running total's move (names to
 * fetch). With `known` (panesSeen.ts), second and minute panes it says hold no events
 * are not named: HMGET would return nil for them.
 */
function planTotals(visit: PlannedVisit, tp: TypePlan, now: number, known?: KnownPanes): void {
  const { meta, deltas: d } = visit;
  const fetch = new Set<string>();
  for (const names of [d.numeric.keys(), d.values.keys(), d.lists.keys()]) for (const name of names) if (!known || mayExist(known, name)) fetch.add(name);
  const keep = known && ((level: number, index: number) => paneMayExist(known, level, index));
  const seen = new Set<string>();
  for (const tag of tp.tags) {
    if (tag.total === '' || seen.has(tag.total)) continue;
    seen.add(tag.total);
    const [from, to] = windowRange({ windowMs: tag.window, resolutionMs: tag.res }, now);
    const job: TotalJob = { tag, from, done: to - tag.res, p: Math.floor(now / tag.res), adds: [], subs: [] };
    const late = d.events.some((e) => e.ts >= from && e.ts < job.done);
    const kept = meta?.v.get(tag.total);
    if (kept !== undefined && !late && Math.floor(meta!.newest / tag.res) - meta!.d.get(tag.total)! === job.p) job.keep = kept;
    if (job.keep === undefined) {
      const own = meta?.d.has(tag.total) === true && ownField(tag.total);
      const moved = totalMove(meta, tag, from, to, visit.oldNewest);
      const prefix = COUNTED_AGGREGATIONS.includes(tag.agg) ? String(tag.field) : '';
      if (moved) {
        job.base = own ? undefined : moved.base;
        job.baseInOwnField = own;
        if (own) fetch.add(`C${tag.total}`);
        job.adds = moved.adds.flatMap(([a, b]) => coverNames(a, b, tag.levels, prefix, keep));
        job.subs = moved.subs.flatMap(([a, b]) => coverNames(a, b, tag.levels, prefix, keep));
      } else if (meta && (visit.oldNewest ?? Infinity) >= from) {
        job.adds = coverNames(from, job.done, tag.levels, prefix, keep);
      }
      for (const n of [...job.adds, ...job.subs]) fetch.add(n);
    }
    visit.jobs.push(job);
  }
  visit.fetch = visit.secondsForm ? secondsFetch(fetch, d, known) : [...fetch];
}

/**
 * The S form's second read: each one-second pane named becomes its minute's field, and
 * each minute the call writes seconds into is read whole (unless `known` says it has none).
 */
function secondsFetch(names: Set<string>, d: Deltas, known?: KnownPanes): string[] {
  const out = new Set<string>();
  for (const name of names) out.add(/^s\d/.test(name) ? secondsField(Number(name.slice(1))) : name);
  for (const name of d.numeric.keys()) {
    if (name[0] !== 's') continue;
    const second = Number(name.slice(1));
    if (!known || paneMayExist(known, 60_000, Math.floor(second / 60))) out.add(secondsField(second));
  }
  return [...out];
}

/** The S form's second read as one-second panes: got with s<second> → count added for every second its S fields hold. */
function expandSeconds(got: Map<string, string | null>): Map<string, string | null> {
  const out = new Map(got);
  for (const [name, text] of got) {
    if (name[0] !== 'S' || !text) continue;
    const base = Number(name.slice(1)) * 60;
    for (const [sec, c] of parseSeconds(text)) out.set(`s${base + sec}`, String(c));
  }
  return out;
}

/** Whether pane `name` ("<field><level letter><index>") can exist by `known` (see paneMayExist). */
function mayExist(known: KnownPanes, name: string): boolean {
  const m = /^\d*([sm])(\d+)$/.exec(name);
  return !m || paneMayExist(known, m[1] === 's' ? 1000 : 60_000, Number(m[2]));
}

/** totalPlan (with rangeDiff) of totals.lua, for a write: the ranges to add and subtract, or null without a usable total. */
function totalMove(meta: PaneMeta | null, tag: TagPlan, from: number, to: number, newest: number | undefined) {
  const base = meta && tag.total !== '' ? meta.v.get(tag.total) : undefined;
  if (base === undefined) return null;
  const p = Math.floor(meta!.newest / tag.res) - meta!.d.get(tag.total)!;
  const [oldFrom, oldEnd] = windowRange({ windowMs: tag.window, resolutionMs: tag.res }, p * tag.res);
  const oldTo = oldEnd - tag.res;
  const done = to - tag.res;
  if (oldFrom < oldTo && from < done && (oldFrom >= done || from >= oldTo)) return null;
  const low = Math.floor(meta!.oldest / tag.res) * tag.res;
  const high = newest !== undefined ? (Math.floor(newest / tag.res) + 1) * tag.res : Infinity;
  const adds: [number, number][] = [];
  const subs: [number, number][] = [];
  const keep = (list: [number, number][], a: number, b: number) => {
    [a, b] = [Math.max(a, low), Math.min(b, high)];
    if (a < b) list.push([a, b]);
  };
  if (from < oldFrom) keep(adds, from, oldFrom);
  else if (from > oldFrom) keep(subs, oldFrom, from);
  if (done > oldTo) keep(adds, oldTo, done);
  else if (done < oldTo) keep(subs, done, oldTo);
  return { base, adds, subs };
}

/**
 * When keys whose newest event is at `t` (ms) may expire (includes/expiry.lua, the same
 * rule): once it has left the longest window `longest`, plus a minute, rounded up to a step
 * of 2^k minutes, the largest with 60 steps within the window (1 min for an hour's window,
 * 16 min for a day's). An expiry moves (PEXPIRE GT) only when this value does. Steps divide
 * one another, so a longer window's keys never expire first.
 */
export function keyExpiry(t: number, longest: number): number {
  let step = MINUTE;
  while (step * 120 <= longest) step *= 2;
  return Math.ceil((t + longest + MINUTE) / step) * step;
}

/** Steps 4–6 of writeType.lua: the new panes, totals, buckets, index members and expiry, from the second read. */
export function visitWrites(visit: PlannedVisit, tp: TypePlan, now: number, read: Map<string, string | null>): VisitWrites | string {
  const { meta, deltas: d } = visit;
  const got = visit.secondsForm ? expandSeconds(read) : read;
  const newest = Math.max(visit.oldNewest ?? d.newest!, d.newest!);
  const out: VisitWrites = { writes: [], drops: [], members: [], expireInMs: 0, newest, meta: '', version: '' };
  const put = (name: string, value: string | Buffer) => out.writes.push(name, value);
  const totals = new Map<string, [number, string, number]>();
  for (const job of visit.jobs) {
    if (job.baseInOwnField) {
      const own = got.get(`C${job.tag.total}`);
      if (own === null || own === undefined) return 'count_by total missing';
      job.base = own;
    }
    totals.set(job.tag.total, [job.p, job.keep ?? movedTotal(job, got, d), job.tag.res]);
  }
  paneWrites(visit, tp, got, put);
  const cutoffMinute = Math.floor((now - tp.longest) / MINUTE);
  visit.dedup.splitFull();
  if (visit.prune) {
    // Step 5's sweep of one bucket a second (its entries older than the cutoff, anywhere in it).
    const b = visit.dedup.buckets.get(visit.prune.bucket) ?? visit.prune.text;
    if (isMark(b)) return 'prune due, swept bucket split';
    if (b) visit.dedup.buckets.set(visit.prune.bucket, pruneBucket(b, cutoffMinute, 10));
  }
  for (const [name, b] of visit.dedup.buckets) {
    const kept = isMark(b) ? b : dropLeading(b, cutoffMinute, entrySize(name));
    if (kept.length === 0) out.drops.push(name);
    else put(name, kept);
  }
  const expiry = keyExpiry(newest, tp.longest);
  out.expireInMs = expiry - now;
  if (!meta) out.ttl = 'SET';
  else if (keyExpiry(meta.newest, tp.longest) < expiry) out.ttl = 'GT';
  const pruned = visit.prune && prunePanes(tp, visit.prune.members ?? [], prunedUpTo(tp, now), visit.secondsForm === true, visit.prune.known);
  if (pruned) out.prune = pruned.writes;
  const seconds = pruneSecondsOf(visit, tp, out);
  // With a prune, the lowest pane member it leaves is what the next prune check compares.
  let oldest = pruned ? pruned.lowest : meta?.oldest;
  // The members of the minute and hour of the newest event already written are in the
  // index (that write added them; a prune that could remove them sends the visit to the
  // script): ZADD only what may be new.
  const known = meta ? [`m${Math.floor(meta.newest / MINUTE)}`, `h${Math.floor(meta.newest / 3_600_000)}`] : [];
  for (const [member, score] of d.members) {
    if (!known.includes(member)) out.members.push(score, member);
    if (score < DISTINCT_BASE && (oldest === undefined || score < oldest)) oldest = score;
  }
  out.meta = formatMeta(newest, oldest!, totals, seconds, visit.secondsForm);
  put('T', out.meta);
  for (const job of visit.jobs) if (job.keep === undefined && ownField(job.tag.total)) put(`C${job.tag.total}`, totals.get(job.tag.total)![1]);
  out.version = String(Number(visit.version || 0) + 1);
  put('V', out.version);
  return out;
}

/** Step 4's new panes (numeric, value and list panes) from the second read `got` (with the S form's seconds expanded), through `put`. */
function paneWrites(visit: PlannedVisit, tp: TypePlan, got: Map<string, string | null>, put: (name: string, value: string | Buffer) => void): void {
  const d = visit.deltas;
  const minutes = new Map<string, Map<number, number>>();
  for (const [name, delta] of d.numeric) {
    const old = got.get(name) ?? null;
    if (visit.secondsForm && name[0] === 's') {
      // Into its minute's field, with the seconds it already holds.
      const sec = Number(name.slice(1));
      const field = secondsField(sec);
      let counts = minutes.get(field);
      if (!counts) minutes.set(field, (counts = parseSeconds(got.get(field))));
      counts.set(sec % 60, (counts.get(sec % 60) ?? 0) + (delta as number));
    } else if (tp.numeric) put(name, formatNumeric(old !== null ? mergeNumeric(parseNumeric(old), delta as NumericPane) : (delta as NumericPane)));
    else put(name, String((old !== null ? Number(old) : 0) + (delta as number)));
  }
  for (const [field, counts] of minutes) put(field, formatSeconds(counts));
  for (const [name, counts] of d.values) put(name, formatValues(addValues(counts, got.get(name), 1)));
  for (const [name, l] of d.lists) {
    if (l.spec.list!.sketch) {
      put(
        name,
        mergeSketch(
          got.get(name),
          l.entries.map((e) => e[1]),
          l.spec.list!.k,
        ),
      );
      continue;
    }
    const entries = parseList(got.get(name) ?? null, l.entries);
    put(name, formatList(orderList(entries, l.spec.list!.newest, l.spec.numericList === true, l.spec.list!.k)));
  }
}

/**
 * Whether a type's one-second panes are pruned on their own (writeType.lua's step 5): its
 * seconds tags read them over less than its longest window (clicks_5m beside clicks_24h),
 * so keeping them as long as its minutes would keep each for a day where five minutes
 * read it.
 */
export function secondsPruned(tp: TypePlan): boolean {
  return tp.secondsKept > 0 && tp.secondsKept * 1000 < tp.longest;
}

/**
 * The highest time-index score whose minute's one-second panes a prune at `now` deletes
 * (secondsPruned types): minutes that ended a minute before the seconds tags' longest
 * window starts. Every total a write leaves reads from its own window on, and reads after it
 * from theirs, so no one reads those seconds again.
 */
export function secondsUpTo(tp: TypePlan, now: number): number {
  return now - tp.secondsKept * 1000 - MINUTE;
}

/**
 * The highest time-index score a prune at `now` deletes (writeType.lua's `cutoff - 60000`):
 * members that ended a minute before the type's longest window starts, and distinct values
 * that old. The fold's second read asks for the members up to it and the lowest above it.
 */
export function prunedUpTo(tp: TypePlan, now: number): number {
  return now - tp.longest - MINUTE;
}

/**
 * prunePanes of windowIndex.lua, for a write: from the time index's pane members (flat
 * member, score) the panes of those scored up to `last` (prunedUpTo; every level of
 * the numeric panes and value fields), the index ranges to remove (the pane members, and
 * each distinct field's values, that old), and the lowest pane member left (memberPanes:
 * a minute's seconds named only where `known` says one can exist).
 */
function prunePanes(tp: TypePlan, members: string[], last: number, inSecondsForm: boolean, known?: KnownPanes): { writes: PruneWrites; lowest?: number } {
  const drops: string[] = [];
  let lowest: number | undefined;
  for (let i = 0; i < members.length; i += 2) {
    const score = Number(members[i + 1]);
    if (score > last) {
      if (lowest === undefined || score < lowest) lowest = score;
      continue;
    }
    memberPanes(tp, members[i], drops, false, inSecondsForm, known);
  }
  const ranges: [string, string][] = [['-inf', String(last)]];
  for (const f of tp.distinct) ranges.push([String(f * DISTINCT_BASE), String(f * DISTINCT_BASE + last)]);
  return { writes: { drops, ranges }, lowest };
}

/**
 * Step 5's prune of one-second panes (secondsPruned types; its HDEL joins the prune's), and
 * the lowest minute that may hold any after the visit (T's third number), or undefined.
 */
function pruneSecondsOf(visit: PlannedVisit, tp: TypePlan, out: VisitWrites): number | undefined {
  if (!secondsPruned(tp)) return undefined;
  const { meta, deltas: d } = visit;
  let seconds = meta ? (meta.seconds ?? meta.oldest) : undefined;
  const sp = visit.secondsPrune;
  if (sp) {
    const drops = pruneSeconds(tp, sp.members ?? [], visit.secondsForm === true, sp.known);
    if (drops.length > 0) (out.prune ??= { drops: [], ranges: [] }).drops.push(...drops);
    seconds = sp.upTo - (sp.upTo % MINUTE) + MINUTE;
  }
  for (const e of d.events) {
    const m = e.ts - (e.ts % MINUTE);
    if (seconds === undefined || m < seconds) seconds = m;
  }
  return seconds;
}

/**
 * dropMemberPanes of windowIndex.lua: appends to `drops` the panes of time index member
 * `member` (m<minute> or h<hour>; others have none): every level of the numeric panes and
 * of each value field, or with `secondsOnly` only the one-second panes. A minute's
 * seconds are named only where `known` (panesSeen.ts) says one can exist: the script names
 * all 60, most of them missing (an HDEL of a missing field walks the whole hash when it is
 * a listpack); deleting those that are there leaves the same state.
 */
function memberPanes(tp: TypePlan, member: string, drops: string[], secondsOnly: boolean, inSecondsForm: boolean, known?: KnownPanes): void {
  const kind = member[0];
  if (kind !== 'm' && kind !== 'h') return;
  const idx = Number(member.slice(1));
  const dropLevels = (prefix: string, levels: readonly number[]) => {
    for (const level of levels) {
      if (kind === 'm' && level === 1000 && prefix === '' && inSecondsForm) drops.push(secondsFieldOfMinute(idx));
      else if (kind === 'm' && level === 1000) {
        for (let s = idx * 60; s <= idx * 60 + 59; s++) if (!known || paneMayExist(known, 1000, s)) drops.push(`${prefix}s${s}`);
      } else if (!secondsOnly && ((kind === 'm' && level === 60_000) || (kind === 'h' && level === 3_600_000))) drops.push(`${prefix}${kind}${idx}`);
    }
  };
  dropLevels('', tp.numericLevels);
  for (const spec of tp.values) dropLevels(String(spec.field), spec.levels);
}

/** pruneSeconds of windowIndex.lua: the one-second panes of the minutes among `members` (time index members). */
function pruneSeconds(tp: TypePlan, members: readonly string[], inSecondsForm: boolean, known?: KnownPanes): string[] {
  const drops: string[] = [];
  for (const member of members) memberPanes(tp, member, drops, true, inSecondsForm, known);
  return drops;
}

/** movedTotal: the old total plus the panes that entered, minus those that left, plus this call's events in its range. */
function movedTotal(job: TotalJob, got: Map<string, string | null>, d: Deltas): string {
  if (job.tag.agg === 'sum' || job.tag.agg === 'avg') {
    let [n, s] = sumTotal(job.base);
    const move = (names: string[], sign: number) => {
      for (const name of names) {
        const text = got.get(name);
        const p = text ? parseNumeric(text) : undefined;
        if (p?.n && p.n > 0) [n, s] = [n + sign * p.n, s + sign * p.s!];
      }
    };
    move(job.adds, 1);
    move(job.subs, -1);
    for (const e of d.events) {
      const raw = e.ts >= job.from && e.ts < job.done ? packedField(e.packed, job.tag.field) : '';
      if (raw !== '' && Number.isFinite(Number(raw))) [n, s] = [n + 1, s + Number(raw)];
    }
    return formatSumTotal(n, s);
  }
  if (job.tag.agg === 'variance' || job.tag.agg === 'stddev') {
    let [n, s, q] = spreadTotal(job.base);
    const move = (names: string[], sign: number) => {
      for (const name of names) {
        const text = got.get(name);
        const p = text ? parseNumeric(text) : undefined;
        if (p?.n && p.n > 0) [n, s, q] = [n + sign * p.n, s + sign * p.s!, q + sign * ((p.m2 ?? 0) + (p.s! * p.s!) / p.n)];
      }
    };
    move(job.adds, 1);
    move(job.subs, -1);
    for (const e of d.events) {
      const raw = e.ts >= job.from && e.ts < job.done ? packedField(e.packed, job.tag.field) : '';
      if (raw !== '' && Number.isFinite(Number(raw))) {
        const v = Number(raw);
        [n, s, q] = [n + 1, s + v, q + v * v];
      }
    }
    return formatSpreadTotal(n, s, q);
  }
  if (job.tag.agg === 'count') {
    let n = Number(job.base ?? 0);
    for (const s of job.adds) n += got.get(s) ? paneCount(got.get(s)!) : 0;
    for (const s of job.subs) n -= got.get(s) ? paneCount(got.get(s)!) : 0;
    for (const e of d.events) if (e.ts >= job.from && e.ts < job.done) n++;
    return String(n);
  }
  const counts = addValues(new Map(), job.base, 1);
  for (const s of job.adds) addValues(counts, got.get(s), 1);
  for (const s of job.subs) addValues(counts, got.get(s), -1);
  for (const e of d.events) {
    const value = e.ts >= job.from && e.ts < job.done ? (e.keys?.get(job.tag.field) ?? '') : '';
    if (value !== '') counts.set(value, (counts.get(value) ?? 0) + 1);
  }
  return formatValues(counts);
}
