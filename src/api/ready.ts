import { REQUIRED_GROUPS, streamStatus } from '../redis/streamGroups';
import { Keys } from '../core/keys';
import { isRedisError } from '../core/errors';
import { ensureScriptsOn } from '../lua/scripts';
import { RedisClient, masters } from '../redis/client';
import { readServerSettings } from '../redis/settings';

export interface ReadyCheck {
  ok: boolean;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  checks: {
    /** Redis answers PING (every master on a cluster). */
    redis: ReadyCheck;
    /**
     * Every master can take writes: below its maxmemory (at or above it Redis answers OOM
     * under noeviction, and POST /events could only answer 503). Not checked (ok) for a
     * user that may not run INFO.
     */
    memory: ReadyCheck;
    /** Every script is in the script cache of every master (loaded now if it was not). */
    scripts: ReadyCheck;
    /** Both consumer groups exist on every partition. */
    groups: ReadyCheck & { missing?: string[] };
  };
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Readiness of this process for traffic: Redis reachable, the product's scripts loaded
 * (a script missing after a Redis restart is loaded here, so a failure means Redis
 * refuses it), and the consumer groups present on every partition.
 */
export async function checkReady(redis: RedisClient, keys: Keys, partitions: number): Promise<Readiness> {
  const checks: Readiness['checks'] = {
    redis: { ok: false },
    memory: { ok: false, error: 'not checked: Redis unreachable' },
    scripts: { ok: false, error: 'not checked: Redis unreachable' },
    groups: { ok: false, error: 'not checked: Redis unreachable' },
  };
  try {
    await Promise.all(masters(redis).map((node) => node.ping()));
    checks.redis = { ok: true };
  } catch (err) {
    checks.redis = { ok: false, error: message(err) };
    return { ready: false, checks };
  }
  try {
    const full = (await readServerSettings(redis)).filter((s) => s.maxmemory && s.usedMemory !== null && s.usedMemory >= s.maxmemory);
    checks.memory =
      full.length === 0
        ? { ok: true }
        : {
            ok: false,
            error: `out of memory: ${full.map((s) => `${s.node} uses ${s.usedMemory} of maxmemory ${s.maxmemory} bytes`).join('; ')}; writes fail (OOM)`,
          };
  } catch (err) {
    checks.memory = { ok: false, error: message(err) };
  }
  try {
    // Unlike loadScripts, a refusal (NOPERM) counts here: the functions are missing and
    // this user could not load them.
    for (const node of masters(redis)) await ensureScriptsOn(node);
    checks.scripts = { ok: true };
  } catch (err) {
    checks.scripts = {
      ok: false,
      error: isRedisError(err, 'NOPERM')
        ? `the product's Redis functions are not loaded and this user may not load them (a realtime consumer loads them): ${message(err)}`
        : message(err),
    };
  }
  try {
    const missing: string[] = [];
    // (Which groups exist, not how far behind they are: no lag counted.)
    for (const p of await streamStatus(redis, keys, partitions, 0)) {
      for (const g of REQUIRED_GROUPS) if (!p.groups.some((x) => x.name === g)) missing.push(`${p.stream}/${g}`);
    }
    checks.groups = missing.length === 0 ? { ok: true } : { ok: false, error: 'consumer groups missing', missing };
  } catch (err) {
    checks.groups = { ok: false, error: message(err) };
  }
  return { ready: checks.redis.ok && checks.memory.ok && checks.scripts.ok && checks.groups.ok, checks };
}
