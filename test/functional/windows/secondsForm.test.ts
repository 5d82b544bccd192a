import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';
import { computeWindowTags } from '../../helpers/windowReference';
import { secondCounts, toFieldPerSecond } from '../../helpers/secondsForm';
import { sameWindowValue } from '../../../src/batch/windows';
import type { ProfileEvent } from '../../../src/core/event';
import { prng } from '../../../src/dev/simulate';

const SEC = 1000;
/** A pane hash with T's totals in one order (writers list them in their own). */
const norm = (h: Record<string, string>) => ({ ...h, T: h.T?.split('\x1e').sort().join('\x1e') });
const MIN = 60 * SEC;

/**
 * A count-only type's one-second panes are kept a minute to a field (S<minute>); state a
 * version before wrote a field a second is moved by its first write (updateWindows.lua),
 * and read right before and after.
 */
describe('one-second panes a minute to a field (real Redis)', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await makePipeline({ now: T0 });
  });
  afterEach(() => p.close());

  /** Impressions and clicks of `user` over 70 minutes up to T0, some seconds with several. */
  function traffic(user: string, seed: number): Record<string, unknown>[] {
    const random = prng(seed);
    return Array.from({ length: 400 }, (_, i) => {
      const ts = T0 - Math.floor(random() * 70 * MIN);
      const type = random() < 0.8 ? 'impression' : 'click';
      return { event_id: `e${i}`, user_id: user, type, ts: ts - (i % 3 === 0 ? ts % SEC : 0), ad_id: `ad-${i % 9}`, campaign_id: `c-${i % 4}` };
    });
  }

  async function expectReads(user: string, events: Record<string, unknown>[], when: string): Promise<void> {
    const start = p.clock.now;
    try {
      for (const dt of [0, SEC, 7 * SEC, 30 * SEC, 61 * SEC, 5 * MIN + 3 * SEC, 20 * MIN]) {
        p.clock.now = start + dt;
        const got = (await p.reader.read(user))!;
        const expected = computeWindowTags(events as unknown as ProfileEvent[], p.config.tags.realtime, p.clock.now);
        for (const t of p.config.tags.realtime)
          expect(
            sameWindowValue(expected[t.name], got.tags[t.name] as never),
            `${when} +${dt / SEC} s ${t.name}: ${JSON.stringify(got.tags[t.name])}`,
          ).to.equal(true);
      }
    } finally {
      p.clock.now = start;
    }
  }

  it('a field a second is moved by the first write, reads agree before and after, and the state is the one written in the S form from the start', async function () {
    this.timeout(60_000);
    const events = traffic('old', 7);
    await feed(p, events);
    await feed(
      p,
      events.map((e) => ({ ...e, user_id: 'new' })),
    );
    // 'old' as a version before wrote it: a field a second, T without its S.
    for (const type of ['impression', 'click'] as const) {
      const key = p.keys.panes('old', type);
      const before = await secondCounts(p.redis as Redis, key);
      expect(before.size, type).to.be.greaterThan(20);
      await toFieldPerSecond(p.redis as Redis, key);
      expect(Object.keys(await p.redis.hgetall(key)).filter((f) => /^s\d+$/.test(f))).to.have.length(before.size);
      expect(await p.redis.hget(key, 'T')).to.match(/^\d+,-?\d+(,-?\d+)?\x1e/);
    }
    await expectReads('old', events, 'before the write');
    // The next write: the consumer's fold leaves the old form to the script, which moves it.
    const left = p.consumer.foldCounts.leftToScript;
    const last = { event_id: 'last', type: 'impression', ts: T0, ad_id: 'ad-1', campaign_id: 'c-1' };
    const click = { ...last, event_id: 'last-click', type: 'click' };
    await feed(
      p,
      ['old', 'new'].flatMap((user_id) => [
        { ...last, user_id },
        { ...click, user_id },
      ]),
    );
    expect(p.consumer.foldCounts.leftToScript).to.equal(left + 1);
    events.push({ ...last, user_id: 'old' }, { ...click, user_id: 'old' });
    for (const type of ['impression', 'click'] as const) {
      const [old, fresh] = [await p.redis.hgetall(p.keys.panes('old', type)), await p.redis.hgetall(p.keys.panes('new', type))];
      expect(
        Object.keys(old).filter((f) => /^s\d+$/.test(f)),
        type,
      ).to.deep.equal([]);
      expect(old.T).to.match(/^\d+,-?\d+(,-?\d+)?S\x1e/);
      // Field for field what the S form wrote from the start (V: the old state's writes were the same).
      expect(norm(old), type).to.deep.equal(norm(fresh));
    }
    await expectReads('old', events, 'after the write');
    // And the fold takes the user again.
    p.clock.now = T0 + 2 * SEC;
    await feed(p, [{ ...last, event_id: 'later', user_id: 'old', ts: T0 + 2 * SEC }]);
    expect(p.consumer.foldCounts.leftToScript).to.equal(left + 1);
  });

  it("a correction that cuts a busy minute counts exactly its seconds, from the minute's start or past a third of it", async function () {
    this.timeout(60_000);
    // Every second of one minute holds 1-3 impressions. The views_5m total is written with
    // its window starting at second a0 of that minute; a read d seconds later subtracts the
    // cut [a0, a0 + d): read from the minute's entries in turn (a0 = 2, past 3 s) and by
    // searching for the cut's first second (a0 = 30; a0 = 20, the minute's first second).
    for (const [user, minute, a0, first] of [
      ['early-cut', T0 - 20 * MIN, 2, 0],
      ['late-cut', T0 - 12 * MIN, 30, 0],
      ['cut-at-first', T0 - 4 * MIN, 20, 20],
    ] as const) {
      const events = Array.from({ length: 60 - first }, (_, i) => i + first)
        .map((s) =>
          Array.from({ length: 1 + (s % 3) }, (_, k) => ({
            event_id: `${s}-${k}`,
            user_id: user,
            type: 'impression',
            ts: minute + s * SEC + k,
            ad_id: 'ad-1',
            campaign_id: 'c-1',
          })),
        )
        .flat();
      const written = minute + 5 * MIN + (a0 - 1) * SEC;
      p.clock.now = written;
      await feed(p, events);
      for (let d = 1; d <= 60 - a0; d++) {
        p.clock.now = written + d * SEC;
        const got = (await p.reader.read(user))!;
        const expected = computeWindowTags(events as unknown as ProfileEvent[], p.config.tags.realtime, p.clock.now);
        expect(got.tags.views_5m, `${user} +${d} s`).to.equal(expected.views_5m);
        expect(got.tags.views_1h, `${user} +${d} s`).to.equal(expected.views_1h);
      }
    }
  });

  it('a type that keeps more than counts in its one-second panes keeps a field a second', async () => {
    await p.close();
    p = await makePipeline({
      now: T0,
      tags: [
        { name: 'spend_5m', event: 'purchase', aggregation: 'sum', field: 'amount', window: '5m' },
        { name: 'views_5m', event: 'impression', aggregation: 'count', window: '5m' },
      ],
    });
    await feed(p, [
      { event_id: 'p1', user_id: 'u', type: 'purchase', ts: T0 - 2 * SEC, amount: 12.5 },
      { event_id: 'i1', user_id: 'u', type: 'impression', ts: T0 - 2 * SEC, ad_id: 'a' },
    ]);
    const purchase = await p.redis.hgetall(p.keys.panes('u', 'purchase'));
    expect(purchase[`s${T0 / SEC - 2}`]).to.match(/^1,1,12\.5,/);
    expect(Object.keys(purchase).filter((f) => f.startsWith('S'))).to.deep.equal([]);
    expect(purchase.T).to.not.match(/^[^\x1e]*S/);
    const impression = await p.redis.hgetall(p.keys.panes('u', 'impression'));
    expect(impression[`S${Math.floor((T0 / SEC - 2) / 60)}`]).to.equal(`${(T0 / SEC - 2) % 60}:1`);
    expect((await p.reader.read('u'))!.tags).to.include({ spend_5m: 12.5, views_5m: 1 });
  });
});
