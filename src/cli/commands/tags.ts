import { Command } from 'commander';
import { canonicalJson, loadTagConfig } from '../../core/tagConfig';
import { planTagConfigChange } from '../../batch/tagChange';
import { activeTagConfig } from '../../redis/tagConfigs';
import { withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { formatTagPlan } from '../output';

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
        await withRuntime(o, async (rt) => {
          const plan = await planTagConfigChange(rt.redis, rt.keys, next, rt.config.tags, rt.config.odsDir);
          process.stdout.write((o.json ? JSON.stringify(plan) : formatTagPlan(plan)) + '\n');
        });
      }),
  );
  tags.addCommand(
    withRedisOptions(new Command('show'))
      .description('print the active tag config (its version on stderr), as JSON')
      .action(async (o) => {
        await withRuntime(o, async (rt) => {
          const active = await activeTagConfig(rt.redis, rt.keys);
          if (!active) {
            process.stderr.write('no tag config is recorded in this Redis yet: the first process to start records its own\n');
            process.exitCode = 1;
            return;
          }
          process.stderr.write(`active tag config ${active.version} since ${new Date(active.since).toISOString()}\n`);
          process.stdout.write(JSON.stringify(JSON.parse(canonicalJson(active.config.document)), null, 2) + '\n');
        });
      }),
  );
  return tags;
}
