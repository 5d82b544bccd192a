import { expect } from 'chai';
import { createApp } from '../../../src/api/app';
import { HttpServerHandle, listen } from '../../../src/api/server';
import { RealtimeConsumer } from '../../../src/consumers/realtime';
import { validateEvent } from '../../../src/core/event';
import { TrafficGenerator, simulate } from '../../../src/dev/simulate';
import { Producer } from '../../../src/producer/producer';
import { Pipeline, makePipeline } from '../../helpers/context';

describe('traffic simulator', () => {
  it('generates a valid, Zipf-skewed funnel: impressions >> clicks >> purchases, each following the previous step', () => {
    const gen = new TrafficGenerator(1000, 42);
    const now = Date.UTC(2026, 0, 1);
    const perUser = new Map<string, number>();
    const counts: Record<string, number> = { impression: 0, click: 0, purchase: 0 };
    const lastImpression = new Map<string, string>();
    const clicked = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const e = gen.next(now);
      const v = validateEvent(e, i, { now, maxFutureSkewMs: 0 });
      expect(v.ok, JSON.stringify(e)).to.equal(true);
      const user = e.user_id as string;
      counts[e.type as string]++;
      perUser.set(user, (perUser.get(user) ?? 0) + 1);
      if (e.type === 'impression') lastImpression.set(user, e.ad_id as string);
      if (e.type === 'click') {
        expect(lastImpression.get(user)).to.equal(e.ad_id);
        clicked.add(user);
      }
      if (e.type === 'purchase') {
        expect(clicked.has(user)).to.equal(true);
        expect(e.amount).to.be.a('number').greaterThan(0);
      }
    }
    expect(counts.impression / counts.click).to.be.within(15, 40);
    expect(counts.click / counts.purchase).to.be.within(5, 20);
    const sorted = [...perUser.values()].sort((a, b) => b - a);
    expect(sorted[0]).to.be.greaterThan(50 * sorted[Math.floor(sorted.length / 2)]);
    const other = new TrafficGenerator(1000, 42).next(now);
    const first = new TrafficGenerator(1000, 42).next(now);
    expect({ ...other, event_id: '' }).to.deep.equal({ ...first, event_id: '' });
  });

  it('says at once, with the cause, when nothing answers at --url, and stops when the API dies mid-run', async function () {
    this.timeout(30_000);
    const { freePort } = await import('../../../src/redis/embeddedServer');
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const t0 = Date.now();
    const err = await simulate({ url: nobody, users: 10, rate: 100, durationS: 20 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.equal(`cannot reach the API at ${nobody} (ECONNREFUSED): is \`profile up\` or \`profile serve\` running there? Check --url`);
    expect(Date.now() - t0).to.be.below(2000);
    // An API that goes away after 1 s of a 20 s run: the run ends ~5 s later with the cause.
    const p = await makePipeline({ partitions: 1, now: Date.now() });
    const app = createApp({
      redis: p.redis,
      producer: p.producer,
      reader: p.reader,
      keys: p.keys,
      partitions: 1,
      maxEventsPerRequest: 1000,
      maxProfilesPerRequest: 100,
      maxBodyBytes: 1 << 20,
    });
    const http = await listen(app, '127.0.0.1', 0);
    const url = `http://127.0.0.1:${http.port}`;
    setTimeout(() => void http.close(), 1000);
    const t1 = Date.now();
    const died = await simulate({ url, users: 10, rate: 200, durationS: 20, waitDrainS: 1 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(died?.message).to.match(
      new RegExp(`^the API at ${url} stopped answering \\(ECONNREFUSED\\) for 5 s: \\d+ of \\d+ events were accepted before; is it still running\\?$`),
    );
    expect(Date.now() - t1).to.be.below(12_000);
    await p.close();
  });

  it('honours 503 with Retry-After: resends the same events once the backlog clears, nothing lost or doubled', async function () {
    this.timeout(20_000);
    const p = await makePipeline({ partitions: 1, now: Date.now() });
    const producer = new Producer({ redis: p.redis, keys: p.keys, partitions: 1, maxFutureSkewMs: 300_000, maxBacklog: 20 });
    const app = createApp({
      redis: p.redis,
      producer,
      reader: p.reader,
      keys: p.keys,
      partitions: 1,
      maxEventsPerRequest: 100,
      maxProfilesPerRequest: 100,
      maxBodyBytes: 1 << 20,
    });
    const http = await listen(app, '127.0.0.1', 0);
    const stream = p.keys.stream(0);
    // Frees the backlog every 700 ms: realtime drains, a stand-in archiver acks, the stream is trimmed.
    const clear = setInterval(
      () =>
        void (async () => {
          await p.consumer.drain();
          const entries = (await p.redis.xreadgroup('GROUP', 'archive', 'a', 'COUNT', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
          const ids = entries?.[0]?.[1].map(([id]) => id) ?? [];
          if (ids.length) await p.redis.xack(stream, 'archive', ...ids);
          await p.consumer.trimAll();
        })().catch(() => undefined),
      700,
    );
    try {
      const summary = await simulate({
        url: `http://127.0.0.1:${http.port}`,
        users: 5,
        rate: 100,
        durationS: 1,
        batchSize: 10,
        concurrency: 1,
        seed: 3,
        waitDrainS: 10,
      });
      expect(summary.retries_after_503).to.be.greaterThan(0);
      expect(summary.failed_requests).to.equal(0);
      expect(summary.accepted).to.equal(summary.sent);
      await new Promise((r) => setTimeout(r, 800));
      await p.consumer.drain();
      p.clock.now = Date.now();
      let counted = 0;
      for (let u = 1; u <= 5; u++) {
        const tags = (await p.reader.read(`user-${u}`))?.tags ?? {};
        counted += ['views_5m', 'clicks_5m', 'purchases_24h'].reduce((n, t) => n + ((tags[t] as number) ?? 0), 0);
      }
      expect(counted).to.equal(summary.sent);
    } finally {
      clearInterval(clear);
      await http.close();
      await p.close();
    }
  });

  describe('against a running API and consumer', () => {
    let p: Pipeline;
    let http: HttpServerHandle;
    let live: RealtimeConsumer;
    beforeEach(async () => {
      p = await makePipeline({ partitions: 2, now: Date.now() });
      const app = createApp({
        redis: p.redis,
        producer: p.producer,
        reader: p.reader,
        keys: p.keys,
        partitions: 2,
        maxEventsPerRequest: 10_000,
        maxProfilesPerRequest: 100,
        maxBodyBytes: 1 << 24,
      });
      http = await listen(app, '127.0.0.1', 0);
      live = new RealtimeConsumer({ redis: p.redis, keys: p.keys, partitions: 2, tags: p.config.tags.realtime, consumerName: 'sim-rt' });
      await live.start();
    });
    afterEach(async () => {
      await live.stop();
      await http.close();
      await p.close();
    });

    it('sends at the target rate, every event is accepted and processed', async () => {
      const summary = await simulate({ url: `http://127.0.0.1:${http.port}`, users: 50, rate: 2000, durationS: 1, seed: 7, waitDrainS: 10 });
      expect(summary.sent).to.be.within(1800, 2000);
      expect(summary.accepted).to.equal(summary.sent);
      expect(summary.rejected).to.equal(0);
      expect(summary.failed_requests).to.equal(0);
      expect(summary.by_type.impression + (summary.by_type.click ?? 0) + (summary.by_type.purchase ?? 0)).to.equal(summary.sent);
      expect(summary.processed_per_s).to.be.a('number');
      expect(live.processed).to.equal(summary.sent);
      let streamed = 0;
      for (const s of p.keys.streams(2)) streamed += await p.redis.xlen(s);
      expect(streamed).to.equal(summary.sent);
      p.clock.now = Date.now(); // the reader's clock: events were stamped with the real time
      const top = await p.reader.read(summary.top_users[0]);
      expect(top!.tags.views_5m).to.be.greaterThan(0);
    });
  });
});
