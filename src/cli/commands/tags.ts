import { Command, Option } from 'commander';
import { canonicalJson, loadTagConfig } from '../../core/tagConfig';
import { planTagConfigChange } from '../../batch/tagChange';
import { applyTagConfigChange } from '../../consumers/tagApply';
import { activeTagConfig, cancelPendingTagConfig, recordedTagConfig } from '../../redis/tagConfigs';
import { asBatchRole, durationArg, int, withBatchRedisOption, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import type { Runtime } from '../../runtime/runtime';
import { formatTagApplied, formatTagPlan } from '../output';

/** `profile tags plan|apply|show`: the active tag config, and changing it on a live system. */
export function makeTagsCommand(): Command {
  return new Command('tags')
    .description('the tag config every process runs (recorded in Redis), and changing it on a live system')
    .addCommand(planCommand())
    .addCommand(applyCommand())
    .addCommand(cancelCommand())
    .addCommand(showCommand());
}

// These commands handle the active config themselves: withRuntime(..., followActive = false).

function planCommand(): Command {
  return withRedisOptions(new Command('plan'))
    .description(
      'print what changing the active tag config to <file> would mean: tags served at once, tags that need a backfill (how much ODS), batch runs, state to free; changes nothing',
    )
    .argument('<file>', 'the new tag config JSON')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', '\nExample:\n  $ profile tags plan config/tags.next.json')
    .action(async (file: string, o) => {
      const next = loadTagConfig(file);
      const run = async (rt: Runtime) => {
        const plan = await planTagConfigChange(rt.redis, rt.keys, next, rt.config.tags, rt.config.odsDir);
        process.stdout.write((o.json ? JSON.stringify(plan) : formatTagPlan(plan)) + '\n');
      };
      await withRuntime(o, run, true, false);
    });
}

function applyCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('apply')))
    .description(
      'make <file> the active tag config: one atomic switch that every running process follows within a second; when a realtime tag needs a backfill, its window state is first built from the streams and the ODS while the old config is served (see `tags plan`)',
    )
    .argument('<file>', 'the new tag config JSON')
    .option(
      '--accept-partial',
      'switch without the backfill: the tags needing one count only the events whose window state was kept until a full window has passed',
    )
    .option('--no-backfill', 'refuse (change nothing) when a tag needs a backfill')
    .addOption(
      new Option(
        '--grace <duration>',
        "how long the old config's window state is still written after a backfill's switch, so applying the old file switches back at once",
      )
        .default(3_600_000, '1h')
        .argParser(durationArg('--grace')),
    )
    .addOption(new Option('--wait <seconds>', 'how long to wait for the running processes to switch (default 10)').argParser(int('wait')))
    .addOption(
      new Option(
        '--pace <events/s>',
        "replay at most this many events a second during a backfill, leaving Redis's time to the live pipeline (default: as fast as it goes)",
      ).argParser(int('pace')),
    )
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', '\nExample:\n  $ profile tags plan config/tags.next.json && profile tags apply config/tags.next.json')
    .action(async (file: string, o) => {
      const next = loadTagConfig(file);
      const waitS: number = o.wait ?? 10;
      const run = async (rt: Runtime) => {
        const plan = await planTagConfigChange(rt.redis, rt.keys, next, rt.config.tags, rt.config.odsDir);
        const opts = {
          acceptPartial: o.acceptPartial === true,
          noBackfill: o.backfill === false,
          waitMs: waitS * 1000,
          graceMs: o.grace as number,
          pace: o.pace as number | undefined,
          partitions: rt.config.partitions,
          onProgress: (line: string) => process.stderr.write(`${line}\n`),
        };
        const applied = await applyTagConfigChange(rt.redis, rt.keys, next, plan, rt.config.odsDir, opts);
        process.stdout.write((o.json ? JSON.stringify(applied) : formatTagApplied(applied, waitS)) + '\n');
        if (applied.outcome === 'refused' || applied.lagging.length > 0) process.exitCode = 1;
      };
      await withRuntime(asBatchRole(o), run, true, false);
    });
}

function cancelCommand(): Command {
  return withBatchRedisOption(withRedisOptions(new Command('cancel')))
    .description(
      'stop a pending backfill left by a `tags apply` that was stopped: the consumers stop writing its state, which then expires (the active config is not changed)',
    )
    .action(async (o) => {
      const run = async (rt: Runtime) => {
        if ((await rt.redis.exists(rt.keys.tagApplyLock())) === 1) {
          process.stderr.write('a `profile tags apply` is running: stop it first (its lock lasts 15 s after it stops)\n');
          process.exitCode = 1;
          return;
        }
        const cancelled = await cancelPendingTagConfig(rt.redis, rt.keys);
        process.stdout.write(cancelled ? `cancelled the backfill of ${cancelled}\n` : 'no backfill is pending\n');
      };
      await withRuntime(asBatchRole(o), run, true, false);
    });
}

function showCommand(): Command {
  return withRedisOptions(new Command('show'))
    .description('print the active tag config (or the recorded one --of a version) as JSON; its version on stderr')
    .option('--of <version>', 'a recorded version instead of the active one (e.g. the previous, to roll back)')
    .addHelpText('after', '\nExamples:\n  $ profile tags show > active.json\n  $ profile tags show --of dbfdc820cd91')
    .action(async (o) => {
      const run = async (rt: Runtime) => {
        const shown = o.of
          ? { version: o.of as string, since: 0, config: await recordedTagConfig(rt.redis, rt.keys, o.of) }
          : await activeTagConfig(rt.redis, rt.keys);
        if (!shown) {
          process.stderr.write('no tag config is recorded in this Redis yet: the first process to start records its own\n');
          process.exitCode = 1;
          return;
        }
        process.stderr.write(o.of ? `tag config ${shown.version}\n` : `active tag config ${shown.version} since ${new Date(shown.since).toISOString()}\n`);
        process.stdout.write(JSON.stringify(JSON.parse(canonicalJson(shown.config.document)), null, 2) + '\n');
      };
      await withRuntime(o, run, true, false);
    });
}
