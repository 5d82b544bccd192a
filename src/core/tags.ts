import fs from 'fs';
import path from 'path';
import { EVENT_TYPES, EventType } from './event';
import { parseDuration } from './duration';
import { ConfigError } from './errors';

/**
 * How a realtime tag folds the events of its window into a value: `count` of events; `sum`,
 * `avg`, `min`, `max` of a numeric field; `last`, the field's value in the newest event
 * (ties on time: the larger value); `distinct` values of an id field; `count_by`, events
 * per value of an id field.
 */
export const AGGREGATIONS = ['count', 'sum', 'avg', 'min', 'max', 'last', 'distinct', 'count_by'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];
/** Aggregations over a numeric field, kept in the numeric panes. */
export const NUMERIC_AGGREGATIONS: readonly Aggregation[] = ['sum', 'avg', 'min', 'max', 'last'];
/** Aggregations over an id field, kept in the value panes (one entry per distinct value). */
export const VALUE_AGGREGATIONS: readonly Aggregation[] = ['distinct', 'count_by'];

/**
 * The pane levels (ms): window state is kept in panes of 1 s, 1 min and 1 h. A tag's
 * resolution is one of them; coarser levels cover the middle of long windows, so a read
 * merges a bounded number of panes whatever the window holds.
 */
export const PANE_LEVELS_MS = [1000, 60_000, 3_600_000] as const;

/**
 * Event fields a window keeps per event, in the order they are packed into the window's
 * value hash. Fixed, so a config change never reinterprets values already stored.
 */
export const WINDOW_FIELDS = ['ad_id', 'campaign_id', 'currency', 'amount'] as const;
export type WindowField = (typeof WINDOW_FIELDS)[number];
const NUMERIC_FIELDS: readonly WindowField[] = ['amount'];

/** A realtime tag: one aggregation of one event type over a sliding window of event time. */
export interface WindowTag {
  name: string;
  event: EventType;
  aggregation: Aggregation;
  /** The event field aggregated (`sum`, `distinct`, `count_by`); absent for `count`. */
  field?: WindowField;
  /** Window length in ms, a multiple of the resolution. */
  windowMs: number;
  /**
   * Resolution (ms, one of PANE_LEVELS_MS): at read time `now` the tag counts the events
   * whose pane floor(ts / resolution) is one of the windowMs / resolution panes ending
   * with now's pane. @defaultValue 1 s for count/sum/avg/min/max/last up to 1 h, else 1 min
   */
  resolutionMs: number;
  /** count_by only: reply with the `top` largest counts (ties: smaller key first); all when absent. */
  top?: number;
}

/** How an offline tag folds a user's whole history (as of the batch's as-of time). */
export const OFFLINE_AGGREGATIONS = ['count', 'sum', 'first_seen', 'last_seen', 'active_days'] as const;
export type OfflineAggregation = (typeof OFFLINE_AGGREGATIONS)[number];

/**
 * An offline tag: a long-term aggregation over the ODS, computed by `profile batch`.
 * `first_seen`/`last_seen` are event times (epoch ms); `active_days` counts distinct UTC
 * dates with an event.
 */
export interface OfflineTag {
  name: string;
  aggregation: OfflineAggregation;
  /** Only events of this type (all types when absent). */
  event?: EventType;
  /** The summed field (`sum` only). */
  field?: 'amount';
  /** Only events at most this old at the as-of time (all history when absent). */
  windowMs?: number;
}

export const COMPARISONS = ['>=', '>', '<=', '<', '==', '!='] as const;
export const AGE_TESTS = ['within', 'older_than'] as const;

/**
 * One condition of a segment rule: a numeric comparison of a tag with a value, or an age
 * test of a time tag (`within 7d`: as-of minus the tag is at most 7 days; `older_than 30d`:
 * more than 30 days).
 */
export type SegmentCondition =
  { tag: string; op: (typeof COMPARISONS)[number]; value: number } | { tag: string; op: (typeof AGE_TESTS)[number]; valueMs: number };

/** A segment: the first rule whose conditions all hold gives the user's `segment_id`. */
export interface SegmentRule {
  id: string;
  when: SegmentCondition[];
}

/** Trigger comparisons: a trigger fires when all of them hold (`!=` and age tests are segment-only). */
export const TRIGGER_COMPARISONS = ['>=', '>', '<=', '<', '=='] as const;

/** One condition of a trigger: a realtime window tag (numeric) or an offline tag compared with a value. */
export interface TriggerCondition {
  tag: string;
  op: (typeof TRIGGER_COMPARISONS)[number];
  value: number;
}

/**
 * A trigger: fires for a user when an event makes all its conditions true while they were
 * not all true before (edge-triggered), and again only after they have been false.
 */
export interface Trigger {
  name: string;
  when: TriggerCondition[];
}

/** Every tag definition the product computes, loaded from one JSON file. */
export interface TagConfig {
  source: string;
  realtime: WindowTag[];
  offline: OfflineTag[];
  segments: SegmentRule[];
  /** Pushed when a user crosses a threshold (none when absent). */
  triggers: Trigger[];
}

/** The offline tag that holds the user's segment. */
export const SEGMENT_TAG = 'segment_id';

/** The tag file shipped with the product (this module runs from dist/src/). */
export const DEFAULT_TAGS_FILE = path.join(__dirname, '..', '..', '..', 'config', 'tags.json');

export const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_WINDOW_MS = 366 * 86_400_000;

/** Reads and validates a tag file (the shipped default when `file` is undefined). */
export function loadTagConfig(file?: string): TagConfig {
  const source = file ?? DEFAULT_TAGS_FILE;
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (err) {
    throw new ConfigError(`${source}: cannot read tag config (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  return parseTagConfig(json, source);
}

/** Validates a parsed tag config object; `source` names it in error messages. */
export function parseTagConfig(json: unknown, source = 'tag config'): TagConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: must be a JSON object with a "realtime" array`);
  }
  const top = json as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (!['realtime', 'offline', 'triggers'].includes(key)) throw new ConfigError(`${source}: unknown top-level key "${key}"`);
  }
  if (!Array.isArray(top.realtime) || top.realtime.length === 0) {
    throw new ConfigError(`${source}: "realtime" must be a non-empty array of tag definitions`);
  }
  const seen = new Set<string>();
  const realtime = top.realtime.map((entry, i) => {
    const tag = parseWindowTag(entry, `${source}: realtime[${i}]`);
    if (seen.has(tag.name)) throw new ConfigError(`${source}: realtime[${i}] (${tag.name}): duplicate tag name`);
    seen.add(tag.name);
    return tag;
  });
  const { offline, segments } = parseOffline(top.offline, source, seen);
  const triggers = parseTriggers(top.triggers, source, realtime, offline);
  return { source, realtime, offline, segments, triggers };
}

/** Triggers over realtime tags with a single number (not count_by) and offline tags. */
function parseTriggers(json: unknown, source: string, realtime: WindowTag[], offline: OfflineTag[]): Trigger[] {
  if (json === undefined) return [];
  if (!Array.isArray(json)) throw new ConfigError(`${source}: "triggers" must be an array`);
  const usable = [...realtime.filter((t) => t.aggregation !== 'count_by').map((t) => t.name), ...offline.map((t) => t.name)];
  const names = new Set<string>();
  return json.map((entry, i) => {
    const { e, bad } = configEntry(entry, `${source}: triggers[${i}]`, ['name', 'when']);
    if (names.has(e.name as string)) bad('duplicate trigger name');
    names.add(e.name as string);
    if (!Array.isArray(e.when) || e.when.length === 0) bad('"when" must be a non-empty array of conditions');
    const when = (e.when as unknown[]).map((c, j): TriggerCondition => {
      const cbad = (msg: string): never => bad(`when[${j}]: ${msg}`);
      if (typeof c !== 'object' || c === null || Array.isArray(c)) cbad('must be an object { tag, op, value }');
      const cond = c as Record<string, unknown>;
      for (const key of Object.keys(cond)) if (!['tag', 'op', 'value'].includes(key)) cbad(`unknown key "${key}"`);
      if (!usable.includes(cond.tag as string)) cbad(`"tag" must name a realtime tag other than count_by, or an offline tag (${usable.join(', ')})`);
      if (!(TRIGGER_COMPARISONS as readonly unknown[]).includes(cond.op)) cbad(`"op" must be one of ${TRIGGER_COMPARISONS.join(', ')}`);
      if (typeof cond.value !== 'number' || !Number.isFinite(cond.value)) cbad('"value" must be a finite number');
      return { tag: cond.tag as string, op: cond.op as TriggerCondition['op'], value: cond.value as number };
    });
    return { name: e.name as string, when };
  });
}

function parseOffline(json: unknown, source: string, names: Set<string>): { offline: OfflineTag[]; segments: SegmentRule[] } {
  if (json === undefined) return { offline: [], segments: [] };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: "offline" must be an object with "tags" and "segments" arrays`);
  }
  const o = json as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'tags' && key !== 'segments') throw new ConfigError(`${source}: offline: unknown key "${key}"`);
  }
  if (!Array.isArray(o.tags)) throw new ConfigError(`${source}: offline.tags must be an array`);
  const offline = o.tags.map((entry, i) => {
    const tag = parseOfflineTag(entry, `${source}: offline.tags[${i}]`);
    if (names.has(tag.name) || tag.name === SEGMENT_TAG) {
      throw new ConfigError(`${source}: offline.tags[${i}] (${tag.name}): name already used by another tag`);
    }
    names.add(tag.name);
    return tag;
  });
  const segments = o.segments === undefined ? [] : parseSegments(o.segments, source, offline);
  return { offline, segments };
}

function parseOfflineTag(entry: unknown, where: string): OfflineTag {
  const { e, bad } = configEntry(entry, where, ['name', 'event', 'aggregation', 'field', 'window']);
  if (!(OFFLINE_AGGREGATIONS as readonly unknown[]).includes(e.aggregation)) bad(`"aggregation" must be one of ${OFFLINE_AGGREGATIONS.join(', ')}`);
  if (e.event !== undefined && !(EVENT_TYPES as readonly unknown[]).includes(e.event)) bad(`"event" must be one of ${EVENT_TYPES.join(', ')}`);
  const tag: OfflineTag = { name: e.name as string, aggregation: e.aggregation as OfflineAggregation };
  if (e.event !== undefined) tag.event = e.event as EventType;
  if (tag.aggregation === 'sum') {
    if (e.field !== 'amount') bad('sum needs "field": "amount"');
    tag.field = 'amount';
  } else if (e.field !== undefined) {
    bad(`"field" is not used by ${tag.aggregation}`);
  }
  if (e.window !== undefined) {
    const ms = parseDuration(e.window);
    if (ms === undefined) bad('"window" must be a duration such as "7d", "30d" or a number of ms');
    tag.windowMs = ms;
  }
  return tag;
}

function parseSegments(json: unknown, source: string, tags: OfflineTag[]): SegmentRule[] {
  if (!Array.isArray(json) || json.length === 0) throw new ConfigError(`${source}: offline.segments must be a non-empty array`);
  const ids = new Set<string>();
  const rules = json.map((entry, i) => {
    const { e, bad } = configEntry(entry, `${source}: offline.segments[${i}]`, ['id', 'when'], 'id');
    if (ids.has(e.id as string)) bad('duplicate segment id');
    ids.add(e.id as string);
    if (!Array.isArray(e.when)) bad('"when" must be an array of conditions ([] matches every user)');
    const when = (e.when as unknown[]).map((c, j): SegmentCondition => {
      const cbad = (msg: string): never => bad(`when[${j}]: ${msg}`);
      if (typeof c !== 'object' || c === null || Array.isArray(c)) cbad('must be an object { tag, op, value }');
      const cond = c as Record<string, unknown>;
      for (const key of Object.keys(cond)) if (!['tag', 'op', 'value'].includes(key)) cbad(`unknown key "${key}"`);
      const tag = tags.find((t) => t.name === cond.tag);
      if (!tag) cbad(`"tag" must name an offline tag (${tags.map((t) => t.name).join(', ')})`);
      if ((AGE_TESTS as readonly unknown[]).includes(cond.op)) {
        if (tag!.aggregation !== 'first_seen' && tag!.aggregation !== 'last_seen') cbad(`${String(cond.op)} needs a first_seen or last_seen tag`);
        const valueMs = parseDuration(cond.value);
        if (valueMs === undefined) cbad('"value" must be a duration such as "7d"');
        return { tag: cond.tag as string, op: cond.op as (typeof AGE_TESTS)[number], valueMs: valueMs! };
      }
      if (!(COMPARISONS as readonly unknown[]).includes(cond.op)) cbad(`"op" must be one of ${[...COMPARISONS, ...AGE_TESTS].join(', ')}`);
      if (typeof cond.value !== 'number' || !Number.isFinite(cond.value)) cbad('"value" must be a finite number');
      return { tag: cond.tag as string, op: cond.op as (typeof COMPARISONS)[number], value: cond.value as number };
    });
    return { id: e.id as string, when };
  });
  if (rules[rules.length - 1].when.length !== 0) {
    throw new ConfigError(`${source}: offline.segments: the last rule must have "when": [] so every user gets a segment`);
  }
  return rules;
}

/**
 * Opens one config entry for checking: it must be an object with only `allowed` keys, and
 * `bad(msg)` throws a ConfigError naming the entry (`where`, plus its `idKey` value).
 */
function configEntry(entry: unknown, where: string, allowed: string[], idKey = 'name') {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(`${where}: must be an object`);
  const e = entry as Record<string, unknown>;
  const label = typeof e[idKey] === 'string' ? `${where} (${e[idKey]})` : where;
  const bad = (msg: string): never => {
    throw new ConfigError(`${label}: ${msg}`);
  };
  for (const key of Object.keys(e)) if (!allowed.includes(key)) bad(`unknown key "${key}"`);
  if (typeof e[idKey] !== 'string' || !NAME.test(e[idKey] as string)) bad(`"${idKey}" must match [a-z][a-z0-9_]* (at most 64 characters)`);
  return { e, bad };
}

function parseWindowTag(entry: unknown, where: string): WindowTag {
  const { e, bad } = configEntry(entry, where, ['name', 'event', 'aggregation', 'field', 'window', 'resolution', 'top']);
  if (!(EVENT_TYPES as readonly unknown[]).includes(e.event)) bad(`"event" must be one of ${EVENT_TYPES.join(', ')}`);
  if (!(AGGREGATIONS as readonly unknown[]).includes(e.aggregation)) bad(`"aggregation" must be one of ${AGGREGATIONS.join(', ')}`);
  const windowMs = parseDuration(e.window);
  if (windowMs === undefined) bad('"window" must be a duration such as "30s", "5m", "24h", "7d" or a number of ms');
  if (windowMs! > MAX_WINDOW_MS) bad('"window" may be at most 366d');
  const aggregation = e.aggregation as Aggregation;
  let field: WindowField | undefined;
  if (aggregation === 'count') {
    if (e.field !== undefined) bad('"field" is not used by count');
  } else {
    if (!(WINDOW_FIELDS as readonly unknown[]).includes(e.field)) bad(`"field" must be one of ${WINDOW_FIELDS.join(', ')}`);
    field = e.field as WindowField;
    const numeric = NUMERIC_FIELDS.includes(field);
    const wantsNumber = NUMERIC_AGGREGATIONS.includes(aggregation);
    if (wantsNumber && !numeric) bad(`${aggregation} needs a numeric field (${NUMERIC_FIELDS.join(', ')})`);
    if (!wantsNumber && numeric) bad(`${aggregation} needs an id field, not "${field}"`);
  }
  const resolutionMs = parseResolution(e.resolution, aggregation, windowMs!, bad);
  const tag: WindowTag = { name: e.name as string, event: e.event as EventType, aggregation, windowMs: windowMs!, resolutionMs };
  if (field) tag.field = field;
  if (e.top !== undefined) {
    if (aggregation !== 'count_by') bad('"top" is only for count_by');
    if (!Number.isInteger(e.top) || (e.top as number) < 1 || (e.top as number) > 10_000) bad('"top" must be an integer from 1 to 10000');
    tag.top = e.top as number;
  }
  return tag;
}

/**
 * A tag's resolution: given (1s, 1m or 1h), or the default — 1 s for count/sum/avg/min/max/
 * last windows up to 1 h, 1 min for longer windows and for distinct/count_by, whose panes
 * hold an entry per distinct value (1 s when the window is not whole minutes). The window
 * must be a whole number of resolution steps.
 */
function parseResolution(value: unknown, aggregation: Aggregation, windowMs: number, bad: (msg: string) => never): number {
  let ms: number;
  if (value === undefined) {
    ms = VALUE_AGGREGATIONS.includes(aggregation) || windowMs > 3_600_000 ? 60_000 : 1000;
    if (windowMs % ms !== 0) ms = 1000;
  } else {
    const given = parseDuration(value);
    if (given === undefined || !(PANE_LEVELS_MS as readonly number[]).includes(given)) bad('"resolution" must be "1s", "1m" or "1h"');
    ms = given!;
  }
  if (windowMs % ms !== 0) bad(`"window" must be a whole number of resolution steps (${ms / 1000} s)`);
  return ms;
}

/** The longest window over the tags of one event type (0 when the type has no tag). */
export function longestWindowFor(tags: readonly WindowTag[], type: EventType): number {
  return tags.reduce((max, t) => (t.event === type && t.windowMs > max ? t.windowMs : max), 0);
}

/** The longest window over all tags: how long a user's window keys can matter. */
export function longestWindow(tags: readonly WindowTag[]): number {
  return tags.reduce((max, t) => Math.max(max, t.windowMs), 0);
}
