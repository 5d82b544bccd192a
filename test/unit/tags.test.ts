import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { longestWindow, longestWindowFor } from '../../src/core/tags';
import { loadTagConfig, parseTagConfig } from '../../src/core/tagConfig';
import { ConfigError } from '../../src/core/errors';
import { parseDuration } from '../../src/core/duration';

describe('tag config', () => {
  it('ships the eight default realtime tags', () => {
    const cfg = loadTagConfig();
    expect(cfg.realtime).to.deep.equal([
      { name: 'views_5m', event: 'impression', aggregation: 'count', windowMs: 300_000, resolutionMs: 1_000 },
      { name: 'views_1h', event: 'impression', aggregation: 'count', windowMs: 3_600_000, resolutionMs: 1_000 },
      { name: 'clicks_5m', event: 'click', aggregation: 'count', windowMs: 300_000, resolutionMs: 1_000 },
      { name: 'clicks_24h', event: 'click', aggregation: 'count', windowMs: 86_400_000, resolutionMs: 60_000 },
      { name: 'purchases_24h', event: 'purchase', aggregation: 'count', windowMs: 86_400_000, resolutionMs: 60_000 },
      { name: 'spend_24h', event: 'purchase', aggregation: 'sum', field: 'amount', windowMs: 86_400_000, resolutionMs: 60_000 },
      { name: 'distinct_ads_1h', event: 'impression', aggregation: 'distinct', field: 'ad_id', windowMs: 3_600_000, resolutionMs: 60_000 },
      { name: 'campaign_views_1h', event: 'impression', aggregation: 'count_by', field: 'campaign_id', windowMs: 3_600_000, resolutionMs: 60_000 },
    ]);
    expect(longestWindowFor(cfg.realtime, 'impression')).to.equal(3_600_000);
    expect(longestWindowFor(cfg.realtime, 'click')).to.equal(86_400_000);
    expect(longestWindow(cfg.realtime)).to.equal(86_400_000);
  });

  it('ships an extended config: the defaults and a percentile, a stddev, a last_k and an approx_distinct', () => {
    const shipped = loadTagConfig();
    const cfg = loadTagConfig(path.join(__dirname, '..', '..', '..', 'config', 'tags.extended.json'));
    expect(cfg.realtime.slice(0, shipped.realtime.length)).to.deep.equal(shipped.realtime);
    expect(cfg.realtime.slice(shipped.realtime.length)).to.deep.equal([
      {
        name: 'purchase_amount_p90_30d',
        event: 'purchase',
        aggregation: 'percentile',
        field: 'amount',
        p: [50, 90],
        windowMs: 30 * 86_400_000,
        resolutionMs: 60_000,
      },
      { name: 'spend_stddev_7d', event: 'purchase', aggregation: 'stddev', field: 'amount', windowMs: 7 * 86_400_000, resolutionMs: 60_000 },
      { name: 'last_10_ads_1h', event: 'impression', aggregation: 'last_k', field: 'ad_id', k: 10, windowMs: 3_600_000, resolutionMs: 60_000 },
      {
        name: 'approx_distinct_ads_24h',
        event: 'impression',
        aggregation: 'approx_distinct',
        field: 'ad_id',
        k: 1024,
        windowMs: 86_400_000,
        resolutionMs: 3_600_000,
      },
    ]);
    expect(cfg.offline).to.deep.equal(shipped.offline);
  });

  it('parses durations', () => {
    expect(parseDuration('250ms')).to.equal(250);
    expect(parseDuration('30s')).to.equal(30_000);
    expect(parseDuration('5m')).to.equal(300_000);
    expect(parseDuration('24h')).to.equal(86_400_000);
    expect(parseDuration('7d')).to.equal(604_800_000);
    expect(parseDuration(1500)).to.equal(1500);
    for (const bad of ['5', '5 min', '-5m', '0s', 0, 1.5, null]) expect(parseDuration(bad), String(bad)).to.equal(undefined);
  });

  const cases: [string, unknown, string][] = [
    ['not an object', [], 'cfg: must be a JSON object with a "realtime" array'],
    ['empty realtime', { realtime: [] }, 'cfg: "realtime" must be a non-empty array of tag definitions'],
    ['unknown top key', { realtime: [], extra: 1 }, 'cfg: unknown top-level key "extra"'],
    [
      'bad window',
      { realtime: [{ name: 'x_1', event: 'click', aggregation: 'count', window: '5 minutes' }] },
      'cfg: realtime[0] (x_1): "window" must be a duration such as "30s", "5m", "24h", "7d" or a number of ms',
    ],
    [
      'bad aggregation',
      { realtime: [{ name: 'x', event: 'click', aggregation: 'median', window: '5m' }] },
      'cfg: realtime[0] (x): "aggregation" must be one of count, sum, avg, min, max, last, distinct, count_by',
    ],
    [
      'bad event',
      { realtime: [{ name: 'x', event: 'view', aggregation: 'count', window: '5m' }] },
      'cfg: realtime[0] (x): "event" must be one of impression, click, purchase',
    ],
    [
      'sum of an id',
      { realtime: [{ name: 'x', event: 'purchase', aggregation: 'sum', field: 'ad_id', window: '5m' }] },
      'cfg: realtime[0] (x): sum needs a numeric field (amount)',
    ],
    [
      'distinct of amount',
      { realtime: [{ name: 'x', event: 'purchase', aggregation: 'distinct', field: 'amount', window: '5m' }] },
      'cfg: realtime[0] (x): distinct needs an id field, not "amount"',
    ],
    [
      'field on count',
      { realtime: [{ name: 'x', event: 'click', aggregation: 'count', field: 'ad_id', window: '5m' }] },
      'cfg: realtime[0] (x): "field" is not used by count',
    ],
    [
      'bad name',
      { realtime: [{ name: 'Views!', event: 'click', aggregation: 'count', window: '5m' }] },
      'cfg: realtime[0] (Views!): "name" must match [a-z][a-z0-9_]* (at most 64 characters)',
    ],
    [
      'duplicate',
      {
        realtime: [
          { name: 'x', event: 'click', aggregation: 'count', window: '5m' },
          { name: 'x', event: 'click', aggregation: 'count', window: '1h' },
        ],
      },
      'cfg: realtime[1] (x): duplicate tag name',
    ],
    ['unknown key', { realtime: [{ name: 'x', event: 'click', aggregation: 'count', window: '5m', windw: 1 }] }, 'cfg: realtime[0] (x): unknown key "windw"'],
    ['too long', { realtime: [{ name: 'x', event: 'click', aggregation: 'count', window: '400d' }] }, 'cfg: realtime[0] (x): "window" may be at most 366d'],
  ];
  for (const [label, json, message] of cases) {
    it(`rejects a config with ${label}, naming the entry`, () => {
      expect(() => parseTagConfig(json, 'cfg')).to.throw(ConfigError, message);
    });
  }

  it('names the file for unreadable and non-JSON files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tags-'));
    const file = path.join(dir, 'tags.json');
    fs.writeFileSync(file, '{ "realtime": [ ');
    expect(() => loadTagConfig(file)).to.throw(ConfigError, `${file}: not valid JSON`);
    expect(() => loadTagConfig(path.join(dir, 'missing.json'))).to.throw(ConfigError, 'cannot read tag config');
    fs.rmSync(dir, { recursive: true });
  });
});
