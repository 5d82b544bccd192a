import pino, { Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * The process logger: JSON lines on stderr, so stdout stays free for command output;
 * `pretty` renders them for people instead (pino-pretty, colours on a terminal).
 */
export function createLogger(level: string, pretty_ = false, name = 'profile-stream'): Logger {
  if (pretty_) return pino({ name, level }, pretty({ destination: 2, colorize: Boolean(process.stderr.isTTY), sync: true }));
  return pino({ name, level }, pino.destination(2));
}

/** A logger that drops everything (library default when none is passed). */
export const silentLogger: Logger = pino({ level: 'silent' });
