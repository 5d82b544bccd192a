import fs from 'fs';
import { ProfileEvent, ValidationResult, describeErrors, validateEvent } from '../core/event';
import { OdsFile } from '../ods/files';

/** A line the batch could not use, with where it is. */
export interface BadLine {
  file: string;
  line: number;
  reason: string;
}

export interface ReadCallbacks {
  /** A valid event, with its line as it stands in the file. */
  onEvent(event: ProfileEvent, line: string): void;
  onBadLine(bad: BadLine): void;
  /** Bytes of ODS read so far (for progress). */
  onBytes?(bytes: number): void;
}

/**
 * One ODS line as an event (its stream_id and ingested_at set aside), validated as a stored
 * event; null when the line is not JSON.
 */
export function parseOdsLine(text: string): ValidationResult | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const { stream_id: _s, ingested_at: _i, ...event } = (raw ?? {}) as Record<string, unknown>;
  return validateEvent(typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? event : raw, 0, { now: 0, maxFutureSkewMs: Infinity, stored: true });
}

/**
 * Streams ODS files line by line and hands every valid event to `onEvent`. A line that is
 * not JSON, fails the event schema, or is a torn last line (no newline at the end of the
 * file and not parseable) goes to `onBadLine` with its file and 1-based line number;
 * reading always goes on. Returns the number of non-blank lines read.
 */
export async function readOds(files: OdsFile[], cb: ReadCallbacks): Promise<number> {
  let lines = 0;
  let bytesRead = 0;
  for (const file of files) {
    let lineNo = 0;
    let rest = '';
    const handle = (text: string, last: boolean) => {
      lineNo++;
      if (text.trim() === '') return;
      lines++;
      const r = parseOdsLine(text);
      if (r === null) {
        cb.onBadLine({ file: file.path, line: lineNo, reason: last ? 'torn last line (no newline, not JSON)' : 'not valid JSON' });
        return;
      }
      if (r.ok) cb.onEvent(r.event, text);
      else cb.onBadLine({ file: file.path, line: lineNo, reason: describeErrors(r.errors) });
    };
    const stream = fs.createReadStream(file.path, { encoding: 'utf8', highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<string>) {
      bytesRead += Buffer.byteLength(chunk);
      const text = rest + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        handle(text.slice(start, nl), false);
        start = nl + 1;
      }
      rest = text.slice(start);
      cb.onBytes?.(bytesRead);
    }
    if (rest !== '') handle(rest, true);
  }
  return lines;
}
