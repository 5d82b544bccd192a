import { listenError } from '../core/errors';
import http from 'http';
import type { AddressInfo } from 'net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Keys } from '../core/keys';
import type { RedisClient } from '../redis/client';
import { streamStatus } from '../redis/streamGroups';

/** Why events were refused at ingest (counted per event). */
export type RejectReason = 'invalid' | 'backlog' | 'redis_unavailable';

/** What became of one POST /events request. */
export type IngestOutcome = 'accepted' | 'invalid' | 'bad_body' | 'too_large' | 'unsupported_type' | 'backlog' | 'redis_unavailable';

export interface MetricsOptions {
  /** Redis whose streams and groups are reported at each scrape (stream length, lag, pending, dead letters). */
  redis?: RedisClient;
  keys?: Keys;
  partitions?: number;
  /** Also export Node's process metrics (CPU, memory, event loop lag). @defaultValue true */
  processMetrics?: boolean;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The Prometheus metrics of one process (prom-client). Counters and histograms are fed by
 * the parts that run in this process; gauges about streams, groups and dead letters are
 * read from Redis at every scrape, so any process (the API, a worker) reports the whole
 * pipeline's state.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly ingestRequests: Counter<'outcome'>;
  readonly eventsAccepted: Counter;
  readonly eventsRejected: Counter<'reason'>;
  readonly processed: Counter<'group'>;
  readonly deadLettered: Counter<'group'>;
  readonly windowFolds: Counter<'by'>;
  readonly consumerBatchSeconds: Histogram<'group'>;
  readonly profileReadSeconds: Histogram<'kind'>;
  readonly batchRuns: Counter<'state'>;
  readonly batchRunSeconds: Histogram;
  private readonly streamLength: Gauge<'stream'>;
  private readonly groupLag: Gauge<'stream' | 'group'>;
  private readonly groupPending: Gauge<'stream' | 'group'>;
  private readonly groupConsumers: Gauge<'stream' | 'group'>;
  private readonly deadLetters: Gauge;
  private readonly redisConnected: Gauge;
  private readonly realtimeLag: Gauge<'stream'>;
  private lagSource?: { streams: string[]; lags: () => (number | null)[] };
  private readonly scrapeErrors: Counter;

  constructor(private readonly opts: MetricsOptions = {}) {
    const registers = [this.registry];
    this.ingestRequests = new Counter({ name: 'profile_ingest_requests_total', help: 'POST /events requests by outcome', labelNames: ['outcome'], registers });
    this.eventsAccepted = new Counter({ name: 'profile_events_accepted_total', help: 'Events written to the streams (202)', registers });
    this.eventsRejected = new Counter({
      name: 'profile_events_rejected_total',
      help: 'Events refused at ingest, by reason (events of requests whose body could not be read are not counted: see profile_ingest_requests_total)',
      labelNames: ['reason'],
      registers,
    });
    ({ processed: this.processed, deadLettered: this.deadLettered, windowFolds: this.windowFolds } = consumerCounters(registers));
    this.consumerBatchSeconds = new Histogram({
      name: 'profile_consumer_batch_seconds',
      help: 'Time to process and ack one read of one partition',
      labelNames: ['group'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.profileReadSeconds = new Histogram({
      name: 'profile_read_seconds',
      help: 'Profile read latency in the API: kind single (GET /profile) or batch (POST /profiles)',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchRuns = new Counter({
      name: 'profile_batch_runs_total',
      help: 'Batch runs started by this API that ended, by final state',
      labelNames: ['state'],
      registers,
    });
    this.batchRunSeconds = new Histogram({
      name: 'profile_batch_run_seconds',
      help: 'Duration of batch runs started by this API',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.streamLength = new Gauge({ name: 'profile_stream_length', help: 'Entries in each stream partition (XLEN)', labelNames: ['stream'], registers });
    this.groupLag = new Gauge({
      name: 'profile_group_lag',
      help: 'Entries not yet delivered to the group, per partition (-1: unknown)',
      labelNames: ['stream', 'group'],
      registers,
    });
    this.groupPending = new Gauge({
      name: 'profile_group_pending',
      help: 'Entries delivered but not acked, per partition and group',
      labelNames: ['stream', 'group'],
      registers,
    });
    this.groupConsumers = new Gauge({
      name: 'profile_group_consumers',
      help: 'Consumers in the group, per partition',
      labelNames: ['stream', 'group'],
      registers,
    });
    this.deadLetters = new Gauge({ name: 'profile_dead_letters', help: 'Entries in the dead-letter stream', registers });
    this.redisConnected = new Gauge({ name: 'profile_redis_connected', help: '1 when this process has a ready Redis connection, else 0', registers });
    this.realtimeLag = new Gauge({
      name: 'profile_realtime_lag_seconds',
      help: 'Age of the oldest event accepted and not yet applied to the windows, per partition (0: caught up; -1: unknown); API processes only',
      labelNames: ['stream'],
      registers,
    });
    this.scrapeErrors = new Counter({ name: 'profile_metrics_redis_errors_total', help: 'Scrapes whose Redis gauges could not be read', registers });
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'profile_' });
      // Gauges named like counters (promtool: non-counter metrics should not end in _total);
      // profile_nodejs_active_{handles,requests,resources}, by type, carry the same counts.
      for (const kind of ['handles', 'requests', 'resources']) this.registry.removeSingleMetric(`profile_nodejs_active_${kind}_total`);
    }
  }

  /** Serves profile_realtime_lag_seconds from `lags` (ms per partition, in the order of `streams`), read at each scrape. */
  trackRealtimeLag(streams: string[], lags: () => (number | null)[]): void {
    this.lagSource = { streams, lags };
  }

  /** The exposition text; reads the Redis gauges first (they keep their last values if Redis cannot be read). */
  async text(): Promise<string> {
    await this.refreshRedisGauges();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async refreshRedisGauges(): Promise<void> {
    const { redis, keys, partitions } = this.opts;
    if (!redis) return;
    this.redisConnected.set(redis.status === 'ready' ? 1 : 0);
    if (this.lagSource) {
      const lags = this.lagSource.lags();
      this.lagSource.streams.forEach((stream, i) => this.realtimeLag.set({ stream }, lags[i] === null ? -1 : lags[i]! / 1000));
    }
    if (!keys || !partitions || redis.status !== 'ready') return;
    try {
      const [parts, dead] = await Promise.all([streamStatus(redis, keys, partitions), redis.xlen(keys.deadLetters())]);
      for (const p of parts) {
        this.streamLength.set({ stream: p.stream }, p.length);
        for (const g of p.groups) {
          const labels = { stream: p.stream, group: g.name };
          this.groupLag.set(labels, g.lag ?? -1);
          this.groupPending.set(labels, g.pending);
          this.groupConsumers.set(labels, g.consumers);
        }
      }
      this.deadLetters.set(dead);
    } catch {
      this.scrapeErrors.inc();
    }
  }
}

/** A node:http server answering GET /metrics (workers without the API: `--metrics-port`). */
export async function serveMetrics(metrics: Metrics, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such route: GET /metrics only"}');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
      () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"metrics failed"}'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port, '--metrics-port / PROFILE_METRICS_PORT')));
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** The consumers' counters: entries acked and dead-lettered per group, and where window folds ran. */
function consumerCounters(registers: Registry[]) {
  const processed = new Counter({
    name: 'profile_events_processed_total',
    help: 'Stream entries acked by this process, per consumer group',
    labelNames: ['group'],
    registers,
  });
  const deadLettered = new Counter({
    name: 'profile_events_dead_lettered_total',
    help: 'Stream entries this process moved to the dead-letter stream, per group',
    labelNames: ['group'],
    registers,
  });
  const windowFolds = new Counter({
    name: 'profile_window_folds_total',
    help: "Users' batches of events folded into their windows, by where the fold ran: consumer (Redis only reads and writes) or script (updateWindows.lua)",
    labelNames: ['by'],
    registers,
  });
  return { processed, deadLettered, windowFolds };
}
