import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { shippedTagsWithTriggers } from '../helpers/context';
import { killAllCli } from '../helpers/cli';
import { partitionFor } from '../../src/core/keys';
import { PARTITIONS, Stack, knownEvents } from '../helpers/stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault suite: real processes, real redis-server, kill -9', function () {
  this.timeout(120_000);
  let stack: Stack;
  afterEach(async () => {
    await stack?.stop();
    await killAllCli();
  });

  async function baseline(env: Record<string, string> = {}) {
    stack = new Stack(env);
    await stack.startRedis();
    await stack.startApi();
    await stack.startRealtime('rt-1');
    await stack.startRealtime('rt-2');
    await stack.startArchive('arch-1');
  }

  /**
   * kill -9 of realtime consumer rt-1 three times, `beforeMs` into each round, restarted
   * `afterMs` later under its own name (round 1: its pending entries come first) or a new
   * one (the entries the dead one held are claimed by the others with XAUTOCLAIM).
   */
  async function killRealtimeThreeTimes(beforeMs: number, afterMs: number) {
    let current = 'rt-1';
    for (let round = 0; round < 3; round++) {
      await sleep(beforeMs);
      await stack.kill(current, 'SIGKILL');
      await sleep(afterMs);
      current = round === 1 ? 'rt-1' : `rt-1-r${round}`;
      await stack.startRealtime(current);
    }
  }

  it('kill -9 of a realtime consumer three times mid-stream (two in the group): exact counts', async () => {
    await baseline();
    const events = knownEvents(30, 60, 'k1');
    const sending = stack.send(events, 40, 2, 20);
    await killRealtimeThreeTimes(400, 200);
    const accepted = await sending;
    await stack.waitCaughtUp();
    await stack.assertExact(events, accepted);
  });

  it('kill -9 of realtime consumers mid-stream with a trigger configured: every user that crosses it fires exactly once', async () => {
    const config = path.join(os.tmpdir(), `faults-tags-${process.pid}.json`);
    fs.writeFileSync(config, JSON.stringify(shippedTagsWithTriggers([{ name: 'many_clicks', when: [{ tag: 'clicks_24h', op: '>=', value: 5 }] }])));
    try {
      await baseline({ PROFILE_CONFIG: config });
      const events = knownEvents(30, 9, 'tr');
      const sending = stack.send(events, 10, 2, 30);
      await killRealtimeThreeTimes(300, 150);
      const accepted = await sending;
      await stack.waitCaughtUp();
      await stack.assertExact(events, accepted);
      const clicks = new Map<string, number>();
      for (const e of events) if (accepted.has(e.event_id) && e.type === 'click') clicks.set(e.user_id, (clicks.get(e.user_id) ?? 0) + 1);
      const expected = [...clicks]
        .filter(([, n]) => n >= 5)
        .map(([u]) => u)
        .sort();
      const fired: string[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        for (const [, f] of await stack.redis.xrange(stack.keys.triggerStream(p), '-', '+')) {
          const user = f[f.indexOf('user_id') + 1];
          expect(partitionFor(user, PARTITIONS)).to.equal(p);
          fired.push(user);
        }
      }
      expect(expected.length).to.be.greaterThan(10);
      expect(fired.sort()).to.deep.equal(expected); // each once: none lost, none twice
    } finally {
      fs.rmSync(config, { force: true });
    }
  });

  it('kill -9 of the archiver three times, each time between fsync and ack: nothing lost, duplicates only in the ODS', async () => {
    await baseline();
    await stack.kill('arch-1', 'SIGKILL');
    await stack.startArchive('arch-1', { PROFILE_FAULT_ACK_DELAY_MS: '300' });
    const events = knownEvents(20, 60, 'k2');
    const sending = stack.send(events, 40, 2, 20);
    for (let round = 0; round < 3; round++) {
      await stack.procs.get('arch-1')!.waitFor(/fault injection: synced, ack delayed/, 20_000);
      await stack.kill('arch-1', 'SIGKILL'); // inside the 300 ms between fsync and ack
      await stack.startArchive('arch-1', { PROFILE_FAULT_ACK_DELAY_MS: round < 2 ? '300' : '0' });
    }
    const accepted = await sending;
    await stack.waitCaughtUp();
    await stack.assertExact(events, accepted);
    const { ids, lines } = stack.archivedIds();
    expect(ids.size).to.equal(events.length);
    expect(lines).to.be.greaterThan(events.length); // the killed batches were written twice
  });

  it('SIGSTOP of a consumer past the claim time, then SIGCONT: its late work does not double count', async () => {
    await baseline();
    const events = knownEvents(20, 50, 'k3');
    const sending = stack.send(events, 40, 2, 20);
    await sleep(300);
    stack.procs.get('rt-1')!.child.kill('SIGSTOP');
    await sleep(3000); // > claim idle (1.5 s): rt-2 claims rt-1's pending entries
    stack.procs.get('rt-1')!.child.kill('SIGCONT');
    const accepted = await sending;
    await stack.waitCaughtUp();
    await stack.assertExact(events, accepted);
  });

  it('a poison event ends in ev:dead while the rest flows', async () => {
    await baseline({ PROFILE_MAX_DELIVERIES: '3' });
    const events = knownEvents(10, 40, 'k4');
    const poison = { event_id: 'poison-1', user_id: 'fu-poison', type: 'click' as const, ts: Date.now() };
    await stack.redis.set(stack.keys.panes('fu-poison', 'click'), 'not a sorted set'); // the script fails: WRONGTYPE
    const accepted = await stack.send([...events, poison], 40, 2, 10);
    await stack.waitCaughtUp(60_000);
    const dead = await stack.deadIds();
    expect([...dead]).to.deep.equal([['poison-1', 'realtime']]);
    await stack.redis.del(stack.keys.panes('fu-poison', 'click')); // the operator removes the cause
    await stack.assertExact([...events, poison], accepted, { deadInRealtime: new Set(['poison-1']) });
  });

  it('archiver stopped while ingestion goes on: no trim below unarchived entries, 503 at the bound, all archived after it returns', async () => {
    await baseline({ PROFILE_MAX_BACKLOG: '300' });
    await stack.kill('arch-1', 'SIGTERM');
    const events = knownEvents(10, 150, 'k5'); // 1,545 events: some partition gets well over 300
    const sending = stack.send(events, 25, 1, 0);
    // Ingestion stalls on 503s while the archiver is away.
    const deadline = Date.now() + 30_000;
    let full = -1;
    while (Date.now() < deadline && full < 0) {
      const lengths = await Promise.all(stack.keys.streams(PARTITIONS).map((s) => stack.redis.xlen(s)));
      full = lengths.findIndex((n) => n >= 300);
      await sleep(100);
    }
    expect(full).to.be.at.least(0);
    await sleep(300); // the API rereads stream lengths at most every 250 ms
    const stream = stack.keys.stream(full);
    const res = await fetch(`http://127.0.0.1:${stack.port}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event_id: 'probe', user_id: events.find((e) => partitionFor(e.user_id, PARTITIONS) === full)!.user_id, type: 'click' }),
    });
    expect(res.status).to.equal(503);
    expect(res.headers.get('retry-after')).to.equal('1');
    // The realtime group finishes what is there, yet nothing unarchived is trimmed.
    const waitUntil = Date.now() + 20_000;
    for (;;) {
      const pending = ((await stack.redis.xpending(stream, 'realtime')) as [number])[0];
      const info = (await stack.redis.xinfo('GROUPS', stream)) as unknown[][];
      const rt = info
        .map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]])))
        .find((g) => g.name === 'realtime')!;
      if ((pending === 0 && Number(rt.lag) === 0) || Date.now() > waitUntil) break;
      await sleep(100);
    }
    const len = await stack.redis.xlen(stream);
    expect(len).to.be.at.least(300);
    const archiveGroup = ((await stack.redis.xinfo('GROUPS', stream)) as unknown[][]).find((g) => g[1] === 'archive')!;
    expect(archiveGroup[archiveGroup.indexOf('last-delivered-id') + 1]).to.equal('0-0'); // the archiver never read
    await stack.startArchive('arch-1');
    const accepted = await sending;
    await stack.waitCaughtUp();
    await stack.assertExact(events, accepted);
    // Everything archived and applied is trimmed: after the next ack, or by the trim timer
    // (a partition is trimmed after acks at most every 5 s).
    const left = async () => (await Promise.all(stack.keys.streams(PARTITIONS).map((s) => stack.redis.xlen(s)))).reduce((a, b) => a + b);
    const trimBy = Date.now() + 15_000;
    while ((await left()) > 0 && Date.now() < trimBy) await sleep(200);
    expect(await left()).to.equal(0);
  });

  it('kill -9 of redis-server (appendfsync always) mid-stream and a restart: every 2xx event is in the windows and the archive', async () => {
    stack = new Stack();
    await stack.startRedis('always');
    await stack.startApi();
    await stack.startRealtime('rt-1');
    await stack.startRealtime('rt-2');
    await stack.startArchive('arch-1');
    const events = knownEvents(20, 50, 'k6');
    const sending = stack.send(events, 40, 2, 20);
    await sleep(800);
    const port = stack.redisServer!.port;
    stack.redisServer!.process.kill('SIGKILL');
    await sleep(1500);
    await stack.startRedis('always', port);
    const accepted = await sending;
    await stack.waitCaughtUp(90_000);
    await stack.assertExact(events, accepted);
  });

  it('SIGTERM of every process: each exits 0 and nothing is left pending', async () => {
    await baseline();
    const events = knownEvents(10, 40, 'k7');
    const accepted = await stack.send(events, 40, 2, 0);
    await stack.waitCaughtUp();
    await stack.assertExact(events, accepted);
    for (const name of ['api', 'rt-1', 'rt-2', 'arch-1']) expect([name, await stack.kill(name, 'SIGTERM')]).to.deep.equal([name, 0]);
  });
});
