import { Command, Option } from 'commander';
import { ConfigError } from '../../core/errors';
import { simulate } from '../../dev/simulate';
import { int } from '../options';
import { Progress } from '../progress';
import { formatSimulateSummary } from '../output';

/** `profile simulate`: realistic traffic against a running API. */
export function makeSimulateCommand(): Command {
  return new Command('simulate')
    .description('send realistic ad traffic (impressions >> clicks >> purchases, Zipf-skewed users) to a running API')
    .option('--url <url>', 'API base URL', process.env.PROFILE_URL ?? 'http://127.0.0.1:8080')
    .option('--users <n>', 'distinct users', int('users'), 1000)
    .option('--rate <n>', 'target events per second', int('rate'), 1000)
    .option('--duration <s>', 'seconds to send for', int('duration'), 30)
    .option('--batch <n>', 'events per request (default rate/20, at most 1000)', int('batch'))
    .option('--concurrency <n>', 'requests in flight', int('concurrency'), 4)
    .option('--seed <n>', 'generator seed (same seed, same traffic)', int('seed'))
    .addOption(new Option('--api-key <key>', 'API key with the ingest (or admin) role, when the API requires keys').env('PROFILE_API_KEY'))
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nExamples:\n  $ profile simulate --duration 10\n  $ profile simulate --users 100000 --rate 20000 --duration 60 --json')
    .action(async (o) => {
      for (const k of ['users', 'rate', 'duration', 'concurrency'] as const) {
        if (o[k] < 1) throw new ConfigError(`--${k} must be at least 1`);
      }
      const progress = new Progress();
      const started = Date.now();
      const summary = await simulate({
        url: o.url,
        users: o.users,
        rate: o.rate,
        durationS: o.duration,
        batchSize: o.batch,
        concurrency: o.concurrency,
        seed: o.seed,
        apiKey: o.apiKey,
        // The bar shows the elapsed share of --duration.
        progress: (line) => progress.update((Date.now() - started) / 1000 / o.duration, '', line, line),
      });
      progress.done();
      process.stdout.write((o.json ? JSON.stringify(summary) : formatSimulateSummary(summary, o.url)) + '\n');
      if (summary.accepted === 0 || summary.failed_requests > 0) process.exitCode = 1;
    });
}
