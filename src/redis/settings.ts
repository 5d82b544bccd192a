import { ConfigError, isRedisError } from '../core/errors';
import { RedisClient, masters, nodeKey } from './client';

/**
 * The Redis settings the product depends on, as each server's INFO reports them. Only
 * `maxmemory-policy noeviction` is enforced: any other policy lets Redis delete keys under
 * memory pressure — stream partitions of events already acknowledged to the producer (lost
 * before the archive wrote them), window state, trigger streams, the erasure list — silently.
 */
export interface RedisServerSettings {
  /** host:port of the server. */
  node: string;
  /** maxmemory-policy, or null when this Redis user may not run INFO. */
  maxmemoryPolicy: string | null;
  /** maxmemory in bytes (0: no limit), or null when unknown. */
  maxmemory: number | null;
  /** used_memory in bytes, or null when unknown. */
  usedMemory: number | null;
  /** Whether the append-only file is on, or null when unknown. */
  aof: boolean | null;
}

/** The only policy under which Redis never deletes data to make room: writes fail with OOM instead. */
export const REQUIRED_POLICY = 'noeviction';

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1];
}

/** Reads maxmemory, maxmemory-policy and AOF of every master (INFO memory, INFO persistence). */
export async function readServerSettings(client: RedisClient): Promise<RedisServerSettings[]> {
  return Promise.all(
    masters(client).map(async (node) => {
      const name = nodeKey(node);
      try {
        const [memory, persistence] = await Promise.all([node.info('memory'), node.info('persistence')]);
        const policy = infoField(memory, 'maxmemory_policy');
        const max = infoField(memory, 'maxmemory');
        const used = infoField(memory, 'used_memory');
        const aof = infoField(persistence, 'aof_enabled');
        return {
          node: name,
          maxmemoryPolicy: policy ?? null,
          maxmemory: max === undefined ? null : Number(max),
          usedMemory: used === undefined ? null : Number(used),
          aof: aof === undefined ? null : aof === '1',
        };
      } catch (err) {
        if (!isRedisError(err, 'NOPERM')) throw err;
        return { node: name, maxmemoryPolicy: null, maxmemory: null, usedMemory: null, aof: null };
      }
    }),
  );
}

/** Why `settings` would lose data (one line), or undefined when every known policy is noeviction. */
export function evictionProblem(settings: readonly RedisServerSettings[]): string | undefined {
  const bad = settings.find((s) => s.maxmemoryPolicy !== null && s.maxmemoryPolicy !== REQUIRED_POLICY);
  if (!bad) return undefined;
  return (
    `Redis at ${bad.node} has maxmemory-policy ${bad.maxmemoryPolicy}: under memory pressure it deletes keys, ` +
    'stream partitions of acknowledged events and window state among them, with no error. Set maxmemory-policy noeviction ' +
    '(redis.conf, or CONFIG SET maxmemory-policy noeviction), or pass --allow-eviction (PROFILE_ALLOW_EVICTION=1) to run anyway'
  );
}

/**
 * Checks every master's eviction policy at a process's start: anything but noeviction is
 * refused (ConfigError, one line) unless `allow`. A policy this Redis user may not read
 * (no INFO permission) is reported through `warn` and not refused.
 */
export async function checkEvictionPolicy(
  client: RedisClient,
  allow: boolean,
  warn: (message: string, detail: object) => void,
): Promise<RedisServerSettings[]> {
  const settings = await readServerSettings(client);
  const problem = evictionProblem(settings);
  if (problem && !allow) throw new ConfigError(problem);
  if (problem)
    warn('Redis may evict keys (--allow-eviction): acknowledged events and window state can be lost under memory pressure', {
      policies: settings.map((s) => `${s.node} ${s.maxmemoryPolicy}`),
    });
  const unknown = settings.filter((s) => s.maxmemoryPolicy === null).map((s) => s.node);
  if (unknown.length > 0)
    warn('cannot check maxmemory-policy: this Redis user may not run INFO (give it +info, see SECURITY.md); the product requires noeviction', {
      nodes: unknown,
    });
  return settings;
}
