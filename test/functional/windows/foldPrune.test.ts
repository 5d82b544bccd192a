import { expect } from 'chai';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';
import { prng } from '../../../src/dev/simulate';

const MIN = 60_000;
const TYPES = ['impression', 'click', 'purchase'] as const;

/**
 * A write that prunes (its oldest pane member PRUNE_SLACK_MS past the type's longest
 * window) goes in the consumer's transaction like any other: the same pane hash and time
 * index as updateWindows.lua leaves, field for field (T's entries in any order), after
 * every step of three users' traffic over three hours, with gaps that make prunes due.
 */
describe('a prune in the consumer fold leaves the state the script leaves (real Redis)', function () {
  this.timeout(120_000);
  let node: Pipeline;
  let script: Pipeline;
  before(async () => {
    node = await makePipeline({ now: T0, foldInConsumer: true });
    script = await makePipeline({ now: T0, foldInConsumer: false });
  });
  after(async () => {
    await node.close();
    await script.close();
  });

  // Decimals to 12 digits: the two folds print a float's last digits differently (%.17g
  // against JavaScript's shortest form), the same number either way.
  const decimals = (text: string) => text.replace(/-?\d+\.\d+(e[-+]?\d+)?/g, (x) => String(Number(Number(x).toPrecision(12))));
  // A value list ("value\x1fn\x1f..."): its pairs in one order (each fold writes a map's order).
  const pairsSorted = (text: string) => {
    if (!text.includes('\x1f')) return text;
    const parts = text.split('\x1f');
    const pairs = Array.from({ length: parts.length / 2 }, (_, i) => `${parts[2 * i]}\x1f${parts[2 * i + 1]}`);
    return pairs.sort().join('\x1f');
  };
  const state = async (p: Pipeline, user: string, type: (typeof TYPES)[number]) => {
    const panes = await p.redis.hgetall(p.keys.panes(user, type));
    for (const [f, v] of Object.entries(panes)) if (!f.startsWith('d')) panes[f] = decimals(pairsSorted(v));
    if (panes.T) panes.T = panes.T.split('\x1e').sort().join('\x1e');
    return { panes, index: await p.redis.zrange(p.keys.paneIndex(user, type), 0, -1, 'WITHSCORES') };
  };

  it('field for field after every step, and the fold did the pruning', async () => {
    const rnd = prng(7);
    let id = 0;
    let now = T0;
    const users = ['a', 'b', 'c'];
    let pruned = 0;
    for (let step = 0; step < 90; step++) {
      // Mostly a minute or two between steps, now and then a gap of 20-50 minutes.
      now += rnd() < 0.15 ? (20 + Math.floor(rnd() * 30)) * MIN : Math.floor(rnd() * 2 * MIN) + 1000;
      node.clock.now = script.clock.now = now;
      const events = users.flatMap((u) =>
        Array.from({ length: Math.floor(rnd() * 4) }, () => {
          const type = rnd() < 0.7 ? 'impression' : rnd() < 0.5 ? 'click' : 'purchase';
          return {
            event_id: `e${id++}`,
            user_id: u,
            type,
            ts: now - Math.floor(rnd() * 90_000),
            ad_id: `ad-${Math.floor(rnd() * 5)}`,
            campaign_id: `c-${Math.floor(rnd() * 3)}`,
            ...(type === 'purchase' ? { amount: Math.floor(rnd() * 10_000) / 100 } : {}),
          };
        }),
      );
      if (events.length === 0) continue;
      const before = node.consumer.foldCounts.leftToScript;
      const indexBefore = await node.redis.zcard(node.keys.paneIndex('a', 'impression'));
      await feed(node, events);
      await feed(script, events);
      expect(node.consumer.foldCounts.leftToScript, `step ${step}: nothing left to the script`).to.equal(before);
      if ((await node.redis.zcard(node.keys.paneIndex('a', 'impression'))) < indexBefore) pruned++;
      for (const u of users)
        for (const type of TYPES) {
          expect(await state(node, u, type), `step ${step}, ${u} ${type}`).to.deep.equal(await state(script, u, type));
        }
    }
    expect(pruned).to.be.greaterThan(3);
  });
});
