import { expect } from 'chai';
import { createApp } from '../../../src/api/app';
import { listen } from '../../../src/api/server';
import { listDeadLetters, purgeDeadLetters, replayDeadLetters } from '../../../src/consumers/deadLetters';
import { partitionFor } from '../../../src/core/keys';
import { Producer } from '../../../src/producer/producer';
import { Pipeline, T0, extraRealtimeConsumer, makePipeline } from '../../helpers/context';
import { apiOnOwnRedis } from '../../helpers/ownRedis';

describe('recovery, dead letters, backpressure (real Redis)', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 2 });
  });
  afterEach(() => p.close());

  const consumer = (name: string, extra: Parameters<typeof extraRealtimeConsumer>[2] = {}) =>
    extraRealtimeConsumer(p, name, { claimIdleMs: 50, trimIntervalMs: 0, ...extra });
  const consumersOf = async (stream: string) => ((await p.redis.xinfo('CONSUMERS', stream, 'realtime')) as unknown[][]).map((c) => c[1]);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("claims a dead consumer's idle entries (XAUTOCLAIM), counts them once, and removes the dead consumer", async () => {
    await p.producer.ingest(Array.from({ length: 20 }, (_, i) => ({ event_id: `e${i}`, user_id: 'u1', type: 'click', ts: T0 })));
    const stream = p.keys.stream(partitionFor('u1', 2));
    await p.redis.xreadgroup('GROUP', 'realtime', 'dead-1', 'COUNT', 8, 'STREAMS', stream, '>');
    const live = consumer('live-1');
    expect(await live.drain()).to.equal(12); // the rest; dead-1 still holds 8
    expect(await live.recoverStale()).to.equal(0); // not idle long enough yet
    await sleep(60);
    expect(await live.recoverStale()).to.equal(8);
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(20);
    expect(((await p.redis.xpending(stream, 'realtime')) as [number])[0]).to.equal(0);
    await sleep(60);
    await live.recoverStale();
    expect(await consumersOf(stream)).to.deep.equal(['live-1']);
  });

  it('never removes a live peer idle on a quiet partition; removes it once its process no longer vouches for it', async () => {
    const running = consumer('up-1', { blockMs: 50 });
    await running.start();
    const other = consumer('archive-start');
    try {
      await sleep(300); // up-1 read nothing for longer than the claim time (50 ms) on both partitions
      await other.recoverStale();
      for (const s of p.keys.streams(2)) expect(await consumersOf(s), s).to.include('up-1');
      // Its process gone without a clean stop: the mark lapses (here: dropped), and the peer removes it.
      await running.stop();
      for (const s of p.keys.streams(2)) await p.redis.xreadgroup('GROUP', 'realtime', 'up-1', 'COUNT', 1, 'STREAMS', s, '>');
      await sleep(100);
      await other.recoverStale();
      for (const s of p.keys.streams(2)) expect(await consumersOf(s), s).to.not.include('up-1');
    } finally {
      await running.stop();
    }
  });

  it('dead-letters a poison entry after the delivery limit while the rest flows; replay brings it back', async () => {
    // The poison: the user's click window key holds a string, so the script fails (WRONGTYPE).
    await p.redis.set(p.keys.panes('poison', 'click'), 'not a sorted set');
    await p.producer.ingest([
      { event_id: 'bad-1', user_id: 'poison', type: 'click', ts: T0 },
      ...Array.from({ length: 10 }, (_, i) => ({ event_id: `ok-${i}`, user_id: `fine-${i}`, type: 'click', ts: T0 })),
    ]);
    const c = consumer('rt-1', { maxDeliveries: 3 });
    await c.drain();
    for (let i = 0; i < 4; i++) {
      await sleep(60);
      await c.recoverStale();
    }
    for (let i = 0; i < 10; i++) expect((await p.reader.read(`fine-${i}`))!.tags.clicks_5m).to.equal(1);
    const letters = await listDeadLetters(p.redis, p.keys);
    expect(letters).to.have.length(1);
    expect(letters[0]).to.deep.include({
      stream: p.keys.stream(partitionFor('poison', 2)),
      group: 'realtime',
      consumer: 'rt-1',
      deliveries: 3,
    });
    // The dead letter keeps why: the last error a try met (it said only how often it was tried).
    expect(letters[0].error).to.match(
      /^not acked after 3 deliveries \(last consumer rt-1\); last error: realtime: .*WRONGTYPE Operation against a key holding the wrong kind of value/,
    );
    expect(await p.redis.hlen(p.keys.entryErrors(letters[0].stream))).to.equal(0);
    expect(letters[0].fields.slice(0, 4)).to.deep.equal(['event_id', 'bad-1', 'user_id', 'poison']);
    for (const s of p.keys.streams(2)) expect(((await p.redis.xpending(s, 'realtime')) as [number])[0]).to.equal(0);

    // Fix the cause, replay: the event is counted once.
    await p.redis.del(p.keys.panes('poison', 'click'));
    expect(await replayDeadLetters(p.redis, p.keys, 2)).to.deep.equal({ replayed: 1, skipped: [], missing: [] });
    await c.drain();
    expect((await p.reader.read('poison'))!.tags.clicks_5m).to.equal(1);
    expect(await listDeadLetters(p.redis, p.keys)).to.deep.equal([]);
    await p.redis.xadd(p.keys.deadLetters(), '*', 'stream', 'elsewhere', 'fields', '["a","b"]');
    expect((await replayDeadLetters(p.redis, p.keys, 2)).skipped).to.have.length(1);
    expect(await purgeDeadLetters(p.redis, p.keys)).to.equal(1);
  });

  it('answers 503 with Retry-After past the backlog bound, drops nothing, and accepts again once consumers catch up', async () => {
    const producer = new Producer({ redis: p.redis, keys: p.keys, partitions: 2, maxFutureSkewMs: 300_000, clock: p.clock.fn, maxBacklog: 10 });
    const app = createApp({
      redis: p.redis,
      producer,
      reader: p.reader,
      keys: p.keys,
      partitions: 2,
      maxEventsPerRequest: 100,
      maxProfilesPerRequest: 100,
      maxBodyBytes: 1 << 20,
    });
    const http = await listen(app, '127.0.0.1', 0);
    const send = (n: number, from: number) =>
      fetch(`http://127.0.0.1:${http.port}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(Array.from({ length: n }, (_, i) => ({ event_id: `b${from + i}`, user_id: 'same', type: 'click', ts: T0 }))),
      });
    try {
      expect((await send(10, 0)).status).to.equal(202);
      await sleep(300); // the producer reads stream lengths at most every 250 ms
      const refused = await send(1, 10);
      expect(refused.status).to.equal(503);
      expect(refused.headers.get('retry-after')).to.equal('1');
      expect(await refused.json()).to.deep.equal({ error: 'backlog over the bound: retry later', partitions: [partitionFor('same', 2)] });
      const stream = p.keys.stream(partitionFor('same', 2));
      expect(await p.redis.xlen(stream)).to.equal(10);
      // Both groups finish: the stream is trimmed, ingestion resumes.
      await p.consumer.drain();
      await p.redis.xreadgroup('GROUP', 'archive', 'a', 'COUNT', 100, 'STREAMS', stream, '>');
      const ids = (await p.redis.xrange(stream, '-', '+')).map(([id]) => id);
      await p.redis.xack(stream, 'archive', ...ids);
      await p.consumer.trimAll();
      expect(await p.redis.xlen(stream)).to.equal(0);
      await sleep(300);
      expect((await send(1, 10)).status).to.equal(202);
    } finally {
      await http.close();
    }
  });

  it('answers 503 (not a hang) while Redis is down and recovers when it returns', async function () {
    this.timeout(30_000);
    const own = await apiOnOwnRedis({ prefix: 'r:', partitions: 1, appendonly: false });
    const get = () => fetch(`${own.base}/profile/u1`);
    try {
      expect((await get()).status).to.equal(404);
      await own.stopRedis();
      const t = Date.now();
      const down = await get();
      expect(down.status).to.equal(503);
      expect(await down.json()).to.deep.equal({ error: 'Redis unavailable, retry later' });
      expect(Date.now() - t).to.be.lessThan(2000);
      await own.startRedis();
      const deadline = Date.now() + 15_000;
      let status = 0;
      while (Date.now() < deadline && status !== 404) {
        status = (await get()).status;
        await sleep(100);
      }
      expect(status).to.equal(404);
    } finally {
      await own.close();
    }
  });
});
