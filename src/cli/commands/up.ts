import { Command } from 'commander';
import { withConsumerOptions, withRedisOptions, withServerOptions } from '../options';
import { runProcess } from '../process';

/** `profile up`: the API, the realtime consumer and the archiver in one process. */
export function makeUpCommand(): Command {
  return withConsumerOptions(withServerOptions(withRedisOptions(new Command('up'))))
    .description(
      'run the API, the realtime consumer and the archiver in one process; starts an embedded redis-server when no Redis is configured and none answers on 127.0.0.1:6379',
    )
    .addHelpText('after', '\nExamples:\n  $ profile up\n  $ profile up --port 9000 --redis redis://10.0.0.5:6379 --ods /data/ods')
    .action((o) => runProcess(o, { api: true, realtime: true, archive: true }, true));
}
