import type { BatchChildSettings } from '../../src/batch/child';
import type { BatchRequest } from '../../src/batch/run';
import fs from 'fs';
import { randomBytes } from 'crypto';
import { AppConfig, resolveConfig } from '../../src/core/config';
import { Keys } from '../../src/core/keys';
import { RedisClient, RedisTarget, connectTarget } from '../../src/redis/client';
import { AppOptions, createApp } from '../../src/api/app';
import { HttpServerHandle, listen } from '../../src/api/server';
import { Producer } from '../../src/producer/producer';
import { ProfileReader, offlineTagNames } from '../../src/profile/reader';
import { RealtimeConsumer } from '../../src/consumers/realtime';
import { WindowTag } from '../../src/core/tags';
import { DEFAULT_TAGS_FILE, parseTagConfig } from '../../src/core/tagConfig';

/** URL of the run's private redis-server (see fixture.ts). */
export function testRedisUrl(): string {
  const url = process.env.PROFILE_TEST_REDIS_URL;
  if (!url) throw new Error('PROFILE_TEST_REDIS_URL unset: run tests through mocha (.mocharc.json loads the fixture)');
  return url;
}

/** Seed nodes of the run's private 3-master Redis Cluster (see fixture.ts). */
export function testClusterNodes(): string[] {
  const nodes = process.env.PROFILE_TEST_CLUSTER_NODES;
  if (!nodes) throw new Error('PROFILE_TEST_CLUSTER_NODES unset: run tests through mocha (.mocharc.json loads the fixture)');
  return nodes.split(',');
}

/** The test Redis: the single server, or the cluster when `cluster` is true. */
export function testTarget(cluster = false): RedisTarget {
  return cluster ? { clusterNodes: testClusterNodes() } : { redisUrl: testRedisUrl() };
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `t${randomBytes(5).toString('hex')}:`;
}

/** A clock tests move by hand. */
export class FakeClock {
  constructor(public now: number) {}
  readonly fn = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

export interface Pipeline {
  redis: RedisClient;
  /** What `redis` is connected to (for components that open their own connections). */
  target: RedisTarget;
  keys: Keys;
  config: AppConfig;
  clock: FakeClock;
  producer: Producer;
  consumer: RealtimeConsumer;
  reader: ProfileReader;
  close(): Promise<void>;
}

/** A fixed start time: 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

/** The shipped tag config file's JSON with `triggers` added: what a user writes to turn triggers on. */
export function shippedTagsWithTriggers(triggers: unknown[]): Record<string, unknown> {
  return { ...(JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as Record<string, unknown>), triggers };
}

/**
 * Producer, realtime consumer and reader on the test Redis under a fresh prefix, all on one
 * fake clock. `tags` replaces the shipped tag config when given; `cluster` runs it all on
 * the test cluster instead of the single server.
 */
export async function makePipeline(
  opts: { tags?: unknown[]; triggers?: unknown[]; partitions?: number; now?: number; cluster?: boolean; foldInConsumer?: boolean } = {},
): Promise<Pipeline> {
  // `triggers`: the shipped tags (or `tags`) and offline config, with these triggers.
  const tagConfig = opts.triggers
    ? parseTagConfig({ ...shippedTagsWithTriggers(opts.triggers), ...(opts.tags ? { realtime: opts.tags } : {}) })
    : opts.tags
      ? parseTagConfig({ realtime: opts.tags })
      : undefined;
  const target = testTarget(opts.cluster);
  const config = resolveConfig({
    ...target,
    prefix: uniquePrefix(),
    partitions: opts.partitions ?? 2,
    consumerName: 'test-consumer',
    ...(tagConfig ? { tags: tagConfig } : {}),
  });
  const redis = await connectTarget(target);
  const keys = new Keys(config.prefix);
  const clock = new FakeClock(opts.now ?? T0);
  const producer = new Producer({ redis, keys, partitions: config.partitions, maxFutureSkewMs: config.maxFutureSkewMs, clock: clock.fn });
  const consumer = new RealtimeConsumer({
    redis,
    keys,
    partitions: config.partitions,
    tags: config.tags.realtime,
    consumerName: 'test-consumer',
    clock: clock.fn,
    triggers: config.tags.triggers,
    offlineTags: config.tags.offline,
    foldInConsumer: opts.foldInConsumer,
  });
  await consumer.init();
  const reader = new ProfileReader(redis, keys, config.tags.realtime, clock.fn, offlineTagNames(config.tags));
  return {
    redis,
    target,
    keys,
    config,
    clock,
    producer,
    consumer,
    reader,
    async close() {
      await consumer.stop();
      await redis.quit();
    },
  };
}

/** Another realtime consumer on the pipeline's Redis, keys, tags and clock. */
export function extraRealtimeConsumer(p: Pipeline, name: string, extra: Partial<ConstructorParameters<typeof RealtimeConsumer>[0]> = {}): RealtimeConsumer {
  return new RealtimeConsumer({
    redis: p.redis,
    keys: p.keys,
    partitions: p.config.partitions,
    tags: p.config.tags.realtime,
    consumerName: name,
    clock: p.clock.fn,
    triggers: p.config.tags.triggers,
    offlineTags: p.config.tags.offline,
    ...extra,
  });
}

/**
 * The HTTP API on the pipeline's Redis, producer and reader, listening on a free port;
 * `options` sets the limits and anything else a test needs.
 */
export async function serveApp(
  p: Pipeline,
  options: Pick<AppOptions, 'maxEventsPerRequest' | 'maxProfilesPerRequest' | 'maxBodyBytes'> & Partial<AppOptions>,
): Promise<{ http: HttpServerHandle; base: string }> {
  const app = createApp({
    redis: p.redis,
    producer: p.producer,
    reader: p.reader,
    keys: p.keys,
    partitions: p.config.partitions,
    triggers: p.config.tags.triggers,
    ...options,
  });
  const http = await listen(app, '127.0.0.1', 0);
  return { http, base: `http://127.0.0.1:${http.port}` };
}

/** Ingests events (throwing on validation errors) and lets the consumer process them. */
/** What a BatchLauncher's child needs to run against pipeline `p` with the ODS in `odsDir` (batch runs of POST /batch). */
export function batchChild(p: Pipeline, odsDir: string): Omit<BatchChildSettings, 'runId' | keyof BatchRequest> {
  return {
    target: { redisUrl: testRedisUrl() },
    prefix: p.keys.prefix,
    tags: p.config.tags.document,
    tagsSource: p.config.tags.source,
    odsDir,
    logLevel: 'silent',
  };
}

export async function feed(p: Pipeline, events: Record<string, unknown>[]): Promise<string[]> {
  const r = await p.producer.ingest(events);
  if (!r.ok) throw new Error(`ingest rejected: ${JSON.stringify(r)}`);
  await p.consumer.drain();
  return r.event_ids;
}

export type { WindowTag };
