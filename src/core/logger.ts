import { Writable } from 'stream';
import pino, { Logger } from 'pino';
import pretty from 'pino-pretty';

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
  if (format === 'pretty' || (format === 'auto' && prettyByDefault())) {
    return pino({ name, level }, pretty({ destination: destination ?? 2, colorize: Boolean(process.stderr.isTTY), sync: true }));
  }
  return pino({ name, level }, destination ?? pino.destination(2));
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
