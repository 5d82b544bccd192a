import fs from 'fs';
import type { ConnectionOptions } from 'tls';
import Redis, { ChainableCommander, Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { loadScripts } from '../lua/scripts';
import { ConfigError, RedisUnavailableError, isRedisError, isRedisTrouble } from '../core/errors';
import type { RedisTls } from '../core/config';

export type { RedisTls };

export { loadScripts };

export type { Redis, Cluster };

/**
 * A connection to one Redis server or to a Redis Cluster. Every module takes either: each
 * command and script touches the keys of one slot, and what spans users or partitions goes
 * through `pipelineByNode`.
 */
export type RedisClient = Redis | Cluster;

/** Where Redis is: one server by URL, or a cluster by seed nodes (`host:port`); with `tls`, over TLS. */
export interface RedisTarget {
  redisUrl?: string;
  clusterNodes?: string[];
  tls?: RedisTls;
}

/** Node's TLS options for `tls` (the files read now: a missing one is a ConfigError naming its option), or undefined. */
export function tlsOptions(tls: RedisTls | undefined): ConnectionOptions | undefined {
  if (!tls || Object.values(tls).every((v) => v === undefined)) return undefined;
  const read = (file: string | undefined, option: string) => {
    if (file === undefined) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new ConfigError('--redis-tls-cert and --redis-tls-key go together: give both or neither');
  return {
    ca: read(tls.ca, '--redis-tls-ca'),
    cert: read(tls.cert, '--redis-tls-cert'),
    key: read(tls.key, '--redis-tls-key'),
    ...(tls.servername ? { servername: tls.servername } : {}),
  };
}

/** True for a cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

// No offline queue: while Redis is down a command fails at once (the API answers 503,
// consumers retry their loop) instead of piling up or hanging a request.
const NODE_OPTIONS: RedisOptions = { maxRetriesPerRequest: 2, enableOfflineQueue: false };

/**
 * Opens a Redis connection with the product's scripts defined on it.
 * `lazyConnect` is left off: the caller awaits `ready`.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  // A named ACL user has no INFO (@dangerous), which ioredis's ready check sends: skip it.
  const named = /^rediss?:\/\/[^:@/]+(:[^@/]*)?@/.test(url) && !/^rediss?:\/\/(default)?(:[^@/]*)?@/.test(url);
  const client = new Redis(url, { ...NODE_OPTIONS, ...(named ? { enableReadyCheck: false } : {}), ...options });
  await waitReady(client);
  await loadScripts(client, { connecting: true });
  // After a reconnect (a restarted Redis without persistence has no functions) load them again.
  client.on('ready', () => void loadScripts(client).catch(() => undefined));
  return client;
}

/**
 * Opens a Redis Cluster client from seed nodes (`host:port`); it learns the other nodes
 * and the slot map from them and follows MOVED/ASK redirections.
 */
export async function connectCluster(nodes: string[], options: ClusterOptions = {}): Promise<Cluster> {
  const startup = nodes.map((n) => {
    const [host, port] = splitHostPort(n);
    return { host, port };
  });
  const client = new Redis.Cluster(startup, {
    enableOfflineQueue: false,
    redisOptions: { maxRetriesPerRequest: 2 },
    // A failover or reshard is followed by a slot-map refresh; commands in flight then retry.
    retryDelayOnFailover: 200,
    ...options,
  });
  await waitReady(client, `cluster ${nodes.join(',')}`);
  await loadScripts(client, { connecting: true });
  return client;
}

/** Connects to what `target` names: a cluster when it lists nodes, else the URL. */
export async function connectTarget(target: RedisTarget): Promise<RedisClient> {
  const tls = tlsOptions(target.tls);
  if (target.clusterNodes && target.clusterNodes.length > 0) {
    return connectCluster(target.clusterNodes, tls ? { redisOptions: { maxRetriesPerRequest: 2, tls } } : {});
  }
  if (!target.redisUrl) throw new ConfigError('no Redis configured: give a URL or cluster nodes');
  return connectRedis(target.redisUrl, tls ? { tls } : {});
}

/** `host:port` → [host, port]; throws on anything else. */
export function splitHostPort(node: string): [string, number] {
  const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(node.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`cluster node must be host:port (got "${node}")`);
  return [m[1], port];
}

/** A second connection to the same server or cluster, e.g. for blocking reads. */
export async function duplicateRedis(client: RedisClient): Promise<RedisClient> {
  const dup = client.duplicate();
  await waitReady(dup);
  return dup;
}

function waitReady(client: RedisClient, label = describe(client)): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      client.off('error', onError);
      resolve();
    };
    const onError = (err: Error) => {
      client.off('ready', onReady);
      client.disconnect();
      reject(new RedisUnavailableError(label, err.message));
    };
    client.once('ready', onReady);
    client.once('error', onError);
  });
}

function describe(client: RedisClient): string {
  if (isCluster(client)) return 'cluster';
  const o = client.options;
  return o.path ? o.path : `${o.host}:${o.port}`;
}

/** `host:port` of a node connection, as the cluster client's slot map names nodes. */
export function nodeKey(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/**
 * The connection to the master that serves `key` (the client itself on a single server),
 * for commands that must reach one particular node: CLIENT ID / CLIENT UNBLOCK of a
 * blocking read.
 */
export function nodeFor(client: RedisClient, key: string): Redis {
  if (!isCluster(client)) return client;
  const owner = client.slots[calculateSlot(key)]?.[0];
  const node = client.nodes('master').find((n) => nodeKey(n) === owner);
  if (!node) throw new Error(`no master known for key ${key} (slot map not loaded)`);
  return node;
}

/** Every master (the client itself on a single server): for SCAN and other per-node commands. */
export function masters(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * Throws the first Redis trouble (out of memory, gone) among pipeline results: it is not
 * the users' fault, so the whole batch is retried in place (GroupConsumer.inPlace), not
 * user by user.
 */
export function throwRedisTrouble(results: readonly [Error | null, unknown][]): void {
  const trouble = results.find(([err]) => isRedisTrouble(err));
  if (trouble) throw trouble[0];
}

/**
 * Items in chunks of at most `size` for script calls of many items each: on a cluster a
 * call's keys must share a slot, so items are grouped by the slot of their key first.
 */
export function chunkBySlot<T>(client: RedisClient, items: readonly T[], keyOf: (item: T) => string, size: number): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = isCluster(client) ? calculateSlot(keyOf(item)) : 0;
    const list = groups.get(slot) ?? [];
    list.push(item);
    groups.set(slot, list);
  }
  const chunks: T[][] = [];
  for (const list of groups.values()) for (let i = 0; i < list.length; i += size) chunks.push(list.slice(i, i + size));
  return chunks;
}

/**
 * Queues commands for many items, each with the key that routes it, on one pipeline per
 * node (one pipeline on a single server), sends the pipelines in parallel, and returns each
 * item's [error, reply] in item order (with several commands per item: the first error, or
 * the last reply). A cluster pipeline may only hold keys of one node;
 * this is how multi-user and multi-partition work stays one round trip per node.
 * `direct` sends each pipeline on the node's own connection instead of through the
 * cluster client: needed for commands whose keys ioredis cannot find (XINFO), which the
 * cluster client would send to a random node.
 */
export async function pipelineByNode<T>(
  client: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipeline: ChainableCommander, item: T) => void,
  commandsPerItem = 1,
  opts: { direct?: boolean } = {},
): Promise<[Error | null, unknown][]> {
  if (items.length === 0) return [];
  const groups = new Map<string, number[]>();
  if (isCluster(client)) {
    items.forEach((item, i) => {
      const nodes = client.slots[calculateSlot(keyOf(item))];
      const group = nodes ? nodes.join(';') : `?${i}`; // unknown slot: its own pipeline, redirected by ioredis
      let list = groups.get(group);
      if (!list) groups.set(group, (list = []));
      list.push(i);
    });
  } else {
    groups.set(
      '',
      items.map((_, i) => i),
    );
  }
  const out = new Array<[Error | null, unknown]>(items.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const pipeline = opts.direct ? nodeFor(client, keyOf(items[indexes[0]])).pipeline() : client.pipeline();
      for (const i of indexes) add(pipeline, items[i]);
      const results = (await pipeline.exec()) ?? [];
      if (results.length !== indexes.length * commandsPerItem) {
        throw new Error(`pipeline answered ${results.length} replies for ${indexes.length} items of ${commandsPerItem} commands`);
      }
      indexes.forEach((itemIndex, j) => {
        const replies = results.slice(j * commandsPerItem, (j + 1) * commandsPerItem) as [Error | null, unknown][];
        out[itemIndex] = replies.find(([err]) => err) ?? replies[replies.length - 1];
      });
    }),
  );
  return out;
}

/**
 * True when a Redis server answers at `url` within `timeoutMs`: PONG, or an authentication
 * error (a server with ACLs and the default user off is still a server on that port).
 */
export async function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableReadyCheck: false });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch (err) {
    return isRedisError(err, 'NOAUTH', 'NOPERM', 'WRONGPASS');
  } finally {
    probe.disconnect();
  }
}
