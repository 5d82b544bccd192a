import { expect } from 'chai';
import { keyExpiry } from '../../src/consumers/typeFold';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('keyExpiry: when window keys may expire', () => {
  it('is the newest event plus the window plus a minute, rounded up to 2^k minutes (60 of them in the window)', () => {
    const t = Date.UTC(2026, 11, 7, 12, 0, 7, 250);
    // An hour's window (and anything shorter than two): the minute.
    for (const w of [5 * MIN, HOUR, 2 * HOUR - MIN]) expect(keyExpiry(t, w)).to.equal(Math.ceil((t + w + MIN) / MIN) * MIN);
    // A day's window: 16 minutes (32 would not fit 60 times in it).
    expect(keyExpiry(t, 24 * HOUR)).to.equal(Math.ceil((t + 24 * HOUR + MIN) / (16 * MIN)) * 16 * MIN);
    expect(keyExpiry(t, 7 * 24 * HOUR)).to.equal(Math.ceil((t + 7 * 24 * HOUR + MIN) / (128 * MIN)) * 128 * MIN);
  });

  it('never comes before the window and a minute have passed, nor a step later', () => {
    for (const w of [MIN, 5 * MIN, HOUR, 3 * HOUR, 24 * HOUR, 30 * 24 * HOUR]) {
      for (let t = 1_795_000_000_000; t < 1_795_000_000_000 + 3 * HOUR; t += 7_919) {
        const e = keyExpiry(t, w);
        expect(e).to.be.at.least(t + w + MIN);
        expect(e - (t + w + MIN)).to.be.below(Math.max(MIN, w / 60) + 1);
      }
    }
  });

  it('moves only forward with a later event or a longer window: the realtime hash (the longest window) outlives every pane key', () => {
    // Windows a minute apart around the steps' changes (2 h, 4 h, 16 h, 32 h), and far apart.
    const windows = [
      MIN,
      5 * MIN,
      HOUR,
      2 * HOUR - MIN,
      2 * HOUR,
      4 * HOUR - MIN,
      4 * HOUR,
      16 * HOUR - MIN,
      16 * HOUR,
      23 * HOUR + 59 * MIN,
      24 * HOUR,
      32 * HOUR - MIN,
      32 * HOUR,
      7 * 24 * HOUR,
    ];
    for (let t = 1_795_000_000_000; t < 1_795_000_000_000 + 2 * HOUR; t += 13_001) {
      for (let i = 1; i < windows.length; i++) {
        for (let j = 0; j < i; j++) expect(keyExpiry(t, windows[i]), `${windows[j]} -> ${windows[i]} at ${t}`).to.be.at.least(keyExpiry(t, windows[j]));
        expect(keyExpiry(t + 1000, windows[i])).to.be.at.least(keyExpiry(t, windows[i]));
      }
    }
  });
});
