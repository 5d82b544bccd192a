import { expect } from 'chai';
import {
  estimateDistinct,
  estimateDistinctText,
  mergeSketch,
  nearestRank,
  percentileKey,
  percentileValue,
  percentiles,
  percentilesFromSigned,
  sketchHash,
  sketchHashes,
} from '../../src/core/sketch';
import { exactPercentile } from '../helpers/windowReference';

describe('the sketches (core/sketch.ts)', () => {
  it('percentile buckets keep the order of values, negatives and 0 included, each within 1 % of its representative', () => {
    const xs = [-5000, -12.5, -0.01, 0, 1e-6, 0.01, 1, 9.99, 10, 10.01, 250, 1e9];
    const keys = xs.map((x) => Number(percentileKey(x)));
    for (let i = 1; i < keys.length; i++) expect(keys[i], `${xs[i - 1]} < ${xs[i]}`).to.be.at.least(keys[i - 1]);
    for (const x of xs) expect(Math.abs(percentileValue(Number(percentileKey(x))) - x)).to.be.at.most(0.01 * Math.abs(x) * (1 + 1e-12)); // α exactly at a bucket's upper edge (x = 1), plus rounding;
  });

  it('nearest rank: ceil(n · p / 100), at least 1', () => {
    expect([nearestRank(10, 50), nearestRank(10, 90), nearestRank(10, 99.9), nearestRank(1, 1), nearestRank(3, 50), nearestRank(1000, 99.9)]).to.deep.equal([
      5, 9, 10, 1, 2, 999,
    ]);
  });

  it('percentiles of mixed-sign values are within 1 % of the exact nearest-rank ones, from counts and from signed texts alike', () => {
    const values = Array.from({ length: 2000 }, (_, i) => ((i * 7919) % 4001) / 10 - 150);
    const counts = new Map<string, number>();
    for (const v of values) counts.set(percentileKey(v), (counts.get(percentileKey(v)) ?? 0) + 1);
    const got = percentiles(counts, [1, 25, 50, 90, 99.9])!;
    for (const p of [1, 25, 50, 90, 99.9]) {
      const exact = exactPercentile(values, p);
      expect(Math.abs(got[`p${p}`] - exact), `p${p}`).to.be.at.most(0.01 * Math.abs(exact) + 1e-12);
    }
    // The read script's form: a total plus a pane, minus a pane that left.
    const text = (m: Map<string, number>) => [...m].flatMap(([k, n]) => [k, String(n)]).join('\x1f');
    const extra = new Map([[percentileKey(1e6), 3]]);
    expect(percentilesFromSigned(['+', text(counts), '+', text(extra), '-', text(extra)], [1, 25, 50, 90, 99.9])).to.deep.equal(got);
    expect(percentiles(new Map(), [50])).to.equal(null);
  });

  it('approx_distinct: exact below k, the KMV estimate above, the same from pane texts in any order and with repeats', () => {
    const hashes = Array.from({ length: 5000 }, (_, i) => sketchHash(`ad-${i}`));
    expect(estimateDistinct(hashes.slice(0, 15), 16)).to.equal(15);
    const estimate = estimateDistinct(hashes, 256);
    expect(Math.abs(estimate - 5000) / 5000).to.be.below(3 / Math.sqrt(254));
    // Two panes of 256 smallest each, overlapping: the union's 256 smallest are the set's.
    const a = mergeSketch(null, hashes.slice(0, 3000), 256);
    const b = mergeSketch(null, hashes.slice(2000), 256);
    expect(sketchHashes(a)).to.have.length(256);
    expect(estimateDistinctText(b + a + a, 256)).to.equal(estimate);
    expect(estimateDistinctText('', 1024)).to.equal(0);
  });
});
