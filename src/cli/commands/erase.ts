import { Command } from 'commander';
import { ConfigError } from '../../core/errors';
import { ID_PATTERN, ID_RULE } from '../../core/event';
import { activeArchivers } from '../../redis/streamGroups';
import { allErasures, eraseUser, purgeOds } from '../../profile/erasure';
import { asBatchRole, withBatchRedisOption, withRedisOptions } from '../options';
import { withRuntime } from '../process';

/** `profile erase`: erasure of users, and of their events in the ODS. */
export function makeEraseCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('erase')))
    .description(
      'erase users: delete all their keys, record them so every later batch skips their events, and with --purge-ods remove their events from the ODS',
    )
    .argument('[userIds...]', 'users to erase (none with --purge-ods: purge the events of every user erased so far)')
    .option('--purge-ods', 'rewrite the ODS files without the events of erased users (refused while an archiver is active)')
    .option('--force', 'purge even though an archiver looks active')
    .addHelpText('after', '\nExamples:\n  $ profile erase user-42\n  $ profile erase user-42 user-43 --purge-ods\n  $ profile erase --purge-ods')
    .action(async (userIds: string[], o) => {
      const bad = userIds.find((u) => !ID_PATTERN.test(u));
      if (bad !== undefined) throw new ConfigError(`user id must be ${ID_RULE}`);
      if (userIds.length === 0 && !o.purgeOds) throw new ConfigError('name at least one user id, or give --purge-ods');
      await withRuntime(asBatchRole(o), async (rt) => {
        // Checked before anything is erased: a refused --purge-ods changes nothing.
        if (o.purgeOds && !o.force) {
          const active = await activeArchivers(rt.redis, rt.keys, rt.config.partitions, rt.config.claimIdleMs);
          if (active.length > 0) {
            process.stderr.write(`profile: archivers are active (${active.join(', ')}): stop them before --purge-ods (or --force); nothing was erased\n`);
            process.exitCode = 1;
            return;
          }
        }
        for (const userId of userIds) {
          const n = await eraseUser(rt.redis, rt.keys, userId);
          process.stdout.write(`erased ${userId}: ${n} keys deleted\n`);
        }
        if (!o.purgeOds) return;
        const r = await purgeOds(rt.config.odsDir, await allErasures(rt.redis, rt.keys));
        process.stdout.write(`ODS ${rt.config.odsDir}: ${r.lines_removed} lines removed from ${r.files_rewritten} files\n`);
      });
    });
}
