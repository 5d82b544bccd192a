import { Command, Option } from 'commander';
import { verifyWindows } from '../../batch/verify';
import { asBatchRole, timeArg, withBatchRedisOption, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { formatVerify } from '../output';

/** `profile verify`: the newest `batch --windows` run against the live windows. */
export function makeVerifyCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('verify')))
    .description(
      'compare the window tags of the newest `profile batch --windows` run with what the live windows answer at its as-of time (users with events after it are skipped and counted: their windows have moved on)',
    )
    .addOption(new Option('--as-of <time>', 'fail unless the newest --windows run is as of this time').argParser(timeArg('--as-of')))
    .option('--json', 'print the result as JSON (every mismatch)')
    .addHelpText('after', '\nExample:\n  $ profile batch --windows --as-of 1795687800000 && profile verify --as-of 1795687800000')
    .action(async (o) => {
      await withRuntime(asBatchRole(o), async (rt) => {
        const result = await verifyWindows(rt.redis, rt.keys, rt.config.tags.realtime, o.asOf);
        process.stdout.write((o.json ? JSON.stringify(result) : formatVerify(result)) + '\n');
        if (result.mismatches.length > 0) process.exitCode = 1;
      });
    });
}
