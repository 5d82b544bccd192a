/**
 * Mocha global fixture: one private redis-server on a free port for the whole run (never
 * a server that happens to run on 6379), and one private 3-master Redis Cluster on free
 * ports for the cluster suite. Tests isolate themselves with a unique key prefix.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { RedisClusterHandle, RedisServerHandle, startRedisCluster, startRedisServer } from '../../src/redis/embeddedServer';

let server: RedisServerHandle | undefined;
let cluster: RedisClusterHandle | undefined;
let dir: string | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profile-stream-test-redis-'));
  [server, cluster] = await Promise.all([
    startRedisServer({ dir: path.join(dir, 'single'), appendonly: false }),
    startRedisCluster({ dir: path.join(dir, 'cluster'), masters: 3 }),
  ]);
  process.env.PROFILE_TEST_REDIS_URL = server.url;
  process.env.PROFILE_TEST_CLUSTER_NODES = cluster.nodes.join(',');
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all([server?.stop(), cluster?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
