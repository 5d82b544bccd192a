import { expect } from 'chai';
import fs from 'fs';
import { DEFAULT_TAGS_FILE, parseTagConfig, tagConfigVersion } from '../../src/core/tagConfig';
import { planTagChange } from '../../src/core/configChange';

const shipped = () =>
  JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as {
    realtime: Record<string, unknown>[];
    offline: { tags: unknown[]; segments: { id: string; when: { value: unknown }[] }[] };
    triggers?: unknown[];
  };

describe('tag config versions and change plans', () => {
  it('a version follows the content, not its formatting or key order', () => {
    const doc = shipped();
    const a = parseTagConfig(doc);
    const reverse = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverse)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverse(x)]),
            )
          : v;
    const reordered = reverse(doc);
    expect(JSON.stringify(reordered)).to.not.equal(JSON.stringify(doc));
    expect(tagConfigVersion(parseTagConfig(reordered))).to.equal(tagConfigVersion(a));
    expect(tagConfigVersion(a)).to.match(/^[0-9a-f]{12}$/);
    doc.realtime[0].window = '10m';
    expect(tagConfigVersion(parseTagConfig(doc))).to.not.equal(tagConfigVersion(a));
  });

  it('sorts each change into served at once, needs a backfill (and how far back), batch, trigger, or state to free', () => {
    const from = parseTagConfig(shipped());
    const doc = shipped();
    doc.realtime.push({ name: 'clicks_7d', event: 'click', aggregation: 'count', window: '7d' });
    doc.realtime.push({ name: 'clicks_1h', event: 'click', aggregation: 'count', window: '1h' });
    doc.realtime.push({ name: 'ads_clicked_24h', event: 'click', aggregation: 'count_by', field: 'ad_id', window: '24h' });
    doc.realtime.push({ name: 'spend_max_24h', event: 'purchase', aggregation: 'max', field: 'amount', window: '24h' });
    doc.realtime.push({ name: 'click_spend_1h', event: 'click', aggregation: 'sum', field: 'amount', window: '1h' });
    doc.realtime.push({ name: 'spend_sd_24h', event: 'purchase', aggregation: 'stddev', field: 'amount', window: '24h' });
    doc.realtime.push({ name: 'first_spend_1h', event: 'purchase', aggregation: 'first', field: 'amount', window: '1h' });
    doc.realtime.push({ name: 'last_ads_1h', event: 'click', aggregation: 'last_k', field: 'ad_id', k: 5, window: '1h' });
    doc.realtime = doc.realtime.filter((t) => t.name !== 'views_1h' && t.name !== 'distinct_ads_1h');
    doc.realtime.find((t) => t.name === 'views_5m')!.resolution = '1m';
    doc.realtime.find((t) => t.name === 'campaign_views_1h')!.top = 3;
    doc.offline.segments[0].when[0].value = 500;
    doc.triggers = [{ name: 'hot', when: [{ tag: 'clicks_1h', op: '>=', value: 10 }] }];
    const changes = planTagChange(from, parseTagConfig(doc));
    const by = (name: string) => changes.find((c) => c.name === name)!;
    expect(by('clicks_7d')).to.deep.include({ change: 'added', effect: 'backfill', backfillMs: 7 * 86_400_000 });
    expect(by('clicks_7d').detail).to.contain('click panes are kept for 1d, the window is 7d');
    expect(by('clicks_1h')).to.deep.include({ change: 'added', effect: 'instant' });
    expect(by('ads_clicked_24h')).to.deep.include({ effect: 'backfill', backfillMs: 86_400_000 });
    expect(by('ads_clicked_24h').detail).to.contain('counts per ad_id are not kept');
    expect(by('spend_max_24h')).to.deep.include({ effect: 'instant' }); // purchase panes keep sum/min/max/last of amount for 24h
    expect(by('click_spend_1h').detail).to.contain('sum, min, max and last of amount are not kept');
    // A spread tag needs the panes' sum of squared deviations, which purchase panes do not keep yet.
    expect(by('spend_sd_24h')).to.deep.include({ change: 'added', effect: 'backfill' });
    expect(by('spend_sd_24h').detail).to.contain('the spread of amount (sum of squared deviations) is not kept');
    expect(by('first_spend_1h').detail).to.contain('the first value of amount is not kept');
    expect(by('last_ads_1h').detail).to.contain('the 5 newest values of ad_id per pane are not kept');
    expect(by('views_5m')).to.deep.include({ change: 'changed', effect: 'instant' });
    expect(by('views_5m').detail).to.contain('resolution 1s → 1m');
    expect(by('campaign_views_1h')).to.deep.include({ change: 'changed', effect: 'instant' });
    expect(by('views_1h')).to.deep.include({ change: 'removed', effect: 'free' });
    // Impression panes were kept for 1h (views_1h, distinct_ads_1h, campaign_views_1h): still 1h; the distinct field's times stop being written.
    expect(by('high_value_user')).to.deep.include({ what: 'segment', change: 'changed', effect: 'batch' });
    expect(by('hot')).to.deep.include({ what: 'trigger', change: 'added', effect: 'trigger' });
    // Nothing else: the unchanged tags are not listed.
    expect(changes.map((c) => c.name).sort()).to.deep.equal(
      [
        'ads_clicked_24h',
        'campaign_views_1h',
        'click_spend_1h',
        'first_spend_1h',
        'clicks_1h',
        'clicks_7d',
        'high_value_user',
        'last_ads_1h',
        'hot',
        'spend_max_24h',
        'spend_sd_24h',
        'views_1h',
        'views_5m',
        'distinct_ads_1h',
        'impression',
      ].sort(),
    );
    // views_5m at 1 min and views_1h gone: no impression tag reads 1 s panes any more.
    expect(changes.find((c) => c.what === 'event type' && c.name === 'impression')).to.deep.include({ change: 'keeps less', effect: 'free' });
    expect(changes.find((c) => c.name === 'impression')!.detail).to.contain('1s count panes are no longer written');
  });

  it('a finer resolution is served at once when finer panes are kept, else needs a backfill; a removed event type frees its panes; a segment order change is a batch change', () => {
    const doc = shipped();
    doc.realtime.push({ name: 'clicks_30d', event: 'click', aggregation: 'count', window: '30d', resolution: '1h' });
    const from = parseTagConfig(doc);
    const next = shipped();
    next.realtime = next.realtime.filter((t) => t.event !== 'purchase');
    next.realtime.push({ name: 'clicks_30d', event: 'click', aggregation: 'count', window: '30d', resolution: '1m' });
    next.offline.segments = [next.offline.segments[1], next.offline.segments[0], ...next.offline.segments.slice(2)];
    const changes = planTagChange(from, parseTagConfig(next));
    // Click panes are kept for the type's longest window (30 days), at every level any click tag reads: clicks_24h's 1 min panes too.
    const c30 = changes.find((c) => c.name === 'clicks_30d')!;
    expect(c30).to.deep.include({ change: 'changed', effect: 'instant' });
    expect(changes.find((c) => c.what === 'event type' && c.name === 'purchase')).to.deep.include({ change: 'removed', effect: 'free' });
    // Click panes now keep less: the longest click window is 24 h.
    const shorter = shipped();
    const less = planTagChange(from, parseTagConfig(shorter)).find((c) => c.what === 'event type' && c.name === 'click')!;
    expect(less).to.deep.include({ change: 'keeps less', effect: 'free' });
    expect(less.detail).to.contain('panes older than 1d (kept 30d until now) are pruned');
    expect(changes.find((c) => c.what === 'segment' && c.change === 'changed')!.detail).to.contain(
      'order high_value_user > new_user > churn_risk > window_shopper > regular → new_user > high_value_user > churn_risk',
    );
    expect(planTagChange(from, from)).to.deep.equal([]);
    // Purchase tags are 24 h at 1 min: a 10-minute count at 1 s needs 1 s panes nobody kept.
    const finer = shipped();
    finer.realtime.push({ name: 'purchases_10m', event: 'purchase', aggregation: 'count', window: '10m' });
    const p10 = planTagChange(parseTagConfig(shipped()), parseTagConfig(finer));
    expect(p10).to.have.length(1);
    expect(p10[0]).to.deep.include({ name: 'purchases_10m', effect: 'backfill', backfillMs: 600_000 });
    expect(p10[0].detail).to.contain('no 1s panes are kept');
  });
});
