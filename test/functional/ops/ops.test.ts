import { expect } from 'chai';
import { spawnSync } from 'child_process';
import { HttpServerHandle } from '../../../src/api/server';
import { RealtimeConsumer } from '../../../src/consumers/realtime';
import { Metrics } from '../../../src/metrics/metrics';
import { Pipeline, T0, makePipeline, serveApp } from '../../helpers/context';
import { sample } from '../../helpers/metrics';
import { apiOnOwnRedis } from '../../helpers/ownRedis';
import { groupCaughtUp, streamStatus } from '../../../src/redis/streamGroups';

describe('operations: /metrics, /ready (real Redis, real HTTP)', () => {
  describe('metrics after a known workload', () => {
    let p: Pipeline;
    let http: HttpServerHandle;
    let base: string;
    let metrics: Metrics;
    let consumer: RealtimeConsumer;

    beforeEach(async () => {
      p = await makePipeline({ partitions: 2 });
      metrics = new Metrics({ redis: p.redis, keys: p.keys, partitions: 2 });
      consumer = new RealtimeConsumer({
        redis: p.redis,
        keys: p.keys,
        partitions: 2,
        tags: p.config.tags.realtime,
        consumerName: 'm-1',
        clock: p.clock.fn,
        metrics,
      });
      ({ http, base } = await serveApp(p, { metrics, maxEventsPerRequest: 20, maxProfilesPerRequest: 100, maxBodyBytes: 1 << 20 }));
    });
    afterEach(async () => {
      await http.close();
      await consumer.stop();
      await p.close();
    });

    const post = (route: string, body: string, type = 'application/json') =>
      fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': type }, body });

    it('counts requests, events, processing, dead letters and reads exactly, and reads stream gauges from Redis', async () => {
      const ten = Array.from({ length: 10 }, (_, i) => ({ event_id: `m${i}`, user_id: `mu${i % 3}`, type: 'click', ts: T0 }));
      expect((await post('/events', JSON.stringify(ten))).status).to.equal(202);
      const nd = Array.from({ length: 5 }, (_, i) => JSON.stringify({ event_id: `n${i}`, user_id: 'mu9', type: 'impression', ts: T0 })).join('\n');
      expect((await post('/events', nd, 'application/x-ndjson')).status).to.equal(202);
      expect(
        (
          await post(
            '/events',
            JSON.stringify([
              { user_id: 'x', type: 'click', ts: T0 },
              { user_id: 'x', type: 'nope' },
            ]),
          )
        ).status,
      ).to.equal(400);
      expect((await post('/events', '{not json')).status).to.equal(400);
      expect((await post('/events', 'x', 'text/plain')).status).to.equal(415);
      expect((await post('/events', JSON.stringify(Array.from({ length: 21 }, () => ({ user_id: 'x', type: 'click' }))))).status).to.equal(413);
      await p.redis.xadd(p.keys.stream(0), '*', 'event_id', 'bad', 'user_id', 'mu1', 'type', 'teleport', 'ts', String(T0));
      expect(await consumer.drain()).to.equal(16);
      for (const u of ['mu0', 'mu1', 'nobody']) await (await fetch(`${base}/profile/${u}`)).text();
      await (await post('/profiles', JSON.stringify({ user_ids: ['mu0', 'mu9'] }))).text();

      const res = await fetch(`${base}/metrics`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain/);
      const text = await res.text();
      const expected: Record<string, number> = {
        'profile_ingest_requests_total{outcome="accepted"}': 2,
        'profile_ingest_requests_total{outcome="invalid"}': 1,
        'profile_ingest_requests_total{outcome="bad_body"}': 1,
        'profile_ingest_requests_total{outcome="unsupported_type"}': 1,
        'profile_ingest_requests_total{outcome="too_large"}': 1,
        profile_events_accepted_total: 15,
        'profile_events_rejected_total{reason="invalid"}': 2,
        'profile_events_processed_total{group="realtime"}': 16, // 15 events + the poison entry, acked after dead-lettering
        'profile_events_dead_lettered_total{group="realtime"}': 1,
        'profile_read_seconds_count{kind="single"}': 3,
        'profile_read_seconds_count{kind="batch"}': 1,
        profile_dead_letters: 1,
        profile_redis_connected: 1,
      };
      for (const [series, value] of Object.entries(expected)) expect([series, sample(text, series)]).to.deep.equal([series, value]);
      const streams = p.keys.streams(2);
      const total = (name: string, group?: string) =>
        streams.reduce((n, s) => n + (sample(text, `${name}{stream="${s}"${group ? `,group="${group}"` : ''}}`) ?? NaN), 0);
      expect(total('profile_stream_length')).to.equal(16);
      expect(total('profile_group_lag', 'realtime')).to.equal(0);
      expect(total('profile_group_pending', 'realtime')).to.equal(0);
      expect(total('profile_group_lag', 'archive')).to.equal(16);
      expect(sample(text, 'profile_consumer_batch_seconds_count{group="realtime"}')).to.be.greaterThan(0);
      expect(text).to.include('profile_process_cpu_user_seconds_total');

      // Every metric the product defines, and the process metrics it keeps, pass promtool's lint.
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      if (promtool.error && !process.env.PROFILE_REQUIRE_PROMTOOL) return void console.warn('    (promtool not installed: lint skipped; CI installs it)');
      expect(promtool.error, 'promtool (Debian: apt-get install prometheus)').to.equal(undefined);
      expect([promtool.status, promtool.stdout + promtool.stderr]).to.deep.equal([0, '']);
      expect(text).to.not.match(/^profile_nodejs_active_\w+_total/m);
      expect(text).to.match(/^profile_nodejs_active_handles\{type="\w+"\} \d+$/m);
    });
  });

  it('reports exact group lag when Redis lost entries-read (as Redis 7.0 does over an AOF restart)', async () => {
    const p = await makePipeline({ partitions: 1 });
    try {
      const stream = p.keys.stream(0);
      await p.producer.ingest(Array.from({ length: 10 }, (_, i) => ({ event_id: `lag-${i}`, user_id: 'lag-u', type: 'click', ts: T0 })));
      const ids = (await p.redis.xrange(stream, '-', '+')).map(([id]) => id);
      await p.consumer.drain(); // realtime read and acked all 10; archive read none
      // What Redis 7.0 restores from the AOF: the right last-delivered id, entries-read far behind.
      await p.redis.call('XGROUP', 'SETID', stream, 'realtime', ids[9], 'ENTRIESREAD', 2);
      await p.redis.call('XGROUP', 'SETID', stream, 'archive', ids[3], 'ENTRIESREAD', 1);
      const raw = (await p.redis.xinfo('GROUPS', stream)) as unknown[][];
      expect(raw.map((g) => g[g.indexOf('lag') + 1])).to.deep.equal([9, 8]); // Redis's figures: wrong
      const [status] = await streamStatus(p.redis, p.keys, 1);
      expect(Object.fromEntries(status.groups.map((g) => [g.name, g.lag]))).to.deep.equal({ realtime: 0, archive: 6 });
      // Not counted (past the bound, or a bound of 0): caught up is still exact, behind is
      // Redis's figure capped by the length, and never 0.
      for (const upTo of [3, 0]) {
        const [rough] = await streamStatus(p.redis, p.keys, 1, upTo);
        expect(Object.fromEntries(rough.groups.map((g) => [g.name, g.lag])), `up to ${upTo}`).to.deep.equal({ realtime: 0, archive: 9 });
      }
      await p.redis.call('XGROUP', 'SETID', stream, 'archive', ids[3], 'ENTRIESREAD', 10); // Redis's figure: 0, wrongly
      const [low] = await streamStatus(p.redis, p.keys, 1, 0);
      expect(low.groups.find((g) => g.name === 'archive')!.lag).to.equal(1);
      expect(groupCaughtUp(low, 'archive')).to.equal(false);
    } finally {
      await p.close();
    }
  });

  it('/ready follows Redis, scripts and groups: 200, 503 while Redis is down, 200 again when it returns', async function () {
    this.timeout(30_000);
    const own = await apiOnOwnRedis({ prefix: 'rd:', partitions: 2, appendonly: true });
    const { redis, keys } = own;
    const ready = async () => {
      const res = await fetch(`${own.base}/ready`);
      return {
        status: res.status,
        body: (await res.json()) as { ready: boolean; checks: Record<string, { ok: boolean; error?: string; missing?: string[] }> },
      };
    };
    try {
      let r = await ready();
      expect(r.status).to.equal(503); // no consumer group yet
      expect(r.body.checks.groups).to.deep.include({
        ok: false,
        missing: ['rd:ev:{p0}/realtime', 'rd:ev:{p0}/archive', 'rd:ev:{p1}/realtime', 'rd:ev:{p1}/archive'],
      });
      for (const s of keys.streams(2)) for (const g of ['realtime', 'archive']) await redis.xgroup('CREATE', s, g, '0', 'MKSTREAM');
      await redis.call('FUNCTION', 'FLUSH');
      r = await ready();
      expect(r).to.deep.equal({
        status: 200,
        body: { ready: true, checks: { redis: { ok: true }, memory: { ok: true }, scripts: { ok: true }, groups: { ok: true } } },
      });
      const { scriptLibrary } = await import('../../../src/lua/scripts');
      expect(await redis.call('FUNCTION', 'LIST', 'LIBRARYNAME', scriptLibrary().name)).to.have.length(1);

      await own.stopRedis();
      r = await ready();
      expect(r.status).to.equal(503);
      expect(r.body.ready).to.equal(false);
      expect(r.body.checks.redis.ok).to.equal(false);
      expect((await fetch(`${own.base}/health`)).status).to.equal(200); // liveness does not depend on Redis

      await own.startRedis();
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && (r = await ready()).status !== 200) await new Promise((res) => setTimeout(res, 100));
      expect(r.status).to.equal(200); // the groups survived in the AOF; scripts were loaded again
    } finally {
      await own.close();
    }
  });
});
