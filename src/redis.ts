import Redis, { RedisOptions } from 'ioredis';
import { defineScripts } from './lua/scripts';

export type { Redis };

/**
 * Opens a Redis connection with the product's scripts defined on it.
 * `lazyConnect` is left off: the caller awaits `ready`.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  // No offline queue: while Redis is down a command fails at once (the API answers 503,
  // consumers retry their loop) instead of piling up or hanging a request.
  const client = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: false, ...options });
  defineScripts(client);
  await waitReady(client);
  return client;
}

/** A second connection to the same server, e.g. for blocking reads. */
export async function duplicateRedis(client: Redis, options: RedisOptions = {}): Promise<Redis> {
  const dup = client.duplicate(options);
  defineScripts(dup);
  await waitReady(dup);
  return dup;
}

function waitReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      client.off('error', onError);
      resolve();
    };
    const onError = (err: Error) => {
      client.off('ready', onReady);
      client.disconnect();
      reject(new Error(`cannot connect to Redis at ${describe(client)}: ${err.message}`));
    };
    client.once('ready', onReady);
    client.once('error', onError);
  });
}

function describe(client: Redis): string {
  const o = client.options;
  return o.path ? o.path : `${o.host}:${o.port}`;
}

/** True when something answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
