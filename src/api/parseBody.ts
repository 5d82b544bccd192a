import { FieldError } from '../core/event';

/** Longest NDJSON line accepted (an event is far smaller). */
export const MAX_NDJSON_LINE = 64 * 1024;

export type ParsedBody = { ok: true; items: unknown[] } | { ok: false; status: number; errors: FieldError[] };

/**
 * Turns a POST /events body into the list of raw events: a JSON object (one event), a JSON
 * array, or NDJSON text (one event per non-blank line). Errors index items the same way
 * the events are indexed: NDJSON item i is the i-th non-blank line.
 */
export function bodyToItems(body: unknown, isNdjson: boolean, maxEvents: number): ParsedBody {
  let items: unknown[];
  if (isNdjson) {
    if (typeof body !== 'string') return invalid(0, 'body must be NDJSON text');
    if (body.trim() === '') return invalid(0, 'empty body: send one event object, a JSON array of events, or NDJSON lines');
    items = [];
    const errors: FieldError[] = [];
    const lines = body.split('\n');
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n].trim();
      if (line === '') continue;
      if (line.length > MAX_NDJSON_LINE) {
        errors.push({ index: items.length, field: '', message: `line ${n + 1}: longer than ${MAX_NDJSON_LINE} characters` });
        items.push(undefined);
        continue;
      }
      try {
        items.push(JSON.parse(line));
      } catch {
        errors.push({ index: items.length, field: '', message: `line ${n + 1}: not valid JSON` });
        items.push(undefined);
      }
      if (items.length > maxEvents) break;
    }
    if (errors.length > 0 && items.length <= maxEvents) return { ok: false, status: 400, errors };
  } else if (Array.isArray(body)) {
    items = body;
  } else if (typeof body === 'object' && body !== null) {
    items = [body];
  } else {
    return invalid(0, 'body must be a JSON object, a JSON array of objects, or NDJSON');
  }
  if (items.length === 0) return invalid(0, 'no events in the request');
  if (items.length > maxEvents) {
    return { ok: false, status: 413, errors: [{ index: maxEvents, field: '', message: `at most ${maxEvents} events per request` }] };
  }
  return { ok: true, items };
}

function invalid(index: number, message: string): ParsedBody {
  return { ok: false, status: 400, errors: [{ index, field: '', message }] };
}
