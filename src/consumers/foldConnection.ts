import type { Redis } from 'ioredis';
import { RedisClient, isCluster } from '../redis/client';
import { RawConnection } from '../redis/rawConnection';

/**
 * The consumer fold's own connection to one server, for WATCH … MULTI/EXEC: the fold
 * WATCHes the pane keys it reads and writes them in one transaction, which Redis refuses
 * when another writer touched any of them since (nodeFold.ts). A connection of its own
 * because WATCH is per connection: another component's MULTI/EXEC on a shared one would
 * end it. The fold sends its commands pre-encoded (RawConnection: a transaction of ~5
 * commands a user cost the consumer ~14 µs of CPU a command through ioredis, ~6 encoded),
 * replies as Buffers (dedup buckets are binary). Opened at the first fold; never keeps the
 * process alive; close() ends it.
 *
 * A transaction must run on the connection that sent its WATCH: a connection that dropped
 * takes its watches with it, and it is never reopened, so `epoch` counts connections and a
 * fold whose WATCH was sent on an earlier one writes nothing (its users go to the script).
 * Commands in flight when the connection drops fail (and the batch is retried: the error
 * says the connection to Redis was lost) rather than being sent on another one.
 */
export class FoldConnection {
  private opening?: Promise<RawConnection>;
  private conn?: RawConnection;
  /** Connections made so far (a new one drops the previous one's WATCHes). */
  epoch = 0;

  private constructor(private readonly redis: Redis) {}

  /** One for `redis`, or undefined on a cluster (a transaction's keys must share a slot: the fold calls applyFolds.lua there). */
  static for(redis: RedisClient): FoldConnection | undefined {
    return isCluster(redis) ? undefined : new FoldConnection(redis);
  }

  /**
   * The connection, opened at the first call. It does not reconnect (a consumer that was
   * never stopped must not keep retrying a server that went away): once it failed or was
   * closed, the next call opens another, as after a failed opening.
   */
  get(): Promise<RawConnection> {
    if (this.conn && !this.conn.alive) {
      this.opening = undefined;
      this.conn = undefined;
    }
    if (!this.opening) {
      this.opening = RawConnection.open(this.redis, { returnBuffers: true, unref: true, name: "the consumer fold's" }).then(
        (conn) => {
          this.epoch++;
          return (this.conn = conn);
        },
        (err: unknown) => {
          this.opening = undefined;
          throw err;
        },
      );
    }
    return this.opening;
  }

  /** True when the connection is up and is the one of `epoch` (its WATCHes still hold). */
  holds(epoch: number): boolean {
    return this.conn !== undefined && this.conn.alive && this.epoch === epoch;
  }

  async close(): Promise<void> {
    const opening = this.opening;
    this.opening = undefined;
    this.conn = undefined;
    const conn = await opening?.catch(() => undefined);
    conn?.close();
  }
}
