import { expect } from 'chai';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';

/**
 * A count read long after its total was written corrects it through the time index, and an
 * edge minute mostly inside that correction is read as its minute pane less its other
 * seconds (includes/cover.lua, `flipped`). Every read here is checked against the events
 * counted by the pane rule: the window [now's second - W + 1 s, now's second].
 */
describe('a count corrected by an edge minute less its other seconds reads what its events say (real Redis)', () => {
  let p: Pipeline;
  const times: number[] = [];
  before(async () => {
    p = await makePipeline({ partitions: 1 });
    // One user's impressions over the 10 minutes before T0, 1-4 s apart (a seeded draw), so
    // many seconds of each minute are empty and every minute holds some.
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let t = T0 - 600_000 + 137; t < T0; t += 1000 + Math.floor(rand() * 4) * 1000) times.push(t);
    await feed(
      p,
      times.map((ts, i) => ({ event_id: `f${i}`, user_id: 'idle', type: 'impression', ts, ad_id: 'ad-1', campaign_id: 'c-1' })),
    );
  });
  after(() => p.close());

  const expected = (now: number, windowS: number) => {
    const last = Math.floor(now / 1000);
    return times.filter((t) => Math.floor(t / 1000) > last - windowS && Math.floor(t / 1000) <= last).length;
  };

  it('views_5m and views_1h equal the events in their windows at every second of the 6 minutes after the write', async () => {
    let checked = 0;
    for (let dt = 0; dt <= 360_000; dt += 1000) {
      p.clock.now = T0 + dt;
      const got = await p.reader.read('idle');
      expect(got, `read at +${dt} ms`).to.not.equal(null);
      expect(got!.tags.views_5m, `views_5m at +${dt} ms`).to.equal(expected(T0 + dt, 300));
      expect(got!.tags.views_1h, `views_1h at +${dt} ms`).to.equal(expected(T0 + dt, 3600));
      checked++;
    }
    expect(checked).to.equal(361);
    // The reads cover the whole range: from every event in the window to none.
    p.clock.now = T0;
    expect((await p.reader.read('idle'))!.tags.views_5m)
      .to.equal(expected(T0, 300))
      .and.to.be.greaterThan(100);
    p.clock.now = T0 + 360_000;
    expect((await p.reader.read('idle'))!.tags.views_5m).to.equal(0);
  });
});
