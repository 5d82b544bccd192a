/**
 * Property-based fuzzing of the real API (fast-check): generated hostile requests — bad
 * JSON, huge numbers, deep nesting, ids with braces, colons, unicode, NUL, CRLF, Lua-looking
 * and path-traversal text, hostile headers — each must get a 4xx with a clear message;
 * afterwards the server is up, Redis holds no key outside the product's prefix, no file
 * appeared outside the ODS directory, and neither the script cache nor the function libraries grew.
 * FUZZ_RUNS (default 10000) and FUZZ_SEED (default 20261126) control the run.
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import fc from 'fast-check';
import { createApp } from '../../../src/api/app';
import { HttpServerHandle, listen } from '../../../src/api/server';
import { BatchLauncher } from '../../../src/batch/launcher';
import { ID_PATTERN } from '../../../src/core/event';
import { Keys } from '../../../src/core/keys';
import { Producer } from '../../../src/producer/producer';
import { ProfileReader } from '../../../src/profile/reader';
import { Redis, connectRedis } from '../../../src/redis/client';
import { RedisServerHandle, startRedisServer } from '../../../src/redis/embeddedServer';
import { DEFAULT_TAGS_FILE, loadTagConfig } from '../../../src/core/tagConfig';
import { parseApiKeys } from '../../../src/core/apiKeys';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const ADMIN = 'fuzz-admin-key-0123456789';
const PREFIX = 'fz:';

/** Strings an attacker would try: each is not a valid id on its own. */
const NASTY = [
  '{user}',
  'a}{b',
  '{',
  '}',
  'a b',
  'a\u0000b',
  'a\r\nSet-Cookie: x=1',
  '\r\n\r\nGET / HTTP/1.1',
  '../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '/tmp/evil',
  'redis.call("FLUSHALL")',
  "'; redis.call('CONFIG','SET','dir','/') --",
  ']] .. redis.call("KEYS","*") .. [[',
  '\u202eevil',
  'ü',
  '😀',
  '',
  'x'.repeat(129),
  '%00',
  '%2e%2e%2f',
  '__proto__',
  'constructor',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  '\t',
  '\u0007',
];
const nastyString = fc
  .oneof(
    fc.constantFrom(...NASTY),
    fc.tuple(fc.constantFrom(...NASTY), fc.string({ maxLength: 20 })).map(([a, b]) => a + b),
    fc.string({ unit: 'binary', maxLength: 40 }),
  )
  .filter((s) => !ID_PATTERN.test(s)); // never a valid id: nothing may be accepted
/** Keys that would pollute prototypes if merged into an object. */
const pollutingKey = fc.constantFrom('__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty');
const anyJson = fc.jsonValue({ maxDepth: 4 });
const hugeNumber = fc.constantFrom('1e999', '-1e999', '1' + '0'.repeat(400), 'NaN', 'Infinity', '-1', '9007199254740993', '1.5');
const type = fc.constantFrom('impression', 'click', 'purchase');

/** An event with at least one invalid part (so nothing is ever accepted). */
const badEvent = fc.oneof(
  fc.record({ user_id: nastyString, type }),
  fc.record({ user_id: fc.constant('ok-user'), type: fc.oneof(nastyString, anyJson) }),
  fc.record({
    user_id: fc.constant('ok-user'),
    type,
    ts: fc.oneof(nastyString, fc.double({ noInteger: true }), fc.constant(-1), fc.constant(8.64e15 + 1), fc.boolean()),
  }),
  fc.record({
    user_id: fc.constant('ok-user'),
    type: fc.constant('purchase'),
    amount: fc.oneof(
      fc.constant(-1),
      nastyString,
      fc.constant(null),
      anyJson.filter((v) => typeof v !== 'number'),
    ),
  }),
  fc.record({ user_id: fc.constant('ok-user'), type, event_id: nastyString }),
  fc.record({
    user_id: fc.constant('ok-user'),
    type,
    ad_id: fc.oneof(
      nastyString,
      anyJson.filter((v) => typeof v !== 'string'),
    ),
  }),
  fc.record({ user_id: fc.constant('ok-user'), type, currency: nastyString }),
  fc
    .tuple(fc.oneof(nastyString, pollutingKey), anyJson)
    .map(([k, v]) => JSON.parse(`{"user_id":"ok-user","type":"click",${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}}`)),
);

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}
const auth = { authorization: `Bearer ${ADMIN}` };
const jsonHeaders = { ...auth, 'content-type': 'application/json' };
/** Percent-encodes every UTF-8 byte (lone surrogates become U+FFFD, as on the wire). */
const enc = (s: string) => Buffer.from(s, 'utf8').toString('hex').replace(/../g, '%$&');
const deep = (n: number, open: string, close: string) => open.repeat(n) + close.repeat(n);

const request: fc.Arbitrary<FuzzRequest> = fc.oneof(
  badEvent.map((e) => ({ method: 'POST', path: '/events', headers: jsonHeaders, body: JSON.stringify(e) })),
  fc.array(badEvent, { minLength: 1, maxLength: 5 }).map((es) => ({ method: 'POST', path: '/events', headers: jsonHeaders, body: JSON.stringify(es) })),
  fc.array(badEvent, { minLength: 1, maxLength: 5 }).map((es) => ({
    method: 'POST',
    path: '/events',
    headers: { ...auth, 'content-type': 'application/x-ndjson' },
    body: es.map((e) => JSON.stringify(e)).join('\n'),
  })),
  fc
    .string({ maxLength: 200 })
    .filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return s.trim() !== '';
      }
    })
    .map((s) => ({ method: 'POST', path: '/events', headers: jsonHeaders, body: s })),
  hugeNumber.map((n) => ({ method: 'POST', path: '/events', headers: jsonHeaders, body: `{"user_id":"ok-user","type":"purchase","ts":${n},"amount":${n}}` })),
  fc.integer({ min: 10, max: 20_000 }).map((d) => ({ method: 'POST', path: '/events', headers: jsonHeaders, body: deep(d, '[', ']') })),
  fc.integer({ min: 10, max: 5_000 }).map((d) => ({
    method: 'POST',
    path: '/events',
    headers: jsonHeaders,
    body: `{"user_id":"ok-user","type":"click","ad_id":${deep(d, '{"a":', '}').replace(/\}$/, '1}')}`,
  })),
  nastyString.map((s) => ({ method: 'GET', path: `/profile/${enc(s)}`, headers: auth })),
  nastyString.map((s) => ({ method: 'GET', path: `/profile/${s.replace(/[\s\u0000-\u001f\u007f-\uffff]/g, (c) => enc(c))}`, headers: auth })),
  nastyString.map((s) => ({ method: 'DELETE', path: `/profile/${enc(s)}`, headers: auth })),
  fc
    .array(fc.oneof(nastyString, anyJson), { minLength: 1, maxLength: 5 })
    .filter((ids) => ids.some((x) => typeof x !== 'string' || !ID_PATTERN.test(x)))
    .map((ids) => ({ method: 'POST', path: '/profiles', headers: jsonHeaders, body: JSON.stringify({ user_ids: ids }) })),
  fc
    .oneof(
      fc.record({ colour: anyJson }),
      fc.record({ as_of: fc.oneof(nastyString, fc.constant(-5), fc.double({ noInteger: true })) }),
      fc.record({ from: nastyString }),
      fc.record({ windows: fc.oneof(nastyString, fc.integer()) }),
    )
    .map((b) => ({ method: 'POST', path: '/batch', headers: jsonHeaders, body: JSON.stringify(b) })),
  fc.tuple(fc.constantFrom('POST', 'GET', 'PUT', 'PATCH', 'DELETE'), nastyString).map(([method, s]) => ({ method, path: `/${enc(s)}/../x`, headers: auth })),
  fc
    .tuple(
      fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7x'),
      fc.string({ maxLength: 50 }),
    )
    .filter(([t]) => !t.startsWith('application/json'))
    .map(([t, b]) => ({ method: 'POST', path: '/events', headers: { ...auth, 'content-type': t }, body: b })),
  fc
    .constantFrom(
      'Bearer',
      'Bearer ',
      `Bearer ${ADMIN}x`,
      `bearer ${ADMIN}`,
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      'Bearer ' + 'a'.repeat(600),
      `Bearer ${ADMIN.slice(0, -1)}`,
    )
    .map((h) => ({ method: 'GET', path: '/status', headers: { authorization: h } })),
  fc.string({ maxLength: 3000 }).map((s) => ({
    method: 'POST',
    path: '/events',
    headers: jsonHeaders,
    body: JSON.stringify({ user_id: 'ok-user', type: 'click', ad_id: 'x'.repeat(129) + s }),
  })),
);

describe(`fuzzing the API with ${RUNS} hostile requests (fast-check, seed ${SEED}, real Redis)`, function () {
  this.timeout(Math.max(120_000, RUNS * 20));
  let server: RedisServerHandle;
  let redis: Redis;
  let http: HttpServerHandle;
  let dir: string;
  let ods: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));
    ods = path.join(dir, 'ods');
    fs.mkdirSync(ods);
    server = await startRedisServer({ dir: path.join(dir, 'redis'), appendonly: false });
    redis = await connectRedis(server.url);
    const keys = new Keys(PREFIX);
    const tags = loadTagConfig();
    const app = createApp({
      redis,
      keys,
      partitions: 2,
      reader: new ProfileReader(redis, keys, tags.realtime),
      producer: new Producer({ redis, keys, partitions: 2, maxFutureSkewMs: 300_000 }),
      batch: new BatchLauncher({
        redis,
        keys,
        child: {
          target: { redisUrl: server.url },
          prefix: PREFIX,
          tags: loadTagConfig().document,
          tagsSource: DEFAULT_TAGS_FILE,
          odsDir: ods,
          logLevel: 'info',
        },
      }),
      maxEventsPerRequest: 100,
      maxProfilesPerRequest: 10,
      maxBodyBytes: 64 * 1024,
      apiKeys: parseApiKeys(`${ADMIN}:admin`),
    });
    http = await listen(app, '127.0.0.1', 0);
  });
  after(async () => {
    await http?.close();
    redis?.disconnect();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers every one with a 4xx and a clear message; the server stays up; no key, file or script appears', async () => {
    const base = `http://127.0.0.1:${http.port}`;
    await fetch(`${base}/profile/warm-up`, { headers: auth }); // loads the functions once
    const scriptsBefore = Number(/number_of_cached_scripts:(\d+)/.exec(await redis.info('memory'))![1]);
    const librariesBefore = ((await redis.call('FUNCTION', 'LIST')) as unknown[]).length;
    const repoBefore = fs.readdirSync(process.cwd()).sort();
    const tmpEntries = () => fs.readdirSync(dir).sort();
    const statuses = new Map<number, number>();
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await fetch(`${base}${r.path}`, { method: r.method, headers: r.headers, body: r.body });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status < 400 || res.status >= 500) throw new Error(`${r.method} ${r.path} answered ${res.status}: ${text.slice(0, 300)}`);
        const body = JSON.parse(text) as { error?: unknown; errors?: { message?: unknown }[] };
        const message = typeof body.error === 'string' ? body.error : body.errors?.[0]?.message;
        if (typeof message !== 'string' || message.length === 0)
          throw new Error(`${r.method} ${r.path} ${res.status} without a message: ${text.slice(0, 300)}`);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    const seconds = (Date.now() - started) / 1000;
    // The count and time of the run, for the issue note and local larger runs.
    process.stdout.write(`      fuzz: ${RUNS} requests in ${seconds.toFixed(1)} s, statuses ${JSON.stringify(Object.fromEntries(statuses))}\n`);

    expect((await fetch(`${base}/health`)).status).to.equal(200);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    expect(keys.filter((k) => !k.startsWith(PREFIX))).to.deep.equal([]);
    expect(keys.filter((k) => !/^fz:(ev:\{p\d+\}|ev:dead|erasures|batch:.*)$/.test(k))).to.deep.equal([]); // no user key: nothing was accepted
    expect(Number(/number_of_cached_scripts:(\d+)/.exec(await redis.info('memory'))![1])).to.equal(scriptsBefore);
    expect(((await redis.call('FUNCTION', 'LIST')) as unknown[]).length).to.equal(librariesBefore);
    expect(fs.readdirSync(process.cwd()).sort()).to.deep.equal(repoBefore);
    expect(tmpEntries()).to.deep.equal(['ods', 'redis']);
    expect(fs.readdirSync(ods)).to.deep.equal([]);
  });
});
