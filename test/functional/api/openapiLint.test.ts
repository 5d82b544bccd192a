import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { HttpServerHandle } from '../../../src/api/server';
import { Pipeline, makePipeline, serveApp } from '../../helpers/context';
import { ROOT, nodeModule, runNode } from '../../helpers/nodeTools';

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

/**
 * The document the API serves, linted by Redocly CLI (2.x, from node_modules) under its
 * recommended ruleset: no error, no warning, nothing hidden by an ignore file. A redocly.yaml
 * at the repository root, if there is one, applies (it is where a rule would be turned off,
 * with its reason); `--extends recommended` keeps the ruleset itself from being swapped.
 */
describe('OpenAPI document: Redocly lint, recommended ruleset', function () {
  this.timeout(60_000);
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;
  let dir: string;

  before(async () => {
    p = await makePipeline();
    ({ http, base } = await serveApp(p, { maxEventsPerRequest: 10, maxProfilesPerRequest: 10, maxBodyBytes: 65536 }));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openapi-lint-'));
  });
  after(async () => {
    await http.close();
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports zero errors and zero warnings on GET /openapi.json', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).to.equal(200);
    const file = path.join(dir, 'openapi.json');
    fs.writeFileSync(file, JSON.stringify(await res.json(), null, 2));
    const cli = nodeModule('@redocly', 'cli', 'bin', 'cli.js');
    // No telemetry and no update check from a test run; the JSON report is on stdout.
    const { code, stdout, stderr } = await runNode([cli, 'lint', file, '--extends', 'recommended', '--format', 'json'], {
      env: { REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    });
    let report: LintReport;
    try {
      report = JSON.parse(stdout) as LintReport;
    } catch {
      throw new Error(`redocly lint printed no JSON report (exit ${code}):\n${stdout}\n${stderr}`);
    }
    const problems = report.problems.map((x) => `${x.severity} ${x.ruleId} at ${x.location.map((l) => l.pointer).join(', ')}: ${x.message}`);
    expect(problems).to.deep.equal([]);
    expect(report.totals).to.deep.equal({ errors: 0, warnings: 0, ignored: 0 });
    expect(code, stderr).to.equal(0);
  });

  it("gives package.json's license and version", async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { license: string; version: string };
    const { info } = (await (await fetch(`${base}/openapi.json`)).json()) as { info: { version: string; license: { identifier: string } } };
    expect([info.license.identifier, info.version]).to.deep.equal([pkg.license, pkg.version]);
  });
});
