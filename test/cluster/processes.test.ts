/**
 * Real `profile` processes on the 3-master test cluster: API, realtime consumers placed by
 * master, an archiver; kill -9 of one master's consumer mid-stream; then the batch and
 * batch get through the CLI and the API, and `redis-cli --cluster check`.
 */
import { expect } from 'chai';
import { execFile } from 'child_process';
import { promisify } from 'util';
import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import { killAllCli } from '../helpers/cli';
import { testClusterNodes } from '../helpers/context';
import { PARTITIONS, Stack, knownEvents } from '../helpers/stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis Cluster: real processes', function () {
  this.timeout(120_000);
  let stack: Stack;
  afterEach(async () => {
    await stack?.stop();
    await killAllCli();
  });

  it("kill -9 of one master's consumer mid-stream: a standby claims its work, counts stay exact; batch and batch get on the cluster", async () => {
    stack = new Stack();
    await stack.useCluster(testClusterNodes());
    const cluster = stack.redis as Cluster;
    const owner = (p: number) => cluster.slots[calculateSlot(stack.keys.stream(p))][0];
    const all = Array.from({ length: PARTITIONS }, (_, p) => p);
    const first = all.filter((p) => owner(p) === owner(0));
    const rest = all.filter((p) => owner(p) !== owner(0));
    expect(rest.length).to.be.greaterThan(0); // the partitions are spread over more than one master

    await stack.startApi();
    await stack.startRealtime('rt-m0', { PROFILE_ONLY_PARTITIONS: first.join(',') });
    await stack.startRealtime('rt-rest', { PROFILE_ONLY_PARTITIONS: rest.join(',') });
    await stack.startRealtime('rt-standby'); // every partition
    await stack.startArchive('arch-1');
    const events = knownEvents(30, 60, 'cl');
    const sending = stack.send(events, 40, 2, 20);
    await sleep(500);
    await stack.kill('rt-m0', 'SIGKILL');
    const accepted = await sending;
    await stack.waitCaughtUp();
    await stack.assertExact(events, accepted);

    const batch = await stack.cli(['batch']);
    expect(batch.code, batch.out).to.equal(0);
    const users = Array.from({ length: 30 }, (_, u) => `fu-${u}`);
    const res = await fetch(`http://127.0.0.1:${stack.port}/profiles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_ids: users }),
    });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { profiles: { user_id: string; tags: Record<string, number | string> }[] };
    for (const [u, profile] of body.profiles.map((p, i) => [users[i], p] as const)) {
      const views = events.filter((e) => e.user_id === u && e.type === 'impression').length;
      expect([profile.user_id, profile.tags.impressions_30d, profile.tags.views_1h]).to.deep.equal([u, views, views]);
      expect(profile.tags.segment_id).to.be.a('string');
    }

    // This run's keys are on every master, and the cluster is healthy after it.
    const perMaster = await Promise.all(
      cluster.nodes('master').map(async (node) => {
        let n = 0;
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${stack.keys.prefix}*`, 'COUNT', 1000);
          n += keys.length;
          cursor = next;
        } while (cursor !== '0');
        return n;
      }),
    );
    expect(
      perMaster.every((n) => n > 0),
      String(perMaster),
    ).to.equal(true);
    const { stdout } = await promisify(execFile)('redis-cli', ['--cluster', 'check', testClusterNodes()[0]]);
    const masters = stdout.split('\n').filter((l) => / -> \d+ keys \| \d+ slots/.test(l));
    expect(masters).to.have.length(3);
    for (const line of masters) expect(Number(/-> (\d+) keys/.exec(line)![1])).to.be.greaterThan(0);
    expect(stdout).to.include('[OK] All 16384 slots covered');
  });

  it('wait=applied and meta.lag_ms across masters: a request spanning partitions on several masters answers applied once a read sees all of it', async () => {
    stack = new Stack();
    await stack.useCluster(testClusterNodes());
    await stack.startApi();
    await stack.startRealtime('rt-1');
    const users = Array.from({ length: 12 }, (_, i) => `cw-${i}`); // spread over every partition
    const res = await fetch(`http://127.0.0.1:${stack.port}/events?wait=applied&timeout_ms=10000`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(users.map((u) => ({ event_id: `cw-${u}`, user_id: u, type: 'click' }))),
    });
    expect(((await res.json()) as { applied: boolean }).applied).to.equal(true);
    for (const u of users) {
      const p = (await (await fetch(`http://127.0.0.1:${stack.port}/profile/${u}?max_lag_ms=5000`)).json()) as {
        tags: { clicks_5m: number };
        meta: { lag_ms: number };
      };
      expect([u, p.tags.clicks_5m]).to.deep.equal([u, 1]);
      expect(p.meta.lag_ms).to.be.a('number');
    }
    await stack.kill('rt-1', 'SIGINT');
    const late = await fetch(`http://127.0.0.1:${stack.port}/events?wait=applied&timeout_ms=200`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: users[0], type: 'click' }),
    });
    expect(((await late.json()) as { applied: boolean }).applied).to.equal(false);
    await sleep(300);
    const stale = await fetch(`http://127.0.0.1:${stack.port}/profile/${users[0]}?max_lag_ms=100`);
    expect(stale.status).to.equal(503);
  });

  it('refuses a bad cluster configuration with exit code 2 and a clear message', async () => {
    stack = new Stack();
    const both = await stack.cli(['status', '--cluster', testClusterNodes()[0], '--redis', 'redis://127.0.0.1:1']);
    expect(both.code).to.equal(2);
    expect(both.out).to.include('either a Redis URL or cluster nodes');
    const bad = await stack.cli(['status', '--cluster', 'localhost']);
    expect(bad.code).to.equal(2);
    expect(bad.out).to.include('cluster node must be host:port');
    const partitions = await stack.cli(['consume', '--cluster', testClusterNodes()[0], '--only-partitions', '0,9']);
    expect(partitions.code).to.equal(2);
    expect(partitions.out).to.include('onlyPartitions must list partition numbers from 0 to 3');
  });
});
