/**
 * One Redis server against a 3-master Redis Cluster on the same machine, in one run:
 * ingest (Producer, in process), realtime drain (one consumer), and batch get (readMany
 * of 100 users). Rounds alternate single / cluster on fresh servers; prints the medians and
 * the cluster/single ratios as JSON. All nodes share this machine's cores, so the ratio
 * shows the cluster's overhead (routing, per-node pipelines, one read per partition), not
 * a speed-up.
 *   node dist/bench/cluster.js [events=100000] [users=50000] [rounds=3] [partitions=8]
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { loadTagConfig } from '../src/core/tagConfig';
import { Keys } from '../src/core/keys';
import { RedisClient, connectCluster, connectRedis } from '../src/redis/client';
import { startRedisCluster, startRedisServer } from '../src/redis/embeddedServer';
import { Producer } from '../src/producer/producer';
import { RealtimeConsumer } from '../src/consumers/realtime';
import { ProfileReader } from '../src/profile/reader';
import { TrafficGenerator } from '../src/dev/simulate';

const events = Number(process.argv[2] ?? 100_000);
const users = Number(process.argv[3] ?? 50_000);
const rounds = Number(process.argv[4] ?? 3);
const partitions = Number(process.argv[5] ?? 8);
const tags = loadTagConfig().realtime;

async function measure(redis: RedisClient): Promise<Record<string, number>> {
  const keys = new Keys('');
  const now = Date.now();
  const producer = new Producer({ redis, keys, partitions, maxFutureSkewMs: 0, clock: () => now });
  const gen = new TrafficGenerator(users, 1);
  const batches = Array.from({ length: Math.ceil(events / 1000) }, (_, b) => Array.from({ length: Math.min(1000, events - b * 1000) }, () => gen.next(now)));
  let t = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < batches.length) {
        const r = await producer.ingest(batches[next++]);
        if (!r.ok) throw new Error(JSON.stringify(r));
      }
    }),
  );
  const ingestS = Number(process.hrtime.bigint() - t) / 1e9;

  const consumer = new RealtimeConsumer({ redis, keys, partitions, tags, consumerName: 'bench', clock: () => now });
  await consumer.init();
  t = process.hrtime.bigint();
  const drained = await consumer.drain();
  const drainS = Number(process.hrtime.bigint() - t) / 1e9;
  if (drained !== events) throw new Error(`drained ${drained} of ${events}`);

  const reader = new ProfileReader(redis, keys, tags, () => now);
  const calls = 300;
  t = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    await reader.readMany(Array.from({ length: 100 }, (_, j) => `user-${1 + ((i * 100 + j * 7919) % users)}`));
  }
  const readS = Number(process.hrtime.bigint() - t) / 1e9;
  return {
    ingest_per_s: Math.round(events / ingestS),
    realtime_per_s: Math.round(events / drainS),
    batch_get_profiles_per_s: Math.round((calls * 100) / readS),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const runs: Record<'single' | 'cluster', Record<string, number>[]> = { single: [], cluster: [] };
  for (let round = 0; round < rounds; round++) {
    for (const mode of ['single', 'cluster'] as const) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${mode}-`));
      if (mode === 'single') {
        const server = await startRedisServer({ dir, appendonly: false });
        const redis = await connectRedis(server.url);
        runs.single.push(await measure(redis));
        await redis.quit();
        await server.stop();
      } else {
        const cluster = await startRedisCluster({ dir, masters: 3 });
        const redis = await connectCluster(cluster.nodes);
        runs.cluster.push(await measure(redis));
        await redis.quit();
        await cluster.stop();
      }
      fs.rmSync(dir, { recursive: true, force: true });
      process.stderr.write(`round ${round + 1} ${mode}: ${JSON.stringify(runs[mode][runs[mode].length - 1])}\n`);
    }
  }
  const summary: Record<string, unknown> = {
    machine: { cores: os.cpus().length, node: process.version },
    events,
    users,
    partitions,
    rounds,
  };
  for (const metric of Object.keys(runs.single[0])) {
    const single = median(runs.single.map((r) => r[metric]));
    const cluster = median(runs.cluster.map((r) => r[metric]));
    summary[metric] = { single, cluster_3_masters: cluster, ratio: Math.round((cluster / single) * 100) / 100 };
  }
  console.log(JSON.stringify(summary));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
