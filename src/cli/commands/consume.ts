import { Command } from 'commander';
import { withConsumerOptions, withRedisOptions } from '../options';
import { runProcess } from '../process';

/** `profile consume`: one realtime consumer. */
export function makeConsumeCommand(): Command {
  return withConsumerOptions(withRedisOptions(new Command('consume')))
    .description('run a realtime consumer (group "realtime"); run several to share the partitions')
    .addHelpText('after', '\nExample:\n  $ profile consume --consumer-name rt-1')
    .action((o) => runProcess(o, { realtime: true }, false));
}
