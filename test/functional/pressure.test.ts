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
import { RedisServerHandle, startRedisServer } from '../../src/redis/embeddedServer';
import { killAllCli, runCli, runCliToEnd } from '../helpers/cli';
import { uniquePrefix } from '../helpers/context';

describe('under pressure (real processes, private redis-servers)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RedisServerHandle;
  let admin: Redis;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pressure-'));
    server = await startRedisServer({ dir: path.join(dir, 'redis'), appendonly: false, extraArgs: ['--maxmemory-policy', 'allkeys-lru', '--maxmemory', '64mb'] });
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
      expect(lines[0]).to.match(/^profile: Redis at 127\.0\.0\.1:\d+ has maxmemory-policy allkeys-lru: under memory pressure it deletes keys, .* or pass --allow-eviction \(PROFILE_ALLOW_EVICTION=1\) to run anyway$/);
    }
    // Nothing was written: the refusal comes before the groups or any key.
    expect(await admin.dbsize()).to.equal(0);

    const status = await runCliToEnd(['status'], env);
    expect(status.code, status.out).to.equal(0);
    expect(status.out).to.match(/^Redis 127\.0\.0\.1:\d+: maxmemory-policy allkeys-lru -- MAY EVICT KEYS: acknowledged events and window state can be lost \(set noeviction\), maxmemory 64\.0 MiB, AOF off$/m);
    const json = await runCliToEnd(['status', '--json'], env);
    expect(JSON.parse(json.out).redis).to.deep.equal([{ node: `127.0.0.1:${server.port}`, maxmemoryPolicy: 'allkeys-lru', maxmemory: 64 * 1024 * 1024, aof: false }]);

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
});
