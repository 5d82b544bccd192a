/**
 * `npm run bench [-- --quick]`: one JSON object with every figure of the benchmark, each
 * measured in this run against its own baseline (these machines are shared and noisy:
 * compare ratios within one run, not absolute numbers across runs).
 *
 * It starts its own redis-server (AOF everysec, as the product runs) and real `profile`
 * processes; clients that measure HTTP run in their own processes.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { resolveConfig } from '../src/core/config';
import { Keys } from '../src/core/keys';
import { connectRedis } from '../src/redis/client';
import { RedisServerHandle, startRedisServer } from '../src/redis/embeddedServer';
import { Producer } from '../src/producer/producer';
import { RealtimeConsumer } from '../src/consumers/realtime';
import { ArchiveConsumer } from '../src/consumers/archive';
import { TrafficGenerator, simulate } from '../src/dev/simulate';
import { GroupName, REQUIRED_GROUPS, groupCaughtUp, streamStatus } from '../src/redis/streamGroups';
import { measureBatch } from './batch';
import { measureTagBackfill } from './tagBackfill';
import { measureTriggers } from './triggers';
import { measureTrainingSet } from './trainingSet';
import { FLOOR_PROFILE_HASH, redisBenchmark } from './scratchRedis';
import { measureRedisCost, scriptCommands, topLevelUsec } from './redisCost';

const quick = process.argv.includes('--quick');
const M = quick
  ? {
      drainEvents: 50_000,
      users: 20_000,
      ingestS: 3,
      e2eS: 5,
      e2eRate: 20_000,
      freshRate: 2_000,
      freshProbes: 30,
      freshBudgetS: 60,
      sweepRates: [2_000, 5_000, 10_000],
      sweepProbes: 40,
      sweepBudgetS: 20,
      readS: 3,
      batchEvents: 100_000,
      batchUsers: 20_000,
    }
  : {
      drainEvents: 300_000,
      users: 200_000,
      ingestS: 10,
      e2eS: 20,
      e2eRate: 60_000,
      freshRate: 10_000,
      freshProbes: 200,
      freshBudgetS: 180,
      sweepRates: [2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 40_000],
      sweepProbes: 100,
      sweepBudgetS: 60,
      readS: 10,
      batchEvents: 2_000_000,
      batchUsers: 200_000,
    };
const CLI = path.join(__dirname, '..', 'cli.js');
const children: ChildProcess[] = [];
/** The extended tag config: the shipped tags and one of each kind an ad platform would add (bench: its Redis cost against the shipped config's). */
const EXTENDED_TAGS_FILE = path.join(__dirname, '..', '..', 'config', 'tags.extended.json');

/** Spawns `node script args`, resolves with the process once its output matches `ready`. */
function start(script: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      const m = out.match(ready);
      if (m) resolve({ child, match: m });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${script} ${args.join(' ')} exited ${code}: ${out.slice(-500)}`)));
  });
}

/** Runs a script to completion and parses the last line of its stdout as JSON. */
function runJson(script: string, args: string[]): Record<string, number> {
  const out = execFileSync(process.execPath, [script, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/**
 * The hot-user case: one user with 100,000 impressions spread over the last 55 minutes and
 * one with 20, written through the API and the running consumer; then GET /profile of each
 * from one client, and the hot user's window state in bytes per event.
 */
async function measureHotUser(redis: Awaited<ReturnType<typeof connectRedis>>, keys: Keys, partitions: number, url: string): Promise<Record<string, number>> {
  const HOT = 100_000;
  const now = Date.now();
  const producer = new Producer({ redis, keys, partitions, maxFutureSkewMs: 0 });
  const event = (user: string, i: number, n: number) => ({
    event_id: `${user}-${i}`,
    user_id: user,
    type: 'impression' as const,
    ts: now - Math.floor((i / n) * 55 * 60_000),
    ad_id: `ad-${i % 500}`,
    campaign_id: `c-${i % 20}`,
  });
  for (let i = 0; i < HOT; i += 5000) {
    const r = await producer.ingest(Array.from({ length: 5000 }, (_, j) => event('hot-user', i + j, HOT)));
    if (!r.ok) throw new Error(JSON.stringify(r));
  }
  await producer.ingest(Array.from({ length: 20 }, (_, j) => event('cold-user', j, 20)));
  await waitCaughtUp(redis, keys, partitions, ['realtime'], 300);
  const readJs = path.join(__dirname, 'read.js');
  const seconds = String(quick ? 3 : 10);
  const hot = runJson(readJs, [url, '1', seconds, '0', 'hot-user']);
  const cold = runJson(readJs, [url, '1', seconds, '0', 'cold-user']);
  let bytes = 0;
  // SAMPLES 0: every field (the default samples 5, which misjudges a hash of small panes and large dedup buckets).
  for (const key of keys.userKeys('hot-user')) bytes += Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
  return {
    hot_user_events: HOT,
    hot_read_p50_ms: hot.read_p50_ms,
    hot_read_p99_ms: hot.read_p99_ms,
    cold_read_p50_ms: cold.read_p50_ms,
    cold_read_p99_ms: cold.read_p99_ms,
    hot_user_bytes_per_event: Number((bytes / HOT).toFixed(1)),
  };
}

/** p-th percentile (0..1) of sorted `xs`. */
const pct = (xs: number[], p: number) => Number(xs[Math.min(xs.length - 1, Math.floor(xs.length * p))].toFixed(2));

/** Posts `body` to /events with `query`, 4 clients at once for `seconds`: events accepted per second. */
async function ingestRate(url: string, query: string, body: string, perRequest: number, seconds: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let accepted = 0;
  const client = async () => {
    while (Date.now() < end) {
      const res = await fetch(`${url}/events${query}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      if (res.status !== 202) throw new Error(`ingest got ${res.status}`);
      await res.arrayBuffer();
      accepted += perRequest;
    }
  };
  const t0 = Date.now();
  await Promise.all([client(), client(), client(), client()]);
  return Math.round(accepted / ((Date.now() - t0) / 1000));
}

/**
 * POST /events?wait=applied (one click of a fresh user) timed from send to answer, one at a
 * time, under 1,000 events/s of background traffic; then what waiting costs the ingest rate
 * (4 clients of 200-event requests with and without wait=applied, alternating).
 */
async function measureWaitApplied(url: string, probes: number): Promise<Record<string, number>> {
  const stop = new AbortController();
  const load = simulate({ url, users: 20_000, rate: 1000, durationS: 600, batchSize: 50, concurrency: 2, seed: 5, waitDrainS: 0, signal: stop.signal });
  await new Promise((r) => setTimeout(r, 1000));
  const times: number[] = [];
  let applied = 0;
  for (let i = 0; i < probes; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${url}/events?wait=applied&timeout_ms=5000`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: `wait-${i}`, type: 'click' }),
    });
    if (((await res.json()) as { applied?: boolean }).applied) applied++;
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 20));
  }
  stop.abort();
  await load;
  times.sort((a, b) => a - b);
  const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ user_id: `wr-${i % 50}`, type: 'impression', ad_id: 'ad-1', campaign_id: 'c-1' })).join(
    '\n',
  );
  const plain: number[] = [];
  const waiting: number[] = [];
  for (let round = 0; round < 2; round++) {
    plain.push(await ingestRate(url, '', lines, 200, 3));
    waiting.push(await ingestRate(url, '?wait=applied&timeout_ms=5000', lines, 200, 3));
  }
  const best = (xs: number[]) => Math.max(...xs);
  return {
    wait_applied_p50_ms: pct(times, 0.5),
    wait_applied_p99_ms: pct(times, 0.99),
    wait_applied_share_applied: Number((applied / probes).toFixed(3)),
    ingest_plain_per_s: best(plain),
    ingest_wait_applied_per_s: best(waiting),
    ingest_wait_applied_ratio: Number((best(waiting) / best(plain)).toFixed(2)),
  };
}

/**
 * Until `groups` (both by default) have caught up on every partition, at most `limitS`
 * seconds (lag not counted: the poll costs Redis next to nothing).
 */
async function waitCaughtUp(
  redis: Awaited<ReturnType<typeof connectRedis>>,
  keys: Keys,
  partitions: number,
  groups: readonly GroupName[] = REQUIRED_GROUPS,
  limitS = 600,
): Promise<void> {
  const from = Date.now();
  for (;;) {
    const parts = await streamStatus(redis, keys, partitions, 0);
    if (parts.every((p) => groups.every((g) => groupCaughtUp(p, g)))) return;
    if (Date.now() - from > limitS * 1000) throw new Error(`${groups.join(' and ')} did not catch up within ${limitS} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Freshness at `rate` events/s offered (a Zipf load of 200-event requests): `probes` clicks
 * of fresh users (`prefix`-i), 50 ms apart, each timed from its 202 until GET /profile shows
 * it. A pipeline that falls behind is a result, not a hang: past `budgetS` the probing stops
 * (`behind`; the last probe's wait so far is a lower bound).
 */
async function measureFreshness(url: string, rate: number, probes: number, budgetS: number, prefix: string, seed: number) {
  const stopLoad = new AbortController();
  const load = simulate({ url, users: M.users, rate, durationS: 600, batchSize: 200, concurrency: 2, seed, waitDrainS: 0, signal: stopLoad.signal });
  await new Promise((r) => setTimeout(r, 1000));
  const fresh: number[] = [];
  const probesFrom = Date.now();
  let behind = false;
  for (let i = 0; i < probes && !behind; i++) {
    const user = `${prefix}-${i}`;
    const res = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user, type: 'click' }),
    });
    const t0 = process.hrtime.bigint();
    if (res.status !== 202) throw new Error(`freshness probe got ${res.status}`);
    for (;;) {
      const r = await fetch(`${url}/profile/${user}`);
      // clicks_24h, not clicks_5m: a probe applied more than 5 minutes after it was sent
      // (a backlog) never shows in a 5-minute window, and the loop would never end.
      if (r.status === 200 && ((await r.json()) as { tags: { clicks_24h: number } }).tags.clicks_24h === 1) break;
      if (r.status !== 200) await r.text();
      if (Date.now() - probesFrom > budgetS * 1000) {
        behind = true;
        break;
      }
    }
    fresh.push(Number(process.hrtime.bigint() - t0) / 1e6);
    // Probes 50 ms apart (or back to back when one waited longer): spread over the load.
    await new Promise((r) => setTimeout(r, Math.max(0, 50 - fresh[fresh.length - 1])));
  }
  const seconds = Number(((Date.now() - probesFrom) / 1000).toFixed(1));
  stopLoad.abort();
  const accepted_per_s = (await load).accepted_per_s;
  fresh.sort((a, b) => a - b);
  return { seconds, probes: fresh.length, behind, accepted_per_s, p50_ms: pct(fresh, 0.5), p90_ms: pct(fresh, 0.9), p99_ms: pct(fresh, 0.99) };
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'profile-bench-'));
  let server: RedisServerHandle | undefined;
  const result: Record<string, unknown> = { mode: quick ? 'quick' : 'full' };
  try {
    server = await startRedisServer({ dir: path.join(work, 'redis'), appendonly: true, appendfsync: 'everysec' });
    const redis = await connectRedis(server.url);
    result.machine = {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      node: process.version,
      redis: (await redis.info('server')).match(/redis_version:(\S+)/)?.[1],
    };

    // Raw Redis baselines.
    // XADD of an event-sized entry, 64 per pipeline (redis-benchmark 7.0 has no built-in xadd test).
    result.redis_xadd_pipelined_per_s = redisBenchmark(server.port, [
      '-n',
      String(quick ? 200_000 : 1_000_000),
      '-P',
      '64',
      '-r',
      '100000',
      'XADD',
      'bench:s',
      '*',
      'event_id',
      'e-__rand_int__',
      'user_id',
      'user-__rand_int__',
      'type',
      'impression',
      'ts',
      '1795687801377',
      'ad_id',
      'ad-1-2',
      'campaign_id',
      'c-1',
    ]);
    await redis.del('bench:s');
    await redis.hset('bench:h', FLOOR_PROFILE_HASH);
    result.redis_hgetall_per_s = redisBenchmark(server.port, ['-n', String(quick ? 50_000 : 200_000), '-c', '4', 'HGETALL', 'bench:h']);
    await redis.del('bench:h');

    // Realtime and archive drain rates on one pre-filled stream; memory per window event.
    const config = resolveConfig({ redisUrl: server.url });
    const keys = new Keys('');
    const now = Date.now();
    const producer = new Producer({ redis, keys, partitions: config.partitions, maxFutureSkewMs: 0, clock: () => now });
    const gen = new TrafficGenerator(M.users, 1);
    for (let sent = 0; sent < M.drainEvents; sent += 5000) {
      const r = await producer.ingest(Array.from({ length: Math.min(5000, M.drainEvents - sent) }, () => gen.next(now)));
      if (!r.ok) throw new Error(JSON.stringify(r));
    }
    const memBefore = Number((await redis.info('memory')).match(/used_memory:(\d+)/)![1]);
    const rt = new RealtimeConsumer({
      redis,
      keys,
      partitions: config.partitions,
      tags: config.tags.realtime,
      consumerName: 'bench-rt',
      clock: () => now,
      trimIntervalMs: 0,
    });
    await rt.init();
    await redis.config('RESETSTAT');
    let t = process.hrtime.bigint();
    const folded = await rt.drain();
    result.realtime_per_s = Math.round(folded / (Number(process.hrtime.bigint() - t) / 1e9));
    // Redis time per event on the realtime path: every top-level command the drain sent (XREADGROUP, the window scripts, XACK, ...), counted once.
    result.realtime_redis_us_per_event = Number(((await topLevelUsec(redis, scriptCommands())) / folded).toFixed(2));
    const ods = path.join(work, 'ods');
    const ar = new ArchiveConsumer({ redis, keys, partitions: config.partitions, consumerName: 'bench-ar', odsDir: ods, trimIntervalMs: 0 });
    t = process.hrtime.bigint();
    const archived = await ar.drain();
    result.archive_per_s = Math.round(archived / (Number(process.hrtime.bigint() - t) / 1e9));
    await ar.stop();
    const memAfter = Number((await redis.info('memory')).match(/used_memory:(\d+)/)![1]);
    // Every generated event is inside its windows (all stamped `now`): bytes of window state
    // (panes, time index, dedup, realtime hash) per event, on the Zipf workload.
    result.redis_bytes_per_window_event = Math.round((memAfter - memBefore) / folded);
    result.window_events = folded;
    await redis.flushall();

    // The product's processes: API, realtime consumer, archiver.
    const env = { REDIS_URL: server.url, ODS_DIR: ods, LOG_LEVEL: 'warn' };
    const api = await start(CLI, ['serve', '--port', '0'], { ...env, LOG_LEVEL: 'info' }, /"port":(\d+),"msg":"API listening"/);
    const url = `http://127.0.0.1:${api.match[1]}`;

    // Ingest alone (no consumers running): bulk NDJSON, 4 concurrent clients.
    const ingest = await simulate({ url, users: M.users, rate: 1_000_000, durationS: M.ingestS, batchSize: 1000, concurrency: 4, seed: 2, waitDrainS: 0 });
    result.ingest_per_s = ingest.accepted_per_s;
    await redis.flushall();
    const apiReady = await start(CLI, ['serve', '--port', '0'], { ...env, LOG_LEVEL: 'info' }, /"port":(\d+),"msg":"API listening"/);
    const url2 = `http://127.0.0.1:${apiReady.match[1]}`;
    await start(CLI, ['consume', '--consumer-name', 'rt-1'], { ...env, LOG_LEVEL: 'info' }, /realtime consumer started/);
    await start(CLI, ['archive', '--consumer-name', 'ar-1'], { ...env, LOG_LEVEL: 'info' }, /archive consumer started/);

    // End to end: ingest + realtime + archive together at a target rate.
    const e2e = await simulate({ url: url2, users: M.users, rate: M.e2eRate, durationS: M.e2eS, batchSize: 1000, concurrency: 4, seed: 3, waitDrainS: 120 });
    const caughtUpAt = Date.now();
    await waitCaughtUp(redis, keys, config.partitions);
    const e2eSeconds = e2e.send_seconds + (Date.now() - caughtUpAt) / 1000 + (e2e.processed_seconds ? e2e.processed_seconds - e2e.send_seconds : 0);
    result.e2e_target_per_s = M.e2eRate;
    result.e2e_accepted_per_s = e2e.accepted_per_s;
    result.e2e_per_s = Math.round(e2e.accepted / e2eSeconds);

    // Freshness: 202 to visible in GET /profile, under background load that runs until the
    // last probe is seen (a probe that waits behind a backlog still waits under load).
    const fresh = await measureFreshness(url2, M.freshRate, M.freshProbes, M.freshBudgetS, 'fresh', 4);
    result.freshness_probe_seconds = fresh.seconds;
    result.freshness_probes = fresh.probes;
    result.freshness_behind = fresh.behind;
    result.freshness_load_accepted_per_s = fresh.accepted_per_s;
    result.freshness_load_per_s = M.freshRate;
    result.freshness_p50_ms = fresh.p50_ms;
    result.freshness_p90_ms = fresh.p90_ms;
    result.freshness_p99_ms = fresh.p99_ms;
    // The highest offered rate, of a rising series, whose freshness p99 stays within 1 s; each
    // step starts with the groups caught up (a backlog left by the step before is not its).
    const sweep: Record<string, number | 'behind'> = {};
    // Each step's p50 / p90 / p99 and probes measured: whether a step's p99 is its rate or a
    // few probes' tail.
    const steps: Record<string, { probes: number; p50_ms: number; p90_ms: number; p99_ms: number; behind: boolean }> = {};
    let keptUp = 0;
    for (const rate of M.sweepRates) {
      await waitCaughtUp(redis, keys, config.partitions);
      const step = await measureFreshness(url2, rate, M.sweepProbes, M.sweepBudgetS, `sweep${rate}`, 6);
      sweep[rate] = step.behind ? 'behind' : step.p99_ms;
      steps[rate] = { probes: step.probes, p50_ms: step.p50_ms, p90_ms: step.p90_ms, p99_ms: step.p99_ms, behind: step.behind };
      if (step.behind || step.p99_ms > 1000) break;
      keptUp = rate;
    }
    result.freshness_p99_by_rate_ms = sweep;
    result.freshness_by_rate = steps;
    result.freshness_max_rate_p99_within_1s = keptUp;
    // wait=applied measured on a caught-up pipeline, not on the last step's backlog.
    await waitCaughtUp(redis, keys, config.partitions);
    Object.assign(result, await measureWaitApplied(url2, quick ? 40 : 300));

    // Reads: 4 closed-loop keep-alive clients in their own process, against the API and a bare node:http server.
    const readJs = path.join(__dirname, 'read.js');
    // Users drawn as the e2e phase drew the users of its events (Zipf: a busy user is read as often as it is active).
    const read = runJson(readJs, [url2, '4', String(M.readS), String(M.users)]);
    const bare = await start(path.join(__dirname, 'bare.js'), [], {}, /^(\d+)$/m);
    const bareRead = runJson(readJs, [`http://127.0.0.1:${bare.match[1]}`, '4', String(M.readS), String(M.users)]);
    Object.assign(result, {
      read_per_s: read.read_per_s,
      read_p50_ms: read.read_p50_ms,
      read_p99_ms: read.read_p99_ms,
      bare_http_per_s: bareRead.read_per_s,
      bare_http_p50_ms: bareRead.read_p50_ms,
      bare_http_p99_ms: bareRead.read_p99_ms,
    });
    Object.assign(result, await measureHotUser(redis, keys, config.partitions, url2));
    await redis.quit();

    // Redis time per read (users drawn as traffic draws them; unknown, one-event, busiest, 100k-event apart) and per event, beside their floors.
    result.redis_cost = await measureRedisCost(quick);
    // The same with the extended config (config/tags.extended.json: the shipped tags and a percentile, a last_k, an approx_distinct and a stddev), same run.
    result.redis_cost_extended = await measureRedisCost(quick, EXTENDED_TAGS_FILE);

    // Batch against DuckDB on the same generated ODS.
    Object.assign(result, await measureBatch(M.batchEvents, M.batchUsers, 30));

    // profile tags apply's backfill (a 7-day click count added) against profile batch on one ODS ending now.
    Object.assign(result, await measureTagBackfill(M.batchEvents, M.batchUsers, 30));

    // Training sets: profile training-set against DuckDB running its printed SQL, a spine of (user, time) points sampled from the batch's ODS.
    Object.assign(result, await measureTrainingSet(M.batchEvents, M.batchUsers, quick ? 100_000 : 1_000_000));

    // Triggers: the realtime path with two triggers against none; firing latency at 1,000 events/s.
    Object.assign(result, await measureTriggers(quick ? 30_000 : 100_000, quick ? 20_000 : 50_000, quick ? 100 : 500, 1000));

    const cost = result.redis_cost as Record<string, number>;
    const ext = result.redis_cost_extended as Record<string, number>;
    const r2 = (a: number, b: number) => Number((a / b).toFixed(2));
    result.ratios = {
      read_typical_us_over_floor: Number((cost.read_typical_us / cost.floor_read_us).toFixed(1)),
      write_us_per_event_over_floor: Number((cost.write_us_per_event / cost.floor_event_us).toFixed(1)),
      hot_write_full_over_empty: Number((cost.hot_write_full_us_per_event / cost.hot_write_empty_us_per_event).toFixed(2)),
      e2e_over_xadd: Number(((result.e2e_per_s as number) / (result.redis_xadd_pipelined_per_s as number)).toFixed(3)),
      read_over_bare: Number(((result.read_per_s as number) / (result.bare_http_per_s as number)).toFixed(3)),
      read_p99_over_bare_p99: Number(((result.read_p99_ms as number) / (result.bare_http_p99_ms as number)).toFixed(2)),
      batch_over_duckdb: result.batch_over_duckdb,
      batch_rerun_over_duckdb: result.batch_rerun_over_duckdb,
      backfill_over_batch: result.backfill_over_batch,
      load_over_hset: result.load_over_hset,
      training_over_duckdb: result.training_over_duckdb,
      training_rerun_over_duckdb: result.training_rerun_over_duckdb,
      triggers_throughput_ratio: result.triggers_throughput_ratio,
      hot_read_p99_over_cold_read_p99: Number(((result.hot_read_p99_ms as number) / (result.cold_read_p99_ms as number)).toFixed(2)),
      extended_read_typical_over_shipped: r2(ext.read_typical_us, cost.read_typical_us),
      extended_read_hot_over_shipped: r2(ext.read_hot_us, cost.read_hot_us),
      extended_write_over_shipped: r2(ext.write_us_per_event, cost.write_us_per_event),
      extended_hot_read_p99_over_cold_read_p99: r2(ext.read_hot_p99_us, ext.read_cold_p99_us),
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await server?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  for (const c of children) c.kill('SIGKILL');
  console.error(err);
  process.exit(1);
});
