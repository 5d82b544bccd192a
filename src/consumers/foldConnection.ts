import type { Redis } from 'ioredis';
import { RedisClient, duplicateServer, isCluster } from '../redis/client';

/**
 * The consumer fold's own connection to one server, for WATCH … MULTI/EXEC: the fold
 * WATCHes the pane keys it reads and writes them in one transaction, which Redis refuses
 * when another writer touched any of them since (nodeFold.ts). A connection of its own
 * because WATCH is per connection: another component's MULTI/EXEC on a shared one would
 * end it. Opened at the first fold; never keeps the process alive; close() ends it.
 *
 * A transaction must run on the connection that sent its WATCH: after a reconnect the
 * watches are gone, so `epoch` counts connections and a fold whose WATCH was sent on an
 * earlier one writes nothing (its users go to the script). Commands in flight when the
 * connection drops fail (and the batch is retried) rather than being sent on another one.
 */
export class FoldConnection {
  private opening?: Promise<Redis>;
  private conn?: Redis;
  /** Connections made so far (a new one drops the previous one's WATCHes). */
  epoch = 0;

  private constructor(private readonly redis: Redis) {}

  /** One for `redis`, or undefined on a cluster (a transaction's keys must share a slot: the fold calls applyFolds.lua there). */
  static for(redis: RedisClient): FoldConnection | undefined {
    return isCluster(redis) ? undefined : new FoldConnection(redis);
  }

  /**
   * The connection, opened (and awaited ready) at the first call. It does not reconnect (a
   * consumer that was never stopped must not keep retrying a server that went away): once
   * closed, the next call opens another, as after a failed opening.
   */
  get(): Promise<Redis> {
    if (this.conn && !['ready', 'connect', 'connecting'].includes(this.conn.status)) {
      this.opening = undefined;
      this.conn = undefined;
    }
    if (!this.opening) {
      this.opening = duplicateServer(this.redis, { autoResendUnfulfilledCommands: false, retryStrategy: () => null }, (conn) => {
        conn.on('error', () => undefined); // the main connection reports outages; a fold's command fails and its batch is retried
        conn.on('connect', () => {
          this.epoch++;
          (conn.stream as { unref?: () => void } | undefined)?.unref?.();
        });
      }).then(
        (conn) => (this.conn = conn),
        (err: unknown) => {
          this.opening = undefined;
          throw err;
        },
      );
    }
    return this.opening;
  }

  /** True when the connection is ready and is the one of `epoch` (its WATCHes still hold). */
  holds(epoch: number): boolean {
    return this.conn !== undefined && this.conn.status === 'ready' && this.epoch === epoch;
  }

  async close(): Promise<void> {
    const opening = this.opening;
    this.opening = undefined;
    this.conn = undefined;
    const conn = await opening?.catch(() => undefined);
    if (conn) await conn.quit().catch(() => conn.disconnect());
  }
}
