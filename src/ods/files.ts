import { ConfigError } from '../core/errors';
import fs from 'fs';
import path from 'path';
import { ProfileEvent } from '../core/event';

/**
 * The ODS: NDJSON files, one event per line, in `dt=YYYY-MM-DD/` folders by the UTC date
 * of the event time — a layout DuckDB, Spark or Trino read as it is. File names are made
 * from the writer's consumer name only, never from request data.
 */

/** One ODS line: the event as accepted, plus where and when it entered the stream. */
export interface OdsRecord extends ProfileEvent {
  /** Stream entry id, e.g. `1795687489291-0`. */
  stream_id: string;
  /** Ingest time (ms): the time part of the stream id. */
  ingested_at: number;
}

/** An ODS date (`--from`, `--to`, the `dt=` folders): `YYYY-MM-DD`. */
export const ODS_DATE = /^\d{4}-\d{2}-\d{2}$/;
const DT_DIR = new RegExp(`^dt=(${ODS_DATE.source.slice(1, -1)})$`);

/** The ODS date `YYYY-MM-DD` (UTC) of a time. */
export function odsDate(ts: number): string {
  return new Date(ts).toISOString().slice(0, 10);
}

/** `dt=YYYY-MM-DD` of an event time (UTC). */
export function dtOf(ts: number): string {
  return `dt=${odsDate(ts)}`;
}

/** The file a consumer appends to for one date. */
export function odsFilePath(odsDir: string, ts: number, consumerName: string): string {
  return path.join(odsDir, dtOf(ts), `part-${consumerName}.ndjson`);
}

/** One NDJSON line (with its newline) for an event read from stream entry `streamId`. */
export function odsLine(e: ProfileEvent, streamId: string): string {
  const record: OdsRecord = { ...e, stream_id: streamId, ingested_at: Number(streamId.slice(0, streamId.indexOf('-'))) };
  return JSON.stringify(record) + '\n';
}

const ID = '[A-Za-z0-9._:@-]{1,128}';
/** Epoch ms up to 252999999999999 (the validator's limit is 253402300799999: later ones are simply not canonical). */
const TS = '(?:0|[1-9][0-9]{0,13}|1[0-9]{14}|2[0-4][0-9]{13}|25[0-2][0-9]{12})';
/** A non-negative JSON number without exponent, below 1e16: always finite. */
const AMOUNT = '(?:0|[1-9][0-9]{0,15})(?:\\.[0-9]{1,20})?';
const OPTIONAL = (field: string, value: string) => `(?:,"${field}":${value})?`;
const REST = `${OPTIONAL('ad_id', `"${ID}"`)}${OPTIONAL('campaign_id', `"${ID}"`)}`;
/** Stream ids whose two parts each fit a signed 64-bit integer. */
const TAIL = `${OPTIONAL('currency', '"[A-Z]{3}"')},"stream_id":"[0-9]{1,18}-[0-9]{1,18}","ingested_at":(?:0|[1-9][0-9]{0,17})\\}`;

/**
 * An ODS line exactly as odsLine writes it for a valid event (without its newline):
 * minified JSON, fields in the archiver's order, only known fields, ids, type, time,
 * amount (required for a purchase) and currency as the event validator accepts them. A
 * line that matches is a valid event whose fields any NDJSON reader reads exactly as the
 * validator does; one that does not may still be valid (written by hand, an exponent in
 * an amount, another field order), so a non-match means "check it", never "refuse it".
 */
export const CANONICAL_ODS_LINE = new RegExp(
  `^\\{"event_id":"${ID}","user_id":"${ID}","type":(?:"(?:impression|click)","ts":${TS}${REST}${OPTIONAL('amount', AMOUNT)}` +
    `|"purchase","ts":${TS}${REST},"amount":${AMOUNT})${TAIL}$`,
);

export interface OdsFile {
  path: string;
  /** `YYYY-MM-DD` */
  date: string;
  bytes: number;
}

/**
 * The ODS files, oldest date first, optionally limited to dates `from`..`to` (inclusive,
 * `YYYY-MM-DD`). Anything that is not a `dt=` folder or an `.ndjson` file is ignored.
 */
export function listOdsFiles(odsDir: string, from?: string, to?: string): OdsFile[] {
  if (!fs.existsSync(odsDir)) return [];
  const files: OdsFile[] = [];
  for (const dir of fs.readdirSync(odsDir).sort()) {
    const m = DT_DIR.exec(dir);
    if (!m) continue;
    const date = m[1];
    if ((from && date < from) || (to && date > to)) continue;
    for (const name of fs.readdirSync(path.join(odsDir, dir)).sort()) {
      if (!name.endsWith('.ndjson')) continue;
      const file = path.join(odsDir, dir, name);
      const stat = fs.statSync(file);
      if (stat.isFile()) files.push({ path: file, date, bytes: stat.size });
    }
  }
  return files;
}

/** fsyncs a file or a folder (a folder: so a file created or renamed in it survives a crash). */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await fs.promises.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes sure the archiver can write the ODS folder (creating it if needed), so a wrong
 * `--ods` or permission fails at start-up with an instruction rather than when the first
 * event arrives. Writes and removes a probe file: the only check that holds for every
 * user, root included, and for read-only mounts.
 */
/** The ODS folder a reader (batch, training set) is pointed at must exist: a typo is a usage error, not "0 files read". */
export function assertOdsDir(dir: string): void {
  let isDir = false;
  try {
    isDir = fs.statSync(dir).isDirectory();
  } catch {
    // missing: said below
  }
  if (!isDir) throw new ConfigError(`the ODS folder ${dir} does not exist: point --ods / ODS_DIR at the folder the archiver writes (default ./data/ods)`);
}

export function assertWritableDir(dir: string): void {
  const probe = path.join(dir, `.write-check-${process.pid}`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(
      `the ODS folder ${dir} is not writable by this process (${code}): fix its permissions or point --ods / ODS_DIR at a folder it can write`,
    );
  }
}
