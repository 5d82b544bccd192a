import { expect } from 'chai';
import { ConfigError } from '../../src/core/errors';
import { partitionFor } from '../../src/core/keys';
import { parseTagConfig } from '../../src/core/tags';
import { runScript } from '../../src/lua/scripts';
import { WindowWriter } from '../../src/consumers/windowWriter';
import { masters, nodeFor } from '../../src/redis/client';
import { Pipeline, feed, makePipeline } from '../helpers/context';

const MIN = 60_000;
const TRIGGERS = [
  { name: 'hot_clicker', when: [{ tag: 'clicks_5m', op: '>=', value: 3 }] },
  { name: 'big_spender_today', when: [{ tag: 'spend_24h', op: '>=', value: 500 }] },
  { name: 'valuable_clicker', when: [{ tag: 'clicks_5m', op: '>=', value: 1 }, { tag: 'ltv_total', op: '>', value: 100 }] },
];

/** Every firing in the pipeline's trigger streams, oldest first per partition, as objects. */
async function firings(p: Pipeline): Promise<Record<string, string>[]> {
  const out: Record<string, string>[] = [];
  for (let i = 0; i < p.config.partitions; i++) {
    for (const [, fields] of await p.redis.xrange(p.keys.triggerStream(i), '-', '+')) {
      const f: Record<string, string> = {};
      for (let j = 0; j < fields.length; j += 2) f[fields[j]] = fields[j + 1];
      out.push(f);
    }
  }
  return out;
}

describe('triggers: edge-triggered firings into trig:{pN} (real Redis)', () => {
  for (const cluster of [false, true]) {
    describe(cluster ? 'on a cluster' : 'on one server', () => {
      let p: Pipeline;
      beforeEach(async () => {
        p = await makePipeline({ triggers: TRIGGERS, partitions: 3, cluster });
      });
      afterEach(() => p.close());
      const click = (user: string, n: number, id = 'c') =>
        Array.from({ length: n }, (_, i) => ({ event_id: `${id}${i}-${p.clock.now}`, user_id: user, type: 'click', ts: p.clock.now - i, ad_id: 'a1' }));

      it('fires once when an event makes the condition true, not while it stays true, and again after it was false (re-armed)', async () => {
        const users = cluster ? Array.from({ length: 12 }, (_, i) => `tr-${i}`) : ['tr-1'];
        for (const u of users) await feed(p, click(u, 2));
        expect(await firings(p)).to.deep.equal([]);
        for (const u of users) await feed(p, click(u, 1, 'd'));
        let all = await firings(p);
        expect(all.map((f) => f.user_id).sort()).to.deep.equal([...users].sort());
        expect(all[0]).to.include({ trigger: 'hot_clicker', clicks_5m: '3', at: String(p.clock.now) });
        expect(all[0].event_id).to.match(/^d0-/);
        // Each firing in its user's partition.
        for (let i = 0; i < 3; i++) {
          for (const [, f] of await p.redis.xrange(p.keys.triggerStream(i), '-', '+')) expect(partitionFor(f[f.indexOf('user_id') + 1], 3)).to.equal(i);
        }
        // On a cluster the users live on every master.
        expect(new Set(users.map((u) => nodeFor(p.redis, p.keys.realtime(u)))).size).to.equal(masters(p.redis).length);
        await feed(p, click(users[0], 2, 'e')); // still true: no second firing
        expect((await firings(p)).length).to.equal(users.length);
        p.clock.advance(6 * MIN); // the window slides: false, re-armed lazily at the next event
        await feed(p, click(users[0], 1, 'f'));
        expect((await firings(p)).length).to.equal(users.length);
        await feed(p, click(users[0], 2, 'g'));
        all = await firings(p);
        expect(all.length).to.equal(users.length + 1);
        expect(all.filter((f) => f.user_id === users[0]).map((f) => f.clicks_5m)).to.deep.equal(['3', '3']);
        expect(await p.redis.llen(p.keys.triggerOutbox(users[0]))).to.equal(0);
      });

      it('appends a firing exactly once when the consumer dies between the window script and the append', async () => {
        // The window script ran (the firing is decided and in the outbox), then the process died before appending.
        const writer = new WindowWriter(p.keys, p.config.tags.realtime, p.config.tags.triggers, p.config.tags.offline);
        const events = click('crash-1', 3);
        const args = events.flatMap((e) => WindowWriter.eventArgs({ ...e, type: 'click' }));
        const reply = await runScript(p.redis, writer.update('crash-1', 'click', p.clock.now, args, events[2].event_id));
        expect((reply as [number, string[]])[1]).to.have.length(1);
        expect(await firings(p)).to.deep.equal([]);
        // The same entries, redelivered: the windows count nothing twice and the outbox is appended once.
        await feed(p, events);
        await feed(p, events);
        const all = await firings(p);
        expect(all.map((f) => [f.user_id, f.trigger, f.clicks_5m])).to.deep.equal([['crash-1', 'hot_clicker', '3']]);
        expect((await p.reader.read('crash-1'))!.tags.clicks_5m).to.equal(3);
        // And if it died after the append but before the outbox was trimmed: the dedup set keeps it once.
        await p.redis.rpush(p.keys.triggerOutbox('crash-1'), ...(reply as [number, string[]])[1]);
        await feed(p, click('crash-1', 1, 'late'));
        expect((await firings(p)).length).to.equal(1);
      });

      it('reads offline tags in conditions, and the values of every tag of the condition', async () => {
        await p.redis.hset(p.keys.offline('rich'), 'ltv_total', '250.5');
        await feed(p, [...click('rich', 1), ...click('poor', 1)]);
        await feed(p, [{ event_id: 'buy-1', user_id: 'rich', type: 'purchase', ts: p.clock.now, amount: 600 }]);
        const got = (await firings(p)).map((f) => { const { at: _a, event_id: _e, ...rest } = f; return rest; });
        expect(got).to.have.deep.members([
          { trigger: 'valuable_clicker', user_id: 'rich', clicks_5m: '1', ltv_total: '250.5' },
          { trigger: 'big_spender_today', user_id: 'rich', spend_24h: '600' },
        ]);
      });
    });
  }

  it('refuses a config naming an unknown tag, a count_by tag, or an unknown operator (exit 2)', () => {
    const base = { realtime: [{ name: 'clicks_5m', event: 'click', aggregation: 'count', window: '5m' }, { name: 'camps', event: 'click', aggregation: 'count_by', field: 'campaign_id', window: '1h' }] };
    const bad: [unknown, RegExp][] = [
      [[{ name: 't', when: [{ tag: 'nope', op: '>=', value: 1 }] }], /triggers\[0\] \(t\): when\[0\]: "tag" must name a realtime tag other than count_by, or an offline tag \(clicks_5m\)/],
      [[{ name: 't', when: [{ tag: 'camps', op: '>=', value: 1 }] }], /"tag" must name a realtime tag other than count_by/],
      [[{ name: 't', when: [{ tag: 'clicks_5m', op: '!=', value: 1 }] }], /"op" must be one of >=, >, <=, <, ==/],
      [[{ name: 't', when: [] }], /"when" must be a non-empty array/],
      [[{ name: 't', when: [{ tag: 'clicks_5m', op: '>', value: 1 }] }, { name: 't', when: [{ tag: 'clicks_5m', op: '>', value: 2 }] }], /duplicate trigger name/],
      [{ name: 't' }, /"triggers" must be an array/],
    ];
    for (const [triggers, message] of bad) {
      expect(() => parseTagConfig({ ...base, triggers })).to.throw(ConfigError, message);
    }
    expect(parseTagConfig({ ...base, triggers: [{ name: 'ok', when: [{ tag: 'clicks_5m', op: '==', value: 2 }] }] }).triggers).to.have.length(1);
  });
});
