/**
 * config/redis/users.acl.template on a real redis-server (--aclfile): each role runs its
 * part of the product, and is refused what it must not do.
 */
import { expect } from 'chai';
import { randomBytes } from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { createApp } from '../../../src/api/app';
import { listen } from '../../../src/api/server';
import { checkReady } from '../../../src/api/ready';
import { runBatch } from '../../../src/batch/run';
import { planTagConfigChange } from '../../../src/batch/tagChange';
import { applyTagConfigChange } from '../../../src/consumers/tagApply';
import { ArchiveConsumer } from '../../../src/consumers/archive';
import { RealtimeConsumer } from '../../../src/consumers/realtime';
import { migrateLegacyWindows } from '../../../src/consumers/migrate';
import { eraseUser } from '../../../src/profile/erasure';
import { Keys } from '../../../src/core/keys';
import { Producer } from '../../../src/producer/producer';
import { ProfileReader } from '../../../src/profile/reader';
import { RealtimeLag } from '../../../src/profile/lag';
import IORedis from 'ioredis';
import { Redis, connectRedis, loadScripts } from '../../../src/redis/client';
import { scriptLibrary } from '../../../src/lua/scripts';
import { RedisServerHandle, startRedisServer } from '../../../src/redis/embeddedServer';
import { streamStatus } from '../../../src/redis/streamGroups';
import { loadTagConfig, parseTagConfig, tagConfigVersion } from '../../../src/core/tagConfig';
import { announceProcess, recordTagConfig, runningProcesses } from '../../../src/redis/tagConfigs';
import { silentLogger } from '../../../src/core/logger';
import { shippedTagsWithTriggers } from '../../helpers/context';
import { FiringReader } from '../../../src/profile/triggers';

const ROLES = ['ingest', 'worker', 'api', 'batch'] as const;
type RoleName = (typeof ROLES)[number];
const TEMPLATE = path.join(__dirname, '..', '..', '..', '..', 'config', 'redis', 'users.acl.template');

/**
 * Renders the template as docker-compose.yml does at start: comment lines dropped (ACL
 * files allow none), each @ROLE_PASSWORD@ replaced.
 */
export function renderAcl(passwords: Record<RoleName, string>): string {
  let text = fs
    .readFileSync(TEMPLATE, 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
  for (const role of ROLES) text = text.split(`@${role.toUpperCase()}_PASSWORD@`).join(passwords[role]);
  return text;
}

describe('Redis ACL users (config/redis/users.acl.template on a real redis-server)', function () {
  this.timeout(30_000);
  let server: RedisServerHandle;
  let dir: string;
  const conns = {} as Record<RoleName, Redis>;
  const passwords = Object.fromEntries(ROLES.map((r) => [r, randomBytes(16).toString('hex')])) as Record<RoleName, string>;
  const url = (role: RoleName) => `redis://${role}:${passwords[role]}@127.0.0.1:${server.port}`;
  const keys = new Keys('');
  const tags = loadTagConfig();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acl-'));
    const acl = path.join(dir, 'users.acl');
    fs.writeFileSync(acl, renderAcl(passwords), { mode: 0o600 });
    server = await startRedisServer({ dir: path.join(dir, 'redis'), appendonly: false, extraArgs: ['--aclfile', acl] });
    for (const role of ROLES) conns[role] = await connectRedis(url(role));
  });
  after(async () => {
    for (const role of ROLES) conns[role]?.disconnect();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const refused = async (role: RoleName, args: (string | number)[]) => {
    try {
      await conns[role].call(String(args[0]), ...args.slice(1));
    } catch (err) {
      // DEBUG is refused by the server's own enable-debug-command setting before ACLs apply.
      return /NOPERM|NOAUTH|DEBUG command not allowed/.test((err as Error).message) ? 'NOPERM' : (err as Error).message;
    }
    return 'allowed';
  };

  it('has the default user off and no role with @admin, @dangerous, KEYS or EVAL', async () => {
    const text = fs.readFileSync(TEMPLATE, 'utf8');
    expect(text).to.match(/^user default off$/m);
    for (const line of text.split('\n').filter((l) => l.startsWith('user ') && !l.startsWith('user default'))) {
      expect(line).to.not.match(/\+@(all|admin|dangerous|scripting|keyspace)\b|allcommands|\+keys\b|\+eval\b|\+flushall|\+config|\+acl\b|~\*\s|allkeys/);
    }
    const anonymous = new IORedis(server.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, enableReadyCheck: false });
    anonymous.on('error', () => undefined);
    await anonymous.connect();
    await anonymous.get('x').then(
      () => expect.fail('default user must be off'),
      (err: Error) => expect(err.message).to.match(/NOAUTH|NOPERM/),
    );
    anonymous.disconnect();
  });

  it('lets each role do its part: ingest → realtime + archive (worker) → reads and status (api) → batch and erasure (batch)', async () => {
    const now = Date.now();
    const ods = path.join(dir, 'ods');
    // With a trigger: the worker decides and appends firings, the api role reads them.
    const triggers = parseTagConfig(shippedTagsWithTriggers([{ name: 'spender', when: [{ tag: 'spend_24h', op: '>=', value: 5 }] }])).triggers;
    const realtime = new RealtimeConsumer({ redis: conns.worker, keys, partitions: 2, tags: tags.realtime, triggers, consumerName: 'acl-rt' });
    const archive = new ArchiveConsumer({ redis: conns.worker, keys, partitions: 2, consumerName: 'acl-ar', odsDir: ods, trimIntervalMs: 0 });
    await realtime.init(); // the worker creates the groups
    const producer = new Producer({ redis: conns.ingest, keys, partitions: 2, maxFutureSkewMs: 60_000, maxBacklog: 1000 });
    const r = await producer.ingest([
      { event_id: 'a1', user_id: 'acl-u', type: 'purchase', ts: now - 10, amount: 5 },
      { event_id: 'a2', user_id: 'acl-u', type: 'impression', ts: now - 5, ad_id: 'ad', campaign_id: 'c' },
      { event_id: 'a3', user_id: 'acl-v', type: 'click', ts: now - 1 },
    ]);
    expect(r.ok).to.equal(true);
    expect(await realtime.drain()).to.equal(3);
    expect(await archive.drain()).to.equal(3);
    await realtime.stop();
    await archive.stop();
    // profile migrate runs as the worker: a window of the layout before panes folds into panes.
    await conns.worker.zadd(keys.legacyWindow('acl-w', 'click'), now - 2, 'old-1');
    await conns.worker.hset(keys.legacyWindowValues('acl-w', 'click'), 'old-1', '\x1f\x1f\x1f');
    expect(await migrateLegacyWindows(conns.worker, keys, tags.realtime, now)).to.deep.equal({ windows: 1, events_folded: 1 });

    const reader = new ProfileReader(conns.api, keys, tags.realtime);
    expect((await reader.read('acl-w'))!.tags).to.include({ clicks_5m: 1 });
    expect((await reader.read('acl-u'))!.tags).to.include({ purchases_24h: 1, spend_24h: 5, views_1h: 1 });
    // The worker records the tag config; the api runs the active one (it may not record
    // another) and announces itself.
    expect((await recordTagConfig(conns.worker, keys, tags)).version).to.equal(tagConfigVersion(tags));
    const other = parseTagConfig(shippedTagsWithTriggers([{ name: 'x', when: [{ tag: 'spend_24h', op: '>=', value: 1 }] }]));
    const apiActive = await recordTagConfig(conns.api, keys, other);
    expect(apiActive.version).to.equal(tagConfigVersion(tags));
    expect(await conns.api.hget(keys.tagConfigs(), `doc:${tagConfigVersion(other)}`)).to.equal(null);
    const announced = announceProcess(conns.api, keys, ['api'], apiActive.version, 'tags.json', silentLogger);
    for (let i = 0; i < 50 && (await runningProcesses(conns.api, keys)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await runningProcesses(conns.api, keys)).map((p) => p.roles)).to.deep.equal([['api']]);
    await announced.stop();
    expect(await runningProcesses(conns.api, keys)).to.deep.equal([]);
    const firings = await FiringReader.open(conns.api, keys, 2, ['0-0', '0-0']);
    expect((await firings.next(1000)).map((f) => [f.trigger, f.user_id, f.values])).to.deep.equal([['spender', 'acl-u', { spend_24h: 5 }]]);
    firings.close();
    expect((await streamStatus(conns.api, keys, 2)).map((p) => p.length)).to.deep.equal([0, 0]); // trimmed by the worker
    await conns.worker.call('FUNCTION', 'FLUSH').catch(() => undefined); // (refused: nobody may flush)
    expect((await checkReady(conns.api, keys, 2)).ready).to.equal(true);

    const summary = await runBatch({ redis: conns.batch, keys, tags, odsDir: ods, asOf: now });
    expect(summary.users_written).to.equal(2);
    expect((await reader.read('acl-u'))!.tags).to.include({ ltv_total: 5, purchases_total: 1 });
    expect(await eraseUser(conns.batch, keys, 'acl-v')).to.be.greaterThan(0);
    expect(await reader.read('acl-v')).to.equal(null);

    // `profile tags apply` runs as batch: a change that needs a backfill (a 7-day click
    // count) replays the ODS into a new generation, then switches.
    const doc = JSON.parse(JSON.stringify(tags.document)) as { realtime: Record<string, unknown>[] };
    doc.realtime.push({ name: 'clicks_7d', event: 'click', aggregation: 'count', window: '7d' });
    const next = parseTagConfig(doc);
    const plan = await planTagConfigChange(conns.batch, keys, next, tags, ods);
    const applied = await applyTagConfigChange(conns.batch, keys, next, plan, ods, { partitions: 2, waitMs: 0 });
    expect([applied.how, applied.backfill!.generation]).to.deep.equal(['backfill', 1]);
    reader.setTags(next.realtime, undefined, 1);
    expect((await reader.read('acl-u'))!.tags).to.include({ purchases_24h: 1, spend_24h: 5, views_1h: 1, clicks_7d: 0 });
    expect(await reader.read('acl-v')).to.equal(null); // erased: not replayed
  });

  it('serves the API with one connection per role: events as ingest, reads as api, erasure as batch', async () => {
    // The lag sampling and wait=applied read the groups' progress as api.
    const lag = new RealtimeLag(conns.api, keys, 2);
    await lag.start();
    const app = createApp({
      redis: conns.api,
      adminRedis: conns.batch,
      keys,
      partitions: 2,
      producer: new Producer({ redis: conns.ingest, keys, partitions: 2, maxFutureSkewMs: 60_000, watchRedis: conns.api }),
      reader: new ProfileReader(conns.api, keys, tags.realtime).trackLag(lag),
      maxEventsPerRequest: 10,
      maxProfilesPerRequest: 10,
      maxBodyBytes: 1 << 20,
    });
    const http = await listen(app, '127.0.0.1', 0);
    const base = `http://127.0.0.1:${http.port}`;
    try {
      const post = await fetch(`${base}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: 'acl-w', type: 'click' }),
      });
      expect(post.status).to.equal(202);
      const read = await fetch(`${base}/profile/acl-u`);
      expect(read.status).to.equal(200);
      expect(((await read.json()) as { meta: { lag_ms: unknown } }).meta.lag_ms).to.be.a('number');
      const waited = await fetch(`${base}/events?wait=applied&timeout_ms=50`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: 'acl-w', type: 'click' }),
      });
      expect(waited.status).to.equal(202);
      expect(((await waited.json()) as { applied: unknown }).applied).to.be.a('boolean');
      expect((await fetch(`${base}/status`)).status).to.equal(200);
      expect((await fetch(`${base}/ready`)).status).to.equal(200);
      expect((await fetch(`${base}/profile/acl-u`, { method: 'DELETE' })).status).to.equal(200);
      expect((await fetch(`${base}/profile/acl-u`)).status).to.equal(404);
      // The functions gone (a Redis without persistence restarted, before any worker is back):
      // the api user may not load them, so reads answer 503 until a worker does.
      await conns.worker.call('FUNCTION', 'DELETE', scriptLibrary().name);
      const waiting = await fetch(`${base}/profile/acl-w`);
      expect([waiting.status, waiting.headers.get('retry-after')]).to.deep.equal([503, '1']);
      expect(((await waiting.json()) as { error: string }).error).to.match(/functions are not loaded yet .*retry later/);
      expect((await fetch(`${base}/ready`)).status).to.equal(503);
      await loadScripts(conns.worker);
      expect((await fetch(`${base}/profile/acl-w`)).status).to.equal(200);
    } finally {
      await lag.stop();
      await http.close();
    }
  });

  it('refuses every role FLUSHALL, CONFIG, KEYS, EVAL, and other admin or dangerous commands', async () => {
    const denied: (string | number)[][] = [
      ['FLUSHALL'],
      ['FLUSHDB'],
      ['CONFIG', 'GET', '*'],
      ['CONFIG', 'SET', 'dir', '/tmp'],
      ['KEYS', '*'],
      ['EVAL', 'return 1', 0],
      ['EVAL', "return redis.call('GET', 'x')", 0],
      ['SCRIPT', 'FLUSH'],
      ['ACL', 'LIST'],
      ['MONITOR'],
      ['DEBUG', 'SLEEP', 0],
      ['CLIENT', 'KILL', 'ID', 1],
      ['CLIENT', 'LIST'],
      ['SAVE'],
      ['REPLICAOF', 'NO', 'ONE'],
      ['MODULE', 'LIST'],
      ['FUNCTION', 'FLUSH'],
      ['SET', 'elsewhere', '1'],
      ['GET', 'elsewhere'],
    ];
    for (const role of ROLES) {
      for (const args of denied) expect([role, ...args, await refused(role, args)]).to.deep.equal([role, ...args, 'NOPERM']);
    }
    // INFO, the one @dangerous command: the roles that start processes read maxmemory-policy
    // with it (a policy that evicts keys is refused at start); the producer's user may not.
    expect(await refused('ingest', ['INFO', 'memory'])).to.equal('NOPERM');
    for (const role of ['worker', 'api', 'batch'] as const) expect(await conns[role].info('memory')).to.match(/^maxmemory_policy:noeviction\r?$/m);
  });

  it('keeps each role to its own keys and commands; a loaded script cannot do more than its user', async () => {
    const cases: [RoleName, (string | number)[]][] = [
      ['ingest', ['XREADGROUP', 'GROUP', 'realtime', 'x', 'STREAMS', 'ev:{p0}', '>']],
      ['ingest', ['HGETALL', 'u:{acl-u}:off']],
      ['ingest', ['XADD', 'ev:dead', '*', 'a', 'b']],
      ['ingest', ['EVALSHA', '0'.repeat(40), 0]],
      ['ingest', ['FCALL', 'anything', 0]],
      ['api', ['FUNCTION', 'LOAD', "#!lua name=mine\nredis.register_function('mine', function() return 1 end)"]],
      ['api', ['FUNCTION', 'DELETE', 'anything']],
      ['batch', ['FUNCTION', 'LOAD', "#!lua name=mine\nredis.register_function('mine', function() return 1 end)"]],
      ['api', ['HSET', 'u:{acl-u}:off', 'ltv_total', '1e9']],
      ['api', ['XADD', 'ev:{p0}', '*', 'a', 'b']],
      ['api', ['DEL', 'u:{acl-u}:rt']],
      ['api', ['SET', 'batch:lock', 'x']],
      // The api user announces itself (cfg:{tags}:procs) but may not change the active tag config.
      ['api', ['HSET', 'cfg:{tags}', 'active', 'x']],
      ['api', ['HSET', 'u:{acl-u}:off', 'ltv_total', '1']],
      ['worker', ['SET', 'batch:lock', 'x']],
      ['worker', ['ZADD', 'erasures', 1, 'someone']],
      ['worker', ['CLIENT', 'UNBLOCK', 1]],
      ['batch', ['XADD', 'ev:{p0}', '*', 'a', 'b']],
      ['batch', ['XREADGROUP', 'GROUP', 'realtime', 'x', 'STREAMS', 'ev:{p0}', '>']],
    ];
    for (const [role, args] of cases) expect([role, ...args, await refused(role, args)]).to.deep.equal([role, ...args, 'NOPERM']);
    // Only the worker loads functions; what a function calls is checked against its
    // caller's own permissions: a writing function run by the api user writes nothing.
    await conns.worker.call(
      'FUNCTION',
      'LOAD',
      "#!lua name=acltest\nredis.register_function{function_name='acltest_w', flags={'no-writes'}, callback=function(k) return redis.call('HSET', k[1], 'ltv_total', '1e9') end}",
    );
    expect(await refused('api', ['FCALL', 'acltest_w', 1, 'u:{acl-w}:off'])).to.equal('NOPERM');
    expect(await conns.api.call('FCALL_RO', 'acltest_w', 1, 'u:{acl-w}:off').catch((err: Error) => err.message)).to.match(
      /user executing the script can't (run this command|access at least one of the keys)/,
    );
    expect(await conns.batch.exists('u:{acl-w}:off')).to.equal(0);
  });
});
