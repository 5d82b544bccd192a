import { createHash } from 'crypto';
import fs from 'fs';
import path from 'path';
import { EVENT_TYPES, EventType } from './event';
import { parseDuration } from './duration';
import { ConfigError } from './errors';
import {
  AGE_TESTS,
  AGGREGATIONS,
  Aggregation,
  COMPARISONS,
  NAME,
  NOT_NUMERIC_AGGREGATIONS,
  NUMERIC_AGGREGATIONS,
  NUMERIC_FIELDS,
  OFFLINE_AGGREGATIONS,
  OfflineAggregation,
  OfflineTag,
  PANE_LEVELS_MS,
  SEGMENT_TAG,
  SegmentCondition,
  SegmentRule,
  TRIGGER_COMPARISONS,
  TagConfig,
  Trigger,
  TriggerCondition,
  VALUE_AGGREGATIONS,
  WINDOW_FIELDS,
  WindowField,
  WindowTag,
} from './tags';
import { DEFAULT_SKETCH_K } from './sketch';

/**
 * The tag config file: reading it and checking every entry (realtime tags, offline tags and
 * segments, triggers), each failure a ConfigError naming the entry. The shapes it produces
 * are in tags.ts.
 */

/** The tag file shipped with the product (this module runs from dist/src/). */
export const DEFAULT_TAGS_FILE = path.join(__dirname, '..', '..', '..', 'config', 'tags.json');

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
  // A copy: a caller changing its object afterwards does not change this config's version.
  return { source, realtime, offline, segments, triggers, document: JSON.parse(JSON.stringify(json)) as unknown };
}

/** JSON with every object's keys sorted: the same config written differently is the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A tag config's version: the first 12 hex digits of the SHA-256 of its canonical JSON
 * (keys sorted, no spaces), so it changes with the content, not with formatting or the
 * file's name.
 */
export function tagConfigVersion(config: Pick<TagConfig, 'document'>): string {
  return createHash('sha256').update(canonicalJson(config.document)).digest('hex').slice(0, 12);
}

/** Triggers over realtime tags with a single number (not count_by) and offline tags. */
function parseTriggers(json: unknown, source: string, realtime: WindowTag[], offline: OfflineTag[]): Trigger[] {
  if (json === undefined) return [];
  if (!Array.isArray(json)) throw new ConfigError(`${source}: "triggers" must be an array`);
  const usable = [...realtime.filter((t) => !NOT_NUMERIC_AGGREGATIONS.includes(t.aggregation)).map((t) => t.name), ...offline.map((t) => t.name)];
  const names = new Set<string>();
  return json.map((entry, i) => {
    const { e, bad } = configEntry(entry, `${source}: triggers[${i}]`, ['name', 'when']);
    if (names.has(e.name as string)) bad('duplicate trigger name');
    names.add(e.name as string);
    if (!Array.isArray(e.when) || e.when.length === 0) bad('"when" must be a non-empty array of conditions');
    const when = (e.when as unknown[]).map((c, j): TriggerCondition => {
      const [cond, cbad] = conditionEntry(c, j, bad);
      if (!usable.includes(cond.tag as string))
        cbad(
          `"tag" must name a realtime tag whose value is a number (not count_by, histogram, last_k, first_k or percentile), or an offline tag (${usable.join(', ')})`,
        );
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
      const [cond, cbad] = conditionEntry(c, j, bad);
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
  const { e, bad } = configEntry(entry, where, ['name', 'event', 'aggregation', 'field', 'window', 'resolution', 'top', 'buckets', 'k', 'p']);
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
    const wantsNumber = NUMERIC_AGGREGATIONS.includes(aggregation) || aggregation === 'histogram' || aggregation === 'percentile';
    const anyField = aggregation === 'last_k' || aggregation === 'first_k';
    if (wantsNumber && !numeric) bad(`${aggregation} needs a numeric field (${NUMERIC_FIELDS.join(', ')})`);
    if (!wantsNumber && !anyField && numeric) bad(`${aggregation} needs an id field, not "${field}"`);
  }
  const resolutionMs = parseResolution(e.resolution, aggregation, windowMs!, bad);
  const tag: WindowTag = { name: e.name as string, event: e.event as EventType, aggregation, windowMs: windowMs!, resolutionMs };
  if (field) tag.field = field;
  if (e.top !== undefined) {
    if (aggregation !== 'count_by') bad('"top" is only for count_by');
    if (!Number.isInteger(e.top) || (e.top as number) < 1 || (e.top as number) > 10_000) bad('"top" must be an integer from 1 to 10000');
    tag.top = e.top as number;
  }
  if (aggregation === 'histogram') {
    const b = e.buckets;
    const ok =
      Array.isArray(b) &&
      b.length >= 1 &&
      b.length <= 50 &&
      b.every((x, i) => typeof x === 'number' && Number.isFinite(x) && (i === 0 || x > (b[i - 1] as number)));
    if (!ok) bad('"buckets" must be 1 to 50 ascending numbers: the edges between the buckets');
    tag.buckets = b as number[];
  } else if (e.buckets !== undefined) bad('"buckets" is only for histogram');
  parseSketchOptions(e, aggregation, tag, bad);
  return tag;
}

/** `k` of last_k / first_k / approx_distinct and `p` of percentile, onto `tag`. */
function parseSketchOptions(e: Record<string, unknown>, aggregation: Aggregation, tag: WindowTag, bad: (msg: string) => never): void {
  if (aggregation === 'last_k' || aggregation === 'first_k') {
    if (!Number.isInteger(e.k) || (e.k as number) < 1 || (e.k as number) > 100) bad('"k" must be an integer from 1 to 100');
    tag.k = e.k as number;
  } else if (aggregation === 'approx_distinct') {
    const k = e.k ?? DEFAULT_SKETCH_K;
    if (!Number.isInteger(k) || (k as number) < 16 || (k as number) > 4096) bad('"k" must be an integer from 16 to 4096 (the sketch\'s size)');
    tag.k = k as number;
  } else if (e.k !== undefined) bad('"k" is only for last_k, first_k and approx_distinct');
  if (aggregation === 'percentile') {
    const p = e.p;
    const ok =
      Array.isArray(p) &&
      p.length >= 1 &&
      p.length <= 10 &&
      p.every((x, i) => typeof x === 'number' && x > 0 && x <= 100 && Math.abs(x * 10 - Math.round(x * 10)) < 1e-9 && (i === 0 || x > (p[i - 1] as number)));
    if (!ok) bad('"p" must be 1 to 10 ascending percentiles in (0, 100], each to a tenth at most (e.g. [50, 90, 99.9])');
    tag.p = p as number[];
  } else if (e.p !== undefined) bad('"p" is only for percentile');
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

/**
 * Opens one condition of a `when` list (triggers and segments alike): an object with only
 * `tag`, `op` and `value`; `cbad(msg)` throws naming the condition.
 */
function conditionEntry(c: unknown, j: number, bad: (msg: string) => never): [Record<string, unknown>, (msg: string) => never] {
  const cbad = (msg: string): never => bad(`when[${j}]: ${msg}`);
  if (typeof c !== 'object' || c === null || Array.isArray(c)) cbad('must be an object { tag, op, value }');
  const cond = c as Record<string, unknown>;
  for (const key of Object.keys(cond)) if (!['tag', 'op', 'value'].includes(key)) cbad(`unknown key "${key}"`);
  return [cond, cbad];
}
