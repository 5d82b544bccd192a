import { expect } from 'chai';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';
import { computeWindowTags, exactPercentile } from '../../helpers/windowReference';
import { sameWindowValue } from '../../../src/batch/windows';
import { ProfileEvent } from '../../../src/core/event';
import { percentileLabel } from '../../../src/core/sketch';
import { prng } from '../../../src/dev/simulate';

const MIN = 60_000;
const PS = [50, 90, 99];
// Each sketch at every resolution, over the same events.
const TAGS = [
  { name: 'p_s', event: 'purchase', aggregation: 'percentile', field: 'amount', p: PS, window: '1h', resolution: '1s' },
  { name: 'p_m', event: 'purchase', aggregation: 'percentile', field: 'amount', p: PS, window: '1h', resolution: '1m' },
  { name: 'p_h', event: 'purchase', aggregation: 'percentile', field: 'amount', p: PS, window: '3h', resolution: '1h' },
  { name: 'd_s', event: 'purchase', aggregation: 'approx_distinct', field: 'ad_id', window: '1h', resolution: '1s' },
  { name: 'd_m', event: 'purchase', aggregation: 'approx_distinct', field: 'ad_id', window: '1h', resolution: '1m' },
  { name: 'd_h', event: 'purchase', aggregation: 'approx_distinct', field: 'ad_id', window: '3h', resolution: '1h' },
  { name: 'd256_m', event: 'purchase', aggregation: 'approx_distinct', field: 'ad_id', k: 256, window: '1h', resolution: '1m' },
];
const N = 100_000;

/** 100k values of one distribution: [amount, ad id number]. */
function stream(kind: 'uniform' | 'zipf' | 'lognormal', random: () => number): [number, number][] {
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const out: [number, number][] = [];
  for (let i = 0; i < N; i++) {
    if (kind === 'uniform') out.push([Math.round(random() * 100_000) / 100, Math.floor(random() * 60_000)]);
    // Zipf-like (s ≈ 1.2): a heavy head and a long tail, of ids and of amounts.
    else if (kind === 'zipf') {
      const rank = Math.floor(Math.pow(1 - random(), -1 / 0.2));
      out.push([Math.min(rank, 1e7) / 100, Math.min(rank, 1e9)]);
    } else out.push([Math.round(Math.exp(3 + 1.5 * normal()) * 100) / 100, Math.floor(Math.exp(8 + 2 * normal()))]);
  }
  return out;
}

describe('the sketches against the exact answer (percentile within 1 %, approx_distinct within 3 standard errors), at every resolution', function () {
  this.timeout(300_000);
  let p: Pipeline;
  before(async () => {
    p = await makePipeline({ tags: TAGS, now: T0 });
  });
  after(() => p.close());

  for (const kind of ['uniform', 'zipf', 'lognormal'] as const) {
    it(`${kind}: 100k values of one user`, async () => {
      const random = prng(kind.length * 7919);
      const user = `s-${kind}`;
      const values = stream(kind, random);
      const events = values.map(([amount, id], i) => ({
        event_id: `${kind}-${i}`,
        user_id: user,
        type: 'purchase',
        ts: p.clock.now - 50 * MIN + Math.floor((i * 50 * MIN) / N),
        amount,
        ad_id: `ad-${id}`,
      }));
      for (let i = 0; i < events.length; i += 5000) await feed(p, events.slice(i, i + 5000));
      const profile = (await p.reader.read(user))!;
      const tags = p.config.tags.realtime;
      // The sketches' own definition (core/sketch.ts), evaluated by the model: equal.
      const model = computeWindowTags(events as unknown as ProfileEvent[], tags, p.clock.now);
      for (const t of tags)
        expect(
          sameWindowValue(model[t.name], profile.tags[t.name] as never),
          `${t.name}: ${JSON.stringify(profile.tags[t.name])} vs ${JSON.stringify(model[t.name])}`,
        ).to.equal(true);
      // Against the exact answer.
      const amounts = values.map(([a]) => a);
      const distinct = new Set(values.map(([, id]) => id)).size;
      for (const name of ['p_s', 'p_m', 'p_h']) {
        const got = profile.tags[name] as Record<string, number>;
        for (const q of PS) {
          const exact = exactPercentile(amounts, q);
          expect(Math.abs(got[percentileLabel(q)] - exact), `${name} p${q}: ${got[percentileLabel(q)]} vs ${exact}`).to.be.at.most(
            0.01 * Math.abs(exact) + 1e-9,
          );
        }
      }
      for (const [name, k] of [
        ['d_s', 1024],
        ['d_m', 1024],
        ['d_h', 1024],
        ['d256_m', 256],
      ] as const) {
        const got = profile.tags[name] as number;
        expect(Math.abs(got - distinct) / distinct, `${name}: ${got} vs ${distinct} distinct`).to.be.at.most(3 / Math.sqrt(k - 2));
      }
    });
  }
});
