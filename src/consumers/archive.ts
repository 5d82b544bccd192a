import fs from 'fs';
import path from 'path';
import { fsyncPath, odsFilePath, odsLine } from '../ods/files';
import { GROUPS } from '../redis/streamGroups';
import { GroupConsumer, GroupConsumerOptions, StreamBatch } from './groupConsumer';

export interface ArchiveConsumerOptions extends GroupConsumerOptions {
  /** Root of the ODS (`dt=YYYY-MM-DD/` folders are created below it). */
  odsDir: string;
  /**
   * Called after the lines of a batch are written and fsynced, before they are acked.
   * Tests use it to kill the process exactly between write and ack.
   */
  afterSync?: () => Promise<void> | void;
}

/** Most ODS files an archiver keeps open at once (one per event date it writes). */
const MAX_OPEN_FILES = 32;

/**
 * The archive consumer: a member of group `archive` that appends each event as one NDJSON
 * line to `<odsDir>/dt=<event date>/part-<consumer>.ndjson`, fsyncs, and only then acks.
 * A crash between write and ack makes the entries come again and be written twice; the
 * batch deduplicates by event id.
 */
export class ArchiveConsumer extends GroupConsumer {
  private readonly files = new Map<string, fs.promises.FileHandle>();
  /** Lines written (duplicates after a redelivery included). */
  linesWritten = 0;

  constructor(private readonly opts: ArchiveConsumerOptions) {
    super(GROUPS.archive, opts);
  }

  protected async handle(batches: StreamBatch[]): Promise<Map<string, string[]>> {
    const byFile = new Map<string, string[]>();
    for (const { id, event } of batches.flatMap((b) => b.entries)) {
      const file = odsFilePath(this.opts.odsDir, event.ts, this.opts.consumerName);
      let lines = byFile.get(file);
      if (!lines) byFile.set(file, (lines = []));
      lines.push(odsLine(event, id));
    }
    // Write every file of the batch, then fsync them all, then (in the caller) ack.
    const handles: fs.promises.FileHandle[] = [];
    for (const [file, lines] of byFile) {
      const fh = await this.open(file);
      await fh.write(lines.join(''));
      handles.push(fh);
      this.linesWritten += lines.length;
    }
    await Promise.all(handles.map((fh) => fh.datasync()));
    if (this.opts.afterSync) await this.opts.afterSync();
    return new Map(batches.map((b) => [b.stream, b.entries.map((e) => e.id)]));
  }

  /**
   * Opens `file` for appending. A new file's folder entry is fsynced too; an existing file
   * whose last line is torn (a crash mid-write) is cut back to its last complete line —
   * the torn entry was never acked and comes again.
   */
  private async open(file: string): Promise<fs.promises.FileHandle> {
    const cached = this.files.get(file);
    if (cached) {
      // Keep the map in least-recently-used order.
      this.files.delete(file);
      this.files.set(file, cached);
      return cached;
    }
    const dir = path.dirname(file);
    const isNew = !fs.existsSync(file);
    if (isNew) {
      const dirIsNew = !fs.existsSync(dir);
      await fs.promises.mkdir(dir, { recursive: true });
      if (dirIsNew) await fsyncPath(this.opts.odsDir);
    } else {
      await cutTornTail(file);
    }
    const fh = await fs.promises.open(file, 'a');
    if (isNew) await fsyncPath(dir);
    this.files.set(file, fh);
    if (this.files.size > MAX_OPEN_FILES) {
      const [oldest, handle] = this.files.entries().next().value as [string, fs.promises.FileHandle];
      this.files.delete(oldest);
      await handle.close();
    }
    return fh;
  }

  protected override async closeResources(): Promise<void> {
    const handles = [...this.files.values()];
    this.files.clear();
    await Promise.all(handles.map((fh) => fh.close()));
  }
}

/** Truncates `file` after its last newline if it does not end with one. */
async function cutTornTail(file: string): Promise<void> {
  const fh = await fs.promises.open(file, 'r+');
  try {
    const { size } = await fh.stat();
    if (size === 0) return;
    const tail = Buffer.alloc(Math.min(size, 64 * 1024));
    let end = size;
    for (;;) {
      const start = Math.max(0, end - tail.length);
      await fh.read(tail, 0, end - start, start);
      if (end === size && tail[end - start - 1] === 0x0a) return; // ends with a newline: intact
      const nl = tail.subarray(0, end - start).lastIndexOf(0x0a);
      if (nl >= 0) {
        await fh.truncate(start + nl + 1);
        break;
      }
      if (start === 0) {
        await fh.truncate(0);
        break;
      }
      end = start;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}
