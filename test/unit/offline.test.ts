import { expect } from 'chai';
import { OfflineAggregator } from '../helpers/offlineReference';
import { sameWindowValue } from '../../src/batch/windows';
import { computeWindowTags } from '../helpers/windowReference';
import { ProfileEvent } from '../../src/core/event';
import { loadTagConfig, parseTagConfig } from '../../src/core/tagConfig';
import { ConfigError } from '../../src/core/errors';

const DAY = 86_400_000;
const AS_OF = Date.UTC(2026, 5, 1);
const e = (type: ProfileEvent['type'], daysAgo: number, extra: Partial<ProfileEvent> = {}): ProfileEvent => ({
  event_id: `e${Math.random()}`,
  user_id: 'u',
  type,
  ts: AS_OF - daysAgo * DAY,
  ...extra,
});

describe('offline tags and segments (no Redis)', () => {
  const cfg = loadTagConfig();

  it('ships the offline tags and segment rules of the issue', () => {
    expect(cfg.offline.map((t) => t.name)).to.deep.equal(['ltv_total', 'purchases_total', 'first_seen', 'last_seen', 'active_days_30d', 'impressions_30d']);
    expect(cfg.segments.map((s) => s.id)).to.deep.equal(['high_value_user', 'new_user', 'churn_risk', 'window_shopper', 'regular']);
  });

  it('folds events into exact values and ignores events after the as-of time', () => {
    const agg = new OfflineAggregator(cfg.offline, cfg.segments, AS_OF);
    const state = agg.newState();
    for (const ev of [e('purchase', 40, { amount: 0.1 }), e('purchase', 3, { amount: 0.2 }), e('impression', 3.5), e('click', 0)]) {
      expect(agg.add(state, ev)).to.equal(true);
    }
    expect(agg.add(state, e('purchase', -1, { amount: 1000 }))).to.equal(false);
    expect(agg.values(state)).to.deep.equal({
      ltv_total: 0.3,
      purchases_total: 2,
      first_seen: AS_OF - 40 * DAY,
      last_seen: AS_OF,
      active_days_30d: 3,
      impressions_30d: 1,
      segment_id: 'regular',
    });
  });

  const segmentOf = (events: ProfileEvent[]) => {
    const agg = new OfflineAggregator(cfg.offline, cfg.segments, AS_OF);
    const state = agg.newState();
    for (const ev of events) agg.add(state, ev);
    return agg.values(state).segment_id;
  };

  it('picks the first matching segment, with each boundary on the right side', () => {
    expect(segmentOf([e('purchase', 100, { amount: 400 })])).to.equal('high_value_user');
    expect(segmentOf([e('purchase', 100, { amount: 399.99 }), e('click', 1)])).to.equal('regular');
    expect(segmentOf([e('click', 7)])).to.equal('new_user');
    expect(segmentOf([e('click', 7 + 1 / 86_400_000)])).to.equal('regular');
    expect(segmentOf([e('click', 30)])).to.equal('regular');
    expect(segmentOf([e('click', 30 + 1 / 86_400_000)])).to.equal('churn_risk');
    expect(segmentOf(Array.from({ length: 50 }, () => e('impression', 10)))).to.equal('window_shopper');
    expect(segmentOf(Array.from({ length: 49 }, () => e('impression', 10)))).to.equal('regular');
    expect(segmentOf([...Array.from({ length: 50 }, () => e('impression', 10)), e('purchase', 20, { amount: 1 })])).to.equal('regular');
  });

  it('rejects bad offline config naming the entry', () => {
    const realtime = [{ name: 'v', event: 'click', aggregation: 'count', window: '5m' }];
    const bad = (offline: unknown, msg: string) => expect(() => parseTagConfig({ realtime, offline }, 'cfg')).to.throw(ConfigError, msg);
    bad(
      { tags: [{ name: 'x', aggregation: 'median' }] },
      'cfg: offline.tags[0] (x): "aggregation" must be one of count, sum, first_seen, last_seen, active_days',
    );
    bad({ tags: [{ name: 'v', aggregation: 'count' }] }, 'cfg: offline.tags[0] (v): name already used by another tag');
    bad({ tags: [{ name: 's', aggregation: 'sum' }] }, 'cfg: offline.tags[0] (s): sum needs "field": "amount"');
    bad(
      {
        tags: [{ name: 'n', aggregation: 'count' }],
        segments: [
          { id: 'a', when: [{ tag: 'nope', op: '>', value: 1 }] },
          { id: 'b', when: [] },
        ],
      },
      'cfg: offline.segments[0] (a): when[0]: "tag" must name an offline tag (n)',
    );
    bad(
      {
        tags: [{ name: 'n', aggregation: 'count' }],
        segments: [
          { id: 'a', when: [{ tag: 'n', op: 'within', value: '7d' }] },
          { id: 'b', when: [] },
        ],
      },
      'cfg: offline.segments[0] (a): when[0]: within needs a first_seen or last_seen tag',
    );
    bad(
      { tags: [{ name: 'n', aggregation: 'count' }], segments: [{ id: 'a', when: [{ tag: 'n', op: '>', value: 1 }] }] },
      'cfg: offline.segments: the last rule must have "when": [] so every user gets a segment',
    );
  });

  it('computes window tags like the Lua script, pane edges included', () => {
    const events = [
      { ...e('impression', 0), ts: AS_OF - 300_000, ad_id: 'a', campaign_id: 'c1' },
      { ...e('impression', 0), ts: AS_OF - 300_001, ad_id: 'b', campaign_id: 'c2' },
      { ...e('impression', 0), ts: AS_OF + 1, ad_id: 'c' },
      { ...e('purchase', 0), ts: AS_OF, amount: 0.1 },
      { ...e('purchase', 0), ts: AS_OF - 1, amount: 0.2 },
    ];
    // At AS_OF (a whole second): views_5m counts the 300 one-second panes ending with AS_OF's, so
    // ts >= AS_OF - 299 s: the events 5 min old are out, the one 1 ms ahead (same pane as AS_OF) is in.
    expect(computeWindowTags(events, cfg.realtime, AS_OF)).to.deep.equal({
      views_5m: 1,
      views_1h: 3,
      clicks_5m: 0,
      clicks_24h: 0,
      purchases_24h: 2,
      spend_24h: 0.30000000000000004,
      distinct_ads_1h: 3,
      campaign_views_1h: { c1: 1, c2: 1 },
    });
    // 999 ms later, the same panes: the same values.
    expect(computeWindowTags(events, cfg.realtime, AS_OF + 999).views_5m).to.equal(1);
    expect(sameWindowValue(0.30000000000000004, 0.3)).to.equal(true);
    expect(sameWindowValue({ a: 1 }, { a: 1, b: 0 })).to.equal(false);
  });
});
