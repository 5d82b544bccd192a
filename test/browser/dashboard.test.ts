/**
 * The dashboard in a real browser: headless Chromium (Debian's, driven by playwright-core)
 * against a real `profile up` with API keys. Saves a screenshot to test-artifacts/ (and to
 * docs/dashboard.png with UPDATE_SCREENSHOTS=1).
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { chromium, Browser } from 'playwright-core';
import { CliProcess, killAllCli, runCli } from '../helpers/cli';
import { shippedTagsWithTriggers, testRedisUrl, uniquePrefix } from '../helpers/context';
import { loadTagConfig, tagConfigVersion } from '../../src/core/tagConfig';

/** The page's DOM, as the functions evaluated in the browser see it (the project compiles without the DOM lib). */
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = path.join(__dirname, '..', '..', '..');
const KEYS = { ingest: 'dash-ingest-0123456789', read: 'dash-read-0123456789ab', admin: 'dash-admin-0123456789a' };

describe('dashboard in headless Chromium (real profile up, API keys on)', function () {
  this.timeout(90_000);
  let up: CliProcess;
  let browser: Browser | undefined;
  let base = '';
  let ods = '';
  let tagsFile = '';

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      // .ci/run installs Debian's chromium and sets PROFILE_REQUIRE_BROWSER, so CI never skips.
      if (process.env.PROFILE_REQUIRE_BROWSER) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
      this.skip();
    }
    ods = fs.mkdtempSync(path.join(os.tmpdir(), 'dash-ods-'));
    // The shipped tags with one trigger, so the page has firings to show.
    const tags = (tagsFile = path.join(ods, '..', `${path.basename(ods)}-tags.json`));
    fs.writeFileSync(tags, JSON.stringify(shippedTagsWithTriggers([{ name: 'hot_clicker', when: [{ tag: 'clicks_5m', op: '>=', value: 3 }] }])));
    up = runCli(['up', '--port', '0'], {
      REDIS_URL: testRedisUrl(),
      PROFILE_PREFIX: uniquePrefix(),
      ODS_DIR: ods,
      LOG_LEVEL: 'info',
      PROFILE_CONFIG: tags,
      PROFILE_API_KEYS: `${KEYS.ingest}:ingest,${KEYS.read}:read,${KEYS.admin}:admin`,
    });
    const [, port] = await up.waitFor(/"port":(\d+),"msg":"API listening"/);
    await up.waitFor(/archive consumer started/);
    base = `http://127.0.0.1:${port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await killAllCli();
    if (ods) {
      fs.rmSync(ods, { recursive: true, force: true });
      fs.rmSync(`${ods}-tags.json`, { force: true });
    }
  });

  const send = async (events: Record<string, unknown>[]) => {
    const res = await fetch(`${base}/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.ingest}`, 'content-type': 'application/json' },
      body: JSON.stringify(events),
    });
    expect(res.status).to.equal(202);
  };

  it('asks for a key, shows the pipeline moving, renders a profile with the right values, and runs a batch', async () => {
    const now = Date.now();
    await send([
      ...[0, 1, 2].map((i) => ({ user_id: 'dash-1', type: 'click', ts: now - i * 1000, ad_id: 'a1', campaign_id: 'c-1' })),
      ...[0, 1, 2, 3, 4].map((i) => ({ user_id: 'dash-1', type: 'impression', ts: now - i * 1000, ad_id: `a${i % 2}`, campaign_id: 'c-1' })),
      { user_id: 'dash-1', type: 'purchase', ts: now - 500, amount: 12.5 },
    ]);
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const missing: string[] = [];
    page.on('response', (r) => {
      if (r.status() === 404) missing.push(r.url());
    });
    await page.goto(`${base}/`);
    // First paint, before any data: placeholders that say so, not dashes and empty boxes.
    expect(await page.textContent('#scale-in')).to.equal('collecting…');
    await page.waitForSelector('#key-panel', { state: 'visible' }); // /dashboard/stats answered 401
    await page.fill('#key-input', KEYS.admin);
    await page.click('#key-save');
    await page.waitForFunction(() => Number(document.getElementById('total-in')!.textContent!.replace(/,/g, '')) >= 9);
    const before = Number((await page.textContent('#total-in'))!.replace(/,/g, ''));

    // Background traffic for a few seconds: the totals and the rate must move.
    const stop = Date.now() + 4000;
    let sent = 0;
    while (Date.now() < stop) {
      await send(Array.from({ length: 50 }, (_, i) => ({ user_id: `dash-${2 + (i % 7)}`, type: 'impression', ad_id: 'a9', campaign_id: 'c-2' })));
      sent += 50;
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.waitForFunction((n) => Number(document.getElementById('total-in')!.textContent!.replace(/,/g, '')) >= n, before + sent);
    expect(Number((await page.textContent('#total-in'))!.replace(/,/g, ''))).to.equal(before + sent);
    await page.waitForFunction(() => document.querySelectorAll('#chart-in polyline').length === 1);
    // Each chart says its scale: the peak it shows and over how long.
    expect(await page.textContent('#scale-in')).to.match(/^peak [\d,]+\/slast \d+(\.\d)? s$/);
    // The active tag config, and the process (`up`: every role) that runs it.
    const version = tagConfigVersion(loadTagConfig(tagsFile));
    expect(await page.textContent('#tag-config')).to.match(new RegExp(`^tag config: active ${version} since `));
    expect(await page.textContent('#processes tbody')).to.match(new RegExp(`:\\d+api, realtime, archive${version}$`));
    expect(await page.locator('#top-users button').count()).to.be.greaterThan(0);
    expect(await page.isHidden('#top-users-none')).to.equal(true);
    // The page has its icon inline: the browser asks for no /favicon.ico (it was a 404).
    expect(missing.filter((u) => /favicon/.test(u))).to.deep.equal([]);

    // Profile explorer: click the user in the list of active users.
    await page.fill('#user-input', 'dash-1');
    await page.click('#user-go');
    await page.waitForSelector('tr[data-tag="clicks_24h"]');
    const value = async (tag: string) => page.getAttribute(`tr[data-tag="${tag}"] td.value`, 'data-value');
    expect(await value('clicks_24h')).to.equal('3');
    expect(await value('views_1h')).to.equal('5');
    expect(await value('purchases_24h')).to.equal('1');
    expect(await value('spend_24h')).to.equal('12.5');
    expect(await value('distinct_ads_1h')).to.equal('2');
    expect(JSON.parse((await value('campaign_views_1h'))!)).to.deep.equal({ 'c-1': 5 });
    expect(await page.textContent('tr[data-tag="clicks_24h"]')).to.include('3 clicks');
    expect(await page.locator('tr[data-tag="views_5m"] svg polyline').count()).to.equal(1);
    expect(await page.textContent('#profile-meta')).to.match(/dash-1 · evaluated .* last event/);
    // Triggers: the three clicks fired hot_clicker, on the pipeline view and in the explorer.
    await page.waitForSelector('#triggers [data-trigger="hot_clicker"]');
    expect(await page.textContent('#triggers [data-trigger="hot_clicker"]')).to.match(/^hot_clicker: [^(]+ dash-1 \(clicks_5m 3\)/);
    expect(await page.textContent('#user-firings')).to.match(/^Trigger firings: hot_clicker at [^(]+ dash-1 \(clicks_5m 3\)$/);

    // Batch control: run one, wait for its summary, and see the offline tags appear.
    await page.click('#batch-run');
    await page.waitForFunction(() => /succeeded|failed/.test(document.getElementById('batch-state')!.textContent!), undefined, { timeout: 30_000 });
    expect(await page.textContent('#batch-state')).to.match(/succeeded · [\d,]+ events, [\d,]+ users/);
    await page.click('#user-go');
    await page.waitForSelector('tr[data-tag="ltv_total"]');
    expect(await value('ltv_total')).to.equal('12.5');
    expect(await value('segment_id')).to.be.a('string');
    expect(await page.textContent('#profile-meta')).to.match(/offline tags from batch \d{8}T\d{6}Z-[0-9a-f]{6}/);
    await page.waitForFunction(() => /succeeded/.test(document.getElementById('last-batch')!.textContent!));
    expect(errors).to.deep.equal([]);

    const artifacts = path.join(ROOT, 'test-artifacts');
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS) fs.copyFileSync(path.join(artifacts, 'dashboard.png'), path.join(ROOT, 'docs', 'dashboard.png'));
    await page.close();
  });
});
