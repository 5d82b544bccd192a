import pino, { Logger } from 'pino';

export type { Logger };

/** The process logger: JSON lines on stderr, so stdout stays free for command output. */
export function createLogger(level: string, name = 'profile-stream'): Logger {
  return pino({ name, level }, pino.destination(2));
}

/** A logger that drops everything (library default when none is passed). */
export const silentLogger: Logger = pino({ level: 'silent' });
