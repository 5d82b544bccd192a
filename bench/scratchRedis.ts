import { execFileSync } from 'child_process';
import { Redis, connectRedis } from '../src/redis/client';
import { startPrivateRedis } from '../src/redis/embeddedServer';

/**
 * Runs `fn` against a private redis-server (no AOF, data in a temp folder) and a
 * connection to it; both are stopped and the folder removed whether `fn` succeeds or not.
 */
export async function withScratchRedis<T>(name: string, fn: (redis: Redis, url: string) => Promise<T>): Promise<T> {
  const scratch = await startPrivateRedis(`bench-${name}`);
  const redis = await connectRedis(scratch.server.url);
  try {
    return await fn(redis, scratch.server.url);
  } finally {
    await redis.quit();
    await scratch.remove();
  }
}

/** Runs a bench script's main; a failure prints its error and exits 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

/** Requests per second redis-benchmark reports (`-q --csv`) for `args` against the server on `port`. */
export function redisBenchmark(port: number, args: string[]): number {
  const out = execFileSync('redis-benchmark', ['-p', String(port), '-q', '--csv', ...args], { encoding: 'utf8' });
  const line = out
    .trim()
    .split('\n')
    .filter((l) => /^"/.test(l) && !/^"test"/.test(l))
    .pop()!;
  return Math.round(Number(line.split(',')[1].replace(/"/g, '')));
}

/** The 8-field offline-and-window hash the floor measurements read (an HGETALL of it is a read's floor). */
export const FLOOR_PROFILE_HASH = {
  views_5m: 3,
  views_1h: 12,
  clicks_5m: 0,
  clicks_24h: 1,
  purchases_24h: 0,
  spend_24h: 0,
  distinct_ads_1h: 4,
  campaign_views_1h: '{"c-1":7}',
};
