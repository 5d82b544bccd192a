/**
 * Staleness in every answer: meta.lag_ms grows while no realtime consumer runs, max_lag_ms
 * refuses a stale user, and both recover once a consumer has caught up. Real processes
 * (profile serve, profile consume) on a private redis-server; the library reader too.
 */
import { expect } from 'chai';
import { ProfileReader } from '../../../src/profile/reader';
import { StaleProfileError } from '../../../src/core/errors';
import { partitionFor } from '../../../src/core/keys';
import { PARTITIONS, Stack } from '../../helpers/stack';

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { tags?: Record<string, number>; meta?: { lag_ms?: number | null }; error?: string; lag_ms?: number | null; max_lag_ms?: number };
}

describe('realtime lag in every answer (real processes)', function () {
  this.timeout(60_000);
  let stack: Stack;
  let reader: ProfileReader | undefined;
  beforeEach(async () => {
    stack = new Stack();
    await stack.startRedis();
  });
  afterEach(async () => {
    await reader?.close();
    reader = undefined;
    await stack.stop();
  });

  const get = async (path: string): Promise<Answer> => {
    const res = await fetch(`http://127.0.0.1:${stack.port}${path}`);
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
  };
  const click = (user: string, id: string) =>
    fetch(`http://127.0.0.1:${stack.port}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event_id: id, user_id: user, type: 'click' }),
    }).then((r) => expect(r.status).to.equal(202));
  const until = async (what: string, ok: () => Promise<boolean>) => {
    const end = Date.now() + 20_000;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('lag_ms grows while the realtime consumer is stopped, max_lag_ms refuses (GET, POST /profiles, the library), and both recover after a restart', async () => {
    await stack.startApi();
    await stack.startRealtime('rt-1');
    // Two users on different partitions: only the one whose partition waits is stale.
    const a = 'lag-a';
    const elsewhere = (name: string) =>
      [...Array(50).keys()].map((i) => `${name}${i}`).find((u) => partitionFor(u, PARTITIONS) !== partitionFor(a, PARTITIONS))!;
    const b = elsewhere('lag-b');
    const nobody = elsewhere('lag-nobody');
    await click(a, 'a-1');
    await click(b, 'b-1');
    await until('both clicks are applied and the lag is 0', async () => {
      const [ra, rb] = [await get(`/profile/${a}`), await get(`/profile/${b}`)];
      return ra.body.tags?.clicks_5m === 1 && rb.body.tags?.clicks_5m === 1 && ra.body.meta?.lag_ms === 0;
    });
    expect((await get(`/profile/${a}?max_lag_ms=0`)).status).to.equal(200);

    await stack.kill('rt-1', 'SIGINT');
    await click(a, 'a-2');
    await new Promise((r) => setTimeout(r, 600));
    const first = await get(`/profile/${a}`);
    expect(first.status).to.equal(200);
    expect(first.body.tags!.clicks_5m).to.equal(1); // not applied yet
    expect(first.body.meta!.lag_ms).to.be.within(400, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect((await get(`/profile/${a}`)).body.meta!.lag_ms).to.be.greaterThan(first.body.meta!.lag_ms!);
    // The other partition has nothing waiting.
    expect((await get(`/profile/${b}`)).body.meta!.lag_ms).to.equal(0);

    const refused = await get(`/profile/${a}?max_lag_ms=200`);
    expect(refused.status).to.equal(503);
    expect(refused.body).to.include({ max_lag_ms: 200 });
    expect(refused.body.lag_ms).to.be.greaterThan(200);
    expect(refused.body.error).to.match(/^stale: the realtime path is \d+ ms behind for this user/);
    expect(Number(refused.retryAfter)).to.be.at.least(1);
    expect((await get(`/profile/${a}?max_lag_ms=600000`)).status).to.equal(200);
    expect((await get(`/profile/${a}?max_lag_ms=-1`)).status).to.equal(400);
    expect((await get(`/profile/${a}?max_lag_ms=1&max_lag_ms=2`)).status).to.equal(400);

    const many = await fetch(`http://127.0.0.1:${stack.port}/profiles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_ids: [a, b, nobody], max_lag_ms: 200 }),
    });
    const { profiles } = (await many.json()) as { profiles: { user_id: string; error?: string; lag_ms?: number }[] };
    expect(profiles.map((p) => [p.user_id, p.error])).to.deep.equal([
      [a, 'stale'],
      [b, undefined],
      [nobody, 'unknown user'],
    ]);
    expect(profiles[0].lag_ms).to.be.greaterThan(200);

    const metrics = await (await fetch(`http://127.0.0.1:${stack.port}/metrics`)).text();
    const lagged = metrics.match(
      new RegExp(`^profile_realtime_lag_seconds\\{stream="${stack.keys.stream(partitionFor(a, PARTITIONS)).replace(/[{}]/g, '\\$&')}"\\} ([\\d.]+)$`, 'm'),
    );
    expect(Number(lagged?.[1])).to.be.greaterThan(0.2);

    const stats = (await (await fetch(`http://127.0.0.1:${stack.port}/dashboard/stats`)).json()) as { realtime_lag_ms: (number | null)[] };
    expect(stats.realtime_lag_ms).to.have.length(PARTITIONS);
    expect(stats.realtime_lag_ms[partitionFor(a, PARTITIONS)]).to.be.greaterThan(200);
    expect(stats.realtime_lag_ms[partitionFor(b, PARTITIONS)]).to.equal(0);

    // The library reader samples the lag itself.
    reader = await ProfileReader.connect({ redisUrl: stack.redisServer!.url, partitions: PARTITIONS });
    expect((await reader.read(a))!.meta.lag_ms).to.be.greaterThan(200);
    const err = await reader.read(a, { maxLagMs: 100 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(StaleProfileError);
    expect((err as StaleProfileError).lagMs).to.be.greaterThan(100);

    await stack.startRealtime('rt-2');
    await until('the restarted consumer caught up', async () => (await get(`/profile/${a}?max_lag_ms=100`)).status === 200);
    const after = await get(`/profile/${a}?max_lag_ms=100`);
    expect(after.body.tags!.clicks_5m).to.equal(2);
    expect(after.body.meta!.lag_ms).to.equal(0);
    await until('the library reader sees the lag fall to 0', async () => (await reader!.read(a))!.meta.lag_ms === 0);
  });
});
