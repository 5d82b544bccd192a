import { OdsFile } from '../ods/files';
import { PartitionStatus } from '../redis/streamStatus';

/** Lays rows out as a plain text table with aligned columns. */
export function table(header: string[], rows: string[][], leftAligned: number[] = [0]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (leftAligned.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function age(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * The `profile status` report: one row per partition and group (length, lag, pending,
 * consumers, age of the oldest entry still in the stream; on a cluster also the master
 * serving it), then the ODS size.
 */
export function formatStatus(partitions: PartitionStatus[], ods: OdsFile[], odsDir: string, now: number): string {
  const rows: string[][] = [];
  const nodes = partitions.some((p) => p.node);
  for (const p of partitions) {
    const oldest = p.first_id ? age(Math.max(0, now - Number(p.first_id.split('-')[0]))) : '-';
    const groups = p.groups.length ? p.groups : [undefined];
    for (const g of groups) {
      rows.push([
        p.stream, ...(nodes ? [p.node ?? '?'] : []), String(p.length), oldest, g?.name ?? '(no group)',
        g ? (g.lag === null ? '?' : String(g.lag)) : '-', g ? String(g.pending) : '-', g ? String(g.consumers) : '-',
      ]);
    }
  }
  const dates = new Set(ods.map((f) => f.date));
  return [
    nodes
      ? table(['stream', 'node', 'length', 'oldest', 'group', 'lag', 'pending', 'consumers'], rows, [0, 1, 4])
      : table(['stream', 'length', 'oldest', 'group', 'lag', 'pending', 'consumers'], rows, [0, 3]),
    '',
    `ODS ${odsDir}: ${ods.length} files in ${dates.size} date partitions, ${bytes(ods.reduce((n, f) => n + f.bytes, 0))}`,
  ].join('\n');
}
