import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { parse } from 'yaml';
import { CLI, killAllCli, runCli } from '../../helpers/cli';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';
import { freePort } from '../../../src/redis/embeddedServer';

const ROOT = path.join(__dirname, '..', '..', '..', '..');

/** Environment variables the CLI reads that are not tied to one flag (README "CLI" table). */
const EXTRA_ENV = new Set(['PROFILE_DATA_DIR', 'PROFILE_EMBEDDED_REDIS_PORT', 'PROFILE_REDIS_APPENDFSYNC', 'PROFILE_URL', 'PROFILE_API_KEYS']);

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
  const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };
  const help = new Map<string, string>();
  const helpOf = (cmd: string) => {
    if (!help.has(cmd)) help.set(cmd, execFileSync(process.execPath, [CLI, cmd, '--help'], { encoding: 'utf8' }));
    return help.get(cmd)!;
  };

  it('runs Redis (AOF, healthcheck), api, realtime, archiver, and a simulator under the demo profile', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['api', 'archiver', 'realtime', 'redis', 'simulator']);
    const redis = compose.services.redis;
    const start = (redis.command ?? []).join(' ');
    expect(start).to.match(/redis-server --aclfile \/tmp\/users\.acl --appendonly yes/);
    expect(redis.volumes).to.include('./config/redis/users.acl.template:/etc/profile-stream/users.acl.template:ro');
    expect(redis.healthcheck?.test.join(' ')).to.match(/--user api .* ping/);
    // Every app service talks to Redis as its role's ACL user.
    const users = (s: Service) =>
      Object.values(s.environment ?? {})
        .map((v) => /^redis:\/\/(\w+):/.exec(String(v))?.[1])
        .filter(Boolean);
    expect(users(compose.services.api).sort()).to.deep.equal(['api', 'batch', 'ingest']);
    expect(users(compose.services.realtime)).to.deep.equal(['worker']);
    expect(users(compose.services.archiver)).to.deep.equal(['worker']);
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

  it('uses only commands, flags and environment variables the CLI has', () => {
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

  it("starts Redis as the redis service's command would, with its ACL users, and its healthcheck passes", async function () {
    this.timeout(20_000);
    const redis = compose.services.redis;
    const port = await freePort();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-redis-'));
    const env = Object.fromEntries(Object.entries(redis.environment ?? {}).map(([k, v]) => [k, String(v).replace(/^\$\{[A-Z_]+:-(.*)\}$/, '$1')]));
    // The service's shell command, run here: compose's $$ is a plain $; the image's
    // entrypoint becomes the local redis-server on a free port.
    const script = (redis.command ?? [])
      .join(' ')
      .replace(/\$\$/g, '$')
      .replace('/etc/profile-stream/users.acl.template', path.join(ROOT, 'config', 'redis', 'users.acl.template'))
      .replace('/tmp/users.acl', path.join(work, 'users.acl'))
      .replace('/tmp/users.acl', path.join(work, 'users.acl'))
      .replace('exec docker-entrypoint.sh redis-server', `exec redis-server --port ${port} --bind 127.0.0.1 --dir ${work}`);
    const child = spawn('sh', ['-c', script], { env: { ...process.env, ...env }, stdio: 'ignore' });
    try {
      const health = (redis.healthcheck?.test ?? []).slice(1).join(' ').replace(/\$\$/g, '$').replace('redis-cli', `redis-cli -p ${port}`);
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        ok = spawnSync('sh', ['-c', health], { env: { ...process.env, ...env } }).status === 0;
        if (!ok) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ok, 'healthcheck never passed').to.equal(true);
      const anonymous = spawnSync('redis-cli', ['-p', String(port), 'GET', 'x'], { encoding: 'utf8' });
      expect(anonymous.stdout).to.match(/NOAUTH|NOPERM/);
      const worker = spawnSync(
        'redis-cli',
        ['-p', String(port), '--no-auth-warning', '--user', 'worker', '--pass', env.PROFILE_REDIS_WORKER_PASSWORD, 'XLEN', 'ev:{p0}'],
        { encoding: 'utf8' },
      );
      expect(worker.stdout.trim()).to.equal('0');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  it('builds in two stages and runs as the non-root node user with production dependencies only', () => {
    const docker = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const stages = docker.split(/^FROM /m).slice(1);
    expect(stages).to.have.length(2);
    expect(stages[1]).to.match(/npm ci --omit=dev/);
    expect(stages[1]).to.match(/^USER node$/m);
    expect(stages[1]).to.match(/COPY --from=build \/app\/dist/);
  });

  it("the api's healthcheck passes on a ready API with or without API keys (it sends a read or admin key when keys are set)", async function () {
    this.timeout(30_000);
    const test = compose.services.api.healthcheck?.test ?? [];
    expect(test.slice(0, 3)).to.deep.equal(['CMD', 'node', '-e']);
    const READ = 'r'.repeat(20);
    const INGEST = 'i'.repeat(20);
    const check = (port: string, keys: string) =>
      spawnSync(process.execPath, ['-e', test[3].replace('127.0.0.1:8080', `127.0.0.1:${port}`)], {
        env: { ...process.env, PROFILE_API_KEYS: keys },
        timeout: 5000,
      }).status;
    for (const keys of ['', `${INGEST}:ingest,${READ}:read`]) {
      const serve = runCli(['serve', '--port', '0'], { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), PROFILE_API_KEYS: keys, LOG_LEVEL: 'info' });
      try {
        const [, port] = await serve.waitFor(/"port":(\d+),"msg":"API listening"/);
        expect(check(port, keys), `keys: ${keys || 'none'}`).to.equal(0);
        if (keys) expect(check(port, `${INGEST}:ingest`), 'an ingest key cannot read /ready').to.equal(1);
      } finally {
        await killAllCli();
      }
    }
  });
});
