import { Command, Option } from 'commander';
import { ConfigError } from '../../core/errors';
import { listOdsFiles } from '../../ods/files';
import { streamStatus } from '../../redis/streamGroups';
import { readServerSettings } from '../../redis/settings';
import { tagConfigStatus } from '../../redis/tagConfigs';
import { int, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { formatStatus } from '../output';

/** `profile status`: partitions, groups and the ODS, once or every N seconds. */
export function makeStatusCommand(): Command {
  return withRedisOptions(new Command('status'))
    .description(
      "show Redis's eviction policy and AOF, stream partitions (length, oldest entry), consumer groups (lag, pending, consumers), the ODS size, the active tag config and which running process runs which",
    )
    .option('--json', 'print JSON instead of a table')
    .addOption(new Option('--watch [seconds]', 'print again every N seconds (default 2) until Ctrl-C').argParser(int('watch')))
    .addHelpText('after', "\nExamples:\n  $ profile status\n  $ profile status --watch 1\n  $ profile status --json | jq '.partitions[].groups'")
    .action(async (o) => {
      const every: number = o.watch === undefined ? 0 : o.watch === true ? 2 : o.watch;
      if (o.watch !== undefined && every < 1) throw new ConfigError('--watch must be at least 1 second');
      await withRuntime(
        o,
        async (rt) => {
          let stopped = false;
          const stop = () => (stopped = true);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          for (;;) {
            const [partitions, redis, tagConfig] = await Promise.all([
              streamStatus(rt.redis, rt.keys, rt.config.partitions),
              readServerSettings(rt.redis),
              tagConfigStatus(rt.redis, rt.keys),
            ]);
            const ods = listOdsFiles(rt.config.odsDir);
            if (o.json) {
              process.stdout.write(
                JSON.stringify({
                  at: Date.now(),
                  redis,
                  partitions,
                  tag_config: tagConfig,
                  ods: { dir: rt.config.odsDir, files: ods.length, bytes: ods.reduce((n, f) => n + f.bytes, 0) },
                }) + '\n',
              );
            } else {
              // On a terminal each report replaces the last; piped, they follow each other with a time stamp.
              const head = every && process.stdout.isTTY ? '\x1b[H\x1b[2J' : every ? `${new Date().toISOString()}\n` : '';
              process.stdout.write(head + formatStatus(partitions, ods, rt.config.odsDir, Date.now(), redis, tagConfig) + '\n');
            }
            if (!every) return;
            for (let waited = 0; waited < every * 1000 && !stopped; waited += 100) await new Promise((r) => setTimeout(r, 100));
            if (stopped) return;
          }
        },
        false,
      );
    });
}
