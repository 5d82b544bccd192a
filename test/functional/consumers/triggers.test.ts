import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { get as httpGet } from 'http';
import { ConfigError } from '../../../src/core/errors';
import { partitionFor } from '../../../src/core/keys';
import { parseTagConfig } from '../../../src/core/tagConfig';
import { Scripts, runScript } from '../../../src/lua/scripts';
import { WindowWriter, windowsReply } from '../../../src/consumers/windowWriter';
import { masters, nodeFor } from '../../../src/redis/client';
import { Pipeline, feed, makePipeline, serveApp, testRedisUrl } from '../../helpers/context';
import { killAllCli, runCli } from '../../helpers/cli';
import { HttpServerHandle } from '../../../src/api/server';

const MIN = 60_000;
const TRIGGERS = [
  { name: 'hot_clicker', when: [{ tag: 'clicks_5m', op: '>=', value: 3 }] },
  { name: 'big_spender_today', when: [{ tag: 'spend_24h', op: '>=', value: 500 }] },
  {
    name: 'valuable_clicker',
    when: [
      { tag: 'clicks_5m', op: '>=', value: 1 },
      { tag: 'ltv_total', op: '>', value: 100 },
    ],
  },
];

/** Every firing in the pipeline's trigger streams, oldest first per partition, as objects. */
async function firings(p: Pipeline): Promise<Record<string, string>[]> {
  const out: Record<string, string>[] = [];
  for (let i = 0; i < p.config.partitions; i++) {
    for (const [, fields] of await p.redis.xrange(p.keys.triggerStream(i), '-', '+')) {
      const f: Record<string, string> = {};
      for (let j = 0; j < fields.length; j += 2) f[fields[j]] = fields[j + 1];
      out.push(f);
    }
  }
  return out;
}

describe('triggers: edge-triggered firings into trig:{pN} (real Redis)', () => {
  for (const cluster of [false, true]) {
    describe(cluster ? 'on a cluster' : 'on one server', () => {
      let p: Pipeline;
      beforeEach(async () => {
        p = await makePipeline({ triggers: TRIGGERS, partitions: 3, cluster });
      });
      afterEach(() => p.close());
      const click = (user: string, n: number, id = 'c') =>
        Array.from({ length: n }, (_, i) => ({ event_id: `${id}${i}-${p.clock.now}`, user_id: user, type: 'click', ts: p.clock.now - i, ad_id: 'a1' }));

      it('fires once when an event makes the condition true, not while it stays true, and again after it was false (re-armed)', async () => {
        const users = cluster ? Array.from({ length: 12 }, (_, i) => `tr-${i}`) : ['tr-1'];
        for (const u of users) await feed(p, click(u, 2));
        expect(await firings(p)).to.deep.equal([]);
        for (const u of users) await feed(p, click(u, 1, 'd'));
        let all = await firings(p);
        expect(all.map((f) => f.user_id).sort()).to.deep.equal([...users].sort());
        expect(all[0]).to.include({ trigger: 'hot_clicker', clicks_5m: '3', at: String(p.clock.now) });
        expect(all[0].event_id).to.match(/^d0-/);
        // Each firing in its user's partition.
        for (let i = 0; i < 3; i++) {
          for (const [, f] of await p.redis.xrange(p.keys.triggerStream(i), '-', '+')) expect(partitionFor(f[f.indexOf('user_id') + 1], 3)).to.equal(i);
        }
        // On a cluster the users live on every master.
        expect(new Set(users.map((u) => nodeFor(p.redis, p.keys.realtime(u)))).size).to.equal(masters(p.redis).length);
        await feed(p, click(users[0], 2, 'e')); // still true: no second firing
        expect((await firings(p)).length).to.equal(users.length);
        p.clock.advance(6 * MIN); // the window slides: false, re-armed lazily at the next event
        await feed(p, click(users[0], 1, 'f'));
        expect((await firings(p)).length).to.equal(users.length);
        await feed(p, click(users[0], 2, 'g'));
        all = await firings(p);
        expect(all.length).to.equal(users.length + 1);
        expect(all.filter((f) => f.user_id === users[0]).map((f) => f.clicks_5m)).to.deep.equal(['3', '3']);
        // Windows slid again, then a burst in one consumer batch makes it true at once: false
        // before the batch's events, true after: fires.
        p.clock.advance(6 * MIN);
        await feed(p, click(users[0], 4, 'h'));
        expect((await firings(p)).filter((f) => f.user_id === users[0]).map((f) => f.clicks_5m)).to.deep.equal(['3', '3', '4']);
        // Impressions (a type no condition reads) neither fire nor re-arm.
        await feed(p, [{ event_id: `imp-${p.clock.now}`, user_id: users[0], type: 'impression', ts: p.clock.now }]);
        expect((await firings(p)).length).to.equal(users.length + 2);
        expect(await p.redis.llen(p.keys.triggerOutbox(users[0]))).to.equal(0);
      });

      it('appends a firing exactly once when the consumer dies between the window script and the append', async () => {
        // The window script ran (the firing is decided and in the outbox), then the process died before appending.
        const writer = new WindowWriter(p.keys, p.config.tags.realtime, p.config.tags.triggers, p.config.tags.offline);
        const events = click('crash-1', 3);
        const args = events.flatMap((e) => WindowWriter.eventArgs({ ...e, type: 'click' }));
        const reply = windowsReply(
          await runScript(p.redis, writer.update([{ userId: 'crash-1', events: { click: args }, lastEventId: events[2].event_id }], p.clock.now)),
        );
        expect(reply.outboxes.get('crash-1')).to.have.length(1);
        expect(await firings(p)).to.deep.equal([]);
        // The same entries, redelivered: the windows count nothing twice and the outbox is appended once.
        await feed(p, events);
        await feed(p, events);
        const all = await firings(p);
        expect(all.map((f) => [f.user_id, f.trigger, f.clicks_5m])).to.deep.equal([['crash-1', 'hot_clicker', '3']]);
        expect((await p.reader.read('crash-1'))!.tags.clicks_5m).to.equal(3);
        // And if it died after the append but before the outbox was trimmed: the dedup set keeps it once.
        await p.redis.rpush(p.keys.triggerOutbox('crash-1'), ...reply.outboxes.get('crash-1')!);
        await feed(p, click('crash-1', 1, 'late'));
        expect((await firings(p)).length).to.equal(1);
      });

      it('reads offline tags in conditions, and the values of every tag of the condition', async () => {
        await p.redis.hset(p.keys.offline('rich'), 'ltv_total', '250.5');
        await feed(p, [...click('rich', 1), ...click('poor', 1)]);
        await feed(p, [{ event_id: 'buy-1', user_id: 'rich', type: 'purchase', ts: p.clock.now, amount: 600 }]);
        const got = (await firings(p)).map((f) => {
          const { at: _a, event_id: _e, ...rest } = f;
          return rest;
        });
        expect(got).to.have.deep.members([
          { trigger: 'valuable_clicker', user_id: 'rich', clicks_5m: '1', ltv_total: '250.5' },
          { trigger: 'big_spender_today', user_id: 'rich', spend_24h: '600' },
        ]);
      });
    });
  }

  it('appends each firing id once and trims the stream and its dedup set by age (--trigger-retention)', async () => {
    const p = await makePipeline({ triggers: TRIGGERS });
    try {
      const [stream, seen] = [p.keys.triggerStream(0), p.keys.triggerSeen(0)];
      const firing = (id: string) => ({ id, fields: ['trigger', 'hot_clicker', 'user_id', 'u', 'at', '1', 'event_id', 'e', 'clicks_5m', '3'] });
      const day = 86_400_000;
      expect(await runScript(p.redis, Scripts.appendTriggers(stream, seen, Date.now(), day, [firing('a'), firing('b'), firing('a')]))).to.equal(2);
      expect(await runScript(p.redis, Scripts.appendTriggers(stream, seen, Date.now(), day, [firing('b')]))).to.equal(0);
      expect([await p.redis.xlen(stream), await p.redis.zcard(seen)]).to.deep.equal([2, 2]);
      await new Promise((r) => setTimeout(r, 20));
      // Retention 10 ms: what was appended before is dropped, stream and dedup set alike.
      expect(await runScript(p.redis, Scripts.appendTriggers(stream, seen, Date.now(), 10, [firing('c')]))).to.equal(1);
      expect([await p.redis.xlen(stream), await p.redis.zrange(seen, 0, -1)]).to.deep.equal([1, ['c']]);
    } finally {
      await p.close();
    }
  });

  it('refuses a config naming an unknown tag, a count_by tag, or an unknown operator (exit 2)', () => {
    const base = {
      realtime: [
        { name: 'clicks_5m', event: 'click', aggregation: 'count', window: '5m' },
        { name: 'camps', event: 'click', aggregation: 'count_by', field: 'campaign_id', window: '1h' },
      ],
    };
    const bad: [unknown, RegExp][] = [
      [
        [{ name: 't', when: [{ tag: 'nope', op: '>=', value: 1 }] }],
        /triggers\[0\] \(t\): when\[0\]: "tag" must name a realtime tag whose value is a number \(not count_by, histogram, last_k, first_k or percentile\), or an offline tag \(clicks_5m\)/,
      ],
      [[{ name: 't', when: [{ tag: 'camps', op: '>=', value: 1 }] }], /"tag" must name a realtime tag whose value is a number/],
      [[{ name: 't', when: [{ tag: 'clicks_5m', op: '!=', value: 1 }] }], /"op" must be one of >=, >, <=, <, ==/],
      [[{ name: 't', when: [] }], /"when" must be a non-empty array/],
      [
        [
          { name: 't', when: [{ tag: 'clicks_5m', op: '>', value: 1 }] },
          { name: 't', when: [{ tag: 'clicks_5m', op: '>', value: 2 }] },
        ],
        /duplicate trigger name/,
      ],
      [{ name: 't' }, /"triggers" must be an array/],
    ];
    for (const [triggers, message] of bad) {
      expect(() => parseTagConfig({ ...base, triggers })).to.throw(ConfigError, message);
    }
    expect(parseTagConfig({ ...base, triggers: [{ name: 'ok', when: [{ tag: 'clicks_5m', op: '==', value: 2 }] }] }).triggers).to.have.length(1);
  });

  it('profile triggers tail prints firings as they happen, --name filters, Ctrl-C exits 0', async () => {
    const p = await makePipeline({ triggers: TRIGGERS, partitions: 3 });
    try {
      const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: p.keys.prefix, PROFILE_PARTITIONS: '3' };
      const tail = runCli(['triggers', 'tail', '--json', '--from-start', '--name', 'hot_clicker'], env);
      const table = runCli(['triggers', 'tail', '--from-start'], env);
      await feed(p, [{ event_id: 'big', user_id: 't9', type: 'purchase', ts: p.clock.now, amount: 700 }]);
      await feed(
        p,
        Array.from({ length: 3 }, (_, i) => ({ event_id: `t${i}`, user_id: 't9', type: 'click', ts: p.clock.now - i })),
      );
      const [line] = await tail.waitFor(/^\{.*"trigger":"hot_clicker".*\}$/m);
      expect(JSON.parse(line)).to.deep.include({ trigger: 'hot_clicker', user_id: 't9', values: { clicks_5m: 3 } });
      await table.waitFor(/Z {2}hot_clicker +t9 +clicks_5m=3$/m);
      expect(table.output()).to.match(/Z {2}big_spender_today +t9 +spend_24h=700$/m);
      expect(tail.output()).to.not.include('big_spender_today');
      for (const c of [tail, table]) c.child.kill('SIGINT');
      expect([await tail.exited, await table.exited]).to.deep.equal([0, 0]);
    } finally {
      await killAllCli();
      await p.close();
    }
  });

  it('profile up with an event-stream client connected still stops on SIGTERM (exit 0, about a second)', async () => {
    const env = { REDIS_URL: testRedisUrl(), PROFILE_PREFIX: `sse-${process.pid}:`, ODS_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'sse-ods-')) };
    try {
      const up = runCli(['up', '--port', '0'], { ...env, LOG_LEVEL: 'info' });
      const [, port] = await up.waitFor(/"port":(\d+),"msg":"API listening"/);
      const ctrl = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/triggers/stream`, { signal: ctrl.signal });
      expect(res.status).to.equal(200);
      const t0 = Date.now();
      up.child.kill('SIGTERM');
      expect(await up.exited).to.equal(0);
      expect(Date.now() - t0).to.be.lessThan(5000);
      ctrl.abort();
    } finally {
      await killAllCli();
      fs.rmSync(env.ODS_DIR, { recursive: true, force: true });
    }
  });

  describe('GET /triggers/stream: Server-Sent Events', () => {
    let p: Pipeline;
    let http: HttpServerHandle;
    let base: string;
    before(async () => {
      p = await makePipeline({ triggers: TRIGGERS, partitions: 3 });
      ({ http, base } = await serveApp(p, { maxEventsPerRequest: 100, maxProfilesPerRequest: 10, maxBodyBytes: 1 << 20 }));
    });
    after(async () => {
      await http.close();
      await p.close();
    });
    const click = (user: string, n: number, id: string) =>
      Array.from({ length: n }, (_, i) => ({ event_id: `${id}${i}`, user_id: user, type: 'click', ts: p.clock.now - i }));

    /** Opens the stream; `events(n)` resolves with the next n events; `close()` hangs up. */
    async function open(query = '', lastEventId?: string) {
      const ctrl = new AbortController();
      const res = await fetch(`${base}/triggers/stream${query}`, { signal: ctrl.signal, headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let buffer = '';
      const parsed: { id: string; event: string; data: Record<string, unknown> }[] = [];
      const events = async (n: number) => {
        while (parsed.length < n) {
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          buffer += new TextDecoder().decode(value);
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const f = Object.fromEntries(
              block
                .split('\n')
                .filter((l) => !l.startsWith(':'))
                .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
            );
            if (f.data) parsed.push({ id: f.id, event: f.event, data: JSON.parse(f.data) });
          }
        }
        return parsed.splice(0, n);
      };
      return { events, close: () => ctrl.abort() };
    }

    it('frees the Redis connection of a client that leaves at any moment, even before its stream opened', async () => {
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      // Connections blocked in (or last used for) XREAD: the streams' readers.
      const readers = async () => ((await p.redis.client('LIST')) as string).split('\n').filter((l) => / cmd=xread /.test(l)).length;
      for (let i = 0; i < 100 && (await readers()) > 0; i++) await sleep(20);
      expect(await readers()).to.equal(0);
      await Promise.all(
        Array.from(
          { length: 60 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const req = httpGet(`${base}/triggers/stream`, (res) => res.resume());
              req.on('error', () => resolve());
              setTimeout(() => {
                req.destroy();
                resolve();
              }, i % 12);
            }),
        ),
      );
      let left = -1;
      for (let i = 0; i < 100 && left !== 0; i++) {
        await sleep(30);
        left = await readers();
      }
      expect(left).to.equal(0);
    });

    it('serves every client from one shared reader: 50 streams hold at most one Redis connection, and each gets every firing', async () => {
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const readers = async () => ((await p.redis.client('LIST')) as string).split('\n').filter((l) => / cmd=xread /.test(l)).length;
      for (let i = 0; i < 100 && (await readers()) > 0; i++) await sleep(20);
      const clientsBefore = ((await p.redis.client('LIST')) as string).trim().split('\n').length;
      const streams = await Promise.all(Array.from({ length: 50 }, () => open()));
      await feed(p, click('hub1', 3, 'h'));
      for (const s of streams) expect((await s.events(1)).map((e) => [e.event, e.data.user_id])).to.deep.equal([['hot_clicker', 'hub1']]);
      expect(((await p.redis.client('LIST')) as string).trim().split('\n').length - clientsBefore).to.be.at.most(1);
      expect(await readers()).to.be.at.most(1);
      for (const s of streams) s.close();
      let left = -1;
      for (let i = 0; i < 100 && left !== 0; i++) {
        await sleep(30);
        left = await readers();
      }
      expect(left, 'the shared reader closes with the last stream').to.equal(0);
    });

    it('answers 503 with Retry-After past --max-event-streams, and closes a client that does not read past its buffer bound', async () => {
      const small = await serveApp(p, {
        maxEventsPerRequest: 100,
        maxProfilesPerRequest: 10,
        maxBodyBytes: 1 << 20,
        maxEventStreams: 2,
        eventStreamBufferBytes: 64 * 1024,
      });
      try {
        const ctrl = new AbortController();
        const a = await fetch(`${small.base}/triggers/stream`, { signal: ctrl.signal });
        const b = await fetch(`${small.base}/triggers/stream`, { signal: ctrl.signal });
        expect([a.status, b.status]).to.deep.equal([200, 200]);
        const full = await fetch(`${small.base}/triggers/stream`);
        expect(full.status).to.equal(503);
        expect(full.headers.get('retry-after')).to.equal('5');
        expect(await full.json()).to.deep.equal({ error: 'too many event streams (2 open): retry later' });
        ctrl.abort();
        await new Promise((r) => setTimeout(r, 200));

        // A client that never reads: paused socket; ~20 MB of firings are appended.
        const net = await import('net');
        const socket = net.connect(small.http.port, '127.0.0.1');
        await new Promise((r) => socket.once('connect', r));
        socket.write('GET /triggers/stream HTTP/1.1\r\nHost: x\r\n\r\n');
        await new Promise((r) => setTimeout(r, 200));
        socket.pause();
        const wide = 'v'.repeat(2000);
        for (let batch = 0; batch < 10; batch++) {
          const pipe = p.redis.pipeline();
          for (let i = 0; i < 1000; i++)
            pipe.xadd(p.keys.triggerStream(0), '*', 'trigger', 'hot_clicker', 'user_id', `slow-${i}`, 'at', '1', 'event_id', 'e', wide, '1');
          await pipe.exec();
        }
        await new Promise((r) => setTimeout(r, 1500));
        // Read now: the server has given up on it (closed), having sent far less than 20 MB.
        let received = 0;
        socket.on('data', (d: Buffer) => (received += d.length));
        socket.resume();
        await new Promise<void>((resolve, reject) => {
          socket.once('close', () => resolve());
          setTimeout(() => reject(new Error(`still open after ${received} bytes`)), 10_000);
        });
        expect(received).to.be.below(10_000_000);
      } finally {
        await small.http.close();
      }
    });

    it('sends one event per firing, resumes after Last-Event-ID without loss, and filters by ?name=', async () => {
      const all = await open();
      const spenders = await open('?name=big_spender_today');
      await feed(p, [...click('s1', 3, 'a'), ...click('s2', 3, 'b')]);
      await feed(p, [{ event_id: 'buy', user_id: 's3', type: 'purchase', ts: p.clock.now, amount: 999 }]);
      const first = await all.events(3);
      expect(first.map((e) => [e.event, e.data.user_id])).to.have.deep.members([
        ['hot_clicker', 's1'],
        ['hot_clicker', 's2'],
        ['big_spender_today', 's3'],
      ]);
      expect(first[0].data).to.include.keys('entryId', 'partition', 'at', 'event_id', 'values');
      expect((await spenders.events(1))[0]).to.deep.include({ event: 'big_spender_today' });
      spenders.close();
      // Hang up after the first, miss two more firings, come back with the first's id.
      all.close();
      await feed(p, [...click('s4', 3, 'c'), ...click('s5', 3, 'd')]);
      const resumed = await open('', first[0].id);
      const again = await resumed.events(4);
      expect(again.map((e) => e.data.user_id)).to.have.members([...first.slice(1).map((e) => e.data.user_id), 's4', 's5']);
      resumed.close();
      // Refused at once, not a 200 that ends (an EventSource would reconnect forever) or a
      // stream that can never send anything: a bad name, an unknown trigger, a cursor with
      // the wrong number of ids or an id past 2^64.
      const big = `${'9'.repeat(21)}-0`;
      const cases = [
        ['?name=Bad!', {}],
        ['?name=no_such_trigger', {}],
        ['', { 'last-event-id': '1-0' }],
        ['', { 'last-event-id': Array(p.config.partitions).fill(big).join(',') }],
      ] as const;
      for (const [query, headers] of cases) {
        const r = await fetch(`${base}/triggers/stream${query}`, { headers });
        expect([query, headers, r.status], await r.text()).to.deep.equal([query, headers, 400]);
      }
    });
  });
});

describe('a trigger on an approx_distinct tag (real Redis)', () => {
  let p: Pipeline;
  before(async () => {
    p = await makePipeline({
      tags: [{ name: 'ads_seen_1h', event: 'click', aggregation: 'approx_distinct', field: 'ad_id', k: 16, window: '1h' }],
      triggers: [{ name: 'many_ads', when: [{ tag: 'ads_seen_1h', op: '>=', value: 40 }] }],
    });
  });
  after(() => p.close());

  it("fires on the sketch's estimate (past k), the value the API reads", async () => {
    const user = 'sk-1';
    const clicks = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ event_id: `k${from + i}`, user_id: user, type: 'click', ts: p.clock.now - 1000 + i, ad_id: `ad-${from + i}` }));
    let fired: Record<string, string>[] = [];
    let at = 0;
    // Ten distinct ads at a time until the estimate reaches 40.
    while (fired.length === 0 && at < 200) {
      await feed(p, clicks(at, 10));
      at += 10;
      fired = await firings(p);
    }
    expect(fired).to.have.length(1);
    const profile = (await p.reader.read(user))!;
    expect(Number(fired[0].ads_seen_1h)).to.equal(profile.tags.ads_seen_1h);
    expect(profile.tags.ads_seen_1h).to.be.at.least(40);
    // Fewer than k = 16 distinct values would be exact; past it the estimate stands for about `at`.
    expect(Math.abs((profile.tags.ads_seen_1h as number) - at) / at).to.be.below(0.75);
  });
});

describe('triggers on stddev, variance and first tags (real Redis)', () => {
  let p: Pipeline;
  before(async () => {
    p = await makePipeline({
      tags: [
        { name: 'sd_10m', event: 'purchase', aggregation: 'stddev', field: 'amount', window: '10m' },
        { name: 'var_10m', event: 'purchase', aggregation: 'variance', field: 'amount', window: '10m' },
        { name: 'first_10m', event: 'purchase', aggregation: 'first', field: 'amount', window: '10m' },
      ],
      triggers: [
        { name: 'spread_out', when: [{ tag: 'sd_10m', op: '>=', value: 50 }] },
        { name: 'wide', when: [{ tag: 'var_10m', op: '>', value: 5000 }] },
        { name: 'opened_big', when: [{ tag: 'first_10m', op: '>=', value: 100 }] },
      ],
    });
  });
  after(() => p.close());

  it('fire on the event that makes the condition true, with the value the API reads', async () => {
    const user = 'sd-1';
    const t0 = p.clock.now;
    let n = 0;
    const buy = async (at: number, amount: number) => {
      p.clock.now = Math.max(p.clock.now, at);
      await feed(p, [{ event_id: `b${n++}`, user_id: user, type: 'purchase', ts: at, amount }]);
      return (await firings(p)).map((f) => `${f.trigger}@${Number(f.at) - t0}:${f.sd_10m ?? f.var_10m ?? f.first_10m}`);
    };
    // 20, then 80: sd 0, then 30 (population); variance 900; first 20.
    expect(await buy(t0, 20)).to.deep.equal([]);
    expect(await buy(t0 + MIN, 80)).to.deep.equal([]);
    // 20, 80, 200: mean 100, variance (6400 + 400 + 10000) / 3 = 5600, sd √5600.
    expect(await buy(t0 + 2 * MIN, 200)).to.deep.equal([`spread_out@${2 * MIN}:74.833147735479`, `wide@${2 * MIN}:5600`]);
    let profile = (await p.reader.read(user))!;
    expect(profile.tags).to.deep.equal({ sd_10m: 74.833147735479, var_10m: 5600, first_10m: 20 });
    // 10 minutes 30 s on, 20 has left the window: 80, 200 (variance 3600: false, so wide
    // re-arms at this event), then with 10: variance 55400 / 9, sd ≈ 78.5 (true all along: no
    // new firing), first 80.
    const at = t0 + 10 * MIN + 30_000;
    const fired = [`spread_out@${2 * MIN}:74.833147735479`, `wide@${2 * MIN}:5600`, `wide@${at - t0}:6155.5555555556`];
    expect(await buy(at, 10)).to.deep.equal(fired);
    expect((await p.reader.read(user))!.tags).to.deep.equal({ sd_10m: 78.457348639599, var_10m: 6155.5555555556, first_10m: 80 });
    // An older purchase arriving late, 45 s after t0 (in the window): first becomes 150; the
    // variance, 5150, and sd stay true.
    expect(await buy(t0 + 45_000, 150)).to.deep.equal([...fired, `opened_big@${at - t0}:150`]);
    profile = (await p.reader.read(user))!;
    expect(profile.tags.first_10m).to.equal(150);
  });
});
