import { expect } from 'chai';
import { mergeCounts } from '../../src/profile/reader';

// readProfile.lua answers a count_by as signed value-pane texts; the reader merges them.
describe('mergeCounts (count_by values merged by the reader)', () => {
  const text = (o: Record<string, number>) =>
    Object.entries(o)
      .flatMap(([k, n]) => [k, String(n)])
      .join('\x1f');

  it('adds and subtracts the pane texts, drops values at 0, and sorts the keys', () => {
    const got = mergeCounts(['+', text({ 'c-2': 5, 'c-1': 3 }), '+', text({ 'c-1': 1, 'c-3': 2 }), '-', text({ 'c-2': 5, 'c-3': 1 })], 0);
    expect(Object.entries(got)).to.deep.equal([
      ['c-1', 4],
      ['c-3', 1],
    ]);
  });

  it('keeps the top k by count, ties to the smaller key, then in key order', () => {
    const got = mergeCounts(['+', text({ b: 2, a: 2, c: 5, d: 1 })], 2);
    expect(Object.entries(got)).to.deep.equal([
      ['a', 2],
      ['c', 5],
    ]);
  });

  it('gives an empty object for no texts, and keeps "__proto__" a plain key', () => {
    expect(mergeCounts([], 0)).to.deep.equal({});
    const got = mergeCounts(['+', '__proto__\x1f2\x1fc-1\x1f1'], 0);
    expect(Object.getPrototypeOf(got)).to.equal(null);
    expect(Object.entries(got)).to.deep.equal([
      ['__proto__', 2],
      ['c-1', 1],
    ]);
  });
});
