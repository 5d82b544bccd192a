import fs from 'fs';
import path from 'path';
import { EVENT_TYPES, EventType } from './event';
import { parseDuration } from './duration';

/** How a realtime tag folds the events of its window into a value. */
export const AGGREGATIONS = ['count', 'sum', 'distinct', 'count_by'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

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
  /** Window length in ms; an event with age <= windowMs at read time is in the window. */
  windowMs: number;
}

/** Every tag definition the product computes, loaded from one JSON file. */
export interface TagConfig {
  source: string;
  realtime: WindowTag[];
}

/** The tag file shipped with the product (this module runs from dist/src/). */
export const DEFAULT_TAGS_FILE = path.join(__dirname, '..', '..', 'config', 'tags.json');

/** Thrown for a tag file that cannot be used; the message names the file and the entry. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const NAME = /^[a-z][a-z0-9_]{0,63}$/;
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
    if (key !== 'realtime') throw new ConfigError(`${source}: unknown top-level key "${key}"`);
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
  return { source, realtime };
}

function parseWindowTag(entry: unknown, where: string): WindowTag {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new ConfigError(`${where}: must be an object`);
  }
  const e = entry as Record<string, unknown>;
  const label = typeof e.name === 'string' ? `${where} (${e.name})` : where;
  const bad = (msg: string): never => {
    throw new ConfigError(`${label}: ${msg}`);
  };
  for (const key of Object.keys(e)) {
    if (!['name', 'event', 'aggregation', 'field', 'window'].includes(key)) bad(`unknown key "${key}"`);
  }
  if (typeof e.name !== 'string' || !NAME.test(e.name)) bad('"name" must match [a-z][a-z0-9_]* (at most 64 characters)');
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
    if (aggregation === 'sum' && !numeric) bad(`sum needs a numeric field (${NUMERIC_FIELDS.join(', ')})`);
    if (aggregation !== 'sum' && numeric) bad(`${aggregation} needs an id field, not "${field}"`);
  }
  const tag: WindowTag = { name: e.name as string, event: e.event as EventType, aggregation, windowMs: windowMs! };
  if (field) tag.field = field;
  return tag;
}

/** The longest window over the tags of one event type (0 when the type has no tag). */
export function longestWindowFor(tags: readonly WindowTag[], type: EventType): number {
  return tags.reduce((max, t) => (t.event === type && t.windowMs > max ? t.windowMs : max), 0);
}

/** The longest window over all tags: how long a user's window keys can matter. */
export function longestWindow(tags: readonly WindowTag[]): number {
  return tags.reduce((max, t) => Math.max(max, t.windowMs), 0);
}
