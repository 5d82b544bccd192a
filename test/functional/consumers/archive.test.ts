import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { ArchiveConsumer } from '../../../src/consumers/archive';
import { ensureGroups, trimBelowSafeId } from '../../../src/redis/streamGroups';
import { partitionFor } from '../../../src/core/keys';
import { runBatch } from '../../../src/batch/run';
import { Pipeline, T0, extraRealtimeConsumer, makePipeline } from '../../helpers/context';

const DAY = 86_400_000;

describe('archive consumer and trimming (real Redis, temp dirs)', () => {
  let p: Pipeline;
  let ods: string;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 2 });
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'ods-test-'));
  });
  afterEach(async () => {
    await p.close();
    fs.rmSync(ods, { recursive: true, force: true });
  });

  const archiver = (name = 'arch-1', extra: Partial<ConstructorParameters<typeof ArchiveConsumer>[0]> = {}) =>
    new ArchiveConsumer({ redis: p.redis, keys: p.keys, partitions: 2, consumerName: name, odsDir: ods, trimIntervalMs: 0, ...extra });
  const xlen = async () => (await p.redis.xlen(p.keys.stream(0))) + (await p.redis.xlen(p.keys.stream(1)));
  const lines = (file: string) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  const batch = (extra = {}) => runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: T0 + DAY, ...extra });

  it('writes one NDJSON line per event under dt=<event date>/, with stream id and ingest time', async () => {
    p.clock.now = T0 + DAY + 10;
    await p.producer.ingest([
      { event_id: 'e1', user_id: 'u1', type: 'impression', ts: T0 + 5, ad_id: 'a1', campaign_id: 'c1' },
      { event_id: 'e2', user_id: 'u1', type: 'purchase', ts: T0 + DAY + 7, amount: 9.99, currency: 'EUR' },
      { event_id: 'e3', user_id: 'u1', type: 'click', ts: T0 - 1 },
    ]);
    const a = archiver();
    expect(await a.drain()).to.equal(3);
    const stream = p.keys.stream(partitionFor('u1', 2));
    const ids = (await p.redis.xrange(stream, '-', '+')).map(([id]) => id);
    expect(fs.readdirSync(ods).sort()).to.deep.equal(['dt=2025-12-31', 'dt=2026-01-01', 'dt=2026-01-02']);
    const ingestedAt = (id: string) => Number(id.split('-')[0]);
    expect(lines(path.join(ods, 'dt=2026-01-01', 'part-arch-1.ndjson'))).to.deep.equal([
      { event_id: 'e1', user_id: 'u1', type: 'impression', ts: T0 + 5, ad_id: 'a1', campaign_id: 'c1', stream_id: ids[0], ingested_at: ingestedAt(ids[0]) },
    ]);
    expect(lines(path.join(ods, 'dt=2026-01-02', 'part-arch-1.ndjson'))).to.deep.equal([
      { event_id: 'e2', user_id: 'u1', type: 'purchase', ts: T0 + DAY + 7, amount: 9.99, currency: 'EUR', stream_id: ids[1], ingested_at: ingestedAt(ids[1]) },
    ]);
    expect(lines(path.join(ods, 'dt=2025-12-31', 'part-arch-1.ndjson'))).to.have.length(1);
    await a.stop();
  });

  it('acks only after the write is fsynced: a crash between write and ack re-delivers, the batch counts once', async () => {
    const events = Array.from({ length: 10 }, (_, i) => ({ event_id: `e${i}`, user_id: 'u1', type: 'purchase', ts: T0 + i, amount: 10 }));
    await p.producer.ingest(events);
    const stream = p.keys.stream(partitionFor('u1', 2));
    // The process "dies" right after fsync, before XACK.
    const crashing = archiver('arch-1', {
      afterSync: () => {
        throw new Error('killed between write and ack');
      },
    });
    let thrown: Error | undefined;
    await crashing.drain().catch((err: Error) => (thrown = err));
    expect(thrown?.message).to.equal('killed between write and ack');
    const file = path.join(ods, 'dt=2026-01-01', 'part-arch-1.ndjson');
    expect(lines(file).map((l) => l.event_id)).to.deep.equal(events.map((e) => e.event_id));
    expect(((await p.redis.xpending(stream, 'archive')) as [number])[0]).to.equal(10);
    await (crashing as unknown as { closeResources(): Promise<void> }).closeResources();
    // Restarted under the same name: its pending entries come first and are written again.
    const restarted = archiver('arch-1');
    expect(await restarted.drain()).to.equal(10);
    expect(((await p.redis.xpending(stream, 'archive')) as [number])[0]).to.equal(0);
    expect(lines(file)).to.have.length(20);
    await restarted.stop();
    const summary = await batch();
    expect([summary.lines, summary.events, summary.duplicates]).to.deep.equal([20, 10, 10]);
    expect(await p.redis.hget(p.keys.offline('u1'), 'ltv_total')).to.equal('100');
    expect(await p.redis.hget(p.keys.offline('u1'), 'purchases_total')).to.equal('10');
  });

  it('cuts a torn last line (crash mid-write) before appending again', async () => {
    const file = path.join(ods, 'dt=2026-01-01', 'part-arch-1.ndjson');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const whole = JSON.stringify({ event_id: 'old', user_id: 'u0', type: 'click', ts: T0, stream_id: '1-0', ingested_at: 1 }) + '\n';
    fs.writeFileSync(file, whole + '{"event_id":"torn","user_');
    await p.producer.ingest([{ event_id: 'new', user_id: 'u1', type: 'click', ts: T0 + 1 }]);
    const a = archiver('arch-1');
    await a.drain();
    await a.stop();
    expect(lines(file).map((l) => l.event_id)).to.deep.equal(['old', 'new']);
  });

  it('dead-letters an entry that fails validation and archives the rest', async () => {
    await p.redis.xadd(p.keys.stream(0), '*', 'event_id', 'bad', 'user_id', 'u{1}', 'type', 'click', 'ts', '5');
    await p.producer.ingest([{ event_id: 'good', user_id: 'u1', type: 'click', ts: T0 }]);
    const a = archiver();
    expect(await a.drain()).to.equal(2);
    await a.stop();
    const dead = await p.redis.xrange(p.keys.deadLetters(), '-', '+');
    expect(dead.map(([, f]) => [f[f.indexOf('group') + 1], f[f.indexOf('error') + 1]])).to.deep.equal([
      ['archive', 'user_id: must be 1-128 characters of A-Z a-z 0-9 . _ : @ -'],
    ]);
    expect(lines(path.join(ods, 'dt=2026-01-01', 'part-arch-1.ndjson')).map((l) => l.event_id)).to.deep.equal(['good']);
  });

  describe('safe trimming', () => {
    const fill = (n: number) =>
      p.producer.ingest(Array.from({ length: n }, (_, i) => ({ event_id: `t${i}`, user_id: `user-${i % 7}`, type: 'click', ts: T0 })));

    it('trims nothing the realtime group has not processed (realtime stopped, archive done)', async () => {
      await fill(100);
      const a = archiver();
      await a.drain();
      expect(await a.trimAll()).to.equal(0);
      expect(await xlen()).to.equal(100);
      await a.stop();
    });

    it('trims nothing the archive has not written (archiver stopped, realtime done)', async () => {
      await fill(100);
      await p.consumer.drain();
      expect(await p.consumer.trimAll()).to.equal(0);
      expect(await xlen()).to.equal(100);
      const a = archiver(); // the archiver returns: everything is still there to archive
      expect(await a.drain()).to.equal(100);
      await a.stop();
      expect(await xlen()).to.equal(0);
    });

    it('trims to the oldest pending entry of a group that read but did not ack', async () => {
      await fill(10);
      const stream = p.keys.stream(0);
      const ids = (await p.redis.xrange(stream, '-', '+')).map(([id]) => id);
      const a = archiver();
      await a.drain();
      // A realtime consumer reads the first 3 entries of partition 0 and dies without acking.
      await p.redis.xreadgroup('GROUP', 'realtime', 'dead-rt', 'COUNT', 3, 'STREAMS', stream, '>');
      await p.consumer.drain(); // another consumer finishes the rest
      await a.trimAll();
      expect((await p.redis.xrange(stream, '-', '+')).map(([id]) => id)).to.deep.equal(ids);
      // Once the dead consumer's entries are acked, the stream empties.
      await p.redis.xack(stream, 'realtime', ...ids.slice(0, 3));
      await a.trimAll();
      expect(await p.redis.xlen(stream)).to.equal(0);
      await a.stop();
    });

    it('trims a partition after acks at most once per trimIntervalMs (0: after every acked batch)', async () => {
      const more = (from: number, n: number) =>
        p.producer.ingest(Array.from({ length: n }, (_, i) => ({ event_id: `m${from + i}`, user_id: `user-${i % 7}`, type: 'click', ts: T0 })));
      const a = archiver();
      const slow = extraRealtimeConsumer(p, 'rt-slow-trim', { trimIntervalMs: 60_000 });
      await more(0, 20);
      await a.drain(); // archived, but realtime has not run: nothing to trim yet
      await slow.drain(); // its first ack of each partition trims
      expect(await xlen()).to.equal(0);
      await more(20, 20);
      await a.drain();
      await slow.drain(); // within its interval: its acks do not trim
      expect(await xlen()).to.equal(20);
      const eager = extraRealtimeConsumer(p, 'rt-eager-trim', { trimIntervalMs: 0 });
      await more(40, 20);
      await a.drain();
      await eager.drain(); // every acked batch trims
      expect(await xlen()).to.equal(0);
      await Promise.all([a.stop(), slow.stop(), eager.stop()]);
    });

    it('trims nothing while a required group is missing', async () => {
      const stream = `${p.keys.prefix}lonely:{p0}`;
      await p.redis.xadd(stream, '*', 'a', '1');
      await ensureGroups(p.redis, [stream], ['realtime']);
      await p.redis.xreadgroup('GROUP', 'realtime', 'c', 'STREAMS', stream, '>');
      await p.redis.xack(stream, 'realtime', (await p.redis.xrange(stream, '-', '+'))[0][0]);
      expect(await trimBelowSafeId(p.redis, stream)).to.equal(-1);
      expect(await p.redis.xlen(stream)).to.equal(1);
    });

    it('empties an idle stream on the trim timer once every group has finished', async () => {
      await fill(50);
      const a = archiver('arch-timer', { trimIntervalMs: 50 });
      await a.start();
      const deadline = Date.now() + 5000;
      while (a.processed < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(await xlen()).to.equal(50); // realtime has not run yet
      await p.consumer.drain(); // realtime finishes; it acks and trims too, but the timer alone must do it:
      await p.redis.xadd(p.keys.stream(0), '*', 'event_id', 'late', 'user_id', 'u', 'type', 'click', 'ts', String(T0));
      await p.consumer.drain();
      while ((await xlen()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await xlen()).to.equal(0);
      await a.stop();
    });
  });
});
