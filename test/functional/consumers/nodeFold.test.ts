import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { ProfileEvent } from '../../../src/core/event';
import { Scripts, runScript } from '../../../src/lua/scripts';
import { RealtimeConsumer } from '../../../src/consumers/realtime';
import type { DecodedEntry, StreamBatch } from '../../../src/consumers/groupConsumer';
import { Pipeline, T0, extraRealtimeConsumer, feed, makePipeline } from '../../helpers/context';
import { windowRange } from '../../../src/core/panes';
import { secondCounts, secondsOf } from '../../helpers/secondsForm';
import { WATCH_KEYS_PER_TRANSACTION, watchGroups } from '../../../src/consumers/nodeFold';
import type { UserWindowUpdate } from '../../../src/consumers/windowWriter';

const MIN = 60_000;

/**
 * A pane hash's fields, each as its parts by value: numbers may be written in another form
 * (JavaScript's shortest, Lua's %.17g), and totals and values in another order.
 */
const norm = (h: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(h).map(([k, v]) => [
      k,
      v
        .split(/[\x1e\x1f,]/)
        .map((x) => (x !== '' && !Number.isNaN(Number(x)) ? String(Number(x)) : x))
        .sort(),
    ]),
  );

/** Runs a consumer's batch handling directly, as if it had read `events` (ids made up). */
async function handle(c: RealtimeConsumer, stream: string, events: ProfileEvent[]): Promise<string[]> {
  const entries: DecodedEntry[] = events.map((event, i) => ({ id: `${T0}-${i}`, event }));
  const acks = await (c as unknown as { handle(b: StreamBatch[]): Promise<Map<string, string[]>> }).handle([{ stream, entries }]);
  return acks.get(stream) ?? [];
}

describe('the fold in the consumer (real Redis)', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await makePipeline({ partitions: 1 });
  });
  afterEach(() => p.close());

  const impression = (id: string, user: string, ts: number) => ({ event_id: id, user_id: user, type: 'impression', ts, ad_id: `ad-${id}`, campaign_id: 'c-1' });

  it('folds users in the consumer and writes the same state the script writes', async () => {
    const script = await makePipeline({ partitions: 1, foldInConsumer: false });
    try {
      const events = [
        { event_id: 'a', user_id: 'u1', type: 'impression', ts: T0 - 5000, ad_id: 'ad-1', campaign_id: 'c-1' },
        { event_id: 'b', user_id: 'u1', type: 'click', ts: T0 - 4000, ad_id: 'ad-1', campaign_id: 'c-1' },
        { event_id: 'c', user_id: 'u1', type: 'purchase', ts: T0 - 3000, amount: 12.5, currency: 'EUR' },
        { event_id: 'f', user_id: 'u2', type: 'impression', ts: T0 - 2000, ad_id: 'ad-1', campaign_id: 'c-1' },
      ];
      await feed(p, events);
      await feed(script, events);
      // A second batch moves the totals (a later second) and adds to existing panes.
      p.clock.now = script.clock.now = T0 + 65_000;
      const later = [
        { event_id: 'd', user_id: 'u1', type: 'impression', ts: T0 + 64_000, ad_id: 'ad-2', campaign_id: 'c-2' },
        { event_id: 'e', user_id: 'u1', type: 'purchase', ts: T0 + 64_500, amount: 0.1, currency: 'EUR' },
        { event_id: 'a', user_id: 'u1', type: 'impression', ts: T0 - 5000, ad_id: 'ad-1', campaign_id: 'c-1' }, // resent
        // u2 had impressions only: a click is a new type for a realtime hash that exists.
        { event_id: 'g', user_id: 'u2', type: 'click', ts: T0 + 64_600, ad_id: 'ad-2', campaign_id: 'c-2' },
      ];
      await feed(p, later);
      await feed(script, later);
      expect(p.consumer.foldCounts.folded).to.equal(4); // (users per batch)
      for (const type of ['impression', 'click', 'purchase'] as const) {
        const mine = await p.redis.hgetall(p.keys.panes('u1', type));
        const theirs = await script.redis.hgetall(script.keys.panes('u1', type));
        expect(norm(mine), type).to.deep.equal(norm(theirs));
        expect(await p.redis.zrange(p.keys.paneIndex('u1', type), 0, -1, 'WITHSCORES')).to.deep.equal(
          await script.redis.zrange(script.keys.paneIndex('u1', type), 0, -1, 'WITHSCORES'),
        );
      }
      // The same expiries (keyExpiry: both clocks are the injected one; PEXPIRE is relative,
      // so only the real time between the two writes and these reads differs).
      const ttls = async (q: Pipeline, user: string) =>
        Promise.all([
          q.redis.pttl(q.keys.realtime(user)),
          ...(['impression', 'click', 'purchase'] as const).flatMap((t) => [q.redis.pttl(q.keys.panes(user, t)), q.redis.pttl(q.keys.paneIndex(user, t))]),
        ]);
      for (const user of ['u1', 'u2']) {
        const [mine, theirs] = [await ttls(p, user), await ttls(script, user)];
        mine.forEach((ms, i) => expect(ms, `${user} key ${i}`).to.be.closeTo(theirs[i], 3000));
        expect(mine[0], `${user}: rt has an expiry`).to.be.greaterThan(0);
        expect(mine[0], `${user}: rt outlives every pane key`).to.be.at.least(Math.max(...mine.slice(1)));
      }
      expect(await p.redis.hgetall(p.keys.realtime('u1'))).to.deep.equal(await script.redis.hgetall(script.keys.realtime('u1')));
      expect((await p.reader.read('u1'))!.tags).to.deep.equal((await script.reader.read('u1'))!.tags);
    } finally {
      await script.close();
    }
  });

  it('two consumers folding the same events at once count each event once: the second write finds V moved and goes to the script', async () => {
    await feed(p, [impression('first', 'u1', T0 - 1000)]);
    const a = extraRealtimeConsumer(p, 'rt-a');
    const b = extraRealtimeConsumer(p, 'rt-b');
    const stream = p.keys.stream(0);
    const batch = Array.from({ length: 5 }, (_, i) => impression(`e${i}`, 'u1', T0 - 900 + i) as ProfileEvent);
    await Promise.all([handle(a, stream, batch), handle(b, stream, batch)]);
    const counts = [a.foldCounts, b.foldCounts];
    expect(counts.map((c) => c.folded + c.leftToScript)).to.deep.equal([1, 1]);
    expect(counts.reduce((n, c) => n + c.leftToScript, 0)).to.equal(1);
    expect((await p.reader.read('u1'))!.tags.views_5m).to.equal(6);
  });

  it('a user erased while the fold writes: the re-check that rides after its writes deletes what the batch recreated', async () => {
    await feed(p, [impression('e0', 'u9', T0 - 2000), impression('k0', 'u8', T0 - 2000)]);
    const c = extraRealtimeConsumer(p, 'rt-e');
    const fold = (c as unknown as { nodeFold: { secondRead: (...a: unknown[]) => Promise<unknown> } }).nodeFold;
    const secondRead = fold.secondRead.bind(fold);
    // An erasure recorded after the batch's own erasure check and before the fold writes
    // (its keys not deleted yet: the fold's write check passes, so only the re-check catches it).
    fold.secondRead = async (...a: unknown[]) => {
      await p.redis.zadd(p.keys.erasures(), T0, 'u9');
      return secondRead(...a);
    };
    const acked = await handle(c, p.keys.stream(0), [impression('e1', 'u9', T0 - 1000), impression('k1', 'u8', T0 - 1000)] as ProfileEvent[]);
    expect(acked).to.have.length(2);
    expect(c.foldCounts).to.include({ folded: 2, leftToScript: 0 });
    expect(await p.redis.exists(...p.keys.userKeys('u9'))).to.equal(0);
    expect((await p.reader.read('u8'))!.tags.views_5m).to.equal(2);
  });

  it('folds a batch with more pane keys than one WATCH takes in groups, one transaction each; the erasure re-check rides after the last', async () => {
    // 200 users with an impression, half of them a click too: 300 pane keys.
    const events: ProfileEvent[] = [];
    for (let i = 0; i < 200; i++) {
      events.push(impression(`i${i}`, `w${i}`, T0 - 2000) as ProfileEvent);
      if (i % 2 === 0) events.push({ event_id: `c${i}`, user_id: `w${i}`, type: 'click', ts: T0 - 1500 } as ProfileEvent);
    }
    const shape = Array.from({ length: 200 }, (_, i) => ({ userId: `w${i}`, events: i % 2 === 0 ? { impression: [], click: [] } : { impression: [] } }));
    const expected = watchGroups(shape, WATCH_KEYS_PER_TRANSACTION).length;
    expect(expected).to.be.at.least(3);
    const c = extraRealtimeConsumer(p, 'rt-g');
    const fold = (c as unknown as { nodeFold: { secondRead: (...a: unknown[]) => Promise<unknown> } }).nodeFold;
    const secondRead = fold.secondRead.bind(fold);
    let groups = 0;
    fold.secondRead = async (...a: unknown[]) => {
      // Before the last group writes, a user of the first group is erased: its keys are
      // written already, so only the re-check after every group's writes deletes them.
      if (++groups === expected) await p.redis.zadd(p.keys.erasures(), T0, 'w0');
      return secondRead(...a);
    };
    await p.redis.config('RESETSTAT');
    const acked = await handle(c, p.keys.stream(0), events);
    expect(acked).to.have.length(events.length);
    expect(groups).to.equal(expected);
    const watch = (await p.redis.info('commandstats')).match(/cmdstat_watch:calls=(\d+)/);
    expect(Number(watch![1])).to.equal(groups);
    expect(c.foldCounts).to.include({ folded: 200, leftToScript: 0 });
    expect(await p.redis.exists(...p.keys.userKeys('w0'))).to.equal(0);
    for (const user of ['w1', 'w2', 'w198', 'w199']) {
      const tags = (await p.reader.read(user))!.tags;
      expect([tags.views_5m, tags.clicks_5m], user).to.deep.equal([1, Number(user.slice(1)) % 2 === 0 ? 1 : 0]);
    }
  });

  it('groups users by pane keys without splitting a user', () => {
    const u = (id: string, types: string[]) => ({ userId: id, events: Object.fromEntries(types.map((t) => [t, []])) }) as unknown as UserWindowUpdate;
    const users = [u('a', ['impression', 'click']), u('b', ['impression']), u('c', ['impression', 'click', 'purchase']), u('d', ['click'])];
    expect(watchGroups(users, 3).map((g) => g.map((x) => x.userId))).to.deep.equal([['a', 'b'], ['c'], ['d']]);
    expect(watchGroups(users, 2).map((g) => g.map((x) => x.userId))).to.deep.equal([['a'], ['b'], ['c'], ['d']]);
    expect(watchGroups(users, 100)).to.have.length(1);
    expect(watchGroups([], 3)).to.deep.equal([]);
  });

  it('writes nothing in its transaction when the connection that sent the WATCH dropped before it: the users go to the script', async () => {
    await feed(p, [impression('w0', 'u3', T0 - 2000)]);
    const c = extraRealtimeConsumer(p, 'rt-w');
    type Conn = { close(): void; closed: Promise<void> };
    const fold = (c as unknown as { nodeFold: { secondRead: (...a: unknown[]) => Promise<unknown>; tx: { get(): Promise<Conn> } } }).nodeFold;
    const secondRead = fold.secondRead.bind(fold);
    let dropped = false;
    fold.secondRead = async (...a: unknown[]) => {
      if (!dropped) {
        // The connection that sent the WATCH goes (and its WATCHes with it); the write then
        // has to open another one.
        dropped = true;
        const conn = await fold.tx.get();
        conn.close();
        await conn.closed;
      }
      return secondRead(...a);
    };
    const acked = await handle(c, p.keys.stream(0), [impression('w1', 'u3', T0 - 1000), impression('w1', 'u3', T0 - 1000)] as ProfileEvent[]);
    expect(acked).to.have.length(2);
    expect(c.foldCounts).to.include({ folded: 0, leftToScript: 1 });
    expect((await p.reader.read('u3'))!.tags.views_5m).to.equal(2);
    // The next batch opens another connection and folds in the consumer again.
    await handle(c, p.keys.stream(0), [impression('w2', 'u3', T0 - 500), impression('w1', 'u3', T0 - 1000)] as ProfileEvent[]);
    expect(c.foldCounts).to.include({ folded: 1, leftToScript: 1 });
    expect((await p.reader.read('u3'))!.tags.views_5m).to.equal(3);
    await c.stop();
  });

  it('applyFolds writes nothing for a user whose V moved, or whose new type already has keys', async () => {
    await feed(p, [impression('x', 'u1', T0 - 1000)]);
    const panes = p.keys.panes('u1', 'impression');
    const before = await p.redis.hgetall(panes);
    const user = (version: string) => ({
      realtimeKey: p.keys.realtime('u1'),
      newestBefore: null,
      types: [
        {
          panesKey: panes,
          indexKey: p.keys.paneIndex('u1', 'impression'),
          legacyKey: p.keys.legacyWindow('u1', 'impression'),
          version,
          name: 'impression',
          newest: T0,
          writes: ['T', 'garbage', 'V', '99'],
          drops: [],
          members: [],
          expireInMs: MIN,
        },
      ],
    });
    expect(await runScript(p.redis, Scripts.applyFolds([user('0'), user('')], T0, 24 * 3_600_000))).to.deep.equal([1, 2]);
    expect(await p.redis.hgetall(panes)).to.deep.equal(before);
    expect(await runScript(p.redis, Scripts.applyFolds([user(before.V)], T0, 24 * 3_600_000))).to.deep.equal([]);
    expect(await p.redis.hget(panes, 'V')).to.equal('99');
  });

  it('prunes one-second panes read over less than the longest window on their own (clicks_5m beside clicks_24h), as the script does', async () => {
    const script = await makePipeline({ partitions: 1, foldInConsumer: false });
    try {
      const t0 = p.clock.now;
      const clicks: number[] = [];
      const click = (i: number, ts: number) => ({ event_id: `k${i}`, user_id: 'u5', type: 'click', ts, ad_id: 'ad-1', campaign_id: 'c-1' });
      // What the fold's prunes of seconds delete: the field of each minute that holds some
      // (the S form), not the 60 seconds of every minute.
      const monitor = await (p.redis as Redis).monitor();
      const named: string[] = [];
      monitor.on('monitor', (_t: string, args: string[]) => {
        if (args[0].toUpperCase() === 'HDEL' && args[1] === p.keys.panes('u5', 'click')) named.push(...args.slice(2).filter((f) => /^[sS]\d+$/.test(f)));
      });
      // A click every 50 s for 50 minutes; at 30 minutes, one 12 minutes late (its second is
      // past every seconds window as it lands: the next prune of seconds takes it).
      for (let i = 0; i < 60; i++) {
        p.clock.now = script.clock.now = t0 + i * 50_000;
        const batch = [click(i, p.clock.now - 500)];
        if (i === 36) batch.push(click(1000, p.clock.now - 12 * MIN));
        for (const e of batch) clicks.push(e.ts);
        await feed(p, batch);
        await feed(script, batch);
      }
      expect(p.consumer.foldCounts.leftToScript).to.equal(0);
      await new Promise((r) => setTimeout(r, 100));
      monitor.disconnect();
      expect(named.length).to.be.within(20, clicks.length);
      expect(named.filter((f) => f[0] === 's')).to.deep.equal([]);
      const mine = await p.redis.hgetall(p.keys.panes('u5', 'click'));
      expect(norm(mine)).to.deep.equal(norm(await script.redis.hgetall(script.keys.panes('u5', 'click'))));
      expect(await p.redis.zrange(p.keys.paneIndex('u5', 'click'), 0, -1)).to.deep.equal(
        await script.redis.zrange(script.keys.paneIndex('u5', 'click'), 0, -1),
      );
      // T keeps the lowest minute that may hold seconds; no second older than the seconds
      // tags' window, a minute, and the 10 minutes of slack is left (of 50 minutes' clicks);
      // the minute panes clicks_24h reads all are.
      const now = p.clock.now;
      expect(mine.T).to.match(/^\d+,\d+,\d+S\x1e/);
      const seconds = [...secondsOf(mine).keys()];
      for (const s of seconds) expect(s * 1000, `s${s}`).to.be.at.least(now - 301_000 - 12 * MIN);
      expect(seconds.length).to.be.within(6, 20);
      for (const t of clicks) expect(mine[`m${Math.floor(t / MIN)}`], `minute of ${t - t0}`).to.not.equal(undefined);
      // Every read from now on counts what the pane rule says, by the fold's state and by the script's.
      const count = (name: string, at: number) => {
        const tag = p.config.tags.realtime.find((t) => t.name === name)!;
        const [from, to] = windowRange(tag, at);
        return clicks.filter((t) => t >= from && t < to && t <= at).length;
      };
      for (const dt of [0, 1000, 30_000, 170_000, 299_000, 400_000]) {
        p.clock.now = script.clock.now = now + dt;
        for (const q of [p, script]) {
          const tags = (await q.reader.read('u5'))!.tags;
          expect(tags.clicks_5m, `clicks_5m +${dt}`).to.equal(count('clicks_5m', now + dt));
          expect(tags.clicks_24h, `clicks_24h +${dt}`).to.equal(count('clicks_24h', now + dt));
        }
      }
    } finally {
      await script.close();
    }
  });

  it('a prune deletes the seconds of the minutes it prunes, whoever wrote them', async () => {
    const t0 = p.clock.now;
    // The fold writes u4's first event, then the script its second (V removed, as if a
    // version before V had written the hash: the fold leaves that visit to the script)...
    await feed(p, [impression('w-a', 'u4', t0 - 30_000)]);
    await p.redis.hdel(p.keys.panes('u4', 'impression'), 'V');
    p.clock.now = t0 + 2000;
    await feed(p, [impression('w-b', 'u4', t0 + 2000)]);
    expect(p.consumer.foldCounts.leftToScript).to.equal(1);
    // ...then the fold, every 5 minutes: it knows the seconds of its own events, from after the newest it found.
    const seconds = [t0 - 30_000, t0 + 2000];
    for (let m = 5; m <= 75; m += 5) {
      p.clock.now = t0 + m * MIN;
      seconds.push(p.clock.now - 1000);
      await feed(p, [impression(`w${m}`, 'u4', p.clock.now - 1000)]);
    }
    expect(p.consumer.foldCounts.leftToScript).to.equal(1);
    // Pruned (10 minutes past the 1 h window): the minutes of the script's events and of the
    // fold's first two; the fold knew the seconds of its own, not of the script's.
    const kept = await secondCounts(p.redis as Redis, p.keys.panes('u4', 'impression'));
    // (The prune at 70 minutes: minutes up to t0 + 9, a minute before the window's start.)
    const pruned = seconds.slice(0, 4);
    for (const t of seconds) expect(kept.has(Math.floor(t / 1000)), `second ${(t - t0) / 1000}`).to.equal(!pruned.includes(t));
    expect((await p.reader.read('u4'))!.tags.views_1h).to.equal(seconds.length - pruned.length - 1); // (the oldest kept is 70 min old)
  });

  it('leaves to the script what it does not take: a distinct value ahead of now, state from before V; prunes itself', async () => {
    await feed(p, [impression('old', 'u1', T0 - 59 * MIN)]);
    p.clock.now = T0 + 15 * MIN; // the 'old' minute is PRUNE_SLACK_MS (10 min) past the type's longest window (1 h)
    await feed(p, [impression('new', 'u1', T0 + 4 * MIN)]);
    // The fold pruned it (in its transaction): the old minute's panes and index member are gone.
    expect(p.consumer.foldCounts).to.include({ folded: 2, leftToScript: 0 });
    expect(await p.redis.zrange(p.keys.paneIndex('u1', 'impression'), 0, -1)).to.not.include(`m${(T0 - 59 * MIN) / MIN}`);
    expect((await secondCounts(p.redis as Redis, p.keys.panes('u1', 'impression'))).has((T0 - 59 * MIN) / 1000)).to.equal(false);
    await feed(p, [impression('ahead', 'u2', p.clock.now + 2000)]);
    expect(p.consumer.foldCounts.leftToScript).to.equal(1);
    await feed(p, [impression('u3a', 'u3', p.clock.now)]);
    await p.redis.hdel(p.keys.panes('u3', 'impression'), 'V'); // as a version before V wrote it
    await feed(p, [impression('u3b', 'u3', p.clock.now)]);
    expect(p.consumer.foldCounts).to.include({ folded: 3, leftToScript: 2 });
    expect(await p.redis.hget(p.keys.panes('u3', 'impression'), 'V')).to.equal('1'); // the script gives it V
    expect((await p.reader.read('u3'))!.tags.views_5m).to.equal(2);
    expect((await p.reader.read('u1'))!.tags.views_1h).to.equal(1);
  });
});
