#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ProfileStreamError } from './src/core/errors';
import { PACKAGE_VERSION } from './src/core/version';
import { COMMANDS } from './src/cli/commands';

const program = new Command('profile')
  .description('profile-stream: Redis-native user profiles for ad platforms')
  .version(PACKAGE_VERSION)
  // A usage error is its one line, then where the help is (not the whole help: it buried the error).
  .showHelpAfterError('(see `profile --help`)')
  // Usage errors (unknown option or command, bad argument) exit 2 like configuration
  // errors, not commander's default 1, which means a runtime failure here.
  .exitOverride()
  .addHelpText(
    'after',
    `
Every option that talks to Redis also reads an environment variable (shown as "env:" in each
command's --help). Exit codes: 0 ok, 1 runtime failure (no Redis, a batch already running,
verify mismatches, unknown user for get), 2 usage or configuration error.

Examples:
  $ profile up                                  # everything in one process
  $ profile simulate --duration 10 && curl localhost:8080/profile/user-1
  $ profile consume --cluster 10.0.0.1:6379,10.0.0.2:6379 --consumer-name rt-1 --metrics-port 9464`,
  );

for (const make of COMMANDS) program.addCommand(make());
// addCommand does not pass settings down (command() would): every command, nested ones too,
// gets the program's exit override and help-after-error.
const inherit = (parent: Command, path: string) =>
  parent.commands.forEach((c) => {
    const name = `${path} ${c.name()}`;
    inherit(c.copyInheritedSettings(parent).showHelpAfterError(`(see \`${name} --help\`)`), name);
  });
inherit(program, 'profile');

// `profile … | head`: a reader that hangs up ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
program.parseAsync(process.argv).catch((err: Error) => {
  // commander already printed its message (or the help / version).
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  // The product's own errors say what to do and carry their exit code; anything else is a bug.
  const known = err instanceof ProfileStreamError;
  process.stderr.write(`profile: ${known ? err.message : (err.stack ?? err.message)}\n`);
  process.exit(known ? err.exitCode : 1);
});
