import { expect } from 'chai';
import { createApp } from '../../../src/api/app';
import { HttpServerHandle, listen } from '../../../src/api/server';
import { Metrics } from '../../../src/metrics/metrics';
import { Producer } from '../../../src/producer/producer';
import { ProfileReader as InternalReader } from '../../../src/profile/reader';
import { RealtimeLag } from '../../../src/profile/lag';
import { Pipeline, feed, makePipeline, testClusterNodes, testRedisUrl } from '../../helpers/context';

// The package's public entry, loaded by its name as a bidder would (package.json `exports`).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require('profile-stream') as typeof import('../../../src/index');

/** A profile without the read time (two reads a few ms apart differ only there). */
const timeless = (p: unknown) => {
  if (p === null || typeof p !== 'object') return p;
  const { meta, ...rest } = p as { meta: Record<string, unknown> };
  const { as_of: _a, ...stable } = meta;
  return { ...rest, meta: stable };
};

describe("the library entry: import { ProfileReader } from 'profile-stream' (real Redis)", () => {
  for (const cluster of [false, true]) {
    describe(cluster ? 'on a cluster' : 'on one server', () => {
      let p: Pipeline;
      let http: HttpServerHandle;
      let lag: RealtimeLag;
      let base: string;
      const users = ['lib-1', 'lib-2', 'lib-3'];
      before(async function () {
        this.timeout(30_000);
        p = await makePipeline({ partitions: 2, now: Date.now(), cluster });
        const now = Date.now();
        const events = users.flatMap((u, i) =>
          Array.from({ length: 3 + i }, (_, j) => ({
            user_id: u,
            type: j % 2 ? 'impression' : 'purchase',
            ts: now - 120_000 + j,
            amount: j + 0.5,
            ad_id: `ad-${j}`,
            campaign_id: `c-${j % 2}`,
          })),
        );
        await feed(p, events);
        await p.redis.hset(p.keys.offline('lib-1'), { ltv_total: '470.5', segment_id: 'high_value_user', _run_id: 'r1', _batch_at: String(now) });
        // As the product's API: the reader answers meta.lag_ms from a sampled RealtimeLag.
        lag = new RealtimeLag(p.redis, p.keys, 2);
        await lag.start();
        const app = createApp({
          redis: p.redis,
          reader: new InternalReader(p.redis, p.keys, p.config.tags.realtime).trackLag(lag),
          keys: p.keys,
          partitions: 2,
          producer: new Producer({ redis: p.redis, keys: p.keys, partitions: 2, maxFutureSkewMs: 300_000 }),
          metrics: new Metrics({ processMetrics: false }),
          windowTags: p.config.tags.realtime,
          maxEventsPerRequest: 100,
          maxProfilesPerRequest: 10,
          maxBodyBytes: 1 << 20,
        });
        http = await listen(app, '127.0.0.1', 0);
        base = `http://127.0.0.1:${http.port}`;
      });
      after(async () => {
        await lag.stop();
        await http.close();
        await p.close();
      });

      it('answers read and readMany exactly as GET /profile and POST /profiles do', async () => {
        const reader = await lib.ProfileReader.connect({
          ...(cluster ? { clusterNodes: testClusterNodes() } : { redisUrl: testRedisUrl() }),
          tags: p.config.tags,
          prefix: p.keys.prefix,
          partitions: 2,
        });
        try {
          for (const u of [...users, 'nobody']) {
            const res = await fetch(`${base}/profile/${u}`);
            const viaHttp = res.status === 404 ? null : await res.json();
            expect(timeless(await reader.read(u)), u).to.deep.equal(timeless(viaHttp));
          }
          expect(((await reader.read('lib-1'))!.tags as Record<string, unknown>).ltv_total).to.equal(470.5);
          const batch = (await (
            await fetch(`${base}/profiles`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ user_ids: users }),
            })
          ).json()) as { profiles: unknown[] };
          expect((await reader.readMany(users)).map(timeless)).to.deep.equal(batch.profiles.map(timeless));
          // Only the tags asked for, as GET /profile/:id?tags= answers them; an unknown name throws, naming it.
          const tagged = await (await fetch(`${base}/profile/lib-1?tags=ltv_total,views_5m`)).json();
          expect(timeless(await reader.read('lib-1', { tags: ['ltv_total', 'views_5m'] }))).to.deep.equal(timeless(tagged));
          const taggedBatch = (await (
            await fetch(`${base}/profiles`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ user_ids: users, tags: ['segment_id', 'clicks_24h'] }),
            })
          ).json()) as { profiles: unknown[] };
          expect((await reader.readMany(users, { tags: ['segment_id', 'clicks_24h'] })).map(timeless)).to.deep.equal(taggedBatch.profiles.map(timeless));
          const refused = await reader.read('lib-1', { tags: ['views_5m', 'nope'] }).catch((err: Error) => err);
          expect(refused).to.be.instanceOf(lib.UnknownTagError);
          expect((refused as Error).message).to.equal('unknown tag: nope');
        } finally {
          await reader.close();
        }
      });
    });
  }

  it('reads the tag config from a file path; close() closes its connection; no Redis given is a ConfigError', async () => {
    const reader = await lib.ProfileReader.connect({ redisUrl: testRedisUrl(), tags: lib.DEFAULT_TAGS_FILE, prefix: 'lib-nothing:' });
    expect(await reader.read('user-1')).to.equal(null);
    await reader.close();
    let err: unknown;
    await reader.read('user-1').catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
    let config: unknown;
    await lib.ProfileReader.connect({}).catch((e: unknown) => (config = e));
    expect(config).to.be.instanceOf(lib.ConfigError);
  });
});
