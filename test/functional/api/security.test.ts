import { expect } from 'chai';
import fs from 'fs';
import net from 'net';
import { request as httpRequest } from 'http';
import os from 'os';
import path from 'path';
import { HttpServerHandle } from '../../../src/api/server';
import type { AppOptions } from '../../../src/api/app';
import { ArchiveConsumer } from '../../../src/consumers/archive';
import { runBatch } from '../../../src/batch/run';
import { listOdsFiles } from '../../../src/ods/files';
import { parseApiKeys } from '../../../src/core/apiKeys';
import { ConfigError } from '../../../src/core/errors';
import { Pipeline, T0, makePipeline, serveApp, testRedisUrl } from '../../helpers/context';
import { runCliToEnd } from '../../helpers/cli';

const KEYS = { ingest: 'ingest-key-0123456789', read: 'read-key-0123456789ab', admin: 'admin-key-0123456789a' };

describe('security: API keys, limits, headers, hostile parsing, erasure (real Redis, real HTTP)', function () {
  this.timeout(30_000);
  let p: Pipeline;
  let http: HttpServerHandle;
  let base: string;

  async function start(extra: Partial<AppOptions> = {}) {
    ({ http, base } = await serveApp(p, {
      maxEventsPerRequest: 100,
      maxProfilesPerRequest: 10,
      maxBodyBytes: 256 * 1024,
      apiKeys: parseApiKeys(`${KEYS.ingest}:ingest,${KEYS.read}:read,${KEYS.admin}:admin`),
      ...extra,
    }));
  }
  beforeEach(async () => {
    p = await makePipeline({ partitions: 2 });
  });
  afterEach(async () => {
    await http?.close();
    await p.close();
  });

  const req = (method: string, route: string, key?: keyof typeof KEYS, body?: string, type = 'application/json') =>
    fetch(`${base}${route}`, {
      method,
      body,
      headers: { ...(key ? { authorization: `Bearer ${KEYS[key]}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
    });
  const event = (extra = {}) => JSON.stringify({ user_id: 'sec-1', type: 'click', ts: T0, ...extra });

  it('parses key specs and refuses bad ones', () => {
    expect(parseApiKeys('aaaaaaaaaaaaaaaa:read, bbbbbbbbbbbbbbbb:admin')).to.deep.equal([
      { key: 'aaaaaaaaaaaaaaaa', role: 'read' },
      { key: 'bbbbbbbbbbbbbbbb', role: 'admin' },
    ]);
    for (const bad of ['short:read', 'aaaaaaaaaaaaaaaa:root', 'aaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaaa:read,aaaaaaaaaaaaaaaa:admin', 'a a a a a a a a a a:read']) {
      expect(() => parseApiKeys(bad), bad).to.throw(ConfigError);
    }
  });

  it('requires a key with the right role on every route but /health: 401 without or with an unknown key, 403 for the wrong role', async () => {
    await start();
    expect((await req('GET', '/health')).status).to.equal(200);
    for (const [method, route, body] of [
      ['GET', '/profile/sec-1'],
      ['POST', '/events', event()],
      ['GET', '/status'],
      ['GET', '/metrics'],
      ['GET', '/ready'],
      ['GET', '/openapi.json'],
      ['DELETE', '/profile/sec-1'],
      ['GET', '/nowhere'],
    ] as const) {
      const res = await req(method, route, undefined, body);
      expect([method, route, res.status]).to.deep.equal([method, route, 401]);
      expect(res.headers.get('www-authenticate')).to.equal('Bearer');
      expect(((await res.json()) as { error: string }).error).to.match(/Authorization: Bearer/);
    }
    const nearly = await fetch(`${base}/profile/sec-1`, { headers: { authorization: `Bearer ${KEYS.read.slice(0, -1)}x` } });
    expect(nearly.status).to.equal(401);
    expect((await fetch(`${base}/profile/sec-1`, { headers: { authorization: KEYS.read } })).status).to.equal(401); // no "Bearer "

    expect((await req('POST', '/events', 'read', event())).status).to.equal(403);
    expect((await req('POST', '/events', 'ingest', event())).status).to.equal(202);
    expect((await req('GET', '/profile/sec-1', 'ingest')).status).to.equal(403);
    await p.consumer.drain();
    expect((await req('GET', '/profile/sec-1', 'read')).status).to.equal(200);
    expect((await req('POST', '/profiles', 'read', JSON.stringify({ user_ids: ['sec-1'] }))).status).to.equal(200);
    const forbidden = await req('DELETE', '/profile/sec-1', 'read');
    expect(forbidden.status).to.equal(403);
    expect(((await forbidden.json()) as { error: string }).error).to.equal("this key's role (read) may not DELETE /profile/sec-1: it needs admin");
    expect((await req('POST', '/batch', 'ingest', '{}')).status).to.equal(403);
    for (const [method, route, body] of [
      ['POST', '/events', event({ event_id: 'adm' })],
      ['GET', '/profile/sec-1'],
      ['GET', '/status'],
      ['DELETE', '/profile/sec-1'],
    ] as const) {
      expect([method, route, (await req(method, route, 'admin', body)).status]).to.deep.equal([method, route, 200 + (method === 'POST' ? 2 : 0)]);
    }
  });

  it('checks the role of the route express serves, however the request spells its path (case, trailing slash, absolute-form)', async () => {
    await start();
    const raw = (method: string, target: string, key: keyof typeof KEYS) =>
      new Promise<number>((resolve, reject) => {
        const r = httpRequest({ host: '127.0.0.1', port: http.port, method, path: target, headers: { authorization: `Bearer ${KEYS[key]}` } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        r.on('error', reject);
        r.end();
      });
    for (const target of ['/PROFILE/sec-1', '/Profile/sec-1', '/profile/sec-1/', `http://127.0.0.1:${http.port}/profile/sec-1`, '/profile/sec-1#x']) {
      expect([target, await raw('DELETE', target, 'read')]).to.deep.equal([target, 403]);
    }
    expect(await raw('POST', '/EVENTS', 'read')).to.equal(403);
    expect(await raw('POST', '/Batch/', 'ingest')).to.equal(403);
    expect((await req('GET', '/HEALTH')).status).to.equal(200); // public under any spelling, as it is served
    expect((await req('GET', '/PROFILE/sec-1', 'ingest')).status).to.equal(403);
  });

  it('rate-limits per key with 429 and Retry-After, and lets the key through again after a second', async () => {
    await start({ rateLimitPerS: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await req('GET', '/profile/nobody', 'read')).status);
    expect(statuses.slice(0, 5)).to.deep.equal([404, 404, 404, 404, 404]);
    expect(statuses.slice(5)).to.deep.equal([429, 429, 429]);
    const limited = await req('GET', '/profile/nobody', 'read');
    expect(limited.headers.get('retry-after')).to.equal('1');
    expect((await req('GET', '/profile/nobody', 'admin')).status).to.equal(404); // another key has its own budget
    expect((await req('GET', '/health')).status).to.equal(200); // never limited
    await new Promise((r) => setTimeout(r, 1100));
    expect((await req('GET', '/profile/nobody', 'read')).status).to.equal(404);
  });

  it('refuses a declared oversized body at once and closes the connection without reading it', async () => {
    await start();
    const socket = net.connect(http.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    let reply = '';
    socket.on('data', (d) => (reply += d));
    const closed = new Promise((r) => socket.once('close', r));
    const started = Date.now();
    socket.write(
      `POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.ingest}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"user_id":`,
    );
    await closed;
    expect(Date.now() - started).to.be.lessThan(2000);
    expect(reply).to.match(/^HTTP\/1\.1 413 /);
    expect(reply.toLowerCase()).to.include('connection: close');
    expect(reply).to.include('{"error":"body over 262144 bytes"}');
  });

  it('sets security headers on the fast profile path and on express routes', async () => {
    await start();
    for (const route of ['/profile/nobody', '/status', '/health']) {
      const res = await req('GET', route, 'read');
      expect(res.headers.get('x-content-type-options'), route).to.equal('nosniff');
      expect(res.headers.get('content-security-policy'), route).to.include("default-src 'none'");
      expect(res.headers.get('x-frame-options'), route).to.equal('SAMEORIGIN');
      expect(res.headers.get('x-powered-by'), route).to.equal(null);
    }
  });

  it('rejects prototype-pollution keys, unknown fields, overlong NDJSON lines, and shows hostile field names escaped', async () => {
    await start();
    const polluting = '{"user_id":"u","type":"click","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}';
    const res = await req('POST', '/events', 'ingest', polluting);
    expect(res.status).to.equal(400);
    const fields = ((await res.json()) as { errors: { field: string; message: string }[] }).errors.map((e) => [e.field, e.message]);
    expect(fields).to.deep.include.members([
      ['__proto__', 'unknown field'],
      ['constructor', 'unknown field'],
    ]);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const line = JSON.stringify({ user_id: 'u', type: 'click', ad_id: 'a'.repeat(70_000) });
    const long = await req('POST', '/events', 'ingest', line, 'application/x-ndjson');
    expect(long.status).to.equal(400);
    expect(await long.json()).to.deep.equal({ errors: [{ index: 0, field: '', message: 'line 1: longer than 65536 characters' }] });
    const hostile = await req('POST', '/events', 'ingest', JSON.stringify({ user_id: 'u', type: 'click', 'x\u001b[31m\u0000': 1 }));
    expect(((await hostile.json()) as { errors: { field: string }[] }).errors[0].field).to.equal('x\\u001b[31m\\u0000');
    for (const s of p.keys.streams(2)) expect(await p.redis.xlen(s)).to.equal(0);
  });

  it('erases a user end to end: keys gone at once, stream leftovers skipped, batch skips, --purge-ods removes them from the ODS', async () => {
    await start();
    const ods = fs.mkdtempSync(path.join(os.tmpdir(), 'erase-ods-'));
    try {
      p.clock.now = Date.now();
      const t = p.clock.now - 60_000;
      const events = ['gone', 'stays'].flatMap((u) => [0, 1, 2].map((i) => ({ event_id: `${u}-${i}`, user_id: u, type: 'purchase', ts: t + i, amount: 10 })));
      expect((await req('POST', '/events', 'ingest', JSON.stringify(events))).status).to.equal(202);
      await p.consumer.drain();
      const archiver = new ArchiveConsumer({ redis: p.redis, keys: p.keys, partitions: 2, consumerName: 'arch-e', odsDir: ods, trimIntervalMs: 0 });
      await archiver.drain();
      await archiver.stop();
      await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: p.clock.now });
      expect((await req('GET', '/profile/gone', 'read')).status).to.equal(200);

      const erased = await req('DELETE', '/profile/gone', 'admin');
      expect(erased.status).to.equal(200);
      const body = (await erased.json()) as { keys_deleted: number; erased_at: number };
      expect(body.keys_deleted).to.equal(4); // w + wv of purchases, rt, off
      expect((await req('GET', '/profile/gone', 'read')).status).to.equal(404);
      const [, left] = await p.redis.scan('0', 'MATCH', `${p.keys.prefix}u:{gone}:*`, 'COUNT', 10_000);
      expect(left).to.deep.equal([]);

      // An old event of the user still on its way (sent again, or late) is skipped by the realtime consumer.
      await p.producer.ingest([{ event_id: 'gone-late', user_id: 'gone', type: 'click', ts: t + 5 }]);
      await p.consumer.drain();
      expect((await req('GET', '/profile/gone', 'read')).status).to.equal(404);
      const summary = await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: p.clock.now });
      expect(summary.erased_events).to.equal(3);
      expect(await p.redis.exists(p.keys.offline('gone'))).to.equal(0);
      expect(Number(await p.redis.hget(p.keys.offline('stays'), 'ltv_total'))).to.equal(30);

      const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, PROFILE_PARTITIONS: '2', ODS_DIR: ods };
      const purge = await runCliToEnd(['erase', '--purge-ods'], env);
      expect(purge.code, purge.out).to.equal(0);
      expect(purge.out).to.include('3 lines removed from 1 files');
      const lines = listOdsFiles(ods).flatMap((f) => fs.readFileSync(f.path, 'utf8').split('\n').filter(Boolean));
      expect(lines.map((l) => JSON.parse(l).user_id)).to.deep.equal(['stays', 'stays', 'stays']);

      // An event stamped after the erasure is new data.
      await p.producer.ingest([{ event_id: 'back-1', user_id: 'gone', type: 'click', ts: body.erased_at + 1 }]);
      p.clock.now = body.erased_at + 10;
      await p.consumer.drain();
      expect(((await (await req('GET', '/profile/gone', 'read')).json()) as { tags: Record<string, number> }).tags.clicks_24h).to.equal(1);
    } finally {
      fs.rmSync(ods, { recursive: true, force: true });
    }
  });

  it('`profile erase --purge-ods` refuses while an archiver is active, before erasing anything', async () => {
    await start();
    const ods = fs.mkdtempSync(path.join(os.tmpdir(), 'erase-ods-'));
    const archiver = new ArchiveConsumer({
      redis: p.redis,
      keys: p.keys,
      partitions: 2,
      consumerName: 'arch-live',
      odsDir: ods,
      trimIntervalMs: 0,
      blockMs: 200,
    });
    await archiver.start();
    try {
      const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, PROFILE_PARTITIONS: '2', ODS_DIR: ods };
      await p.redis.hset(p.keys.offline('someone'), 'ltv_total', '5');
      const r = await runCliToEnd(['erase', 'someone', '--purge-ods'], env);
      expect(r.code).to.equal(1);
      expect(r.out).to.not.include('erased someone');
      expect(r.out).to.include('archivers are active (arch-live)').and.include('nothing was erased');
      expect(await p.redis.exists(p.keys.offline('someone'))).to.equal(1);
      expect(await p.redis.zscore(p.keys.erasures(), 'someone')).to.equal(null);
    } finally {
      await archiver.stop();
      fs.rmSync(ods, { recursive: true, force: true });
    }
  });
});
