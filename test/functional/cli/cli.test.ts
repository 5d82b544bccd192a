import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import http from 'http';
import { spawn } from 'child_process';
import Redis from 'ioredis';
import { freePort, startPrivateRedis } from '../../../src/redis/embeddedServer';
import { scriptLibrary } from '../../../src/lua/scripts';
import { redisAnswers } from '../../../src/redis/client';
import { CLI, killAllCli, runCli, runCliToEnd } from '../../helpers/cli';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';

describe('profile CLI (real processes)', function () {
  this.timeout(30_000);
  afterEach(killAllCli);

  it('lists every command in --help', async () => {
    const { code, out } = await runCliToEnd(['--help']);
    expect(code).to.equal(0);
    for (const cmd of ['up', 'serve', 'consume', 'get', 'simulate', 'triggers']) expect(out).to.match(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    // --version is package.json's.
    const version = await runCliToEnd(['--version']);
    expect(version.out.trim()).to.equal(
      (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version,
    );
  });

  it('`up` ingests over HTTP, serves the profile, `get` reads it, and SIGTERM exits 0 after draining', async () => {
    const prefix = uniquePrefix();
    // Its own ODS folder: the default (./data/ods) is a user's, not the suite's.
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: prefix, LOG_LEVEL: 'info', ODS_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cli-up-ods-')) };
    const up = runCli(['up', '--port', '0'], env);
    const [, port] = await up.waitFor(/"port":(\d+),"msg":"API listening"/);
    await up.waitFor(/realtime consumer started/);
    // It says what it serves: the tag config's file, tags, segments and triggers.
    const [loaded] = await up.waitFor(/\{[^\n]*"msg":"tag config loaded"\}/);
    expect(JSON.parse(loaded)).to.deep.include({
      realtime: ['views_5m', 'views_1h', 'clicks_5m', 'clicks_24h', 'purchases_24h', 'spend_24h', 'distinct_ads_1h', 'campaign_views_1h'],
      triggers: [],
    });
    expect(JSON.parse(loaded).file).to.match(/config\/tags\.json$/);
    const base = `http://127.0.0.1:${port}`;
    const now = Date.now();
    const ndjson = [
      { user_id: 'cli-user', type: 'impression', ts: now - 1000, ad_id: 'a1', campaign_id: 'c-1' },
      { user_id: 'cli-user', type: 'impression', ts: now - 900, ad_id: 'a2', campaign_id: 'c-1' },
      { user_id: 'cli-user', type: 'click', ts: now - 800, ad_id: 'a2', campaign_id: 'c-1' },
      { user_id: 'cli-user', type: 'purchase', ts: now - 700, amount: 12.25 },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n');
    const res = await fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjson });
    expect(res.status).to.equal(202);

    let profile: { tags: Record<string, unknown> } | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = await fetch(`${base}/profile/cli-user`);
      if (r.status === 200) {
        profile = (await r.json()) as { tags: Record<string, unknown> };
        if (profile.tags.spend_24h === 12.25) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(profile!.tags).to.deep.equal({
      views_5m: 2,
      views_1h: 2,
      clicks_5m: 1,
      clicks_24h: 1,
      purchases_24h: 1,
      spend_24h: 12.25,
      distinct_ads_1h: 2,
      campaign_views_1h: { 'c-1': 2 },
    });

    const got = await runCliToEnd(['get', 'cli-user'], env);
    expect(got.code).to.equal(0);
    expect(JSON.parse(got.out).tags.clicks_24h).to.equal(1);
    const missing = await runCliToEnd(['get', 'nobody'], env);
    expect(missing.code).to.equal(1);
    expect(missing.out).to.equal('profile: unknown user nobody\n');
    // The dashboard's polls log at debug; other routes at info.
    for (const route of ['/dashboard/stats', '/profile/cli-user/timeline', '/dashboard/stats', '/status'])
      expect((await fetch(`${base}${route}`)).status).to.equal(200);
    await up.waitFor(/"path":"\/status","status":200/);

    up.child.kill('SIGTERM');
    expect(await up.exited).to.equal(0);
    expect(up.output()).to.match(/"msg":"stopped"/);
    expect(up.output()).to.not.match(/"path":"\/(dashboard\/stats|profile\/cli-user\/timeline)"/);
  });

  it('`serve` and `consume` run as separate processes and together make the full path', async () => {
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), LOG_LEVEL: 'info' };
    const serve = runCli(['serve', '--port', '0'], env);
    const consume = runCli(['consume', '--consumer-name', 'rt-proc-1'], env);
    const [, port] = await serve.waitFor(/"port":(\d+),"msg":"API listening"/);
    await consume.waitFor(/realtime consumer started/);
    const base = `http://127.0.0.1:${port}`;
    const events = Array.from({ length: 30 }, (_, i) => ({ user_id: `sep-${i % 3}`, type: 'click', ts: Date.now() - 100 }));
    expect((await fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })).status).to.equal(
      202,
    );
    let clicks: unknown;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && clicks !== 10) {
      const r = await fetch(`${base}/profile/sep-2`);
      if (r.status === 200) clicks = ((await r.json()) as { tags: Record<string, unknown> }).tags.clicks_5m;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(clicks).to.equal(10);
    const status = (await (await fetch(`${base}/status`)).json()) as { partitions: { groups: { name: string; consumers: number; pending: number }[] }[] };
    for (const part of status.partitions) {
      const rt = part.groups.find((g) => g.name === 'realtime')!;
      expect([rt.pending, rt.consumers]).to.deep.equal([0, 1]);
    }
    serve.child.kill('SIGTERM');
    consume.child.kill('SIGTERM');
    expect(await serve.exited).to.equal(0);
    expect(await consume.exited).to.equal(0);
  });

  it('`up` archives to the ODS and trims; `status`, `batch`, `verify` work from the command line', async () => {
    const ods = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-ods-'));
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), ODS_DIR: ods, LOG_LEVEL: 'warn' };
    const up = runCli(['up', '--port', '0'], { ...env, LOG_LEVEL: 'info' });
    const [, port] = await up.waitFor(/"port":(\d+),"msg":"API listening"/);
    await up.waitFor(/archive consumer started/);
    const now = Date.now();
    const events = Array.from({ length: 20 }, (_, i) => ({ user_id: `cli-${i % 2}`, type: 'purchase', ts: now - 1000 + i, amount: 25 }));
    await fetch(`http://127.0.0.1:${port}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
    let status: { partitions: { length: number; groups: { lag: number; pending: number }[] }[]; ods: { files: number } } | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      status = JSON.parse((await runCliToEnd(['status', '--json'], env)).out);
      const done = status!.partitions.every((p) => p.length === 0 && p.groups.every((g) => g.lag === 0 && g.pending === 0));
      if (done && status!.ods.files > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status!.partitions.map((p) => p.length)).to.deep.equal([0, 0, 0, 0]);
    const table = await runCliToEnd(['status'], env);
    expect(table.code).to.equal(0);
    expect(table.out).to.match(/^stream\s+length\s+oldest\s+group\s+lag\s+pending\s+consumers$/m);
    expect(table.out).to.match(/^\S+:ev:\{p0\}\s+0\s+-\s+archive\s+0\s+0\s+1$/m);
    expect(table.out).to.include(`ODS ${ods}: 1 files in 1 date partitions`);

    const batch = await runCliToEnd(['batch', '--windows'], env);
    expect(batch.code).to.equal(0);
    expect(batch.out).to.match(/^events {5}20 counted, 0 duplicates skipped, 0 after --as-of ignored$/m);
    expect(batch.out).to.match(/^users {6}2 offline profiles written, 2 window results$/m);
    // Piped, a run shorter than the progress period prints no progress line (it printed a stale "0.0 of N MiB").
    expect(batch.out).to.not.match(/^(read|aggregate|write)[^\n]*: .* of /m);
    const verify = await runCliToEnd(['verify'], env);
    expect(verify.out).to.match(/: 2 users checked, 0 mismatches\n$/);
    expect(verify.code).to.equal(0);
    const profile = (await (await fetch(`http://127.0.0.1:${port}/profile/cli-0`)).json()) as { tags: Record<string, unknown> };
    expect(profile.tags).to.deep.include({ purchases_24h: 10, spend_24h: 250, ltv_total: 250, purchases_total: 10, segment_id: 'new_user' });

    up.child.kill('SIGTERM');
    expect(await up.exited).to.equal(0);
    fs.rmSync(ods, { recursive: true, force: true });
  });

  it('`dead list`, `dead replay` and `dead purge` work on ev:dead', async () => {
    const prefix = uniquePrefix();
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: prefix, LOG_LEVEL: 'silent' };
    const redis = new Redis(testRedisUrl());
    try {
      const fields = ['event_id', 'd1', 'user_id', 'u1', 'type', 'click', 'ts', '5'];
      const deadId = await redis.xadd(
        `${prefix}ev:dead`,
        '*',
        'stream',
        `${prefix}ev:{p1}`,
        'id',
        '1-0',
        'group',
        'realtime',
        'consumer',
        'rt-9',
        'deliveries',
        '5',
        'error',
        'boom',
        'fields',
        JSON.stringify(fields),
      );
      const list = await runCliToEnd(['dead', 'list', '--json'], env);
      expect(list.code).to.equal(0);
      expect(JSON.parse(list.out)).to.deep.equal({
        dead_id: deadId,
        stream: `${prefix}ev:{p1}`,
        id: '1-0',
        group: 'realtime',
        consumer: 'rt-9',
        deliveries: 5,
        error: 'boom',
        fields,
      });
      const table = await runCliToEnd(['dead', 'list'], env);
      expect(table.out).to.match(/^dead id\s+stream\s+entry id\s+group\s+deliveries\s+error$/m);
      const replay = await runCliToEnd(['dead', 'replay'], env);
      expect(replay.out).to.equal('replayed 1\n');
      expect((await redis.xrange(`${prefix}ev:{p1}`, '-', '+')).map(([, f]) => f)).to.deep.equal([fields]);
      await redis.xadd(`${prefix}ev:dead`, '*', 'stream', 'x', 'fields', '[]');
      expect((await runCliToEnd(['dead', 'purge'], env)).out).to.equal('purged 1\n');
      expect(await redis.exists(`${prefix}ev:dead`)).to.equal(0);
      // Nothing there: a sentence, not a bare header; an id that is no stream id: one line, exit 2; one not there: said, exit 1.
      expect((await runCliToEnd(['dead', 'list'], env)).out).to.equal('no dead letters\n');
      const nope = await runCliToEnd(['dead', 'replay', '--id', 'nope'], env);
      expect([nope.code, nope.out]).to.deep.equal([2, 'profile: --id nope: a dead id is a stream id such as 1795687489291-0 (profile dead list shows them)\n']);
      const gone = await runCliToEnd(['dead', 'replay', '--id', '1-0'], env);
      expect([gone.code, gone.out]).to.deep.equal([1, 'replayed 0; no dead letter 1-0\n']);
    } finally {
      redis.disconnect();
    }
  });

  it('fails start-up with exit code 2 and a message naming the bad tag entry', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-cfg-'));
    const file = path.join(dir, 'tags.json');
    fs.writeFileSync(file, JSON.stringify({ realtime: [{ name: 'clicks_5m', event: 'click', aggregation: 'count', window: 'five' }] }));
    const { code, out } = await runCliToEnd(['up', '--config', file, '--redis', testRedisUrl()]);
    expect(code).to.equal(2);
    expect(out).to.equal(`profile: ${file}: realtime[0] (clicks_5m): "window" must be a duration such as "30s", "5m", "24h", "7d" or a number of ms\n`);
    fs.rmSync(dir, { recursive: true });
  });

  it('Ctrl-C on `npm start` (SIGINT to the whole process group, npm included) stops cleanly: a few lines, exit 0, the embedded Redis last', async function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-ctrlc-'));
    const redisPort = await freePort();
    const root = path.join(__dirname, '..', '..', '..', '..');
    // A process group of its own, as a terminal's foreground job: the group gets the SIGINT.
    const npm = spawn('npm', ['start'], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        REDIS_URL: '',
        PROFILE_EMBEDDED_REDIS_PORT: String(redisPort),
        PROFILE_DATA_DIR: dir,
        PORT: '0',
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
      },
    });
    let out = '';
    npm.stdout!.on('data', (d) => (out += d));
    npm.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 400 && !/archive consumer started/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).to.match(/archive consumer started/);
      const [, port] = /"port":(\d+),"msg":"API listening"/.exec(out)!;
      const sse = new AbortController();
      void fetch(`http://127.0.0.1:${port}/triggers/stream`, { signal: sse.signal }).catch(() => undefined); // a client connected
      await new Promise((r) => setTimeout(r, 300));
      const before = out.length;
      process.kill(-npm.pid!, 'SIGINT');
      expect(await exited, out).to.equal(0);
      sse.abort();
      const shutdown = out.slice(before).trim().split('\n');
      expect(shutdown.length, out.slice(before)).to.be.at.most(4);
      expect(out).to.match(/"msg":"stopped"/);
      expect(out).to.not.match(/ECONNREFUSED|MaxRetriesPerRequest|read loop failed|second signal/);
      expect(await redisAnswers(`redis://127.0.0.1:${redisPort}`)).to.equal(false);
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a second `up` says the Redis it found is not its own, and when that Redis goes says so once, not at every retry', async function () {
    this.timeout(40_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-second-'));
    const redisPort = await freePort();
    const env = { REDIS_URL: '', PROFILE_EMBEDDED_REDIS_PORT: String(redisPort), PROFILE_DATA_DIR: dir, LOG_LEVEL: 'info', LOG_FORMAT: 'json' };
    const first = runCli(['up', '--port', '0'], env);
    await first.waitFor(/archive consumer started/);
    const second = runCli(['up', '--port', '0', '--consumer-name', 'second'], { ...env, PROFILE_DATA_DIR: path.join(dir, 'b') });
    const [, port] = await second.waitFor(/"port":(\d+),"msg":"API listening"/);
    await second.waitFor(/archive consumer started/);
    expect(second.output()).to.match(/"msg":"using the Redis already answering there, not started by this process: it keeps running when this process stops/);
    expect(second.output()).to.not.match(/started embedded redis-server/);
    const before = second.output().length;
    first.child.kill('SIGTERM');
    expect(await first.exited).to.equal(0);
    await new Promise((r) => setTimeout(r, 4000));
    expect((await fetch(`http://127.0.0.1:${port}/profile/someone`)).status).to.equal(503);
    const during = second.output().slice(before);
    expect(during.match(/"msg":"Redis connection lost \(main\): reconnecting; requests answer 503 meanwhile"/g), during).to.have.length(1);
    expect(during.trim().split('\n').length, during).to.be.at.most(8);
    expect(during).to.not.match(/\n\s+at /);
    second.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('`up` without a Redis starts an embedded redis-server with AOF and stops it on exit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-embedded-'));
    const redisPort = await freePort();
    const up = runCli(['up', '--port', '0'], {
      REDIS_URL: '',
      PROFILE_EMBEDDED_REDIS_PORT: String(redisPort),
      PROFILE_DATA_DIR: dir,
      LOG_LEVEL: 'info',
    });
    await up.waitFor(/API listening/);
    expect(up.output()).to.include('started embedded redis-server');
    expect(await redisAnswers(`redis://127.0.0.1:${redisPort}`)).to.equal(true);
    expect(fs.existsSync(path.join(dir, 'redis', 'appendonlydir'))).to.equal(true);
    up.child.kill('SIGINT');
    expect(await up.exited).to.equal(0);
    expect(await redisAnswers(`redis://127.0.0.1:${redisPort}`)).to.equal(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says in one line how to get Redis when none answers and redis-server is not on PATH', async () => {
    const redisPort = await freePort();
    const { code, out } = await runCliToEnd(
      ['up', '--port', '0'],
      {
        PATH: '/nonexistent',
        PROFILE_EMBEDDED_REDIS_PORT: String(redisPort),
        LOG_LEVEL: 'silent',
        PROFILE_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cli-no-redis-')), // (not ./data, a user's)
      },
      true,
    );
    expect(code).to.equal(1);
    expect(out).to.equal(
      'profile: no Redis answers on 127.0.0.1 and no redis-server is on PATH: install one (Debian/Ubuntu: sudo apt-get install redis-server; ' +
        'macOS: brew install redis), run `docker compose up -d redis`, or point REDIS_URL / --redis at a running server\n',
    );
  });

  it('every command has --help with an example; exit codes: 0 help, 2 usage and config errors, 1 runtime failures', async () => {
    const commands = ['up', 'serve', 'consume', 'archive', 'batch', 'verify', 'status', 'dead list', 'dead replay', 'dead purge', 'get', 'simulate'];
    for (const cmd of commands) {
      const { code, out } = await runCliToEnd([...cmd.split(' '), '--help']);
      expect([cmd, code]).to.deep.equal([cmd, 0]);
      expect(out, cmd).to.match(/Examples?:\n {2}\$ .*profile /);
    }
    for (const args of [['--bogus'], ['nosuch'], ['status', '--partitions', 'x'], ['status', '--watch', '0'], ['get', 'a{b}'], ['status', '--cluster', 'x']]) {
      const { code } = await runCliToEnd(args);
      expect([args.join(' '), code]).to.deep.equal([args.join(' '), 2]);
    }
    const down = await runCliToEnd(['status', '--redis', `redis://127.0.0.1:${await freePort()}`]);
    expect(down.code).to.equal(1);
    expect(down.out).to.match(/^profile: cannot connect to Redis at 127\.0\.0\.1:\d+/);
  });

  it('`consume --metrics-port` serves /metrics; `status --watch` repeats until SIGINT and exits 0; --pretty logs for people', async () => {
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), PROFILE_PARTITIONS: '2' };
    const consume = runCli(['consume', '--metrics-port', '0', '--consumer-name', 'mx'], env);
    const [, port] = await consume.waitFor(/"port":(\d+),"msg":"metrics listening on \/metrics"/);
    await consume.waitFor(/realtime consumer started/);
    // The consumer joins the group with its first read, just after it says it started.
    let metrics = '';
    for (let i = 0; i < 50 && !/^profile_group_consumers\{[^}]*ev:\{p0\}",group="realtime"\} 1$/m.test(metrics); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    }
    expect(metrics).to.match(/^profile_redis_connected 1$/m);
    expect(metrics).to.match(new RegExp(`^profile_group_consumers\\{stream="${env.PROFILE_PREFIX}ev:\\{p0\\}",group="realtime"\\} 1$`, 'm'));
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).to.equal(404);

    const watch = runCli(['status', '--watch', '1'], env);
    await watch.waitFor(/(ev:\{p1\}[^]*){2}/, 10_000); // printed twice
    watch.child.kill('SIGINT');
    expect(await watch.exited).to.equal(0);
    expect(watch.output()).to.match(/^\d{4}-\d{2}-\d{2}T/m); // piped: each report starts with its time

    consume.child.kill('SIGTERM');
    expect(await consume.exited).to.equal(0);
    const pretty = runCli(['consume', '--pretty', '--consumer-name', 'px'], env);
    await pretty.waitFor(/INFO.*realtime consumer started/);
    expect(pretty.output()).to.not.match(/^\{"level"/m);
    pretty.child.kill('SIGTERM');
    expect(await pretty.exited).to.equal(0);
  });

  it('on a terminal logs are pretty (JSON when piped or with --log-format json), and a command prints its summary without repeating it as a log line', async () => {
    const ods = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-tty-'));
    const day = path.join(ods, `dt=${new Date().toISOString().slice(0, 10)}`);
    fs.mkdirSync(day);
    fs.writeFileSync(
      path.join(day, 'part-x.ndjson'),
      `${JSON.stringify({ event_id: 'e1', user_id: 'tty-1', type: 'click', ts: Date.now() - 1000, stream_id: '1-0', ingested_at: 1 })}\nnot json\n`,
    );
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix(), ODS_DIR: ods };
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    /** The command under a pseudo-terminal (util-linux script): stdout and stderr are a TTY. */
    const onTerminal = (args: string[]) => runCliToEnd(['-qefc', [process.execPath, CLI, ...args].map(quote).join(' '), '/dev/null'], env, false, 'script');
    try {
      const tty = await onTerminal(['batch']);
      expect(tty.code, tty.out).to.equal(0);
      expect(tty.out).to.match(/WARN.*bad ODS line skipped/); // pino-pretty
      expect(tty.out).to.not.match(/\{"level"/);
      expect(tty.out).to.match(/^users {6}1 offline profiles written/m);
      expect(tty.out).to.not.include('batch run finished'); // the summary is printed once, not logged too
      const forced = await onTerminal(['batch', '--log-format', 'json']);
      // Each line starts by clearing the terminal line it lands on (the progress bar's).
      expect(forced.out).to.match(/\r\x1b\[K\{"level":40,.*"msg":"bad ODS line skipped"\}\r?$/m);
      const piped = await runCliToEnd(['batch'], env);
      expect(piped.out).to.match(/^\{"level":40,.*"msg":"bad ODS line skipped"\}$/m);
      expect(piped.out).to.not.include('batch run finished');
      const bad = await runCliToEnd(['batch', '--log-format', 'yaml'], env);
      expect(bad.code).to.equal(2);
      expect(bad.out).to.match(/--log-format <format>' argument 'yaml' is invalid. Allowed choices are auto, json, pretty/);
    } finally {
      fs.rmSync(ods, { recursive: true, force: true });
    }
  });

  it('bad dates, an empty range and a missing ODS are usage errors; a run that read no file says why', async () => {
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix() };
    const ods = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-dates-'));
    try {
      const cases: [string[], RegExp][] = [
        [
          ['batch', '--from', '2026-13-01'],
          /^error: option '--from <date>' argument '2026-13-01' is invalid\. --from 2026-13-01 is not a date of the calendar/,
        ],
        [['batch', '--from', '2026-12-07', '--to', '2026-12-01'], /^profile: --from 2026-12-07 is after --to 2026-12-01: the range holds no date$/],
        [
          ['batch', '--ods', path.join(ods, 'does-not-exist')],
          /^profile: the ODS folder .*does-not-exist does not exist: point --ods \/ ODS_DIR at the folder/,
        ],
        [
          ['training-set', '--spine-from', 'impressions', '--from', '2026-13-45', '--out', path.join(ods, 'x.parquet')],
          /^error: option '--from <date>' argument '2026-13-45' is invalid/,
        ],
      ];
      for (const [args, message] of cases) {
        const r = await runCliToEnd(args, { ...env, ODS_DIR: ods });
        expect(r.code, `${args.join(' ')}: ${r.out}`).to.equal(2);
        expect(r.out.trim().split('\n')[0], args.join(' ')).to.match(message);
        expect(r.out).to.not.match(/\n\s+at |Binder Error|NaN/);
      }
      fs.mkdirSync(path.join(ods, 'dt=2026-11-01'));
      fs.writeFileSync(path.join(ods, 'dt=2026-11-01', 'p0.ndjson'), '');
      const none = await runCliToEnd(['batch', '--from', '2026-12-01'], { ...env, ODS_DIR: ods, LOG_LEVEL: 'silent' });
      expect(none.code, none.out).to.equal(0);
      expect(none.out).to.include('profile: no ODS file between --from 2026-12-01 and --to (any); the ODS holds 1 files from 2026-11-01 to 2026-11-01');
    } finally {
      fs.rmSync(ods, { recursive: true, force: true });
    }
  });

  it('a usage error is its line and where the help is, not the whole help; exit 2', async () => {
    for (const [args, first, hint] of [
      [['batch', '--durration', '5'], "error: unknown option '--durration'", '(see `profile batch --help`)'],
      [
        ['training-set', '--spine-from', 'impressions', '--label', 'clicked=30m', '--out', 'x.parquet'],
        /^error: option '--label <label>' argument 'clicked=30m' is invalid/,
        '(see `profile training-set --help`)',
      ],
      [['nope'], "error: unknown command 'nope'", '(see `profile --help`)'],
    ] as const) {
      const r = await runCliToEnd([...args]);
      expect(r.code, r.out).to.equal(2);
      const lines = r.out.trim().split('\n');
      expect(lines.length, r.out).to.be.at.most(3);
      if (typeof first === 'string') expect(lines[0]).to.equal(first);
      else expect(lines[0]).to.match(first);
      expect(lines[lines.length - 1]).to.equal(hint);
    }
  });

  it("refuses, in one line with exit 2, a Redis whose library of the product's name holds other code", async () => {
    const own = await startPrivateRedis('foreign-library');
    try {
      const name = scriptLibrary().name;
      const admin = new Redis(own.server.url);
      await admin.call('FUNCTION', 'LOAD', `#!lua name=${name}\nredis.register_function('not_ours_${name}', function() return 1 end)`);
      admin.disconnect();
      const r = await runCliToEnd(['status'], { REDIS_URL: own.server.url });
      expect(r.code, r.out).to.equal(2);
      expect(r.out.trim().split('\n')).to.deep.equal([
        `profile: Redis at 127.0.0.1:${own.server.port} holds a function library named ${name} that is not this version's code: delete it (FUNCTION DELETE ${name}) and start again`,
      ]);
    } finally {
      await own.remove();
    }
  });

  it('every start-up failure is one line saying what failed and what to do, with its exit code', async () => {
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: uniquePrefix() };
    const busy = http.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const busyPort = String((busy.address() as { port: number }).port);
    const user = `startup-${process.pid}`;
    const admin = new Redis(testRedisUrl());
    await admin.call('ACL', 'SETUSER', user, 'on', '>right', '~*', '+@all');
    const file = path.join(os.tmpdir(), `not-a-folder-${process.pid}`);
    fs.writeFileSync(file, '');
    const badTriggers = path.join(os.tmpdir(), `bad-triggers-${process.pid}.json`);
    fs.writeFileSync(
      badTriggers,
      JSON.stringify({
        realtime: [{ name: 'clicks_5m', event: 'click', aggregation: 'count', window: '5m' }],
        triggers: [{ name: 'hot', when: [{ tag: 'clicks_1m', op: '>=', value: 3 }] }],
      }),
    );
    const url = new URL(testRedisUrl());
    try {
      const cases: [string[], Record<string, string>, number, RegExp][] = [
        [
          ['serve', '--port', busyPort],
          env,
          1,
          new RegExp(
            `^profile: port ${busyPort} on 127\\.0\\.0\\.1 is already in use \\(another profile up or serve\\?\\): stop that process or choose another --port / PORT$`,
          ),
        ],
        [['consume', '--metrics-port', busyPort], env, 1, /^profile: port \d+ on 127\.0\.0\.1 is already in use .*--metrics-port/],
        [
          ['archive', '--ods', path.join(file, 'ods')],
          env,
          2,
          /^profile: the ODS folder .* is not writable by this process \(ENOTDIR\): fix its permissions or point --ods \/ ODS_DIR at a folder it can write$/,
        ],
        [
          ['serve', '--port', '0'],
          { ...env, REDIS_URL: `redis://${user}:wrong@${url.host}` },
          1,
          /^profile: Redis at .* refused the credentials \(WRONGPASS .*\): check the user and password in --redis \/ REDIS_URL/,
        ],
        [
          ['serve', '--port', '0'],
          { ...env, REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
          1,
          /^profile: cannot connect to Redis at 127\.0\.0\.1:\d+ \(connect ECONNREFUSED .*\): is it running\? Check --redis/,
        ],
        [['serve', '--port', '0', '--host', '10.255.255.1'], env, 2, /^profile: cannot listen on 10\.255\.255\.1:0: .* check --host \/ HOST$/],
        [['serve', '--port', '0', '--config', file], env, 2, /^profile: \/.*not-a-folder-\d+: not valid JSON \(/],
        [
          ['consume', '--config', badTriggers],
          env,
          2,
          /^profile: .*: triggers\[0\] \(hot\): when\[0\]: "tag" must name a realtime tag whose value is a number \(not count_by, histogram, last_k, first_k or percentile\), or an offline tag \(/,
        ],
      ];
      for (const [args, e, code, message] of cases) {
        const r = await runCliToEnd(args, e);
        expect(r.code, `${args.join(' ')}: ${r.out}`).to.equal(code);
        const lines = r.out.trim().split('\n');
        expect(lines, `${args.join(' ')}: one line, no stack`).to.have.length(1);
        expect(lines[0]).to.match(message);
      }
    } finally {
      busy.close();
      await admin.call('ACL', 'DELUSER', user);
      await admin.quit();
      fs.rmSync(file, { force: true });
      fs.rmSync(badTriggers, { force: true });
    }
  });
});
