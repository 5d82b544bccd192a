/**
 * Realtime consumer drain rate: pre-fills the streams with generated traffic, then times
 * how fast one consumer folds it into the windows. Prints JSON.
 *   node dist/bench/drain.js [events=200000] [users=100000] [--no-fold-in-consumer]
 */
import { resolveConfig } from '../src/core/config';
import { Keys } from '../src/core/keys';
import { runMain, withScratchRedis } from './scratchRedis';
import { Producer } from '../src/producer/producer';
import { RealtimeConsumer } from '../src/consumers/realtime';
import { TrafficGenerator } from '../src/dev/simulate';

async function main() {
  const events = Number(process.argv[2] ?? 200_000);
  const users = Number(process.argv[3] ?? 100_000);
  await withScratchRedis('drain', async (redis, url) => {
    const config = resolveConfig({ redisUrl: url });
    const keys = new Keys('');
    const now = Date.now();
    const producer = new Producer({ redis, keys, partitions: config.partitions, maxFutureSkewMs: 0, clock: () => now });
    const gen = new TrafficGenerator(users, 1);
    for (let sent = 0; sent < events; sent += 5000) {
      const batch = Array.from({ length: Math.min(5000, events - sent) }, () => gen.next(now));
      const r = await producer.ingest(batch);
      if (!r.ok) throw new Error(JSON.stringify(r));
    }
    const consumer = new RealtimeConsumer({
      redis,
      keys,
      partitions: config.partitions,
      tags: config.tags.realtime,
      consumerName: 'bench',
      clock: () => now,
      foldInConsumer: !process.argv.includes('--no-fold-in-consumer'),
    });
    await consumer.init();
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const n = await consumer.drain();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const stats = (await redis.info('commandstats'))
      .split('\n')
      .filter((l) => /fcall|xreadgroup|xack|watch|exec|hmget/.test(l))
      .map((l) => l.trim());
    const consumerCpuUsPerEvent = Number(((cpu.user + cpu.system) / n).toFixed(2));
    console.log(
      JSON.stringify({ events: n, users, seconds, realtime_per_s: Math.round(n / seconds), consumer_cpu_us_per_event: consumerCpuUsPerEvent, stats }),
    );
  });
}

runMain(main);
