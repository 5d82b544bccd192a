import { Command } from 'commander';
import { withRedisOptions, withServerOptions } from '../options';
import { runProcess } from '../process';

/** `profile serve`: the HTTP API only. */
export function makeServeCommand(): Command {
  return withServerOptions(withRedisOptions(new Command('serve')))
    .description(
      'run the HTTP API only (POST /events, GET /profile/:id, POST /profiles, POST /batch, GET /batch/:id, GET /status, GET /health, GET /ready, GET /metrics, GET /openapi.json)',
    )
    .addHelpText('after', '\nExample:\n  $ REDIS_URL=redis://127.0.0.1:6379 profile serve --port 8080')
    .action((o) => runProcess(o, { api: true }, false));
}
