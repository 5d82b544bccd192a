import type { TagConfigStatus } from '../redis/tagConfigs';
import type { TagChangePlan } from '../batch/tagChange';
import type { TagChangeApplied } from '../consumers/tagApply';
import { OdsFile } from '../ods/files';
import { PartitionStatus } from '../redis/streamGroups';
import { REQUIRED_POLICY, RedisServerSettings } from '../redis/settings';
import type { BatchSummary } from '../batch/run';
import type { LoadSummary } from '../batch/load';
import type { VerifyResult } from '../batch/verify';
import type { DeadLetter } from '../consumers/deadLetters';
import type { SimulateSummary } from '../dev/simulate';

/** The text every command prints: formatted here and nowhere else. */

const mib = (n: number) => (n / 1048576).toFixed(1);

/** Lays rows out as a plain text table with aligned columns. */
export function table(header: string[], rows: string[][], leftAligned: number[] = [0]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (leftAligned.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
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
export function formatStatus(
  partitions: PartitionStatus[],
  ods: OdsFile[],
  odsDir: string,
  now: number,
  redis: RedisServerSettings[] = [],
  tags?: TagConfigStatus,
): string {
  const rows: string[][] = [];
  const nodes = partitions.some((p) => p.node);
  for (const p of partitions) {
    const oldest = p.first_id ? age(Math.max(0, now - Number(p.first_id.split('-')[0]))) : '-';
    const groups = p.groups.length ? p.groups : [undefined];
    for (const g of groups) {
      rows.push([
        p.stream,
        ...(nodes ? [p.node ?? '?'] : []),
        String(p.length),
        oldest,
        g?.name ?? '(no group)',
        g ? (g.lag === null ? '?' : String(g.lag)) : '-',
        g ? String(g.pending) : '-',
        g ? String(g.consumers) : '-',
      ]);
    }
  }
  const dates = new Set(ods.map((f) => f.date));
  return [
    ...redis.map(redisLine),
    ...(redis.length ? [''] : []),
    nodes
      ? table(['stream', 'node', 'length', 'oldest', 'group', 'lag', 'pending', 'consumers'], rows, [0, 1, 4])
      : table(['stream', 'length', 'oldest', 'group', 'lag', 'pending', 'consumers'], rows, [0, 3]),
    '',
    `ODS ${odsDir}: ${ods.length} files in ${dates.size} date partitions, ${bytes(ods.reduce((n, f) => n + f.bytes, 0))}`,
    ...(tags ? ['', ...tagConfigLines(tags, now)] : []),
  ].join('\n');
}

/** The active tag config and the running processes with the version each runs. */
function tagConfigLines(s: TagConfigStatus, now: number): string[] {
  if (!s.active) return ['tag config: none recorded yet (the first process to start records its own)'];
  const active = s.active.version;
  let head = `tag config: active ${active} since ${new Date(s.active.since).toISOString()} (${age(Math.max(0, now - s.active.since))} ago)`;
  if (s.pending)
    head += `; backfilling ${s.pending.version} (generation ${s.pending.generation}) since ${age(Math.max(0, now - s.pending.since))} ago: \`profile tags apply\` of its file resumes it, \`profile tags cancel\` stops it`;
  if (s.processes.length === 0) return [head, 'no running process has announced itself'];
  const rows = s.processes.map((p) => [
    p.id,
    p.roles.join(',') || '-',
    p.version === active ? p.version : `${p.version} (NOT ACTIVE)`,
    age(Math.max(0, now - p.started_at)),
  ]);
  return [head, table(['process', 'roles', 'tag config', 'up'], rows, [0, 1, 2])];
}

/** One server's settings: its eviction policy (flagged unless noeviction), maxmemory and AOF. */
function redisLine(s: RedisServerSettings): string {
  const policy =
    s.maxmemoryPolicy === null
      ? 'maxmemory-policy unknown (this user may not run INFO)'
      : s.maxmemoryPolicy === REQUIRED_POLICY
        ? 'maxmemory-policy noeviction'
        : `maxmemory-policy ${s.maxmemoryPolicy} -- MAY EVICT KEYS: acknowledged events and window state can be lost (set noeviction)`;
  const max = s.maxmemory === null ? '' : `, maxmemory ${s.maxmemory === 0 ? 'none' : `${mib(s.maxmemory)} MiB`}`;
  const aof = s.aof === null ? '' : `, AOF ${s.aof ? 'on' : 'off'}`;
  return `Redis ${s.node}: ${policy}${max}${aof}`;
}

/** `profile batch`'s summary. */
export function formatBatchSummary(summary: BatchSummary, windows: boolean): string {
  return [
    `run        ${summary.run_id} (as of ${new Date(summary.as_of).toISOString()})`,
    `read       ${summary.files} files, ${mib(summary.bytes)} MiB, ${summary.lines} lines in ${summary.seconds.toFixed(1)} s (${Math.round(summary.lines / Math.max(summary.seconds, 0.001))} lines/s)`,
    `events     ${summary.events} counted, ${summary.duplicates} duplicates skipped, ${summary.events_after_as_of} after --as-of ignored`,
    `bad lines  ${summary.bad_lines}${summary.bad_line_samples
      .slice(0, 10)
      .map((b) => `\n  ${b.file}:${b.line}: ${b.reason}`)
      .join('')}`,
    `users      ${summary.users_written} offline profiles written${windows ? `, ${summary.window_users_written} window results` : ''}`,
  ].join('\n');
}

/** The batch's progress detail: bytes read of bytes to read, or (phase `write`) users written. */
export function batchProgress(phase: string, done: number, total: number): [share: number, label: string, detail: string, line: string] {
  const share = total ? done / total : 1;
  if (phase === 'write') return [share, phase.padEnd(14), `${done}/${total} users`, `${phase}: ${done} of ${total} users`];
  return [share, phase.padEnd(14), `${mib(done)}/${mib(total)} MiB`, `${phase}: ${mib(done)} of ${mib(total)} MiB`];
}

/** `profile verify`'s report: the first 50 mismatches, then the totals. */
export function formatVerify(result: VerifyResult): string {
  const lines = result.mismatches.slice(0, 50).map((m) => `mismatch ${m.user_id} ${m.tag}: batch ${JSON.stringify(m.batch)} live ${JSON.stringify(m.live)}`);
  if (result.mismatches.length > 50) lines.push(`… and ${result.mismatches.length - 50} more mismatches (--json lists every one)`);
  const skipped = [
    result.users_skipped_later_events ? `${result.users_skipped_later_events} skipped (events after the as-of time)` : '',
    result.users_skipped_expired ? `${result.users_skipped_expired} skipped (live state expired since)` : '',
  ].filter(Boolean);
  lines.push(
    `run ${result.run_id} as of ${new Date(result.as_of).toISOString()}: ${result.users_checked} users checked, ${result.mismatches.length} mismatches${skipped.length ? `; ${skipped.join(', ')}` : ''}`,
  );
  return lines.join('\n');
}

/** `profile dead list` as a table. */
export function formatDeadLetters(letters: DeadLetter[]): string {
  if (letters.length === 0) return 'no dead letters';
  const rows = letters.map((l) => [l.dead_id, l.stream, l.id, l.group, String(l.deliveries), l.error]);
  return table(['dead id', 'stream', 'entry id', 'group', 'deliveries', 'error'], rows, [0, 1, 2, 3, 5]);
}

/** `profile simulate`'s summary, with a curl line for its busiest user. */
export function formatSimulateSummary(summary: SimulateSummary, url: string): string {
  const processed =
    summary.processed_per_s === null
      ? 'not all processed within 60 s (is a realtime consumer running?)'
      : `${summary.processed_per_s} events/s (all processed ${summary.processed_seconds!.toFixed(1)} s after start)`;
  return [
    `sent       ${summary.sent} events in ${summary.send_seconds.toFixed(1)} s (${JSON.stringify(summary.by_type)})`,
    `accepted   ${summary.accepted} (${summary.accepted_per_s} events/s), rejected ${summary.rejected}, failed requests ${summary.failed_requests}`,
    `processed  ${processed}`,
    `top users  ${summary.top_users.join(', ')}`,
    `try        curl ${url.replace(/\/+$/, '')}/profile/${summary.top_users[0] ?? 'user-1'}`,
  ].join('\n');
}

/** `profile batch load`'s summary. */
export function formatLoadSummary(summary: LoadSummary): string {
  return [
    `run        ${summary.run_id} (loaded ${summary.file})`,
    `rows       ${summary.rows} in ${summary.seconds.toFixed(1)} s`,
    `bad rows   ${summary.bad_rows}${summary.bad_row_samples
      .slice(0, 10)
      .map((b) => `\n  row ${b.row}: ${b.reason}`)
      .join('')}`,
    `users      ${summary.users_written} offline profiles written`,
    ...(summary.duplicate_rows > 0
      ? [
          `duplicates ${summary.duplicate_rows} rows of users an earlier row had (the last row of each kept): ${summary.duplicate_users.slice(0, 10).join(', ')}${summary.duplicate_users.length > 10 ? ', ...' : ''}`,
        ]
      : []),
  ].join('\n');
}

/** `profile tags plan`: each change and what it needs, then the backfill's ODS and the batch. */
export function formatTagPlan(p: TagChangePlan, footer = true): string {
  const since = p.from.since ? ` since ${new Date(p.from.since).toISOString()}` : '';
  const from = p.from.active
    ? `active tag config ${p.from.version}${since}`
    : `${p.from.version} (${p.from.source}; no tag config is recorded in this Redis yet)`;
  const lines = [`from ${from}`, `to   ${p.to.version} (${p.to.source})`, ''];
  if (p.changes.length === 0) {
    lines.push(p.from.version === p.to.version ? 'No change: it is the same config.' : 'No change to what is served (only formatting or order differs).');
    return lines.join('\n');
  }
  lines.push(
    table(
      ['', 'name', 'change', 'needs', 'what it means'],
      p.changes.map((c) => [c.what, c.name, c.change, c.effect, c.detail]),
      [0, 1, 2, 3, 4],
    ),
  );
  const b = p.backfill;
  if (b) {
    const time =
      b.seconds_estimate === null
        ? 'time unknown until a `profile batch` run has measured the rate'
        : `about ${b.seconds_estimate} s at the newest batch run's rate (${bytes(b.rate_bytes_per_s!)}/s)`;
    lines.push(
      '',
      `Backfill: ${b.days_needed} days of ODS (${b.from_date} .. ${b.to_date}); the ODS holds ${b.days_in_ods} of them, ${b.files} files, ${bytes(b.bytes)}; ${time}.`,
    );
    if (b.days_in_ods < b.days_needed)
      lines.push(`  The ODS lacks ${b.days_needed - b.days_in_ods} of those days: a backfilled tag counts only the events it holds.`);
  }
  if (p.batch_needed) lines.push('', 'Offline tags or segments change: run `profile batch` after the switch.');
  if (footer) lines.push('', 'Nothing was changed.');
  return lines.join('\n');
}

/** `profile tags apply`: the plan, then what was done. */
export function formatTagApplied(a: TagChangeApplied<TagChangePlan>, waitS: number): string {
  if (a.outcome === 'same') return `${a.plan.to.version} (${a.plan.to.source}) is already the active tag config: nothing to do.`;
  const lines = [formatTagPlan(a.plan, false), ''];
  if (a.outcome === 'refused') {
    lines.push(
      `Not applied (--no-backfill): ${a.partial.join(', ')} need${a.partial.length === 1 ? 's' : ''} a backfill from the streams and the ODS. Nothing was changed.`,
      'Without --no-backfill, apply builds it first; with --accept-partial it switches anyway: those tags then count only the events whose window state was kept, until a full window has passed.',
    );
    return lines.join('\n');
  }
  lines.push(`Switched the active tag config ${a.plan.from.active ? a.plan.from.version : '(none)'} → ${a.plan.to.version}.`);
  if (a.backfill)
    lines.push(
      `Backfilled first, into window state generation ${a.backfill.generation}: ${a.backfill.stream_events} events from the streams and ${a.backfill.ods_events} from the ODS in ${a.backfill.seconds} s.`,
    );
  if (a.how === 'rollback') lines.push("Back to the previous config's window state, which was still written: at once.");
  if (a.partial.length) lines.push(`Undercounting until a full window has passed (--accept-partial): ${a.partial.join(', ')}.`);
  const now = a.processes.length - a.lagging.length;
  lines.push(
    a.processes.length === 0
      ? 'No running process has announced itself: each runs the new config when it starts.'
      : `${now} of ${a.processes.length} running processes run it now.`,
  );
  if (a.lagging.length) lines.push(`Not switched within ${waitS} s: ${a.lagging.map((p) => `${p.id} (${p.roles.join(',')}, ${p.version})`).join(', ')}.`);
  if (a.plan.from.active)
    lines.push(`To roll back: profile tags apply <the file of ${a.plan.from.version}> (\`profile tags show --of ${a.plan.from.version}\` prints it).`);
  return lines.join('\n');
}
