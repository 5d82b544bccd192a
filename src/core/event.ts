import { randomUUID } from 'crypto';

/** The event types the platform knows. */
export const EVENT_TYPES = ['impression', 'click', 'purchase'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** An accepted event, normalised: `ts` is epoch milliseconds and `event_id` is always set. */
export interface ProfileEvent {
  event_id: string;
  user_id: string;
  type: EventType;
  ts: number;
  ad_id?: string;
  campaign_id?: string;
  amount?: number;
  currency?: string;
}

/** One problem with one item of a request; `index` is the item's position (0-based). */
export interface FieldError {
  index: number;
  field: string;
  message: string;
}

/**
 * Ids (user, event, ad, campaign) are 1–128 characters of `[A-Za-z0-9._:@-]`.
 * No braces, so a user id can never break out of its `{<user_id>}` hash tag, and no
 * whitespace or separators, so ids are safe inside keys, members and file lines.
 */
export const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
/** ID_PATTERN in words, for error messages. */
export const ID_RULE = '1-128 characters of A-Z a-z 0-9 . _ : @ -';
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const CURRENCY = /^[A-Z]{3}$/;
const ID_FIELDS = ['event_id', 'user_id', 'ad_id', 'campaign_id'] as const;
const KNOWN_FIELDS = new Set(['event_id', 'user_id', 'type', 'ts', 'ad_id', 'campaign_id', 'amount', 'currency']);
/** Latest accepted event time: the year 9999, well inside a double's exact integers. */
const MAX_TS = 253_402_300_799_999;
/**
 * Ingestion refuses times before 2000-01-01 (946,684,800,000 ms): such a time is nearly always
 * epoch seconds sent as milliseconds (every time in seconds until 2286 is below it), and an
 * ad event from before 2000 has no window to land in. Stored entries are not held to it.
 */
export const EARLIEST_INGEST_MS = 946_684_800_000;

export interface ValidateOptions {
  /** Current time in ms; the default event time and the reference for `maxFutureSkewMs`. */
  now: number;
  /** How far in the future `ts` may be. */
  maxFutureSkewMs: number;
  /** Require `event_id` and `ts` (true for entries read back from a stream). */
  stored?: boolean;
}

export type ValidationResult = { ok: true; event: ProfileEvent } | { ok: false; errors: FieldError[] };

/**
 * Validates one raw event against the schema in DESIGN.md and normalises it.
 * Collects every problem of the item rather than stopping at the first.
 */
export function validateEvent(raw: unknown, index: number, opts: ValidateOptions): ValidationResult {
  const errors: FieldError[] = [];
  const fail = (field: string, message: string) => errors.push({ index, field, message });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('', 'event must be a JSON object');
    return { ok: false, errors };
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KNOWN_FIELDS.has(key)) fail(displayName(key), 'unknown field');
  }

  for (const field of ID_FIELDS) {
    const v = obj[field];
    if (v === undefined) {
      if (field === 'user_id' || (field === 'event_id' && opts.stored)) fail(field, 'is required');
    } else if (typeof v !== 'string' || !ID_PATTERN.test(v)) {
      fail(field, `must be ${ID_RULE}`);
    }
  }

  const type = obj.type;
  if (type === undefined) fail('type', 'is required');
  else if (!(EVENT_TYPES as readonly unknown[]).includes(type)) fail('type', `must be one of ${EVENT_TYPES.join(', ')}`);

  let ts = opts.now;
  if (obj.ts === undefined) {
    if (opts.stored) fail('ts', 'is required');
  } else if (typeof obj.ts === 'number') {
    if (!Number.isInteger(obj.ts) || obj.ts < 0 || obj.ts > MAX_TS) fail('ts', 'must be a non-negative integer of epoch milliseconds');
    else if (!opts.stored && obj.ts < EARLIEST_INGEST_MS) {
      // 1796526000 is Dec 2026 in epoch seconds but Jan 1970 in ms: archived under dt=1970-01-21, in no window.
      fail(
        'ts',
        `${obj.ts} is ${new Date(obj.ts).toISOString().slice(0, 10)} as epoch milliseconds, before 2000-01-01: epoch seconds? ts must be epoch milliseconds (or ISO-8601)`,
      );
    } else ts = obj.ts;
  } else if (typeof obj.ts === 'string' && Number.isFinite(parseIsoTime(obj.ts))) {
    ts = parseIsoTime(obj.ts);
    if (!opts.stored && ts < EARLIEST_INGEST_MS) fail('ts', 'is before 2000-01-01: events that old are refused');
  } else {
    fail('ts', 'must be epoch milliseconds or an ISO-8601 date-time with a time zone');
  }
  if (ts > opts.now + opts.maxFutureSkewMs) {
    fail('ts', `is more than ${opts.maxFutureSkewMs} ms in the future`);
  }

  const amount = obj.amount;
  if (amount === undefined) {
    if (type === 'purchase') fail('amount', 'is required for a purchase');
  } else if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
    fail('amount', 'must be a finite number >= 0');
  }

  if (obj.currency !== undefined && (typeof obj.currency !== 'string' || !CURRENCY.test(obj.currency))) {
    fail('currency', 'must be a three-letter upper-case ISO 4217 code');
  }

  if (errors.length > 0) return { ok: false, errors };
  const event: ProfileEvent = {
    event_id: (obj.event_id as string | undefined) ?? randomUUID(),
    user_id: obj.user_id as string,
    type: type as EventType,
    ts,
  };
  if (obj.ad_id !== undefined) event.ad_id = obj.ad_id as string;
  if (obj.campaign_id !== undefined) event.campaign_id = obj.campaign_id as string;
  if (amount !== undefined) event.amount = amount as number;
  if (obj.currency !== undefined) event.currency = obj.currency as string;
  return { ok: true, event };
}

/**
 * Epoch ms of a strict ISO-8601 date-time with a time zone, or NaN. Date.parse alone is
 * lenient (V8 reads dates out of free text), so the shape is checked first.
 */
export function parseIsoTime(s: string): number {
  return ISO_8601.test(s) ? Date.parse(s) : NaN;
}

/**
 * A field name from a request as it may appear in an error message: printable ASCII, at
 * most 64 characters; anything else is shown JSON-escaped and cut, so a message never
 * carries control characters, terminal escapes or a megabyte of key.
 */
export function displayName(key: string): string {
  if (/^[\x20-\x7e]{0,64}$/.test(key)) return key;
  const escaped = JSON.stringify(key)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > 64 ? `${escaped.slice(0, 61)}...` : escaped;
}

/** One line for a list of field errors, e.g. for a dead letter or a bad ODS line. */
export function describeErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field || 'event'}: ${e.message}`).join('; ');
}

/** Flattens an event into XADD field/value pairs (fixed order, absent fields left out). */
export function toStreamFields(e: ProfileEvent): string[] {
  const out = ['event_id', e.event_id, 'user_id', e.user_id, 'type', e.type, 'ts', String(e.ts)];
  if (e.ad_id !== undefined) out.push('ad_id', e.ad_id);
  if (e.campaign_id !== undefined) out.push('campaign_id', e.campaign_id);
  if (e.amount !== undefined) out.push('amount', String(e.amount));
  if (e.currency !== undefined) out.push('currency', e.currency);
  return out;
}

/**
 * Reads a stream entry's field/value list back into a raw event object (numbers parsed),
 * to be checked again with `validateEvent(..., { stored: true })`: the stream is
 * writable by anyone with Redis access, so consumers do not trust it blindly.
 */
export function fromStreamFields(fields: string[]): Record<string, unknown> {
  // No prototype: a hostile field named __proto__ stays an (unknown, rejected) field.
  const raw: Record<string, unknown> = Object.create(null);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const key = fields[i];
    const value = fields[i + 1];
    raw[key] = key === 'ts' || key === 'amount' ? (value.trim() === '' ? value : Number(value)) : value;
  }
  return raw;
}
