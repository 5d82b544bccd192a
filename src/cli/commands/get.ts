import { Command } from 'commander';
import { ConfigError } from '../../core/errors';
import { ID_PATTERN, ID_RULE } from '../../core/event';
import { ProfileReader } from '../../profile/reader';
import { withRedisOptions } from '../options';
import { withRuntime } from '../process';

/** `profile get`: one fused profile, read straight from Redis. */
export function makeGetCommand(): Command {
  return withRedisOptions(new Command('get'))
    .description("print a user's fused profile as JSON, read straight from Redis")
    .argument('<userId>', 'the user id')
    .addHelpText('after', '\nExample:\n  $ profile get user-1')
    .action(async (userId: string, o) => {
      if (!ID_PATTERN.test(userId)) throw new ConfigError(`user id must be ${ID_RULE}`);
      await withRuntime(o, async (rt) => {
        const profile = await new ProfileReader(rt.redis, rt.keys, rt.config.tags.realtime).read(userId);
        if (!profile) {
          process.stderr.write(`profile: unknown user ${userId}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(JSON.stringify(profile, null, 2) + '\n');
      });
    });
}
