/**
 * Under pressure: what the product does when Redis is set up to lose data or runs out of
 * room. Real processes on private redis-servers (never the suite's shared one: these change
 * its settings).
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import Redis from 'ioredis';
import { RedisServerHandle, startRedisServer } from '../../../src/redis/embeddedServer';
import { killAllCli, runCli, runCliToEnd } from '../../helpers/cli';
import { uniquePrefix } from '../../helpers/context';

describe('under pressure (real processes, private redis-servers)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RedisServerHandle;
  let admin: Redis;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pressure-'));
    server = await startRedisServer({
      dir: path.join(dir, 'redis'),
      appendonly: false,
      extraArgs: ['--maxmemory-policy', 'allkeys-lru', '--maxmemory', '64mb'],
    });
    admin = new Redis(server.url);
  });
  after(async () => {
    await admin?.quit();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(killAllCli);

  it('every process refuses to start on a Redis that may evict keys, in one line; --allow-eviction overrides; status shows the policy', async () => {
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const env = { REDIS_URL: server.url, PROFILE_PREFIX: uniquePrefix(), ODS_DIR: path.join(dir, 'ods') };
    for (const args of [['up', '--port', '0'], ['serve', '--port', '0'], ['consume'], ['archive'], ['batch'], ['erase', 'someone']]) {
      const r = await runCliToEnd(args, env);
      expect(r.code, `${args[0]}: ${r.out}`).to.equal(2);
      const lines = r.out.trim().split('\n');
      expect(lines, `${args[0]}: one line`).to.have.length(1);
      expect(lines[0]).to.match(
        /^profile: Redis at 127\.0\.0\.1:\d+ has maxmemory-policy allkeys-lru: under memory pressure it deletes keys, .* or pass --allow-eviction \(PROFILE_ALLOW_EVICTION=1\) to run anyway$/,
      );
    }
    // Nothing was written: the refusal comes before the groups or any key.
    expect(await admin.dbsize()).to.equal(0);

    const status = await runCliToEnd(['status'], env);
    expect(status.code, status.out).to.equal(0);
    expect(status.out).to.match(
      /^Redis 127\.0\.0\.1:\d+: maxmemory-policy allkeys-lru -- MAY EVICT KEYS: acknowledged events and window state can be lost \(set noeviction\), maxmemory 64\.0 MiB, AOF off$/m,
    );
    const json = await runCliToEnd(['status', '--json'], env);
    expect(JSON.parse(json.out).redis)
      .to.have.length(1)
      .and.to.deep.include.members([
        {
          node: `127.0.0.1:${server.port}`,
          maxmemoryPolicy: 'allkeys-lru',
          maxmemory: 64 * 1024 * 1024,
          aof: false,
          usedMemory: JSON.parse(json.out).redis[0].usedMemory,
        },
      ]);
    expect(JSON.parse(json.out).redis[0].usedMemory).to.be.a('number').above(0);

    // The override starts, and says what it risks.
    const allowed = runCli(['consume', '--allow-eviction'], { ...env, LOG_LEVEL: 'info' });
    await allowed.waitFor(/realtime consumer started/);
    expect(allowed.output()).to.match(/Redis may evict keys \(--allow-eviction\)/);
    allowed.child.kill('SIGTERM');
    expect(await allowed.exited).to.equal(0);
    const byEnv = await runCliToEnd(['erase', 'someone'], { ...env, PROFILE_ALLOW_EVICTION: '1' });
    expect(byEnv.code, byEnv.out).to.equal(0);

    // noeviction: starts without a word about it.
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    const ok = runCli(['consume'], { ...env, LOG_LEVEL: 'info' });
    await ok.waitFor(/realtime consumer started/);
    expect(ok.output()).to.not.match(/evict|maxmemory/i);
    ok.child.kill('SIGTERM');
    expect(await ok.exited).to.equal(0);
    expect((await runCliToEnd(['status'], env)).out).to.match(/^Redis 127\.0\.0\.1:\d+: maxmemory-policy noeviction, maxmemory 64\.0 MiB, AOF off$/m);
  });

  it('out of memory under noeviction: 503 with Retry-After, /ready fails, the batch is retried in place (no dead letters), one log line per outage, nothing lost', async () => {
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '0');
    await admin.flushall();
    const env = { REDIS_URL: server.url, PROFILE_PREFIX: '', ODS_DIR: path.join(dir, 'ods'), LOG_LEVEL: 'info' };
    const serve = runCli(['serve', '--port', '0'], env);
    const [, port] = await serve.waitFor(/"port":(\d+),"msg":"API listening"/);
    const base = `http://127.0.0.1:${port}`;
    const now = Date.now();
    const events = Array.from({ length: 2000 }, (_, i) => ({
      user_id: `oom-u${i % 200}`,
      type: 'impression',
      ts: now - 1000 + (i % 500),
      ad_id: `ad-${i}`,
      campaign_id: `c-${i % 5}`,
    }));
    const post = (body: unknown) => fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post(events)).status).to.equal(202);

    // Redis full: writes answer OOM.
    await admin.config('SET', 'maxmemory', '1');
    const refused = await post({ user_id: 'oom-late', type: 'click', ts: Date.now() });
    expect(refused.status).to.equal(503);
    expect(refused.headers.get('retry-after')).to.equal('1');
    expect(await refused.json()).to.deep.equal({ error: 'Redis is out of memory (maxmemory reached), retry later' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).to.equal(503);
    expect(((await ready.json()) as { checks: { memory: { ok: boolean; error: string } } }).checks.memory)
      .to.deep.include({ ok: false })
      .and.to.have.property('error')
      .that.matches(/^out of memory: .* writes fail \(OOM\)$/);

    // A consumer started now reads the entries and cannot write their windows. Claims every
    // 150 ms and 2 deliveries allowed: an outage counted as deliveries would dead-letter them.
    const consume = runCli(['consume', '--claim-idle', '300', '--max-deliveries', '2'], env);
    await consume.waitFor(/realtime consumer started/);
    await consume.waitFor(/Redis cannot take the batch \(out of memory or unreachable\): retrying it in place/);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await admin.xlen('ev:dead')).to.equal(0);
    for (let i = 0; i < 5; i++) await post({ user_id: 'oom-late', type: 'click', ts: Date.now() }); // more 503s

    // Memory back: everything accepted is applied, exactly once.
    await admin.config('SET', 'maxmemory', '0');
    await consume.waitFor(/"msg":"Redis cannot take the batch \(out of memory or unreachable\): recovered"/);
    const views = async (u: number) => {
      const r = await fetch(`${base}/profile/oom-u${u}`);
      return r.status === 200 ? ((await r.json()) as { tags: { views_1h: number } }).tags.views_1h : 0;
    };
    for (let u = 0; u < 200; u++) {
      const deadline = Date.now() + 10_000;
      while ((await views(u)) < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await views(u), `oom-u${u}`).to.equal(10);
    }
    expect(await admin.xlen('ev:dead')).to.equal(0);
    expect((await post({ user_id: 'oom-late', type: 'click', ts: Date.now() })).status).to.equal(202);
    expect((await fetch(`${base}/ready`)).status).to.equal(200);

    serve.child.kill('SIGTERM');
    consume.child.kill('SIGTERM');
    expect([await serve.exited, await consume.exited]).to.deep.equal([0, 0]);
    // Logs: one line when each outage began (and one when it ended), short, without payloads.
    for (const [name, p] of [
      ['serve', serve],
      ['consume', consume],
    ] as const) {
      const lines = p.output().trim().split('\n');
      expect(
        lines.filter((l) => /cannot (serve requests|take the batch)/.test(l) && !/recovered/.test(l)),
        name,
      ).to.have.length(1);
      expect(
        lines.filter((l) => l.length > 1000),
        name,
      ).to.deep.equal([]);
      expect(p.output(), name).to.not.match(/oom-u\d|ad-\d|at parseError/);
    }
  });

  it('after a Redis restart a consumer re-reads its own pending entries at once, not after the claim time', async () => {
    const own = await startRedisServer({ dir: path.join(dir, 'restart'), appendonly: true, appendfsync: 'always' });
    const ownAdmin = new Redis(own.url);
    ownAdmin.on('error', () => undefined);
    let restarted: RedisServerHandle | undefined;
    try {
      const env = { REDIS_URL: own.url, PROFILE_PREFIX: '', ODS_DIR: path.join(dir, 'ods-restart'), LOG_LEVEL: 'info' };
      const consume = runCli(['consume', '--consumer-name', 'rt-1', '--claim-idle', '600000', '--partitions', '1'], env);
      await consume.waitFor(/realtime consumer started/);
      // Its read loop first re-reads its own pending entries, then blocks for new ones: wait
      // for that block, so the entries below are not taken by that first read (under load it
      // can come after them).
      const blockedDeadline = Date.now() + 10_000;
      while (Date.now() < blockedDeadline && !/ flags=b .* cmd=xreadgroup/.test((await ownAdmin.client('LIST')) as string))
        await new Promise((r) => setTimeout(r, 50));
      // Entries read by rt-1 and never acked (as when Redis restarts between a read and its
      // ack): the claim time (10 min) cannot rescue them in this test.
      const now = Date.now();
      // In one transaction, so rt-1's own blocking read cannot take them first.
      const tx = ownAdmin.multi();
      for (let i = 0; i < 50; i++) {
        tx.xadd(
          'ev:{p0}',
          '*',
          'event_id',
          `pend-${i}`,
          'user_id',
          'restart-u',
          'type',
          'impression',
          'ts',
          String(now - 1000 + i),
          'ad_id',
          'a',
          'campaign_id',
          'c',
        );
      }
      tx.xreadgroup('GROUP', 'realtime', 'rt-1', 'COUNT', 100, 'STREAMS', 'ev:{p0}', '>');
      await tx.exec();
      await new Promise((r) => setTimeout(r, 300));
      expect(((await ownAdmin.xpending('ev:{p0}', 'realtime')) as [number])[0]).to.equal(50);
      await own.stop();
      restarted = await startRedisServer({ dir: path.join(dir, 'restart'), appendonly: true, appendfsync: 'always', port: own.port });
      const deadline = Date.now() + 8000;
      while (Date.now() < deadline && ((await ownAdmin.xpending('ev:{p0}', 'realtime').catch(() => [1])) as [number])[0] > 0)
        await new Promise((r) => setTimeout(r, 100));
      expect(((await ownAdmin.xpending('ev:{p0}', 'realtime')) as [number])[0], consume.output()).to.equal(0);
      expect(await ownAdmin.hget('u:{restart-u}:rt', 'impression')).to.equal(String(now - 1000 + 49));
      expect(consume.output()).to.not.match(/claimed idle entries/);
      consume.child.kill('SIGTERM');
      expect(await consume.exited).to.equal(0);
    } finally {
      ownAdmin.disconnect();
      await restarted?.stop();
      await own.stop();
    }
  });
});
