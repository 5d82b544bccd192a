import { expect } from 'chai';
import { partitionFor } from '../../../src/core/keys';
import { Pipeline, T0, extraRealtimeConsumer, makePipeline } from '../../helpers/context';

describe('realtime consumer (real Redis)', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 2 });
  });
  afterEach(() => p.close());

  const consumer = (name: string, extra: Parameters<typeof extraRealtimeConsumer>[2] = {}) => extraRealtimeConsumer(p, name, extra);
  const pendingTotal = async () => {
    let n = 0;
    for (const s of p.keys.streams(2)) n += ((await p.redis.xpending(s, 'realtime')) as [number])[0];
    return n;
  };

  it('after a crash between read and ack, the restarted consumer processes its own pending entries first', async () => {
    await p.producer.ingest([
      { user_id: 'u1', type: 'click', ts: T0, event_id: 'c1' },
      { user_id: 'u1', type: 'click', ts: T0, event_id: 'c2' },
    ]);
    // A consumer named "rt-a" reads (entries become pending for it) and dies before processing.
    const stream = p.keys.stream(partitionFor('u1', 2));
    await p.redis.xreadgroup('GROUP', 'realtime', 'rt-a', 'COUNT', 10, 'STREAMS', stream, '>');
    expect(await pendingTotal()).to.equal(2);
    // New entries arrive meanwhile; "rt-a" restarts: history first, then new entries.
    await p.producer.ingest([{ user_id: 'u1', type: 'click', ts: T0, event_id: 'c3' }]);
    const restarted = consumer('rt-a');
    expect(await restarted.drain()).to.equal(3);
    expect(await pendingTotal()).to.equal(0);
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(3);
  });

  it('redelivery of an already-counted entry does not count it twice', async () => {
    await p.producer.ingest([{ user_id: 'u1', type: 'click', ts: T0, event_id: 'c1' }]);
    const stream = p.keys.stream(partitionFor('u1', 2));
    await p.consumer.drain();
    // Rewind the group: the processed entry is delivered again, as after a lost ack.
    await p.redis.xgroup('SETID', stream, 'realtime', '0');
    const other = consumer('rt-b');
    expect(await other.drain()).to.be.greaterThan(0);
    expect((await p.reader.read('u1'))!.tags.clicks_5m).to.equal(1);
    expect(await pendingTotal()).to.equal(0);
  });

  it('dead-letters an entry that fails validation, with the error, then acks it', async () => {
    const stream = p.keys.stream(0);
    const id = await p.redis.xadd(stream, '*', 'user_id', 'u1', 'type', 'click', 'ts', 'soon');
    expect(await p.consumer.drain()).to.equal(1);
    expect(await pendingTotal()).to.equal(0);
    const dead = await p.redis.xrange(p.keys.deadLetters(), '-', '+');
    expect(dead).to.have.length(1);
    const fields = dead[0][1];
    const get = (k: string) => fields[fields.indexOf(k) + 1];
    expect([get('stream'), get('id'), get('group'), get('consumer')]).to.deep.equal([stream, id, 'realtime', 'test-consumer']);
    expect(get('error')).to.equal('event_id: is required; ts: must be a non-negative integer of epoch milliseconds');
    expect(JSON.parse(get('fields'))).to.deep.equal(['user_id', 'u1', 'type', 'click', 'ts', 'soon']);
  });

  it('runs a blocking loop that picks up new events, and stops gracefully with everything acked', async () => {
    const live = consumer('rt-live', { blockMs: 10_000 });
    await live.start();
    await p.producer.ingest(Array.from({ length: 50 }, (_, i) => ({ user_id: `u${i % 5}`, type: 'click', ts: T0 })));
    const deadline = Date.now() + 5000;
    while (live.processed < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(live.processed).to.equal(50);
    // stop() wakes the 10 s block at once (CLIENT UNBLOCK) instead of waiting it out.
    const t = Date.now();
    await live.stop();
    expect(Date.now() - t).to.be.lessThan(2000);
    expect(await pendingTotal()).to.equal(0);
    expect((await p.reader.read('u3'))!.tags.clicks_5m).to.equal(10);
  });

  it('shares partitions between two consumers of the group without double counting', async () => {
    const a = consumer('rt-1', { readCount: 7 });
    const b = consumer('rt-2', { readCount: 7 });
    await p.producer.ingest(Array.from({ length: 200 }, (_, i) => ({ user_id: `u${i % 10}`, type: 'click', ts: T0, event_id: `e${i}` })));
    let total = 0;
    for (;;) {
      const n = (await a.processOnce(false)) + (await b.processOnce(false));
      if (n === 0) break;
      total += n;
    }
    expect(total).to.equal(200);
    expect(a.processed).to.be.greaterThan(0);
    expect(b.processed).to.be.greaterThan(0);
    for (let u = 0; u < 10; u++) expect((await p.reader.read(`u${u}`))!.tags.clicks_5m).to.equal(20);
  });
});
