import { Schema, SchemaDefinition } from 'redis-om';
import type { Redis } from 'ioredis';
import { RedisClient, nodeFor, pipelineByNode } from '../redis/client';
import { RawConnection, encodeCommand } from '../redis/rawConnection';
import { RedisErrorCode, isRedisError } from '../core/errors';
import { Keys } from '../core/keys';
import { OfflineTag, SEGMENT_TAG } from '../core/tags';
import { WindowValue } from './windows';

/** Offline tag values of one user: numbers, plus the segment id. */
export type OfflineValues = Record<string, number | string>;

/** Offline hash fields that describe the run (read back by the profile reader). */
export const RUN_ID_FIELD = '_run_id';
export const BATCH_AT_FIELD = '_batch_at';

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

type Profile = [userId: string, values: OfflineValues];

/** Errors after which a cluster node's write goes through ioredis, which follows redirections. */
const REDIRECTED: RedisErrorCode[] = ['MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN'];

/**
 * The bulk save of offline profiles (the batch's load step): the same hash per user as
 * redis-om writes for `schema` (its fields, numbers as their decimal text), replaced whole
 * in one MULTI (UNLINK + HSET) per user. Commands are encoded here and written on a raw
 * connection per node (RawConnection: ioredis's per-command cost was four times Redis's
 * work); users a cluster node redirects (a slot moving) are written again through ioredis.
 * No node-redis connection: redis-om's per-entity save costs a round of promises and a
 * MULTI per user on one connection.
 */
export class OfflineProfileWriter {
  private readonly known: Set<string>;
  private readonly connections = new Map<string, Promise<RawConnection>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    schema: Schema,
    private readonly runId: string,
    private readonly batchAt: number,
  ) {
    this.known = new Set(schema.fields.map((f) => f.name));
  }

  /**
   * Replaces these users' offline hashes; resolves when Redis has applied every one, with
   * the users this run had written already (a user twice in a loaded table: the last row
   * wins, and the caller reports it). Each user is one MULTI: HGET of the hash's run id,
   * UNLINK, HSET, EXEC.
   */
  async write(profiles: readonly Profile[]): Promise<string[]> {
    const groups = new Map<Redis, Profile[]>();
    for (const p of profiles) {
      const node = nodeFor(this.redis, this.keys.offline(p[0]));
      const list = groups.get(node);
      if (list) list.push(p);
      else groups.set(node, [p]);
    }
    const redirected: Profile[] = [];
    const again: string[] = [];
    await Promise.all(
      [...groups].map(async ([node, list]) => {
        const conn = await this.connection(node);
        const replies = await conn.send(list.map((p) => this.encode(p)).join(''), PER_USER * list.length);
        list.forEach((profile, j) => {
          const exec = replies[PER_USER * j + PER_USER - 1];
          const err = [...replies.slice(PER_USER * j, PER_USER * j + PER_USER - 1), ...(Array.isArray(exec) ? exec.slice(1) : [exec])].find(
            (r) => r instanceof Error || r === null,
          );
          if (err === undefined) {
            if ((exec as unknown[])[0] === this.runId) again.push(profile[0]);
            return;
          }
          if (err instanceof Error && isRedisError(err, ...REDIRECTED)) redirected.push(profile);
          else throw err ?? new Error(`the offline write of ${profile[0]} was aborted`);
        });
      }),
    );
    if (redirected.length > 0) again.push(...(await this.writeThroughClient(redirected)));
    return again;
  }

  close(): void {
    for (const conn of this.connections.values())
      void conn.then(
        (c) => c.close(),
        () => undefined,
      );
    this.connections.clear();
  }

  private connection(node: Redis): Promise<RawConnection> {
    const id = `${node.options.host}:${node.options.port}:${node.options.path ?? ''}`;
    let conn = this.connections.get(id);
    if (!conn) this.connections.set(id, (conn = RawConnection.open(node)));
    return conn;
  }

  /** The user's HSET arguments: the run fields, then every value (checked against the schema). */
  private fields([, values]: Profile): string[] {
    const fields: string[] = [RUN_ID_FIELD, this.runId, BATCH_AT_FIELD, String(this.batchAt)];
    for (const [name, value] of Object.entries(values)) {
      if (!this.known.has(name)) throw new Error(`offline value ${name} is not a field of the offline profile schema`);
      fields.push(name, String(value));
    }
    return fields;
  }

  private encode(profile: Profile): string {
    const key = this.keys.offline(profile[0]);
    return (
      encodeCommand(['MULTI']) +
      encodeCommand(['HGET', key, RUN_ID_FIELD]) +
      encodeCommand(['UNLINK', key]) +
      encodeCommand(['HSET', key, ...this.fields(profile)]) +
      encodeCommand(['EXEC'])
    );
  }

  /** The same writes over ioredis (which follows MOVED and ASK). */
  private async writeThroughClient(profiles: Profile[]): Promise<string[]> {
    const replies = await pipelineByNode(
      this.redis,
      profiles,
      ([userId]) => this.keys.offline(userId),
      (pipeline, profile) => {
        const key = this.keys.offline(profile[0]);
        pipeline
          .call('MULTI')
          .hget(key, RUN_ID_FIELD)
          .unlink(key)
          .hset(key, ...this.fields(profile))
          .call('EXEC');
      },
      PER_USER,
    );
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    return profiles.filter((_, i) => (replies[i][1] as unknown[] | null)?.[0] === this.runId).map(([userId]) => userId);
  }
}

/** Commands per user of OfflineProfileWriter: MULTI, HGET, UNLINK, HSET, EXEC. */
const PER_USER = 5;

/** Chunks in flight at once: Redis applies one while the next is encoded and sent. */
const CHUNKS_IN_FLIGHT = 4;

/** `items` in chunks of `size`. */
export function* chunksOf<T>(items: readonly T[], size = 1000): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Hands each chunk to `write`, a few in flight, and reports each chunk done, in order. */
export async function writeChunks<T, R>(
  chunks: Iterable<T[]> | AsyncIterable<T[]>,
  write: (chunk: readonly T[]) => Promise<R>,
  done: (n: number, result: R) => void,
): Promise<void> {
  const inFlight: Promise<[number, R]>[] = [];
  try {
    for await (const chunk of chunks) {
      inFlight.push(write(chunk).then((r) => [chunk.length, r]));
      if (inFlight.length >= CHUNKS_IN_FLIGHT) done(...(await inFlight.shift()!));
    }
    while (inFlight.length > 0) done(...(await inFlight.shift()!));
  } catch (err) {
    await Promise.allSettled(inFlight); // no write left running (or its failure unhandled)
    throw err;
  }
}

/**
 * Writes the window tags a `--windows` run computed as of its as-of time to
 * `u:{<user>}:wb` (tag → JSON value, plus the run id and as-of), where `profile verify`
 * compares them with the live windows. They expire after a day.
 */
export async function saveWindowResults(
  redis: RedisClient,
  keys: Keys,
  results: readonly [userId: string, values: Record<string, WindowValue>][],
  runId: string,
  asOf: number,
): Promise<void> {
  const replies = await pipelineByNode(
    redis,
    results,
    ([userId]) => keys.batchWindows(userId),
    (pipeline, [userId, values]) => {
      const key = keys.batchWindows(userId);
      const fields: string[] = [RUN_ID_FIELD, runId, '_as_of', String(asOf)];
      for (const [name, value] of Object.entries(values)) fields.push(name, JSON.stringify(value));
      pipeline
        .unlink(key)
        .hset(key, ...fields)
        .pexpire(key, 86_400_000);
    },
    3,
  );
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
}
