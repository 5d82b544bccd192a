import { expect } from 'chai';
import { Keys, partitionFor } from '../../src/core/keys';
import { EVENT_TYPES } from '../../src/core/event';

describe('keys and partitioning', () => {
  it('builds every key name with the prefix', () => {
    const k = new Keys('ps:');
    expect(k.stream(3)).to.equal('ps:ev:{p3}');
    expect(k.streams(2)).to.deep.equal(['ps:ev:{p0}', 'ps:ev:{p1}']);
    expect(k.deadLetters()).to.equal('ps:ev:dead');
    expect(k.panes('user-1', 'click')).to.equal('ps:u:{user-1}:p:click');
    expect(k.paneIndex('user-1', 'click')).to.equal('ps:u:{user-1}:t:click');
    expect(k.legacyWindow('user-1', 'click')).to.equal('ps:u:{user-1}:w:click');
    expect(k.legacyWindowValues('user-1', 'click')).to.equal('ps:u:{user-1}:wv:click');
    expect(k.realtime('user-1')).to.equal('ps:u:{user-1}:rt');
    expect(k.offline('user-1')).to.equal('ps:u:{user-1}:off');
    expect(new Keys().realtime('a')).to.equal('u:{a}:rt');
  });

  it("puts all of a user's keys under the same hash tag: the first {...} is the user id", () => {
    const k = new Keys('p:');
    const id = 'a.b_c:d@e-f';
    const all = [
      k.realtime(id),
      k.offline(id),
      ...EVENT_TYPES.flatMap((t) => [k.panes(id, t), k.paneIndex(id, t), k.legacyWindow(id, t), k.legacyWindowValues(id, t)]),
    ];
    for (const key of all) expect(/\{([^}]*)\}/.exec(key)![1]).to.equal(id);
  });

  it('maps a user to a stable partition (FNV-1a mod n)', () => {
    expect(partitionFor('user-1', 4)).to.equal(partitionFor('user-1', 4));
    expect(partitionFor('', 7)).to.equal(0x811c9dc5 % 7);
    expect([partitionFor('a', 1000), partitionFor('user-1', 1000), partitionFor('user-2', 1000)]).to.deep.equal([
      0xe40c292c % 1000,
      fnv('user-1') % 1000,
      fnv('user-2') % 1000,
    ]);
  });

  it('spreads users evenly over partitions', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[partitionFor(`user-${i}`, 4)]++;
    for (const c of counts) expect(c).to.be.within(9_500, 10_500);
  });
});

/** Reference FNV-1a written independently of the implementation. */
function fnv(s: string): number {
  let h = 2166136261n;
  for (const ch of Buffer.from(s)) h = ((h ^ BigInt(ch)) * 16777619n) % 2n ** 32n;
  return Number(h);
}
