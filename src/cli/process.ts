import { createLogger } from '../core/logger';
import { Roles, Runtime, closeRuntime, openRuntime, runRoles, shutdownSignal } from '../runtime/runtime';
import { configFrom } from './options';
import { followActiveTagConfig } from '../redis/tagConfigs';

/** Runs the roles of a long-lived process (`up`, `serve`, `consume`, `archive`) until SIGINT/SIGTERM. */
export async function runProcess(o: Record<string, unknown>, roles: Roles, allowEmbedded: boolean): Promise<void> {
  const config = configFrom(o);
  const logger = createLogger(config.logLevel, config.logFormat);
  const stop = shutdownSignal(logger);
  const rt = await openRuntime(config, logger, allowEmbedded);
  await runRoles(rt, roles, stop);
}

/**
 * Opens Redis for a one-shot command (logging at warn unless told otherwise), runs `fn`, and
 * closes. `checkSettings` false: the command only reports Redis's settings (`profile status`)
 * and runs whatever they are. `followActive` false: the command keeps the tag config it
 * was given instead of the active one.
 */
export async function withRuntime<T>(o: Record<string, unknown>, fn: (rt: Runtime) => Promise<T>, checkSettings = true, followActive = true): Promise<T> {
  const config = configFrom({ logLevel: 'warn', ...o });
  const rt = await openRuntime(config, createLogger(config.logLevel, config.logFormat), false, checkSettings);
  try {
    // Every command works with the tag config the system runs (the active one in Redis),
    // but those that handle it themselves (`profile tags`).
    if (followActive) {
      const active = await followActiveTagConfig(rt.redis, rt.keys, rt.config.tags, rt.logger);
      rt.config = { ...rt.config, tags: active.config };
      rt.keys = rt.keys.withGeneration(active.generation);
    }
    return await fn(rt);
  } finally {
    await closeRuntime(rt);
  }
}
