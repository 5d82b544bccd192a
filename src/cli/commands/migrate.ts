import { Command } from 'commander';
import { migrateLegacyWindows } from '../../consumers/migrate';
import { withRedisOptions } from '../options';
import { withRuntime } from '../process';

/** `profile migrate`: folds windows of the v1 layout into panes. */
export function makeMigrateCommand(): Command {
  return withRedisOptions(new Command('migrate'))
    .description(
      'fold windows written by versions before window panes (u:{user}:w:<type>, one member per event) into the panes, then delete them; safe while consumers run, and again',
    )
    .addHelpText('after', '\nExample:\n  $ profile migrate')
    .action(async (o) => {
      await withRuntime(o, async (rt) => {
        const r = await migrateLegacyWindows(rt.redis, rt.keys, rt.config.tags.realtime);
        process.stdout.write(`migrated ${r.windows} v1 windows: ${r.events_folded} in-window events folded into panes\n`);
      });
    });
}
