import { Writable } from 'stream';
import pino, { Logger } from 'pino';
import pretty from 'pino-pretty';
import { previousErrors } from './errors';

export type { Logger };

/** How log lines are written: JSON, pretty for people, or `auto` (pretty on a terminal). */
export type LogFormat = 'auto' | 'json' | 'pretty';

/** True when `auto` means pretty: stdout and stderr are both a terminal (nothing is piped). */
export function prettyByDefault(): boolean {
  return Boolean(process.stdout.isTTY && process.stderr.isTTY);
}

/**
 * The process logger: on stderr, so stdout stays free for command output. JSON lines for
 * machines (Docker, CI, log shippers), or rendered for people by pino-pretty (colours on
 * a terminal); `auto` picks pretty when nothing is piped.
 */
export function createLogger(level: string, format: LogFormat = 'json', name = 'profile-stream'): Logger {
  // On a terminal each line first clears the one it lands on (a progress bar drawn in place).
  const destination = process.stderr.isTTY ? terminalLines() : undefined;
  const options = { name, level, serializers: { err: safeError } };
  if (format === 'pretty' || (format === 'auto' && prettyByDefault())) {
    return pino(options, pretty({ destination: destination ?? 2, colorize: Boolean(process.stderr.isTTY), sync: true }));
  }
  return pino(options, destination ?? pino.destination(2));
}

/** Longest error message a log line carries. */
const MAX_MESSAGE = 500;

/**
 * pino's error serializer without what an ioredis error carries of the request: its
 * `command` (name and every argument: events, user ids, a whole script call) and those of
 * a transaction's `previousErrors`; the message is cut at MAX_MESSAGE characters. A log
 * line stays short and free of payloads however large the failed command was.
 */
export function safeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  delete out.command;
  delete out.previousErrors;
  delete out.args;
  if (typeof out.message === 'string' && out.message.length > MAX_MESSAGE) out.message = `${out.message.slice(0, MAX_MESSAGE)}…`;
  return out;
}

/** An error's message alone, cut short: for warnings that need no stack. */
export function errorText(err: unknown): string {
  // A transaction's EXECABORT says only that it was discarded: the first error says why.
  const first = previousErrors(err)[0];
  const cause = first instanceof Error ? first : err;
  const text = cause instanceof Error ? cause.message : String(cause);
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

/**
 * A failure that repeats while it lasts (Redis out of memory or gone), logged once when it
 * starts, then at most every `everyMs` with the count of failures since, and once when it
 * ends — not once per request or retry.
 */
export class OutageLog {
  private since?: number;
  private lastLogged = 0;
  private failures = 0;

  /** `what` fails (logged with `action`, what is done meanwhile, the first time). */
  constructor(
    private readonly log: Logger,
    private readonly what: string,
    private readonly action = '',
    private readonly everyMs = 30_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** True while a failure has been seen and no success since. */
  get ongoing(): boolean {
    return this.since !== undefined;
  }

  failed(err: unknown, detail: Record<string, unknown> = {}): void {
    const now = this.clock();
    this.failures++;
    if (this.since === undefined) {
      this.since = now;
      this.lastLogged = now;
      this.failures = 0;
      this.log.warn({ ...detail, err: errorText(err) }, this.action ? `${this.what}: ${this.action}` : this.what);
    } else if (now - this.lastLogged >= this.everyMs) {
      this.log.warn({ ...detail, err: errorText(err), failures: this.failures, for_s: Math.round((now - this.since) / 1000) }, `${this.what} (still failing)`);
      this.lastLogged = now;
      this.failures = 0;
    }
  }

  succeeded(): void {
    if (this.since === undefined) return;
    this.log.info({ after_s: Math.round((this.clock() - this.since) / 1000) }, `${this.what}: recovered`);
    this.since = undefined;
  }
}

/** stderr, with each write starting at the beginning of a cleared line. */
function terminalLines(): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      process.stderr.write(`\r\x1b[K${String(chunk)}`, () => callback());
    },
  });
}

/** A logger that drops everything (library default when none is passed). */
export const silentLogger: Logger = pino({ level: 'silent' });
