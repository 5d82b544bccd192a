/**
 * Window state cost of one build, for same-run comparisons between builds (e.g. before and
 * after window panes): 100,000 Zipf events over 20,000 users folded by one realtime
 * consumer, then 3 s of profile reads (4 in flight). Prints JSON: Redis time per event on
 * the realtime path (INFO commandstats), the read script's mean time, reads/s, memory.
 *   node dist/bench/windowState.js [build src dir, default: this build's dist/src]
 * e.g. git worktree add /tmp/v1 <commit> && (cd /tmp/v1 && npm ci && npm run build) &&
 *      node dist/bench/windowState.js /tmp/v1/dist/src && node dist/bench/windowState.js
 */
import path from 'path';
import { runMain, withScratchRedis } from './scratchRedis';

async function main() {
  const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'src'));
  const load = (m: string) => require(path.join(root, m));
  const { Keys } = load('core/keys');
  const { loadTagConfig } = load('core/tags');
  const { Producer } = load('producer/producer');
  const { RealtimeConsumer } = load('consumers/realtime');
  const { ProfileReader } = load('profile/reader');
  const { TrafficGenerator } = load('dev/simulate');
  await withScratchRedis('window-state', async (redis) => {
    const keys = new Keys('');
    const tags = loadTagConfig().realtime;
    const now = Date.now();
    const producer = new Producer({ redis, keys, partitions: 4, maxFutureSkewMs: 0, clock: () => now });
    const gen = new TrafficGenerator(20_000, 1);
    for (let i = 0; i < 100_000; i += 5000) await producer.ingest(Array.from({ length: 5000 }, () => gen.next(now)));
    const memBefore = Number((await redis.info('memory')).match(/used_memory:(\d+)/)![1]);
    const consumer = new RealtimeConsumer({ redis, keys, partitions: 4, tags, consumerName: 'bench', clock: () => now, trimIntervalMs: 0 });
    await consumer.init();
    await redis.config('RESETSTAT');
    const events: number = await consumer.drain();
    const writeStats: string = await redis.info('commandstats');
    await consumer.stop();
    const memAfter = Number((await redis.info('memory')).match(/used_memory:(\d+)/)![1]);
    let usec = 0;
    for (const m of writeStats.matchAll(/usec=(\d+),/g)) usec += Number(m[1]);
    await redis.config('RESETSTAT');
    const reader = new ProfileReader(redis, keys, tags, () => now);
    const started = process.hrtime.bigint();
    let reads = 0;
    while (Number(process.hrtime.bigint() - started) < 3e9) {
      await Promise.all(Array.from({ length: 4 }, () => reader.read(`user-${1 + Math.floor(Math.random() * 20_000)}`)));
      reads += 4;
    }
    const ro = /cmdstat_fcall_ro:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'))!;
    console.log(
      JSON.stringify({
        build: root,
        events,
        redis_us_per_event: Number((usec / events).toFixed(2)),
        read_script_us: Number((Number(ro[2]) / Number(ro[1])).toFixed(1)),
        reads_per_s: Math.round(reads / 3),
        window_bytes_per_event: Math.round((memAfter - memBefore) / events),
      }),
    );
  });
}

runMain(main);
