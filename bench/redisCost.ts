/**
 * Redis time per read and per event: what the single Redis thread pays, measured with the
 * product's own consumer and reader against a private redis-server, beside the floors
 * measured in the same run (an HGETALL of an 8-field hash; HINCRBY + HSET + ZADD per event).
 *   node dist/bench/redisCost.js [--quick]
 *
 * Traffic is two hours of Zipf events (TrafficGenerator; the quick run 60,000 an hour,
 * else 300,000) stamped in time order and folded by one RealtimeConsumer whose clock
 * follows the traffic in steps of 5 s, as in production; the second hour is measured (the
 * steady state: writes that prune). Redis time comes from INFO commandstats counting top-level
 * commands once: a command that only scripts issue (HGET inside a script, say) is already
 * inside its script's FCALL time, so it is left out (the consumer's own HMGETs are not: see
 * CONSUMER_TOP_LEVEL). Reads draw users as bid requests do
 * (in proportion to their events); unknown ids, one-event users and a 100,000-event user
 * are reported apart.
 */
import fs from 'fs';
import path from 'path';
import { Keys } from '../src/core/keys';
import { loadTagConfig } from '../src/core/tagConfig';
import { Producer } from '../src/producer/producer';
import { RealtimeConsumer } from '../src/consumers/realtime';
import { ProfileReader, ReadOptions } from '../src/profile/reader';
import { TrafficGenerator } from '../src/dev/simulate';
import { Redis } from '../src/redis/client';
import { FLOOR_PROFILE_HASH, runMain, withScratchRedis } from './scratchRedis';

const MIN = 60_000;
/** How far the consumer's clock moves between drains while the hour of traffic is folded. */
const STEP_MS = 5000;

/**
 * Commands the consumer also sends itself, outside scripts: the fold's two HMGETs per user
 * and type, its EXISTS of a new type's keys, and the ZRANGEBYSCORE of the time index before
 * a prune. Their time is counted whole
 * (commandstats cannot tell a top-level HMGET from one inside updateWindows.lua), so those
 * of users left to that script (1 - write_folded_in_consumer_share of them) count twice;
 * leaving them out, as this bench did until 2026-12-06, left out a quarter of the write's
 * Redis time. The fold's writes go in MULTI/EXEC: EXEC's time holds its commands' (HSET,
 * ZADD, PEXPIRE: names scripts issue, so not counted again; the erasure check's ZMSCORE
 * queued after them is, ~0.05 µs an event).
 */
export const CONSUMER_TOP_LEVEL = new Set(['hmget', 'exists', 'zrangebyscore']);

/** Names of the commands only the Lua scripts issue (their time is inside FCALL's). */
export function scriptCommands(): Set<string> {
  const dir = path.join(__dirname, '..', 'src', 'lua');
  const files = [...fs.readdirSync(dir).map((f) => path.join(dir, f)), ...fs.readdirSync(path.join(dir, 'includes')).map((f) => path.join(dir, 'includes', f))];
  const out = new Set<string>();
  for (const f of files.filter((f) => f.endsWith('.lua'))) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/(?:rcall|redis\.call|redis\.pcall)\(\s*'([A-Za-z]+)'/g)) out.add(m[1].toLowerCase());
  }
  for (const name of CONSUMER_TOP_LEVEL) out.delete(name);
  return out;
}

interface Stat {
  calls: number;
  usec: number;
}

async function commandStats(redis: Redis): Promise<Map<string, Stat>> {
  const out = new Map<string, Stat>();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/** µs of top-level commands since the last RESETSTAT: commands only scripts issue are left out (their time is inside FCALL's). */
export async function topLevelUsec(redis: Redis, scripted: Set<string>, byCommand?: Map<string, number>, calls?: Map<string, number>): Promise<number> {
  let usec = 0;
  for (const [name, s] of await commandStats(redis)) {
    if (byCommand) byCommand.set(name, (byCommand.get(name) ?? 0) + s.usec);
    if (calls) calls.set(name, (calls.get(name) ?? 0) + s.calls);
    if (scripted.has(name) || BENCH_OWN.has(name)) continue;
    usec += s.usec;
  }
  return usec;
}

/** The bench's own commands between RESETSTAT and the reading of the stats: not the product's time. */
const BENCH_OWN = new Set(['info', 'config|resetstat']);

async function mainThreadCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user_main_thread:([\d.]+)/.exec(info)?.[1] ?? /used_cpu_user:([\d.]+)/.exec(info)![1]);
  const sys = Number(/used_cpu_sys_main_thread:([\d.]+)/.exec(info)?.[1] ?? /used_cpu_sys:([\d.]+)/.exec(info)![1]);
  return (user + sys) * 1e6;
}

/** Mean µs of the read script per call over `ids` read with 4 in flight (FCALL_RO's own commandstats). */
async function readCost(redis: Redis, reader: ProfileReader, ids: string[], opts: ReadOptions = {}): Promise<{ us: number; found: number }> {
  await redis.config('RESETSTAT');
  let found = 0;
  for (let i = 0; i < ids.length; i += 4) {
    const got = await Promise.all(ids.slice(i, i + 4).map((id) => reader.read(id, opts)));
    found += got.filter((p) => p !== null).length;
  }
  const stats = await commandStats(redis);
  const s = stats.get('fcall_ro') ?? stats.get('fcall')!;
  return { us: Number((s.usec / s.calls).toFixed(2)), found };
}

/**
 * p99 of the read as the caller sees it (µs: the round trip and the reader's own work), one
 * read at a time, of `a` and `b` in turn (a, b, a, b, …: a noisy machine's pauses fall on
 * both alike).
 */
async function readP99Pair(reader: ProfileReader, a: string[], b: string[]): Promise<[number, number]> {
  const took: [number[], number[]] = [[], []];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    for (const [j, ids] of [a, b].entries()) {
      const t0 = process.hrtime.bigint();
      await reader.read(ids[i % ids.length]);
      took[j].push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  }
  const p99 = (xs: number[]) => Number(xs.sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))].toFixed(1));
  return [p99(took[0]), p99(took[1])];
}

/** The median of `xs` (the mean of the middle two for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The same figures for many reads of one id (its mean). */
const repeat = (id: string, n: number) => Array.from({ length: n }, () => id);

/**
 * The figures above with the tags of `tagsFile` (the shipped config/tags.json when absent).
 * The hot user's events are impressions with an ad and a campaign; with a `tagsFile`, every
 * tenth is a purchase with an amount instead, so the purchase tags of that config read a
 * full window too.
 */
export async function measureRedisCost(quick: boolean, tagsFile?: string): Promise<Record<string, number>> {
  const events = quick ? 60_000 : 300_000;
  const users = quick ? 20_000 : 200_000;
  const reads = quick ? 4_000 : 20_000;
  const scripted = scriptCommands();
  return withScratchRedis('redis-cost', async (redis) => {
    const out: Record<string, number> = {};
    // Floors: an HGETALL of an 8-field hash; per event HINCRBY + HSET + ZADD, pipelined.
    await redis.hset('floor:h', FLOOR_PROFILE_HASH);
    await redis.config('RESETSTAT');
    for (let i = 0; i < 20; i++) {
      const p = redis.pipeline();
      for (let j = 0; j < 500; j++) p.hgetall('floor:h');
      await p.exec();
    }
    const h = (await commandStats(redis)).get('hgetall')!;
    out.floor_read_us = Number((h.usec / h.calls).toFixed(2));
    await redis.config('RESETSTAT');
    for (let i = 0; i < 20; i++) {
      const p = redis.pipeline();
      for (let j = 0; j < 500; j++) {
        const u = `floor:u${(i * 500 + j) % 3000}`;
        p.hincrby(`${u}:p`, `s${j}`, 1)
          .hset(`${u}:p`, `d${j % 256}`, 'abcdefghij')
          .zadd(`${u}:t`, j, `m${j}`);
      }
      await p.exec();
    }
    out.floor_event_us = Number(((await topLevelUsec(redis, new Set())) / 10_000).toFixed(2));
    await redis.flushall();

    // Two hours of Zipf traffic in time order; the consumer's clock follows it. Only the
    // second hour is measured: in the first, nothing is old enough to prune, and a write
    // that prunes (goes through updateWindows.lua) is what a steady stream of events pays
    // about once every PRUNE_SLACK_MS per active user and type (measuring the first hour
    // alone showed a quarter of the Redis time an event costs in the second).
    const keys = new Keys('');
    const tags = loadTagConfig(tagsFile).realtime;
    const end = Math.floor(Date.now() / MIN) * MIN;
    const start = end - 120 * MIN;
    let now = start;
    const producer = new Producer({ redis, keys, partitions: 4, maxFutureSkewMs: 0, clock: () => now });
    const consumer = new RealtimeConsumer({ redis, keys, partitions: 4, tags, consumerName: 'bench', clock: () => now });
    await consumer.init();
    const gen = new TrafficGenerator(users, 1);
    /** Events per user in the measured hour (the window a read sees), and per user in both. */
    const perUser = new Map<string, number>();
    const allEvents = new Map<string, number>();
    const eventUsers: string[] = [];
    let usec = 0;
    let cpu = 0;
    let folded = 0;
    const byCommand = new Map<string, number>();
    const callsByCommand = new Map<string, number>();
    // The consumer's clock steps STEP_MS at a time, each step draining that step's events (a
    // user with an event every few seconds is written every few seconds, as in production).
    const steps = (120 * MIN) / STEP_MS;
    const perStep = events / (steps / 2);
    const countBefore = { ...consumer.foldCounts };
    for (let m = 0; m < steps; m++) {
      const measured = m >= steps / 2;
      const batch: Record<string, unknown>[] = [];
      for (let i = Math.round(m * perStep); i < Math.round((m + 1) * perStep); i++) {
        const e = gen.next(start + m * STEP_MS + Math.floor(((i - m * perStep) / perStep) * STEP_MS));
        batch.push(e);
        const u = e.user_id as string;
        allEvents.set(u, (allEvents.get(u) ?? 0) + 1);
        if (!measured) continue;
        perUser.set(u, (perUser.get(u) ?? 0) + 1);
        eventUsers.push(u);
      }
      now = start + (m + 1) * STEP_MS;
      for (let i = 0; i < batch.length; i += 5000) {
        const r = await producer.ingest(batch.slice(i, i + 5000));
        if (!r.ok) throw new Error(JSON.stringify(r));
      }
      if (!measured) {
        await consumer.drain();
        if (m === steps / 2 - 1) Object.assign(countBefore, consumer.foldCounts);
        continue;
      }
      await redis.config('RESETSTAT');
      const cpu0 = await mainThreadCpuUs(redis);
      folded += await consumer.drain();
      cpu += (await mainThreadCpuUs(redis)) - cpu0;
      usec += await topLevelUsec(redis, scripted, byCommand, callsByCommand);
    }
    out.zipf_events = folded;
    out.zipf_users = perUser.size;
    out.write_us_per_event = Number((usec / folded).toFixed(2));
    out.write_cpu_us_per_event = Number((cpu / folded).toFixed(2));
    // Where the write's Redis time goes: µs an event per top-level command, the costliest first
    // (exec holds the fold's HSET, ZADD and PEXPIRE; fcall the users left to updateWindows.lua).
    // Commands inside EXEC or a script (nested) are already in its time: listed as write_nested_*.
    for (const [name, us] of [...byCommand].sort((a, b) => b[1] - a[1]))
      if (us / folded >= 0.01 && !BENCH_OWN.has(name))
        out[`write_${scripted.has(name) ? 'nested_' : ''}us_per_event_${name}`] = Number((us / folded).toFixed(2));
    // Calls an event of the write's costliest commands (a count: the machine's noise does not move it).
    for (const name of ['hset', 'hmget', 'zadd', 'hdel', 'pexpire'])
      out[`write_calls_per_event_${name}`] = Number(((callsByCommand.get(name) ?? 0) / folded).toFixed(3));
    // Users (per batch) the consumer folded itself, against those it left to updateWindows.lua.
    const fcAll = consumer.foldCounts;
    const fc = {
      folded: fcAll.folded - countBefore.folded,
      leftToScript: fcAll.leftToScript - countBefore.leftToScript,
      visits: fcAll.visits - countBefore.visits,
      visitsKnown: fcAll.visitsKnown - countBefore.visitsKnown,
    };
    out.write_folded_in_consumer_share = Number((fc.folded / Math.max(1, fc.folded + fc.leftToScript)).toFixed(3));
    // Visits (a user's events of one type) the fold planned knowing which of its seconds and
    // minutes hold events (consumers/panesSeen.ts): it names only those panes.
    out.write_panes_known_share = Number((fc.visitsKnown / Math.max(1, fc.visits)).toFixed(3));

    // Reads at the hour's end: users drawn in proportion to their events; unknown; one-event users.
    const reader = new ProfileReader(redis, keys, tags, () => now);
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const typical = Array.from({ length: reads }, () => eventUsers[Math.floor(rand() * eventUsers.length)]);
    const drawn = typical.map((u) => perUser.get(u)!).sort((a, b) => a - b);
    out.typical_user_median_events = drawn[Math.floor(drawn.length / 2)];
    const cold = [...allEvents]
      .filter(([u, n]) => n === 1 && perUser.has(u))
      .map(([u]) => u)
      .slice(0, reads);
    const unknown = Array.from({ length: reads }, (_, i) => `nobody-${i}`);
    const r = {
      typical: await readCost(redis, reader, typical),
      cold: await readCost(redis, reader, cold),
      unknown: await readCost(redis, reader, unknown),
    };
    if (r.unknown.found !== 0 || r.cold.found !== cold.length || r.typical.found !== typical.length) throw new Error(`reads found ${JSON.stringify(r)}`);
    out.read_typical_us = r.typical.us;
    // The same users read for two tags only (?tags=views_5m,campaign_views_1h: a frequency cap's read).
    out.read_typical_two_tags_us = (await readCost(redis, reader, typical, { tags: ['views_5m', 'campaign_views_1h'] })).us;
    out.read_cold_us = r.cold.us;
    // p99 as the caller sees it, one read at a time (the hot user's: below).
    out.read_unknown_us = r.unknown.us;
    // The same users 30 s later, as when their traffic pauses: each seconds total has moved ~30
    // panes since it was written, and the read corrects it by them (reads at the hour's end see
    // totals written up to 5 s before).
    const later = new ProfileReader(redis, keys, tags, () => now + 30_000);
    out.read_typical_30s_later_us = (await readCost(redis, later, typical)).us;
    const busiest = [...perUser].sort((a, b) => b[1] - a[1])[0];
    out.busiest_user_events = busiest[1];
    out.read_busiest_us = (await readCost(redis, reader, repeat(busiest[0], 500))).us;
    await consumer.stop();
    await redis.flushall();

    // The hot user: 100,000 impressions over 55 minutes, written in calls of 250 events.
    // Redis time per event with its window full (the median of its last four 2,500-event
    // chunks: 90,000-100,000 events in the window) against an empty window (the median of four
    // fresh users' first 2,500 events, each written just before one of those chunks, so a
    // noisy stretch of the shared machine falls on both alike; one chunk of each swung the
    // ratio 1.3-2.8 between runs).
    const hotNow = end;
    now = hotNow;
    const hotConsumer = new RealtimeConsumer({ redis, keys, partitions: 4, tags, consumerName: 'hot', clock: () => now, readCount: 250 });
    await hotConsumer.init();
    const HOT = 100_000;
    const CHUNK = 2500;
    const hotEvent = (i: number, user = 'hot-user') => ({
      event_id: `${user}-${i}`,
      user_id: user,
      ts: hotNow - 55 * MIN + Math.floor((i / HOT) * 55 * MIN),
      ...(tagsFile && i % 10 === 9
        ? { type: 'purchase' as const, amount: ((i * 7919) % 50_000) / 100 }
        : { type: 'impression' as const, ad_id: `ad-${i % 500}`, campaign_id: `c-${i % 20}` }),
    });
    /** Redis µs per event of events first..first+CHUNK-1 of `user`. */
    const writeChunk = async (first: number, user?: string) => {
      const r2 = await producer.ingest(Array.from({ length: CHUNK }, (_, j) => hotEvent(first + j, user)));
      if (!r2.ok) throw new Error(JSON.stringify(r2));
      await redis.config('RESETSTAT');
      const n = await hotConsumer.drain();
      return (await topLevelUsec(redis, scripted)) / n;
    };
    const empty: number[] = [];
    const full: number[] = [];
    for (let i = 0; i < HOT; i += CHUNK) {
      const measured = i >= HOT - 4 * CHUNK;
      if (measured) empty.push(await writeChunk(0, `fresh-${i}`));
      const us = await writeChunk(i);
      if (measured) full.push(us);
    }
    out.hot_write_empty_us_per_event = Number(median(empty).toFixed(2));
    out.hot_write_full_us_per_event = Number(median(full).toFixed(2));
    out.hot_user_events = HOT;
    out.read_hot_us = (await readCost(redis, reader, repeat('hot-user', 500))).us;
    // p99 as the caller sees it: the hot user against one-event users written now (one of each
    // type in turn), read alternately.
    const coldIds = Array.from({ length: 300 }, (_, i) => `cold-${i}`);
    const types = ['impression', 'click', 'purchase'] as const;
    const coldEvents = coldIds.map((u, i) => ({
      event_id: `cold-${i}`,
      user_id: u,
      type: types[i % 3],
      ts: hotNow - 1000,
      ad_id: 'ad-1',
      campaign_id: 'c-1',
      amount: 12.5,
    }));
    if (!(await producer.ingest(coldEvents)).ok) throw new Error('cold users: ingest rejected');
    await hotConsumer.drain();
    [out.read_hot_p99_us, out.read_cold_p99_us] = await readP99Pair(reader, repeat('hot-user', 2000), coldIds);
    await hotConsumer.stop();
    return out;
  });
}

if (require.main === module) {
  runMain(async () => {
    const r = await measureRedisCost(process.argv.includes('--quick'));
    const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
    console.log(
      JSON.stringify({
        ...r,
        ratios: {
          read_typical_over_floor: ratio(r.read_typical_us, r.floor_read_us),
          write_over_floor: ratio(r.write_us_per_event, r.floor_event_us),
          hot_write_full_over_empty: ratio(r.hot_write_full_us_per_event, r.hot_write_empty_us_per_event),
        },
      }),
    );
  });
}
