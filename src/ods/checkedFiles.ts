import fs from 'fs';
import path from 'path';

/**
 * ODS files an earlier batch run found canonical (every line as the archiver writes a
 * valid event), so this run skips their check: `<odsDir>/.batch-checked.json`, per file
 * its inode, size, modification time (ms) and line count. Any change to a file (an append, a
 * rewrite by erasure) changes one of them and the file is checked again. When the ODS
 * folder is read-only the list is simply not kept.
 */

interface Entry {
  ino: number;
  size: number;
  mtimeMs: number;
  lines: number;
}

const FILE = '.batch-checked.json';

export class CheckedFiles {
  private constructor(
    private readonly odsDir: string,
    private readonly entries: Record<string, Entry>,
  ) {}

  static load(odsDir: string): CheckedFiles {
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(odsDir, FILE), 'utf8')) as { version?: number; files?: Record<string, Entry> };
      return new CheckedFiles(odsDir, parsed.version === 1 && parsed.files ? parsed.files : {});
    } catch {
      return new CheckedFiles(odsDir, {}); // none yet, or unreadable: check everything
    }
  }

  /** The file's line count if it was found canonical and has not changed since. */
  lines(file: string, stat: fs.Stats): number | undefined {
    const e = this.entries[path.relative(this.odsDir, file)];
    return e && e.ino === stat.ino && e.size === stat.size && e.mtimeMs === Math.round(stat.mtimeMs) ? e.lines : undefined;
  }

  /** Records a file found canonical, with the stat taken before it was read. */
  record(file: string, stat: fs.Stats, lines: number): void {
    this.entries[path.relative(this.odsDir, file)] = { ino: stat.ino, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), lines };
  }

  /** Drops a file that is no longer canonical. */
  forget(file: string): void {
    delete this.entries[path.relative(this.odsDir, file)];
  }

  /**
   * Writes the list; with `present` (every file of the ODS), entries of files no longer
   * there are dropped. False when the folder is not writable.
   */
  save(present?: readonly string[]): boolean {
    const keep = present && new Set(present.map((f) => path.relative(this.odsDir, f)));
    const files = Object.fromEntries(Object.entries(this.entries).filter(([f]) => !keep || keep.has(f)));
    const target = path.join(this.odsDir, FILE);
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify({ version: 1, files }));
      fs.renameSync(tmp, target);
      return true;
    } catch {
      fs.rmSync(tmp, { force: true });
      return false;
    }
  }
}
