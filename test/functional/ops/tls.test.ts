/**
 * TLS to Redis: a TLS-only redis-server (no plain port) with certificates made here by
 * openssl; the CLI's --redis-tls-* options (and their env vars) and the library reader.
 */
import { expect } from 'chai';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import Redis from 'ioredis';
import { freePort } from '../../../src/redis/embeddedServer';
import { ProfileReader } from '../../../src/profile/reader';
import { killAllCli, runCli, runCliToEnd } from '../../helpers/cli';

/** A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, signed by it. */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=profile-stream test CA');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const name of ['server', 'client']) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name === 'server' ? 'localhost' : 'profile-client'}`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      ...(name === 'server' ? ['-extfile', 'server.ext'] : []),
    );
  }
}

interface TlsServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** A redis-server (working in `work`) that listens on TLS only; `clients`: whether it requires a client certificate. */
async function startTlsRedis(dir: string, work: string, clients: 'yes' | 'no'): Promise<TlsServer> {
  const port = await freePort();
  fs.mkdirSync(work, { recursive: true });
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      work,
      '--tls-cert-file',
      path.join(dir, 'server.pem'),
      '--tls-key-file',
      path.join(dir, 'server.key'),
      '--tls-ca-cert-file',
      path.join(dir, 'ca.pem'),
      '--tls-auth-clients',
      clients,
    ],
    { stdio: 'ignore' },
  );
  const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
  const tls = { ca, ...(clients === 'yes' ? { cert: fs.readFileSync(path.join(dir, 'client.pem')), key: fs.readFileSync(path.join(dir, 'client.key')) } : {}) };
  for (let i = 0; ; i++) {
    const probe = new Redis({ port, host: '127.0.0.1', tls, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    const up = await probe
      .connect()
      .then(
        () => probe.ping(),
        () => null,
      )
      .catch(() => null);
    probe.disconnect();
    if (up === 'PONG') break;
    if (i > 100) {
      child.kill('SIGKILL');
      throw new Error('TLS redis-server did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: `rediss://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

describe('TLS to Redis (a TLS-only redis-server, certificates from openssl)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: TlsServer;
  let strict: TlsServer;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-'));
    makeCertificates(dir);
    server = await startTlsRedis(dir, path.join(dir, 'a'), 'no');
    strict = await startTlsRedis(dir, path.join(dir, 'b'), 'yes');
  });
  after(async () => {
    await server?.stop();
    await strict?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(killAllCli);

  it('`up` serves over TLS with --redis-tls-ca; `batch`, `training-set` and the library reader work too', async () => {
    const ca = path.join(dir, 'ca.pem');
    const ods = path.join(dir, 'ods');
    const env = { REDIS_URL: server.url, ODS_DIR: ods, LOG_LEVEL: 'info' };
    const up = runCli(['up', '--port', '0', '--redis-tls-ca', ca], env);
    const [, port] = await up.waitFor(/"port":(\d+),"msg":"API listening"/);
    await up.waitFor(/archive consumer started/);
    const now = Date.now();
    const events = [1, 2, 3].map((i) => ({ event_id: `tls-${i}`, user_id: 'tls-user', type: 'click', ts: now - i * 1000, ad_id: 'a', campaign_id: 'c' }));
    const res = await fetch(`http://127.0.0.1:${port}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(events),
    });
    expect(res.status).to.equal(202);
    let clicks = 0;
    for (let i = 0; i < 100 && clicks !== 3; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/profile/tls-user`);
      if (r.status === 200) clicks = ((await r.json()) as { tags: { clicks_5m: number } }).tags.clicks_5m;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(clicks).to.equal(3);
    // The library, over TLS: the same profile.
    const reader = await ProfileReader.connect({ redisUrl: server.url, tls: { ca } });
    expect((await reader.read('tls-user'))?.tags.clicks_5m).to.equal(3);
    await reader.close();
    // The archive wrote the ODS: the batch and a training set read it, over TLS (env vars this time).
    for (let i = 0; i < 100 && !fs.existsSync(ods); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    up.child.kill('SIGTERM');
    expect(await up.exited).to.equal(0);
    const tlsEnv = { ...env, REDIS_TLS_CA: ca };
    const batch = await runCliToEnd(['batch'], tlsEnv);
    expect(batch.code, batch.out).to.equal(0);
    expect(batch.out).to.match(/3 counted/);
    const spine = path.join(dir, 'spine.ndjson');
    fs.writeFileSync(spine, `${JSON.stringify({ user_id: 'tls-user', ts: now })}\n`);
    const training = await runCliToEnd(['training-set', '--spine', spine, '--out', path.join(dir, 'train.ndjson')], tlsEnv);
    expect(training.code, training.out).to.equal(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'train.ndjson'), 'utf8').trim()).clicks_5m).to.equal(3);
  });

  it('says in one line what to give when TLS fails: no CA, a wrong server name, no client certificate', async () => {
    const ca = path.join(dir, 'ca.pem');
    const cases: [string[], string][] = [
      [['status', '--redis', server.url], String(server.port)],
      [['status', '--redis', `rediss://localhost:${server.port}`, '--redis-tls-ca', ca, '--redis-tls-servername', 'elsewhere.example'], String(server.port)],
      [['status', '--redis', strict.url, '--redis-tls-ca', ca], String(strict.port)],
    ];
    for (const [args, port] of cases) {
      const r = await runCliToEnd(args);
      expect(r.code, `${args.join(' ')}: ${r.out}`).to.equal(1);
      const lines = r.out.trim().split('\n');
      expect(lines, args.join(' ')).to.have.length(1);
      expect(lines[0]).to.match(
        new RegExp(
          `^profile: TLS to Redis at (127\\.0\\.0\\.1|localhost):${port} failed \\(.+\\): give the CA that signed the server's certificate with --redis-tls-ca`,
        ),
      );
    }
    const missing = await runCliToEnd(['status', '--redis', server.url, '--redis-tls-ca', path.join(dir, 'nope.pem')]);
    expect([missing.code, missing.out.trim()]).to.deep.equal([2, `profile: --redis-tls-ca ${path.join(dir, 'nope.pem')}: cannot read it (ENOENT)`]);
    // With the client certificate, the strict server lets it in.
    const ok = await runCliToEnd([
      'status',
      '--redis',
      strict.url,
      '--redis-tls-ca',
      ca,
      '--redis-tls-cert',
      path.join(dir, 'client.pem'),
      '--redis-tls-key',
      path.join(dir, 'client.key'),
    ]);
    expect(ok.code, ok.out).to.equal(0);
    expect(ok.out).to.match(/maxmemory-policy noeviction/);
  });
});
