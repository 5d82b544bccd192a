import { expect } from 'chai';
import RedisMock from 'ioredis-mock';
import type { Redis } from 'ioredis';
import { Keys, partitionFor } from '../../src/core/keys';
import { Producer } from '../../src/producer/producer';

// ioredis-mock suffices here: the producer only uses MULTI and XADD.
describe('producer (ioredis-mock)', () => {
  const NOW = Date.UTC(2026, 0, 1);
  let redis: Redis;
  let producer: Producer;
  const keys = new Keys('unit:');
  beforeEach(() => {
    redis = new RedisMock() as unknown as Redis;
    producer = new Producer({ redis, keys, partitions: 4, maxFutureSkewMs: 300_000, clock: () => NOW });
  });
  afterEach(() => redis.flushall());

  it("appends each event to its user's partition with every field", async () => {
    const r = await producer.ingest([
      { user_id: 'user-1', type: 'click', event_id: 'e1', ts: NOW - 5, ad_id: 'a' },
      { user_id: 'user-2', type: 'purchase', event_id: 'e2', amount: 3.25 },
    ]);
    const p1 = keys.stream(partitionFor('user-1', 4));
    const p2 = keys.stream(partitionFor('user-2', 4));
    const e1 = (await redis.xrange(p1, '-', '+')).find(([, f]) => f[1] === 'e1')!;
    const e2 = (await redis.xrange(p2, '-', '+')).find(([, f]) => f[1] === 'e2')!;
    // Each partition written, with the ids its entries got (what wait=applied waits for).
    expect(r).to.deep.equal({
      ok: true,
      accepted: 2,
      event_ids: ['e1', 'e2'],
      appended: [
        { stream: p1, first: e1[0], last: e1[0] },
        { stream: p2, first: e2[0], last: e2[0] },
      ],
    });
    expect(e1[1]).to.deep.equal(['event_id', 'e1', 'user_id', 'user-1', 'type', 'click', 'ts', String(NOW - 5), 'ad_id', 'a']);
    expect(e2[1]).to.deep.equal(['event_id', 'e2', 'user_id', 'user-2', 'type', 'purchase', 'ts', String(NOW), 'amount', '3.25']);
  });

  it('writes nothing when any item is invalid, and reports each bad item', async () => {
    const r = await producer.ingest([
      { user_id: 'ok', type: 'click' },
      { user_id: 'ok', type: 'purchase' },
      { user_id: 'ok', type: 'click', ts: NOW + 300_001 },
    ]);
    expect(r).to.deep.equal({
      ok: false,
      errors: [
        { index: 1, field: 'amount', message: 'is required for a purchase' },
        { index: 2, field: 'ts', message: 'is more than 300000 ms in the future' },
      ],
    });
    expect(await redis.keys('*')).to.deep.equal([]);
  });
});
