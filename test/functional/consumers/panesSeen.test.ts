import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { Pipeline, T0, makePipeline } from '../../helpers/context';
import { RealtimeConsumer } from '../../../src/consumers/realtime';
import { windowRange } from '../../../src/core/panes';
import { PanesSeen, dropOldest, evictionBatch, paneMayExist } from '../../../src/consumers/panesSeen';

/**
 * The consumer's fold names only the second and minute panes it knows can hold events
 * (src/consumers/panesSeen.ts), knowledge it keeps of the hashes it wrote and uses only
 * while their V and T are as it wrote them. Every read here is checked against the events
 * counted by the pane rule, at several times after each write, with writes by the fold and
 * by updateWindows.lua (which moves V) in turn, late events (into panes a moved total
 * subtracts, and into minutes of the hour before), and resent events.
 */
describe('what the fold knows of the panes it wrote: totals equal the events in the window (real Redis)', () => {
  let p: Pipeline;
  let lua: RealtimeConsumer;
  const seen = new Map<string, { ts: number; type: string; campaign: string }>();
  before(async () => {
    p = await makePipeline({ partitions: 1 });
    lua = new RealtimeConsumer({
      redis: p.redis,
      keys: p.keys,
      partitions: 1,
      tags: p.config.tags.realtime,
      consumerName: 'lua-consumer',
      clock: p.clock.fn,
      foldInConsumer: false,
    });
    await lua.init();
  });
  after(async () => {
    await lua.stop();
    await p.close();
  });

  const tag = (name: string) => p.config.tags.realtime.find((t) => t.name === name)!;
  const inWindow = (name: string, now: number) => {
    const t = tag(name);
    const [from, to] = windowRange(t, now);
    return [...seen.values()].filter((e) => e.type === t.event && e.ts >= from && e.ts < to && e.ts <= now);
  };
  const byCampaign = (now: number) => {
    const out: Record<string, number> = {};
    for (const e of inWindow('campaign_views_1h', now)) out[e.campaign] = (out[e.campaign] ?? 0) + 1;
    return out;
  };

  it('views_5m, views_1h, clicks_5m and campaign_views_1h at 0-90 s after each of 150 writes, by the fold and by the script in turn', async () => {
    let seed = 5;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let id = 0;
    let checked = 0;
    const start = T0 - 15 * 60_000;
    const before = p.consumer.foldCounts;
    for (let step = 0; step < 150; step++) {
      const now = start + step * 6000;
      p.clock.now = now;
      const events: { ts: number }[] = [];
      // Bursts and gaps: 0-4 events in the last 6 s; now and then one up to 5 min late (into
      // the panes a 5-minute total subtracts next), or 30-50 min late (a minute long known).
      const k = rand() < 0.3 ? 0 : Math.floor(rand() * 5);
      for (let i = 0; i < k; i++) events.push({ ts: now - Math.floor(rand() * 6000) });
      if (rand() < 0.15) events.push({ ts: now - 240_000 - Math.floor(rand() * 60_000) });
      if (rand() < 0.1) events.push({ ts: now - 30 * 60_000 - Math.floor(rand() * 20 * 60_000) });
      const fresh = events.map((e) => ({
        event_id: `e${id++}`,
        user_id: 'u',
        type: rand() < 0.8 ? 'impression' : 'click',
        ad_id: 'ad-1',
        campaign_id: `c-${Math.floor(rand() * 3)}`,
        ...e,
      }));
      const resent = rand() < 0.2 && seen.size > 3 ? [[...seen.entries()][Math.floor(rand() * seen.size)]] : [];
      const batch = [
        ...fresh,
        ...resent.map(([eventId, e]) => ({ event_id: eventId, user_id: 'u', type: e.type, ts: e.ts, ad_id: 'ad-1', campaign_id: e.campaign })),
      ];
      if (batch.length === 0) continue;
      const r = await p.producer.ingest(batch);
      expect(r.ok).to.equal(true);
      await (step % 4 === 3 ? lua.drain() : p.consumer.drain());
      for (const e of fresh) seen.set(e.event_id, { ts: e.ts, type: e.type, campaign: e.campaign_id });
      for (const dt of [0, 1, 7, 15, 29, 45, 59, 60, 61, 90]) {
        p.clock.now = now + dt * 1000;
        const got = (await p.reader.read('u'))!;
        const at = `step ${step}, +${dt} s`;
        for (const name of ['views_5m', 'views_1h', 'clicks_5m']) expect(got.tags[name], `${name} ${at}`).to.equal(inWindow(name, p.clock.now).length);
        expect(JSON.parse(JSON.stringify(got.tags.campaign_views_1h)), `campaign_views_1h ${at}`).to.deep.equal(byCampaign(p.clock.now));
        checked++;
      }
    }
    expect(checked).to.be.greaterThan(900);
    // Most of the fold's visits were planned with what it knew (not those after the script's writes).
    const after = p.consumer.foldCounts;
    const [visits, known] = [after.visits - before.visits, after.visitsKnown - before.visitsKnown];
    expect(known).to.be.greaterThan(visits / 3);
    expect(known).to.be.lessThan(visits);
  });

  it('names only the minutes whose seconds hold events when a total moves, and nothing it knows is missing', async () => {
    // One impression every 10 s over 5 minutes, written as it comes; then a write 60 s on.
    const user = 'named';
    const at = T0 + 3_600_000;
    for (let i = 0; i < 30; i++) {
      p.clock.now = at + i * 10_000;
      expect((await p.producer.ingest([{ event_id: `n${i}`, user_id: user, type: 'impression', ts: p.clock.now, ad_id: 'a', campaign_id: 'c' }])).ok).to.equal(
        true,
      );
      await p.consumer.drain();
    }
    const monitor = await (p.redis as Redis).monitor();
    const asked: string[][] = [];
    monitor.on('monitor', (_t: string, args: string[]) => {
      if (args[0].toUpperCase() === 'HMGET' && args[1] === p.keys.panes(user, 'impression')) asked.push(args.slice(2));
    });
    p.clock.now = at + 350_000;
    expect((await p.producer.ingest([{ event_id: 'n-last', user_id: user, type: 'impression', ts: p.clock.now, ad_id: 'a', campaign_id: 'c' }])).ok).to.equal(
      true,
    );
    await p.consumer.drain();
    await new Promise((r) => setTimeout(r, 100));
    monitor.disconnect();
    // The first read (V, T, the dedup bucket), then the panes: views_5m moved by 60 s, over
    // which six seconds held events that left its range and one (the last write's) that
    // entered it: the fields of their minutes (the S form), each once; the new event's
    // minute holds none yet.
    expect(asked).to.have.length(2);
    expect(asked[1].filter((f) => /^s\d+$/.test(f))).to.deep.equal([]);
    const minutes = asked[1].filter((f) => /^S\d+$/.test(f));
    const left = Array.from({ length: 6 }, (_, i) => Math.floor((at + (i + 0) * 10_000) / 60_000));
    const entered = Math.floor((at + 29 * 10_000) / 60_000);
    expect([...minutes].sort()).to.deep.equal([...new Set([...left, entered])].map((m) => `S${m}`).sort());
    expect(asked[1]).to.not.include(`S${Math.floor(p.clock.now / 60_000)}`);
    expect((await p.reader.read(user))!.tags.views_5m).to.equal(inWindowOf(p.clock.now, at, 30, 10_000) + 1);
  });

  it('forgets a hash when V or T differ from what it wrote, when it may have expired, and past its bound', () => {
    const seen = new PanesSeen(2);
    const write = { version: '3', meta: 'T3', until: 10_000 };
    seen.wrote('a', write, undefined, 100, [101_000, 160_500], 90);
    const k = seen.known('a', '3', 'T3', 0)!;
    expect(k).to.deep.include({ floor: 100, seconds: [101, 160], minutes: [1, 2] });
    // Below the floor nothing is known; from it, only what the events made.
    expect([99, 100, 101, 102, 160, 161].map((i) => paneMayExist(k, 1000, i))).to.deep.equal([true, false, true, false, true, false]);
    expect([1, 2, 3].map((i) => paneMayExist(k, 60_000, i))).to.deep.equal([true, true, false]);
    expect(paneMayExist(k, 3_600_000, 0)).to.equal(true);
    // A later write keeps what was known from `keepFrom` on, and its floor rises to it.
    seen.wrote('z', write, k, -Infinity, [170_000], 150);
    expect(seen.known('z', '3', 'T3', 0)).to.deep.include({ floor: 150, seconds: [160, 170], minutes: [2] });
    expect(seen.known('a', '4', 'T3', 0)).to.equal(undefined);
    seen.wrote('a', write, undefined, 100, [], 90);
    expect(seen.known('a', '3', 'T4', 0)).to.equal(undefined);
    seen.wrote('a', write, undefined, 100, [], 90);
    expect(seen.known('a', '3', 'T3', 10_000)).to.equal(undefined);
    seen.wrote('a', write, undefined, 100, [], 90);
    seen.wrote('b', write, undefined, 100, [], 90);
    seen.wrote('c', write, undefined, 100, [], 90);
    expect(seen.size).to.equal(2);
    expect(seen.known('a', '3', 'T3', 0)).to.equal(undefined);
  });

  it('drops its oldest entries a 64th of its bound at once, and in a few µs a write at 100,000', () => {
    const seen = new PanesSeen(640);
    const write = { version: '1', meta: 'T', until: 1e15 };
    for (let i = 0; i < 650; i++) seen.wrote(`k${i}`, write, undefined, 0, [], 0);
    expect(seen.size).to.equal(650); // up to 640 + 10
    seen.wrote('k650', write, undefined, 0, [], 0);
    expect(seen.size).to.equal(640);
    expect(seen.known('k10', '1', 'T', 0)).to.equal(undefined);
    expect(seen.known('k11', '1', 'T', 0)).to.not.equal(undefined);
    expect(evictionBatch(100_000)).to.equal(1562);
    const m = new Map<number, number>([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    const dropped: number[] = [];
    dropOldest(m, 2, (v) => dropped.push(v));
    expect([[...m.keys()], dropped]).to.deep.equal([[3], [1, 2]]);
    // Past the bound every write evicts; one at a time through keys().next() this took
    // ~13 µs a write (the Map's holes walked again by each new iterator), 6.7 now.
    const big = new PanesSeen();
    for (let i = 0; i < 100_000; i++) big.wrote(`u${i}`, write, undefined, 0, [], 0);
    const t0 = process.hrtime.bigint();
    for (let i = 100_000; i < 150_000; i++) big.wrote(`u${i}`, write, undefined, 0, [], 0);
    const usPerWrite = Number(process.hrtime.bigint() - t0) / 1000 / 50_000;
    expect(big.size).to.be.within(100_000, 100_000 + evictionBatch(100_000));
    expect(usPerWrite).to.be.below(10);
  });

  it('keeps, after each write, the seconds from keepFrom on of what it knew and of the write, ascending, without repeats', () => {
    let seed = 11;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const seen = new PanesSeen();
    let model: number[] = [];
    let known: ReturnType<PanesSeen['known']>;
    for (let step = 0; step < 300; step++) {
      const keepFrom = 1000 + step * 3 + rand(5);
      const times = Array.from({ length: rand(6) }, () => (keepFrom - 20 + rand(80)) * 1000 + rand(1000));
      seen.wrote('k', { version: String(step), meta: 'T', until: 1e15 }, known, -Infinity, times, keepFrom);
      model = [...new Set([...model, ...times.map((t) => Math.floor(t / 1000))])].filter((s) => s >= keepFrom).sort((a, b) => a - b);
      known = seen.known('k', String(step), 'T', 0)!;
      expect(known.seconds, `step ${step}`).to.deep.equal(model);
      expect(known.minutes, `step ${step}`).to.deep.equal([...new Set(model.map((s) => Math.floor(s / 60)))]);
    }
  });
});

/** Events every `step` ms from `first` (n of them) inside views_5m's window at `now`. */
function inWindowOf(now: number, first: number, n: number, step: number): number {
  const [from] = windowRange({ windowMs: 300_000, resolutionMs: 1000 }, now);
  return Array.from({ length: n }, (_, i) => first + i * step).filter((t) => t >= from).length;
}
