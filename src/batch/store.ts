import { createClient, createCluster } from 'redis';
import { Repository, Schema, SchemaDefinition } from 'redis-om';
import { RedisClient, RedisTarget, pipelineByNode, splitHostPort } from '../redis/client';
import { Keys } from '../core/keys';
import { OfflineTag, SEGMENT_TAG } from '../core/tags';
import { OfflineValues } from './offline';
import { WindowValue } from './windows';

/** Offline hash fields that describe the run (read back by the profile reader). */
export const RUN_ID_FIELD = '_run_id';
export const BATCH_AT_FIELD = '_batch_at';

type NodeRedis = ReturnType<typeof createClient> | ReturnType<typeof createCluster>;

/**
 * The offline profile entity: `u:{<user>}:off` as a redis-om HASH schema, one number per
 * offline tag, the segment id, the run id and time.
 */
export function offlineProfileSchema(keys: Keys, tags: readonly OfflineTag[]): Schema {
  const definition: SchemaDefinition = {
    [SEGMENT_TAG]: { type: 'string' },
    [RUN_ID_FIELD]: { type: 'string' },
    [BATCH_AT_FIELD]: { type: 'number' },
  };
  for (const t of tags) definition[t.name] = { type: 'number' };
  return new Schema(`${keys.prefix}u`, definition, { dataStructure: 'HASH' });
}

/**
 * The bulk save of offline profiles (the batch's load step): the same hash per user as
 * redis-om writes for `schema` (its fields, numbers as their decimal text), replaced whole
 * in one MULTI (UNLINK + HSET) per user, pipelined per cluster node over ioredis. No
 * node-redis connection: redis-om's per-entity save costs a round of promises and a MULTI
 * per user on one connection.
 */
export async function saveOfflineProfiles(
  redis: RedisClient, keys: Keys, schema: Schema, profiles: [userId: string, values: OfflineValues][], runId: string, batchAt: number,
): Promise<void> {
  const known = new Set(schema.fields.map((f) => f.name));
  const replies = await pipelineByNode(redis, profiles, ([userId]) => keys.offline(userId), (pipeline, [userId, values]) => {
    const key = keys.offline(userId);
    const fields: string[] = [RUN_ID_FIELD, runId, BATCH_AT_FIELD, String(batchAt)];
    for (const [name, value] of Object.entries(values)) {
      if (!known.has(name)) throw new Error(`offline value ${name} is not a field of the offline profile schema`);
      fields.push(name, String(value));
    }
    pipeline.call('MULTI').unlink(key).hset(key, ...fields).call('EXEC');
  }, 4);
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
}

/**
 * Writes offline profiles with redis-om: `u:{<user>}:off` is a HASH entity with typed
 * fields (one number per offline tag, the segment id, the run id and time). redis-om
 * saves an entity as MULTI UNLINK + HSET, so a user's previous offline tags are replaced
 * whole and no stale field survives. Its keys are `<schema name>:<entity id>`: schema
 * `<prefix>u` and id `{<user>}:off` give exactly the key Keys.offline builds.
 */
export class OfflineProfileStore {
  private readonly repo: Repository;

  private constructor(private readonly client: NodeRedis, private readonly keys: Keys, tags: readonly OfflineTag[]) {
    this.repo = new Repository(offlineProfileSchema(keys, tags), client);
  }

  /**
   * Connects a node-redis client (redis-om 0.4 needs one) to the target: a cluster client
   * when it lists cluster nodes, which routes each save to its user's node.
   */
  static async connect(target: RedisTarget, keys: Keys, tags: readonly OfflineTag[]): Promise<OfflineProfileStore> {
    const client: NodeRedis = target.clusterNodes?.length
      ? createCluster({
          rootNodes: target.clusterNodes.map((n) => {
            const [host, port] = splitHostPort(n);
            return { socket: { host, port } };
          }),
        })
      : createClient({ url: target.redisUrl });
    client.on('error', () => undefined); // surfaced by the failing command instead
    await client.connect();
    return new OfflineProfileStore(client, keys, tags);
  }

  /**
   * Replaces the offline profiles of many users. Saves are issued together, so node-redis
   * pipelines them over its connection (on a cluster: over each node's connection, all
   * nodes in parallel).
   */
  async saveMany(profiles: [userId: string, values: OfflineValues][], runId: string, batchAt: number): Promise<void> {
    await Promise.all(
      profiles.map(([userId, values]) => {
        const id = this.keys.offline(userId).slice(`${this.keys.prefix}u:`.length);
        return this.repo.save(id, { ...values, [RUN_ID_FIELD]: runId, [BATCH_AT_FIELD]: batchAt });
      }),
    );
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

/**
 * Writes the window tags a `--windows` run computed as of its as-of time to
 * `u:{<user>}:wb` (tag → JSON value, plus the run id and as-of), where `profile verify`
 * compares them with the live windows. They expire after a day.
 */
export async function saveWindowResults(
  redis: RedisClient, keys: Keys, results: [userId: string, values: Record<string, WindowValue>][], runId: string, asOf: number,
): Promise<void> {
  const replies = await pipelineByNode(redis, results, ([userId]) => keys.batchWindows(userId), (pipeline, [userId, values]) => {
    const key = keys.batchWindows(userId);
    const fields: string[] = [RUN_ID_FIELD, runId, '_as_of', String(asOf)];
    for (const [name, value] of Object.entries(values)) fields.push(name, JSON.stringify(value));
    pipeline.unlink(key).hset(key, ...fields).pexpire(key, 86_400_000);
  }, 3);
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
}
