/**
 * Fault-suite harness: a private redis-server (AOF) and real `profile` processes
 * (serve, consume, archive) on it, a generator of known events sent over HTTP, and the
 * end-of-run checks every case shares.
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { randomBytes } from 'crypto';
import { CliProcess, runCli, runCliToEnd } from './cli';
import { RedisClient, connectCluster, connectRedis } from '../../src/redis/client';
import { RedisServerHandle, startRedisServer } from '../../src/redis/embeddedServer';
import { Keys } from '../../src/core/keys';
import { groupCaughtUp, streamStatus } from '../../src/redis/streamGroups';
import { listOdsFiles } from '../../src/ods/files';
import { listDeadLetters } from '../../src/consumers/deadLetters';

export const PARTITIONS = 4;

export interface SentEvent {
  event_id: string;
  user_id: string;
  type: 'click' | 'impression';
  ts: number;
}

/** `users` users, each with a known number of clicks and impressions, in a shuffled order. */
export function knownEvents(users: number, perUser: number, tag: string): SentEvent[] {
  const events: SentEvent[] = [];
  const now = Date.now();
  for (let u = 0; u < users; u++) {
    for (let i = 0; i < perUser + u; i++) {
      events.push({ event_id: `${tag}-${u}-${i}`, user_id: `fu-${u}`, type: i % 3 === 0 ? 'click' : 'impression', ts: now });
    }
  }
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [events[i], events[j]] = [events[j], events[i]];
  }
  return events;
}

export class Stack {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profile-faults-'));
  readonly ods = path.join(this.dir, 'ods');
  keys = new Keys('');
  redisServer?: RedisServerHandle;
  redis!: RedisClient;
  port = 0;
  readonly procs = new Map<string, CliProcess>();
  private env: Record<string, string> = {};

  constructor(private readonly extraEnv: Record<string, string> = {}) {}

  private readonly baseEnv = () => ({
    ODS_DIR: this.ods,
    PROFILE_PARTITIONS: String(PARTITIONS),
    LOG_LEVEL: 'info',
    PROFILE_CLAIM_IDLE_MS: '1500',
    PROFILE_READ_COUNT: '50',
  });

  async startRedis(appendfsync: 'always' | 'everysec' = 'everysec', port?: number): Promise<void> {
    const server = await startRedisServer({ dir: path.join(this.dir, 'redis'), appendonly: true, appendfsync, port });
    this.redisServer = server;
    this.env = { REDIS_URL: server.url, ...this.baseEnv(), ...this.extraEnv };
    if (!this.redis) {
      this.redis = await connectRedis(server.url, { enableOfflineQueue: true, maxRetriesPerRequest: null });
      this.redis.on('error', () => undefined);
    }
  }

  /**
   * Runs the stack on an existing Redis Cluster instead of a server of its own, under a
   * fresh key prefix (the cluster is shared; stop() leaves it running).
   */
  async useCluster(nodes: string[]): Promise<void> {
    const prefix = `f${randomBytes(4).toString('hex')}:`;
    this.keys = new Keys(prefix);
    this.env = { REDIS_CLUSTER_NODES: nodes.join(','), PROFILE_PREFIX: prefix, ...this.baseEnv(), ...this.extraEnv };
    this.redis = await connectCluster(nodes);
    this.redis.on('error', () => undefined);
  }

  /** Starts a process and waits until it says it is ready. */
  async start(name: string, args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<CliProcess> {
    const proc = runCli(args, { ...this.env, ...env });
    this.procs.set(name, proc);
    const m = await proc.waitFor(ready, 20_000);
    if (name === 'api') this.port = Number(m[1]);
    return proc;
  }

  /** Runs a CLI command on the stack's Redis and ODS to its end. */
  cli(args: string[], env: Record<string, string> = {}) {
    return runCliToEnd(args, { ...this.env, ...env });
  }

  startApi(env: Record<string, string> = {}) {
    return this.start('api', ['serve', '--port', '0'], /"port":(\d+),"msg":"API listening"/, env);
  }
  startRealtime(name: string, env: Record<string, string> = {}) {
    return this.start(name, ['consume', '--consumer-name', name], /realtime consumer started/, env);
  }
  startArchive(name: string, env: Record<string, string> = {}) {
    return this.start(name, ['archive', '--consumer-name', name], /archive consumer started/, env);
  }

  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const proc = this.procs.get(name)!;
    proc.child.kill(signal);
    const code = await proc.exited;
    this.procs.delete(name);
    return code;
  }

  /**
   * Sends events over HTTP in NDJSON batches, `concurrency` requests at a time; a 503 or a
   * connection error is retried with the same event ids (safe: effects are idempotent).
   * Resolves with the ids that got a 202.
   */
  async send(events: SentEvent[], batch = 50, concurrency = 2, pauseMs = 0): Promise<Set<string>> {
    const accepted = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const chunk = events.slice(next, next + batch);
        next += batch;
        const body = chunk.map((e) => JSON.stringify(e)).join('\n');
        for (let attempt = 0; ; attempt++) {
          if (attempt > 600) throw new Error('could not deliver a batch in 600 attempts');
          try {
            const res = await fetch(`http://127.0.0.1:${this.port}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
            await res.text();
            if (res.status === 202) {
              for (const e of chunk) accepted.add(e.event_id);
              break;
            }
            if (res.status !== 503) throw new Error(`unexpected status ${res.status}`);
          } catch (err) {
            if ((err as Error).message.startsWith('unexpected status')) throw err;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return accepted;
  }

  /** Waits until both groups have finished every partition (nothing undelivered or pending). */
  async waitCaughtUp(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parts = await streamStatus(this.redis, this.keys, PARTITIONS);
      if (parts.every((p) => groupCaughtUp(p, 'realtime') && groupCaughtUp(p, 'archive'))) return;
      if (Date.now() > deadline) throw new Error(`groups did not catch up: ${JSON.stringify(parts)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Event ids in the ODS (deduplicated) and how many lines hold them. */
  archivedIds(): { ids: Set<string>; lines: number } {
    const ids = new Set<string>();
    let lines = 0;
    for (const f of listOdsFiles(this.ods)) {
      for (const line of fs.readFileSync(f.path, 'utf8').split('\n')) {
        if (!line) continue;
        lines++;
        ids.add((JSON.parse(line) as { event_id: string }).event_id);
      }
    }
    return { ids, lines };
  }

  async deadIds(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const l of await listDeadLetters(this.redis, this.keys, 10_000)) {
      out.set(l.fields[l.fields.indexOf('event_id') + 1], l.group);
    }
    return out;
  }

  /**
   * The checks of every case: exact window counts for every user, the archive (dedup) plus
   * the dead letters equal to the accepted set, and empty PELs.
   */
  async assertExact(sent: SentEvent[], accepted: Set<string>, opts: { deadInRealtime?: Set<string> } = {}): Promise<void> {
    expect(accepted.size).to.equal(sent.length);
    const clicks = new Map<string, number>();
    const views = new Map<string, number>();
    for (const e of sent) {
      if (opts.deadInRealtime?.has(e.event_id)) continue;
      const m = e.type === 'click' ? clicks : views;
      m.set(e.user_id, (m.get(e.user_id) ?? 0) + 1);
    }
    const users = [...new Set(sent.map((e) => e.user_id))];
    for (const u of users) {
      let res = await fetch(`http://127.0.0.1:${this.port}/profile/${u}`);
      for (let i = 0; i < 100 && res.status === 503; i++) {
        await new Promise((r) => setTimeout(r, 100)); // the API may still be reconnecting
        res = await fetch(`http://127.0.0.1:${this.port}/profile/${u}`);
      }
      if (res.status !== 200 && res.status !== 404) expect.fail(`GET /profile/${u} answered ${res.status}`);
      const tags = res.status === 200 ? ((await res.json()) as { tags: Record<string, number> }).tags : { clicks_24h: 0, views_1h: 0 };
      expect([u, tags.clicks_24h, tags.views_1h]).to.deep.equal([u, clicks.get(u) ?? 0, views.get(u) ?? 0]);
    }
    const { ids } = this.archivedIds();
    const dead = await this.deadIds();
    const union = new Set([...ids, ...[...dead].filter(([, g]) => g === 'archive').map(([id]) => id)]);
    expect(union.size).to.equal(accepted.size);
    for (const id of accepted) if (!union.has(id)) expect.fail(`event ${id} is neither archived nor dead-lettered`);
    for (const s of this.keys.streams(PARTITIONS)) {
      for (const g of ['realtime', 'archive']) {
        expect([s, g, ((await this.redis.xpending(s, g)) as [number])[0]]).to.deep.equal([s, g, 0]);
      }
    }
  }

  async stop(): Promise<void> {
    for (const name of [...this.procs.keys()]) await this.kill(name, 'SIGKILL');
    this.redis?.disconnect();
    await this.redisServer?.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
