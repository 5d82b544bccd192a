import fs from 'fs';
import { createApp } from '../../src/api/app';
import { HttpServerHandle, listen } from '../../src/api/server';
import { Keys } from '../../src/core/keys';
import { Producer } from '../../src/producer/producer';
import { ProfileReader } from '../../src/profile/reader';
import { Redis, connectRedis } from '../../src/redis/client';
import { RedisServerHandle, startPrivateRedis, startRedisServer } from '../../src/redis/embeddedServer';
import { loadTagConfig } from '../../src/core/tagConfig';

/** An API on a redis-server of its own, which a test may stop and start again on the same port. */
export interface ApiOnOwnRedis {
  redis: Redis;
  keys: Keys;
  http: HttpServerHandle;
  base: string;
  stopRedis(): Promise<void>;
  startRedis(): Promise<void>;
  close(): Promise<void>;
}

export async function apiOnOwnRedis(opts: { prefix: string; partitions: number; appendonly: boolean }): Promise<ApiOnOwnRedis> {
  const own = await startPrivateRedis('own-redis', { appendonly: opts.appendonly });
  const dir = own.dir;
  let server: RedisServerHandle = own.server;
  const redis = await connectRedis(server.url);
  redis.on('error', () => undefined);
  const keys = new Keys(opts.prefix);
  const { partitions } = opts;
  const app = createApp({
    redis,
    keys,
    partitions,
    reader: new ProfileReader(redis, keys, loadTagConfig().realtime),
    producer: new Producer({ redis, keys, partitions, maxFutureSkewMs: 300_000 }),
    maxEventsPerRequest: 100,
    maxProfilesPerRequest: 100,
    maxBodyBytes: 1 << 20,
  });
  const http = await listen(app, '127.0.0.1', 0);
  return {
    redis,
    keys,
    http,
    base: `http://127.0.0.1:${http.port}`,
    stopRedis: () => server.stop(),
    async startRedis() {
      server = await startRedisServer({ dir, appendonly: opts.appendonly, port: server.port });
    },
    async close() {
      await http.close();
      redis.disconnect();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
