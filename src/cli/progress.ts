/**
 * The CLI's progress display, on stderr so stdout stays the command's output: on a
 * terminal a bar rewritten in place; piped (logs, CI), a plain line every 5 seconds.
 */
export class Progress {
  /** Piped, the first line comes after `everyMs` too: a short run prints none (not a stale "0 of N"). */
  private lastLine = Date.now();

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly everyMs = 5000,
  ) {}

  /**
   * Shows `share` (0..1) done. On a terminal: `label [bar] pct%  detail`; piped: `line`
   * (default `label: detail`) at most every `everyMs`.
   */
  update(share: number, label: string, detail: string, line = `${label}: ${detail}`): void {
    if (this.out.isTTY) {
      const pct = Math.max(0, Math.min(100, Math.floor(share * 100)));
      const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
      this.out.write(`\r${label ? `${label} ` : ''}[${bar}] ${String(pct).padStart(3)}%  ${detail}   `);
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < this.everyMs) return;
    this.lastLine = now;
    this.out.write(`${line}\n`);
  }

  /** Ends the bar's line on a terminal. */
  done(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}
