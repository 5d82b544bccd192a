import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { parseApiKeys } from '../../../src/core/apiKeys';
import { HttpServerHandle } from '../../../src/api/server';
import { flatProfile } from '../../../src/profile/flat';
import type { Profile } from '../../../src/profile/reader';
import { DEFAULT_TAGS_FILE } from '../../../src/core/tagConfig';
import { Pipeline, makePipeline, serveApp } from '../../helpers/context';
import { EVERY_KIND_TAGS } from '../../helpers/windowReference';
import { ROOT, nodeModule, runNode } from '../../helpers/nodeTools';

const KEYS = { ingest: 'gen-ingest-key-0123456789', read: 'gen-read-key-0123456789ab' };

/** What test/openapiClient/client.ts's run() answers (its own types exist only where the schema was generated). */
interface ClientRun {
  eventIds: string[];
  profile: { user_id: string; tags: Record<string, unknown> };
  flat: Record<string, string>;
  tagged: { one: { user_id: string; tags: Record<string, unknown> }; many: unknown[] };
  profiles: ({ user_id: string } | { user_id: string; error: string })[];
  invalidEvent: { status: number; field: string; message: string };
  badUserId: { status: number; error: string };
  unknownUser: { status: number; error: string; userId: string };
  waited: boolean | undefined;
  stale: { status: number; maxLagMs: number | undefined };
}

/**
 * The document is usable by client generators: openapi-typescript turns GET /openapi.json
 * into TypeScript types, tsc (strict) compiles test/openapiClient/client.ts against them,
 * and the compiled client calls the real API through openapi-fetch.
 */
describe('OpenAPI document: a generated TypeScript client (openapi-typescript + openapi-fetch)', function () {
  this.timeout(120_000);
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;
  let dir: string;

  before(async () => {
    // The shipped tags (and offline config: `triggers` keeps it) and one of every kind.
    const shipped = JSON.parse(fs.readFileSync(DEFAULT_TAGS_FILE, 'utf8')) as { realtime: unknown[] };
    p = await makePipeline({ now: Date.now(), tags: [...shipped.realtime, ...EVERY_KIND_TAGS], triggers: [] });
    ({ http, base } = await serveApp(p, {
      maxEventsPerRequest: 10,
      maxProfilesPerRequest: 10,
      maxBodyBytes: 65536,
      apiKeys: parseApiKeys(`${KEYS.ingest}:ingest,${KEYS.read}:read`),
    }));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openapi-client-'));
    // The client resolves openapi-fetch (and tsc its types) from the repository's packages.
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  });
  after(async () => {
    await http.close();
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('generates types from GET /openapi.json, type-checks the client against them, and calls the API', async () => {
    const res = await fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${KEYS.read}` } });
    expect(res.status).to.equal(200);
    fs.writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(await res.json()));

    const generated = await runNode([nodeModule('openapi-typescript', 'bin', 'cli.js'), 'openapi.json', '--output', 'schema.d.ts'], { cwd: dir });
    expect(generated.code, generated.stdout + generated.stderr).to.equal(0);
    const schema = fs.readFileSync(path.join(dir, 'schema.d.ts'), 'utf8');
    for (const op of ['ingestEvents', 'getProfile', 'getProfiles']) expect(schema).to.include(`operations["${op}"]`);

    fs.copyFileSync(path.join(ROOT, 'test', 'openapiClient', 'client.ts'), path.join(dir, 'client.ts'));
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          lib: ['ES2022'],
          types: ['node'],
          strict: true,
          noUnusedLocals: true,
          noUnusedParameters: true,
          noEmitOnError: true,
          skipLibCheck: false,
          outDir: 'out',
        },
        files: ['client.ts', 'schema.d.ts'],
      }),
    );
    // One compilation: a single type error (an unused @ts-expect-error included) emits nothing and exits non-zero.
    const tsc = await runNode([nodeModule('typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir });
    expect(tsc.code, tsc.stdout + tsc.stderr).to.equal(0);

    const client = require(path.join(dir, 'out', 'client.js')) as {
      run: (baseUrl: string, keys: typeof KEYS, drain: () => Promise<void>) => Promise<ClientRun>;
    };
    const result = await client.run(base, KEYS, async () => {
      p.clock.now = Date.now() + 1000;
      await p.consumer.drain();
    });

    expect(result.eventIds).to.have.length(4);
    expect(result.profile).to.deep.equal(await p.reader.read('gen-1'));
    expect(result.profile.tags).to.include({ purchases_24h: 1, spend_24h: 470.5 });
    expect(result.flat).to.deep.equal({ ...flatProfile(result.profile as Profile) });
    expect(result.flat).to.include({ purchases_24h: '1', spend_24h: '470.5', campaign_views_1h: '{"c-1":1}' });
    // Each kind through the generated client, in its JSON type: one purchase of 470.5, one impression of ad-1.
    expect(result.profile.tags).to.deep.include({
      first_20m: 470.5,
      sd_10m: 0,
      ads_approx_1h: 1,
      spend_hist_1h: { '>=100': 1 },
      last3_ads_30m: ['ad-1'],
      first2_amounts_2h: [470.5],
    });
    const percentiles = result.profile.tags.spend_p_1h as Record<string, number>;
    expect(Object.keys(percentiles)).to.deep.equal(['p50', 'p90', 'p99.9']);
    for (const v of Object.values(percentiles)) expect(Math.abs(v - 470.5) / 470.5).to.be.below(0.01);
    expect(result.flat).to.include({
      first_20m: '470.5',
      sd_10m: '0',
      ads_approx_1h: '1',
      spend_hist_1h: '{">=100":1}',
      last3_ads_30m: '["ad-1"]',
      first2_amounts_2h: '[470.5]',
      spend_p_1h: JSON.stringify(percentiles),
    });
    expect(result.profiles.map((x) => ('error' in x ? x.error : x.user_id))).to.deep.equal(['gen-1', 'gen-2', 'unknown user']);
    expect(result.tagged.one.tags).to.deep.equal({ views_5m: 1, spend_24h: 470.5 });
    expect(result.tagged.many).to.deep.equal([result.tagged.one]);
    expect(result.invalidEvent).to.include({ status: 400, field: 'amount' });
    expect(result.badUserId.status).to.equal(400);
    expect(result.badUserId.error).to.match(/^user id must be/);
    expect(result.unknownUser).to.deep.equal({ status: 404, error: 'unknown user', userId: 'nobody' });
    // No consumer runs between the test's drains, and this server's reader tracks no lag.
    expect(result.waited).to.equal(false);
    expect(result.stale).to.deep.equal({ status: 503, maxLagMs: 1000 });
  });
});
