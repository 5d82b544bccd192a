import fs from 'fs';
import path from 'path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CANONICAL_ODS_LINE, OdsFile } from './files';
import { BadLine, readOds } from './readOds';
import { CheckedFiles } from './checkedFiles';

/**
 * Queries over the ODS that trust only checked files (the batch's and the training sets'):
 * each file is checked first; one whose lines are all canonical (as the archiver writes
 * valid events) is read by DuckDB as it is; any other goes through the JS validator, which
 * reports each bad line as file:line and writes a copy of the file without them for
 * DuckDB to read.
 */

const CANONICAL_LINE_AT = new RegExp(`${CANONICAL_ODS_LINE.source.slice(1, -1)}\\n`, 'y');

/**
 * The file's line count if every line is canonical (CANONICAL_ODS_LINE: exactly as the
 * archiver writes a valid event, so DuckDB reads each field as the validator does), else
 * undefined (the file goes through the validator). Stops at the first other line.
 */
export async function canonicalLines(file: string): Promise<number | undefined> {
  // latin1: one character a byte; a line with other bytes does not match anyway.
  const stream = fs.createReadStream(file, { encoding: 'latin1', highWaterMark: 4 << 20 });
  let lines = 0;
  let rest = '';
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const text = rest + chunk;
      CANONICAL_LINE_AT.lastIndex = 0;
      let end = 0;
      while (CANONICAL_LINE_AT.test(text)) {
        lines++;
        end = CANONICAL_LINE_AT.lastIndex;
      }
      rest = text.slice(end);
      // What is left must be the start of a line still being read, not a line that failed.
      if (rest.includes('\n') || rest.length > 4096) return undefined;
    }
  } finally {
    stream.destroy();
  }
  return rest === '' ? lines : undefined; // a last line without its newline: torn, or written by hand
}

/** A valid event as the validator normalised it (an ISO time becomes epoch ms), with its line's stream id. */
function normalised(event: object, line: string): string {
  const { stream_id, ingested_at } = JSON.parse(line) as { stream_id?: string; ingested_at?: number };
  return JSON.stringify({ ...event, stream_id, ingested_at });
}

/** What checking the ODS files needs. */
export interface CheckOptions {
  files: OdsFile[];
  /** Where copies of files with bad lines go (removed by the caller). */
  tmpDir: string;
  onBadLine: (bad: BadLine) => void;
  /** Files earlier runs found canonical (skipped by the check; updated with this run's). */
  checked?: CheckedFiles;
}

/**
 * The files DuckDB reads: each canonical file as it is; for any other, a copy of its valid
 * lines the JS validator wrote (reporting each bad line). Counts the lines read.
 */
async function checkedSources(opts: CheckOptions, counts: { lines: number }): Promise<string[]> {
  const sources: string[] = [];
  for (const [i, file] of opts.files.entries()) {
    if (file.bytes === 0) continue;
    const stat = fs.statSync(file.path);
    let lines = opts.checked?.lines(file.path, stat);
    if (lines === undefined) {
      lines = await canonicalLines(file.path);
      if (lines !== undefined) opts.checked?.record(file.path, stat, lines);
      else opts.checked?.forget(file.path);
    }
    if (lines !== undefined) {
      counts.lines += lines;
      sources.push(file.path);
      continue;
    }
    // Suspect lines: the JS validator has the last word, and reports each bad line.
    const copy = path.join(opts.tmpDir, `checked-${i}.ndjson`);
    const valid: string[] = [];
    counts.lines += await readOds([file], { onEvent: (e, line) => valid.push(normalised(e, line)), onBadLine: opts.onBadLine });
    fs.writeFileSync(copy, valid.length ? valid.join('\n') + '\n' : '');
    if (valid.length > 0) sources.push(copy);
  }
  return sources;
}

/**
 * Runs `query` over the checked ODS files (`sources`; undefined when no file holds a valid
 * line). It starts on the files as they are while Node checks them (DuckDB runs on its own
 * threads): most runs read only files the archiver wrote, and then that result is the one.
 * Otherwise it is interrupted and runs again over the checked copies.
 */
export async function queryCheckedOds<T>(
  conn: DuckDBConnection,
  opts: CheckOptions,
  counts: { lines: number },
  query: (files: string[]) => Promise<T>,
): Promise<{ value: T | undefined; sources: string[] }> {
  const asTheyAre = opts.files.filter((f) => f.bytes > 0).map((f) => f.path);
  const early = query(asTheyAre).then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  const sources = await checkedSources(opts, counts);
  if (sources.length === asTheyAre.length && sources.every((s, i) => s === asTheyAre[i])) {
    const done = await early;
    if ('err' in done) throw done.err;
    return { value: done.value, sources };
  }
  conn.interrupt();
  await early;
  return { value: sources.length > 0 ? await query(sources) : undefined, sources };
}
