import { expect } from 'chai';
import { execFileSync, spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { parse } from 'yaml';
import { CLI } from '../helpers/cli';

const ROOT = path.join(__dirname, '..', '..', '..');

/** Environment variables the CLI reads that are not tied to one flag (README "CLI" table). */
const EXTRA_ENV = new Set(['PROFILE_DATA_DIR', 'PROFILE_EMBEDDED_REDIS_PORT', 'PROFILE_REDIS_APPENDFSYNC', 'PROFILE_URL']);

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  profiles?: string[];
  init?: boolean;
}

describe('docker-compose.yml and Dockerfile agree with the CLI', () => {
  const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const help = new Map<string, string>();
  const helpOf = (cmd: string) => {
    if (!help.has(cmd)) help.set(cmd, execFileSync(process.execPath, [CLI, cmd, '--help'], { encoding: 'utf8' }));
    return help.get(cmd)!;
  };

  it('runs Redis (AOF, healthcheck), api, realtime, archiver, and a simulator under the demo profile', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['api', 'archiver', 'realtime', 'redis', 'simulator']);
    const redis = compose.services.redis;
    expect(redis.command).to.include.members(['--appendonly', 'yes']);
    expect(redis.healthcheck?.test).to.include('ping');
    expect(compose.services.simulator.profiles).to.deep.equal(['demo']);
    for (const name of ['api', 'realtime', 'archiver', 'simulator']) {
      const s = compose.services[name];
      expect([name, s.init]).to.deep.equal([name, true]);
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(compose.services[dep], `${name} depends on unknown ${dep}`).to.not.equal(undefined);
        expect(condition).to.equal('service_healthy');
        expect(compose.services[dep].healthcheck, `${dep} has no healthcheck`).to.not.equal(undefined);
      }
      for (const v of s.volumes ?? []) expect(compose.volumes).to.have.property(v.split(':')[0]);
    }
  });

  it("uses only commands, flags and environment variables the CLI has", () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (name === 'redis') continue;
      const [bin, cmd, ...args] = s.command ?? [];
      expect([name, bin]).to.deep.equal([name, 'profile']);
      const text = helpOf(cmd);
      expect(text, `${name}: profile ${cmd}`).to.match(new RegExp(`^Usage: profile ${cmd} `, 'm'));
      for (const flag of args.filter((a) => a.startsWith('--'))) {
        expect(text, `${name}: profile ${cmd} has no ${flag}`).to.match(new RegExp(`^\\s+${flag}\\b`, 'm'));
      }
      for (const key of Object.keys(s.environment ?? {})) {
        const known = EXTRA_ENV.has(key) || text.replace(/\s+/g, ' ').includes(`env: ${key})`);
        expect(known, `${name}: profile ${cmd} reads no ${key}`).to.equal(true);
      }
    }
  });

  it('passes `docker-compose config -q` when docker-compose is installed (.ci/run installs it)', function () {
    const which = spawnSync('docker-compose', ['--version']);
    if (which.error) {
      // Not installed here: the structural checks above still ran; CI installs it.
      this.skip();
    }
    const r = spawnSync('docker-compose', ['--profile', 'demo', 'config', '-q'], { cwd: ROOT, encoding: 'utf8' });
    expect([r.status, r.stderr]).to.deep.equal([0, '']);
  });

  it('builds in two stages and runs as the non-root node user with production dependencies only', () => {
    const docker = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const stages = docker.split(/^FROM /m).slice(1);
    expect(stages).to.have.length(2);
    expect(stages[1]).to.match(/npm ci --omit=dev/);
    expect(stages[1]).to.match(/^USER node$/m);
    expect(stages[1]).to.match(/COPY --from=build \/app\/dist/);
  });
});
