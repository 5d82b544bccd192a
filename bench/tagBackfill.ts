/**
 * `profile tags apply`'s backfill against `profile batch` on the same ODS, same run: an ODS
 * of `days` days ending now (the backfill replays what lies within the new config's
 * longest window, as apply does), `profile batch` over it, then the backfill of a change
 * that adds a 7-day click count (replaying the 7 days into a new generation and switching).
 *
 *   node dist/bench/tagBackfill.js [events] [users] [days]
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { resolveConfig } from '../src/core/config';
import { Keys } from '../src/core/keys';
import { parseTagConfig } from '../src/core/tagConfig';
import { connectRedis } from '../src/redis/client';
import { startRedisServer } from '../src/redis/embeddedServer';
import { recordTagConfig } from '../src/redis/tagConfigs';
import { runBatch } from '../src/batch/run';
import { planTagConfigChange } from '../src/batch/tagChange';
import { applyTagConfigChange } from '../src/consumers/tagApply';
import { generateOds, odsBenchArgs } from './batch';
import { runMain } from './scratchRedis';

export async function measureTagBackfill(events: number, users: number, days: number): Promise<Record<string, number>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-backfill-'));
  const ods = path.join(work, 'ods');
  const asOf = Date.now();
  await generateOds(ods, events, users, days, asOf);
  const server = await startRedisServer({ dir: path.join(work, 'redis'), appendonly: false });
  const redis = await connectRedis(server.url);
  const config = resolveConfig({ redisUrl: server.url });
  const keys = new Keys('');
  try {
    const b0 = process.hrtime.bigint();
    await runBatch({ redis, keys, tags: config.tags, odsDir: ods, asOf });
    const batchS = Number(process.hrtime.bigint() - b0) / 1e9;
    await recordTagConfig(redis, keys, config.tags);
    const doc = JSON.parse(JSON.stringify(config.tags.document)) as { realtime: Record<string, unknown>[] };
    doc.realtime.push({ name: 'clicks_7d', event: 'click', aggregation: 'count', window: '7d' });
    const next = parseTagConfig(doc, 'bench');
    const plan = await planTagConfigChange(redis, keys, next, config.tags, ods);
    const a0 = process.hrtime.bigint();
    const applied = await applyTagConfigChange(redis, keys, next, plan, ods, { partitions: config.partitions, waitMs: 0 });
    const backfillS = Number(process.hrtime.bigint() - a0) / 1e9;
    if (applied.how !== 'backfill') throw new Error(`expected a backfill, got ${applied.how}`);
    const replayed = applied.backfill!.ods_events + applied.backfill!.stream_events;
    return {
      backfill_ods_events: events,
      backfill_replayed_events: replayed,
      backfill_s: Number(backfillS.toFixed(2)),
      backfill_batch_s: Number(batchS.toFixed(2)),
      backfill_over_batch: Number((backfillS / batchS).toFixed(2)),
      backfill_events_per_s: Math.round(replayed / backfillS),
    };
  } finally {
    await redis.quit();
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  const [events, users, days] = odsBenchArgs();
  console.log(JSON.stringify({ ...(await measureTagBackfill(events, users, days)), cores: os.cpus().length, node: process.version }));
}

if (require.main === module) runMain(main);
