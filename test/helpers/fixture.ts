/**
 * Mocha global fixture: one private redis-server on a free port for the whole run (never
 * a server that happens to run on 6379). Tests isolate themselves with a unique key prefix.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { RedisServerHandle, startRedisServer } from '../../src/redisServer';

let server: RedisServerHandle | undefined;
let dir: string | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profile-stream-test-redis-'));
  server = await startRedisServer({ dir, appendonly: false });
  process.env.PROFILE_TEST_REDIS_URL = server.url;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
