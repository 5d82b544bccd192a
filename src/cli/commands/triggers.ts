import { Command, Option } from 'commander';
import { ConfigError } from '../../core/errors';
import { NAME } from '../../core/tags';
import { Firing, FiringReader } from '../../profile/triggers';
import { shutdownSignal } from '../../runtime/runtime';
import { withRedisOptions } from '../options';
import { withRuntime } from '../process';

/** One firing as a terminal line: time, trigger, user, the condition's values. */
export function formatFiring(f: Firing): string {
  const values = Object.entries(f.values)
    .map(([k, v]) => `${k}=${v ?? '-'}`)
    .join(' ');
  return `${new Date(f.at).toISOString()}  ${f.trigger.padEnd(20)} ${f.user_id.padEnd(20)} ${values}`;
}

/** `profile triggers tail`: trigger firings as they happen, until SIGINT. */
export function makeTriggersCommand(): Command {
  const triggers = new Command('triggers').description('trigger firings (see the tag config\'s "triggers")');
  triggers.addCommand(
    withRedisOptions(new Command('tail'))
      .description('print trigger firings as they happen (from the trigger streams), until Ctrl-C')
      .addOption(new Option('--name <trigger>', 'only this trigger'))
      .option('--json', 'one JSON object a line instead of a table')
      .option('--from-start', 'first every firing the streams still hold (default: only new ones)')
      .addHelpText('after', '\nExamples:\n  $ profile triggers tail\n  $ profile triggers tail --name hot_clicker --json')
      .action(async (o) => {
        if (o.name !== undefined && !NAME.test(o.name)) throw new ConfigError('--name must be a trigger name ([a-z][a-z0-9_]*)');
        await withRuntime(o, async (rt) => {
          const start = o.fromStart ? Array.from({ length: rt.config.partitions }, () => '0-0') : undefined;
          const reader = await FiringReader.open(rt.redis, rt.keys, rt.config.partitions, start);
          const stop = shutdownSignal(rt.logger);
          let stopped = false;
          void stop.then(() => {
            stopped = true;
            reader.close();
          });
          while (!stopped) {
            const firings = await reader.next(1000).catch((err: unknown) => (stopped ? [] : Promise.reject(err)));
            for (const f of firings) {
              if (o.name !== undefined && f.trigger !== o.name) continue;
              const { cursor: _c, ...firing } = f;
              process.stdout.write((o.json ? JSON.stringify(firing) : formatFiring(f)) + '\n');
            }
          }
        });
      }),
  );
  return triggers;
}
