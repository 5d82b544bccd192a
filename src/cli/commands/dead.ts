import { Command } from 'commander';
import { listDeadLetters, purgeDeadLetters, replayDeadLetters } from '../../consumers/deadLetters';
import { int, withRedisOptions } from '../options';
import { withRuntime } from '../process';
import { formatDeadLetters } from '../output';

/** `profile dead list|replay|purge`: the dead-letter stream. */
export function makeDeadCommand(): Command {
  const dead = new Command('dead').description('inspect, replay or purge the dead-letter stream (ev:dead)');
  dead.addCommand(
    withRedisOptions(new Command('list'))
      .description('list dead letters: original stream and id, group, consumer, deliveries, error')
      .option('--count <n>', 'at most this many', int('count'), 100)
      .option('--json', 'print JSON lines')
      .addHelpText('after', '\nExample:\n  $ profile dead list --count 20')
      .action(async (o) => {
        await withRuntime(o, async (rt) => {
          const letters = await listDeadLetters(rt.redis, rt.keys, o.count);
          if (o.json) for (const l of letters) process.stdout.write(JSON.stringify(l) + '\n');
          else process.stdout.write(formatDeadLetters(letters) + '\n');
        });
      }),
  );
  dead.addCommand(
    withRedisOptions(new Command('replay'))
      .description('put dead letters back into their partitions (all, or --id ...) and delete them from ev:dead')
      .option('--id <deadId...>', 'only these dead ids')
      .addHelpText('after', '\nExamples:\n  $ profile dead replay\n  $ profile dead replay --id 1795687489291-0')
      .action(async (o) => {
        await withRuntime(o, async (rt) => {
          const r = await replayDeadLetters(rt.redis, rt.keys, rt.config.partitions, o.id);
          process.stdout.write(
            `replayed ${r.replayed}${r.skipped.length ? `, skipped ${r.skipped.length} (not from a partition): ${r.skipped.join(' ')}` : ''}` +
              `${r.missing.length ? `; no dead letter ${r.missing.join(' ')}` : ''}\n`,
          );
          if (r.missing.length > 0) process.exitCode = 1;
        });
      }),
  );
  dead.addCommand(
    withRedisOptions(new Command('purge'))
      .description('delete every dead letter')
      .addHelpText('after', '\nExample:\n  $ profile dead purge')
      .action(async (o) => {
        await withRuntime(o, async (rt) => {
          process.stdout.write(`purged ${await purgeDeadLetters(rt.redis, rt.keys)}\n`);
        });
      }),
  );
  return dead;
}
