import { expect } from 'chai';
import fs from 'fs';
import { DEFAULT_TAGS_FILE } from '../../../src/core/tagConfig';
import { prng } from '../../../src/dev/simulate';
import { EVERY_KIND_TAGS } from '../../helpers/windowReference';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';
import { sameWindowValue } from '../../../src/batch/windows';

const SECOND = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The fold in the consumer against the fold in Redis (updateWindows.lua), on the same
 * events: batches spread from seconds to a day back (events in completed panes, resends),
 * the clock moving from seconds to hours between them; every tag of every user must read
 * the same after each step.
 */
describe('the consumer fold and the script fold give the same profiles', function () {
  this.timeout(120_000);
  let node: Pipeline;
  let script: Pipeline;
  let spread: string[] = [];
  before(async () => {
    const shipped = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: unknown[] };
    const tags = [...shipped.realtime, ...EVERY_KIND_TAGS];
    spread = (EVERY_KIND_TAGS as { name: string; aggregation: string }[])
      .filter((t) => t.aggregation === 'variance' || t.aggregation === 'stddev')
      .map((t) => t.name);
    node = await makePipeline({ tags, now: T0, foldInConsumer: true });
    script = await makePipeline({ tags, now: T0, foldInConsumer: false });
  });
  after(async () => {
    await node.close();
    await script.close();
  });

  it('every tag, after every step', async () => {
    const rnd = prng(20261206);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const users = ['a', 'b', 'c', 'd'];
    let seq = 0;
    const resend: Record<string, unknown>[] = [];
    for (const advance of [
      0,
      20 * SECOND,
      90 * SECOND,
      7 * MIN,
      30 * MIN,
      2 * HOUR,
      1500,
      5 * HOUR,
      40 * SECOND,
      20 * HOUR,
      3 * MIN,
      3 * DAY,
      9 * DAY,
      2 * HOUR,
      33 * DAY,
      HOUR,
    ]) {
      node.clock.now += advance;
      script.clock.now = node.clock.now;
      const now = node.clock.now;
      const events: Record<string, unknown>[] = [];
      for (let i = 0; i < 120; i++) {
        const type = pick(['impression', 'impression', 'impression', 'click', 'purchase'] as const);
        const e: Record<string, unknown> = {
          event_id: `ev-${++seq}`,
          user_id: pick(users),
          type,
          ts: now - 2 * SECOND - Math.floor(rnd() * pick([10 * SECOND, 5 * MIN, 2 * HOUR, 26 * HOUR])),
          ad_id: pick(['a1', 'a2', 'a3', 'a4']),
          campaign_id: pick(['c1', 'c2', 'c3']),
        };
        if (type === 'purchase' || rnd() < 0.1) e.amount = Math.round(rnd() * 20000) / 100;
        events.push(e);
        if (rnd() < 0.05) resend.push(e);
      }
      const batch = [...events, ...resend.splice(0)];
      // The same batch in several consumer batches, as a real consumer reads them.
      for (let i = 0; i < batch.length; i += 37) {
        await feed(node, batch.slice(i, i + 37));
        await feed(script, batch.slice(i, i + 37));
      }
      for (const later of [0, 1234, 61_000]) {
        node.clock.now += later;
        script.clock.now = node.clock.now;
        const [mine, theirs] = [await node.reader.readMany(users), await script.reader.readMany(users)];
        users.forEach((u, i) => {
          // variance and stddev read from a running total "n,s,q" (q / n - mean²) or from merged
          // panes, depending on the state each fold left: equal to ~1e-12, not to the last digit.
          const [a, b] = [{ ...mine[i]?.tags }, { ...theirs[i]?.tags }];
          for (const t of spread) {
            expect(sameWindowValue(a[t] as number | null, b[t] as number | null, 1e-12), `${u} at ${node.clock.now - T0}: ${t} ${a[t]} ${b[t]}`).to.equal(true);
            delete a[t];
            delete b[t];
          }
          expect(a, `${u} at ${node.clock.now - T0}`).to.deep.equal(b);
        });
      }
    }
    expect(node.consumer.foldCounts.folded).to.be.greaterThan(10);
  });
});
