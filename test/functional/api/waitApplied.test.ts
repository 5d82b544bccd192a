/**
 * Read-after-write ingest: POST /events?wait=applied answers once the realtime path applied
 * the events (a read right after sees them), or at its timeout with applied: false (nothing
 * lost, nothing counted twice); and the README's frequency-capping recipe under concurrent
 * clients. Real processes (profile serve, two profile consume) on a private redis-server.
 */
import { expect } from 'chai';
import { Producer } from '../../../src/producer/producer';
import { PARTITIONS, Stack } from '../../helpers/stack';

interface Accepted {
  accepted: number;
  event_ids: string[];
  applied?: boolean;
}

describe('POST /events?wait=applied (real processes)', function () {
  this.timeout(90_000);
  let stack: Stack;
  beforeEach(async () => {
    stack = new Stack();
    await stack.startRedis();
    await stack.startApi();
  });
  afterEach(() => stack.stop());

  const url = (path: string) => `http://127.0.0.1:${stack.port}${path}`;
  const post = async (query: string, events: object[]) => {
    const res = await fetch(url(`/events${query}`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
    return { status: res.status, body: (await res.json()) as Accepted & { errors?: { message: string }[] } };
  };
  const clicks = async (user: string) =>
    ((await (await fetch(url(`/profile/${user}?tags=clicks_5m`))).json()) as { tags?: { clicks_5m: number } }).tags?.clicks_5m;

  it('answers applied: true only once a read sees every event of the request; without wait the answer has no applied field', async () => {
    await stack.startRealtime('rt-1');
    await stack.startRealtime('rt-2');
    for (let i = 0; i < 30; i++) {
      const user = `wa-${i}`;
      const events = [0, 1, 2].map((j) => ({ event_id: `wa-${i}-${j}`, user_id: user, type: 'click' }));
      const { status, body } = await post('?wait=applied', events);
      expect(status).to.equal(202);
      expect(body).to.include({ accepted: 3, applied: true });
      expect(await clicks(user)).to.equal(3);
    }
    const plain = await post('', [{ user_id: 'wa-plain', type: 'click' }]);
    expect(plain.status).to.equal(202);
    expect(plain.body).to.not.have.property('applied');
  });

  it('answers applied: false at the timeout while no consumer runs, applied: true for a wait a consumer start ends; the events are applied once', async () => {
    const t0 = Date.now();
    const { status, body } = await post('?wait=applied&timeout_ms=300', [{ event_id: 'late-1', user_id: 'wa-late', type: 'click' }]);
    expect(status).to.equal(202);
    expect(body).to.include({ accepted: 1, applied: false });
    expect(Date.now() - t0).to.be.within(280, 3000);
    expect(await clicks('wa-late')).to.equal(undefined); // unknown user: not applied yet
    // A wait that spans the start of a consumer answers applied: true once it has caught up.
    const spanning = post('?wait=applied&timeout_ms=15000', [{ event_id: 'late-2', user_id: 'wa-late2', type: 'click' }]);
    await new Promise((r) => setTimeout(r, 200));
    await stack.startRealtime('rt-1');
    expect((await spanning).body.applied).to.equal(true);
    expect(await clicks('wa-late2')).to.equal(1);
    // Resent with the same id (a client retrying after applied: false) and waited for: counted once.
    const again = await post('?wait=applied&timeout_ms=10000', [{ event_id: 'late-1', user_id: 'wa-late', type: 'click' }]);
    expect(again.body.applied).to.equal(true);
    expect(await clicks('wa-late')).to.equal(1);
  });

  it('refuses a wait other than applied, a timeout_ms out of range, or a timeout_ms without wait (400, nothing written)', async () => {
    for (const q of [
      '?wait=acked',
      '?wait=applied&timeout_ms=-1',
      '?wait=applied&timeout_ms=30001',
      '?wait=applied&timeout_ms=1.5',
      '?timeout_ms=10',
      '?wait=applied&wait=applied',
    ]) {
      const { status, body } = await post(q, [{ user_id: 'wa-bad', type: 'click' }]);
      expect([q, status]).to.deep.equal([q, 400]);
      expect(body.errors![0].message).to.match(/wait|timeout_ms/);
    }
    let total = 0;
    for (const s of stack.keys.streams(PARTITIONS)) total += await stack.redis.xlen(s);
    expect(total).to.equal(0);
  });

  it('the library Producer waits the same way', async () => {
    await stack.startRealtime('rt-1');
    const producer = new Producer({ redis: stack.redis, keys: stack.keys, partitions: PARTITIONS, maxFutureSkewMs: 300_000 });
    const r = await producer.ingest([{ event_id: 'lib-1', user_id: 'wa-lib', type: 'click' }], { waitApplied: true, timeoutMs: 5000 });
    expect(r.ok && r.applied).to.equal(true);
    expect(await clicks('wa-lib')).to.equal(1);
  });

  it('the frequency-capping recipe: concurrent clients never read a count that misses an impression acknowledged before the read (wait=applied, tags=, max_lag_ms)', async () => {
    await stack.startRealtime('rt-1');
    await stack.startRealtime('rt-2');
    const user = 'fc-user';
    let acknowledged = 0;
    let reads = 0;
    const client = async (c: number) => {
      for (let i = 0; i < 25; i++) {
        const { body } = await post('?wait=applied&timeout_ms=5000', [
          { event_id: `fc-${c}-${i}`, user_id: user, type: 'impression', ad_id: 'ad-1', campaign_id: 'c-7' },
        ]);
        expect(body.applied).to.equal(true);
        acknowledged++;
        const floor = acknowledged; // every impression acknowledged before this read started
        const res = await fetch(url(`/profile/${user}?tags=campaign_views_1h&max_lag_ms=1000`));
        expect(res.status).to.equal(200);
        const seen = ((await res.json()) as { tags: { campaign_views_1h: Record<string, number> } }).tags.campaign_views_1h['c-7'];
        expect(seen, `client ${c} read ${seen} after ${floor} acknowledged impressions`).to.be.at.least(floor);
        reads++;
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    expect(reads).to.equal(100);
    const final = (await (await fetch(url(`/profile/${user}?tags=campaign_views_1h`))).json()) as { tags: { campaign_views_1h: Record<string, number> } };
    expect(final.tags.campaign_views_1h['c-7']).to.equal(100);
  });
});
