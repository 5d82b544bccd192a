import { Command, Option } from 'commander';
import { canonicalJson, loadTagConfig } from '../../core/tagConfig';
import { applyTagConfigChange, planTagConfigChange } from '../../batch/tagChange';
import { activeTagConfig, recordedTagConfig } from '../../redis/tagConfigs';
import { asBatchRole, int, withBatchRedisOption, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { formatTagApplied, formatTagPlan } from '../output';

/** `profile tags plan|show`: the active tag config, and what changing it would mean. */
export function makeTagsCommand(): Command {
  const tags = new Command('tags').description('the tag config every process runs (recorded in Redis), and changing it on a live system');
  tags.addCommand(
    withRedisOptions(new Command('plan'))
      .description(
        'print what changing the active tag config to <file> would mean: tags served at once, tags that need a backfill (how much ODS), batch runs, state to free; changes nothing',
      )
      .argument('<file>', 'the new tag config JSON')
      .option('--json', 'print the plan as JSON')
      .addHelpText('after', '\nExample:\n  $ profile tags plan config/tags.next.json')
      .action(async (file: string, o) => {
        const next = loadTagConfig(file);
        await withRuntime(
          o,
          async (rt) => {
            const plan = await planTagConfigChange(rt.redis, rt.keys, next, rt.config.tags, rt.config.odsDir);
            process.stdout.write((o.json ? JSON.stringify(plan) : formatTagPlan(plan)) + '\n');
          },
          true,
          false,
        );
      }),
  );
  tags.addCommand(
    withBatchRedisOption(withRedisOptions(new Command('apply')))
      .description(
        'make <file> the active tag config: one atomic switch that every running process follows within a second, when no realtime tag needs a backfill (see `tags plan`)',
      )
      .argument('<file>', 'the new tag config JSON')
      .option(
        '--accept-partial',
        'switch even when tags need a backfill: they count only the events whose window state was kept until a full window has passed',
      )
      .addOption(new Option('--wait <seconds>', 'how long to wait for the running processes to switch (default 10)').argParser(int('wait')))
      .option('--json', 'print the outcome as JSON')
      .addHelpText('after', '\nExamples:\n  $ profile tags plan config/tags.next.json && profile tags apply config/tags.next.json')
      .action(async (file: string, o) => {
        const next = loadTagConfig(file);
        const waitS: number = o.wait ?? 10;
        await withRuntime(
          asBatchRole(o),
          async (rt) => {
            const applied = await applyTagConfigChange(rt.redis, rt.keys, next, rt.config.tags, rt.config.odsDir, {
              acceptPartial: o.acceptPartial === true,
              waitMs: waitS * 1000,
            });
            process.stdout.write((o.json ? JSON.stringify(applied) : formatTagApplied(applied, waitS)) + '\n');
            if (applied.outcome === 'refused' || applied.lagging.length > 0) process.exitCode = 1;
          },
          true,
          false,
        );
      }),
  );
  tags.addCommand(
    withRedisOptions(new Command('show'))
      .description('print the active tag config (or the recorded one --of a version) as JSON; its version on stderr')
      .option('--of <version>', 'a recorded version instead of the active one (e.g. the previous, to roll back)')
      .action(async (o) => {
        await withRuntime(
          o,
          async (rt) => {
            const active = o.of
              ? { version: o.of as string, since: 0, config: await recordedTagConfig(rt.redis, rt.keys, o.of) }
              : await activeTagConfig(rt.redis, rt.keys);
            if (!active) {
              process.stderr.write('no tag config is recorded in this Redis yet: the first process to start records its own\n');
              process.exitCode = 1;
              return;
            }
            process.stderr.write(
              o.of ? `tag config ${active.version}\n` : `active tag config ${active.version} since ${new Date(active.since).toISOString()}\n`,
            );
            process.stdout.write(JSON.stringify(JSON.parse(canonicalJson(active.config.document)), null, 2) + '\n');
          },
          true,
          false,
        );
      }),
  );
  return tags;
}
