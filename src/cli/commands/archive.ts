import { Command } from 'commander';
import { withConsumerOptions, withRedisOptions } from '../options';
import { runProcess } from '../process';

/** `profile archive`: one archive consumer. */
export function makeArchiveCommand(): Command {
  return withConsumerOptions(withRedisOptions(new Command('archive')))
    .description('run an archive consumer (group "archive"): streams to NDJSON files under <ods>/dt=YYYY-MM-DD/, fsynced before ack')
    .addHelpText('after', '\nExample:\n  $ profile archive --ods /mnt/ods --consumer-name arch-1')
    .action((o) => runProcess(o, { archive: true }, false));
}
