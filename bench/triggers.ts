/**
 * Triggers: what two triggers cost the realtime path, and how fast a firing reaches an SSE
 * client. Same run, same private redis-server:
 *   - realtime drain of the same generated traffic with no trigger and with two
 *     (hot_clicker: clicks_5m >= 3; big_spender_today: spend_24h >= 500), twice each, alternating;
 *   - firing latency: background traffic at `rate` events/s through the producer, a
 *     realtime consumer running, and probes (three clicks of a fresh user in one POST
 *     /events); the time from the 202 to the probe's hot_clicker event on GET /triggers/stream.
 *   node dist/bench/triggers.js [events=100000] [users=50000] [probes=200] [rate=1000]
 */
import { resolveConfig } from '../src/core/config';
import { Keys } from '../src/core/keys';
import fs from 'fs';
import { TagConfig } from '../src/core/tags';
import { DEFAULT_TAGS_FILE, parseTagConfig } from '../src/core/tagConfig';
import { Producer } from '../src/producer/producer';
import { RealtimeConsumer } from '../src/consumers/realtime';
import { ProfileReader } from '../src/profile/reader';
import { createApp } from '../src/api/app';
import { listen } from '../src/api/server';
import { TrafficGenerator } from '../src/dev/simulate';
import { Redis } from '../src/redis/client';
import { runMain, withScratchRedis } from './scratchRedis';

const TWO_TRIGGERS = [
  { name: 'hot_clicker', when: [{ tag: 'clicks_5m', op: '>=', value: 3 }] },
  { name: 'big_spender_today', when: [{ tag: 'spend_24h', op: '>=', value: 500 }] },
];

/** The shipped tag config with these triggers. */
function withTriggers(triggers: unknown[]): TagConfig {
  return parseTagConfig({ ...(JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as object), triggers });
}

/** Events per second one consumer folds (same traffic each time), with and without triggers. */
async function drainRate(redis: Redis, tags: TagConfig, events: number, users: number): Promise<number> {
  await redis.flushall();
  const keys = new Keys('');
  const partitions = resolveConfig({}).partitions;
  const now = Date.now();
  const producer = new Producer({ redis, keys, partitions, maxFutureSkewMs: 0, clock: () => now });
  const gen = new TrafficGenerator(users, 1);
  for (let sent = 0; sent < events; sent += 5000) {
    const r = await producer.ingest(Array.from({ length: Math.min(5000, events - sent) }, () => gen.next(now)));
    if (!r.ok) throw new Error(JSON.stringify(r));
  }
  const consumer = new RealtimeConsumer({
    redis,
    keys,
    partitions,
    tags: tags.realtime,
    triggers: tags.triggers,
    offlineTags: tags.offline,
    consumerName: 'bench',
    clock: () => now,
    trimIntervalMs: 0,
  });
  await consumer.init();
  const t0 = process.hrtime.bigint();
  const n = await consumer.drain();
  return Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9));
}

/** Milliseconds from each probe's 202 to its firing on the SSE stream, under background traffic. */
async function firingLatencies(redis: Redis, tags: TagConfig, probes: number, rate: number, users: number): Promise<number[]> {
  await redis.flushall();
  const keys = new Keys('');
  const partitions = resolveConfig({}).partitions;
  const producer = new Producer({ redis, keys, partitions, maxFutureSkewMs: 300_000 });
  const consumer = new RealtimeConsumer({
    redis,
    keys,
    partitions,
    tags: tags.realtime,
    triggers: tags.triggers,
    offlineTags: tags.offline,
    consumerName: 'bench-live',
    blockMs: 100,
  });
  await consumer.start();
  const http = await listen(
    createApp({
      redis,
      producer,
      reader: new ProfileReader(redis, keys, tags.realtime),
      keys,
      partitions,
      maxEventsPerRequest: 10_000,
      maxProfilesPerRequest: 100,
      maxBodyBytes: 8 << 20,
      triggers: tags.triggers,
    }),
    '127.0.0.1',
    0,
  );
  const base = `http://127.0.0.1:${http.port}`;
  const ctrl = new AbortController();
  const sent = new Map<string, bigint>();
  const latencies: number[] = [];
  let resolveAll!: () => void;
  const allSeen = new Promise<void>((r) => (resolveAll = r));
  const res = await fetch(`${base}/triggers/stream?name=hot_clicker`, { signal: ctrl.signal });
  if (res.status !== 200) throw new Error(`GET /triggers/stream answered ${res.status}: ${await res.text()}`);
  const reading = (async () => {
    const reader = res.body!.getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += new TextDecoder().decode(value);
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .find((l) => l.startsWith('data: '));
        buffer = buffer.slice(end + 2);
        const user = data && (JSON.parse(data.slice(6)) as { user_id: string }).user_id;
        const at = user ? sent.get(user) : undefined;
        if (at === undefined) continue;
        latencies.push(Number(process.hrtime.bigint() - at) / 1e6);
        sent.delete(user!);
        if (latencies.length === probes) resolveAll();
      }
    }
  })();
  // Background traffic at `rate` events/s in batches every 100 ms.
  const gen = new TrafficGenerator(users, 7);
  let running = true;
  const background = (async () => {
    while (running) {
      const started = Date.now();
      await producer.ingest(Array.from({ length: Math.max(1, Math.round(rate / 10)) }, () => gen.next(Date.now())));
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
    }
  })();
  for (let i = 0; i < probes; i++) {
    const user = `probe-${i}`;
    const body = JSON.stringify(Array.from({ length: 3 }, (_, j) => ({ user_id: user, type: 'click', event_id: `p${i}-${j}` })));
    const t = await fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const at = process.hrtime.bigint();
    if (t.status !== 202) throw new Error(`probe got ${t.status}`);
    await t.text();
    sent.set(user, at);
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.race([allSeen, new Promise((r) => setTimeout(r, 30_000).unref())]);
  running = false;
  await background;
  ctrl.abort();
  await reading;
  await consumer.stop();
  await http.close();
  if (latencies.length !== probes) throw new Error(`only ${latencies.length} of ${probes} probes fired within 30 s`);
  return latencies.sort((a, b) => a - b);
}

const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** The trigger figures of one run. */
export async function measureTriggers(events: number, users: number, probes: number, rate: number): Promise<Record<string, number>> {
  return withScratchRedis('triggers', async (redis) => {
    const none = withTriggers([]);
    const two = withTriggers(TWO_TRIGGERS);
    const rates: Record<'none' | 'two', number[]> = { none: [], two: [] };
    for (let round = 0; round < 2; round++) {
      rates.none.push(await drainRate(redis, none, events, users));
      rates.two.push(await drainRate(redis, two, events, users));
    }
    const best = (r: number[]) => Math.max(...r);
    const latencies = await firingLatencies(redis, two, probes, rate, users);
    return {
      realtime_per_s_no_triggers: best(rates.none),
      realtime_per_s_two_triggers: best(rates.two),
      triggers_throughput_ratio: Number((best(rates.two) / best(rates.none)).toFixed(3)),
      firing_latency_p50_ms: Number(pct(latencies, 0.5).toFixed(2)),
      firing_latency_p99_ms: Number(pct(latencies, 0.99).toFixed(2)),
      firing_probes: probes,
      firing_background_per_s: rate,
    };
  });
}

async function main() {
  const [events, users, probes, rate] = [100_000, 50_000, 200, 1000].map((d, i) => Number(process.argv[2 + i] ?? d));
  console.log(JSON.stringify(await measureTriggers(events, users, probes, rate)));
}

if (require.main === module) runMain(main);
