/**
 * The core functional cases on a real 3-master Redis Cluster (started by fixture.ts):
 * keys and slots, ingest → windows → read, batch get, a running consumer, archive and
 * trimming, batch and verify, dead letters, status.
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import { EVENT_TYPES, validateEvent } from '../../src/core/event';
import { Keys } from '../../src/core/keys';
import { ArchiveConsumer } from '../../src/consumers/archive';
import { runBatch } from '../../src/batch/run';
import { verifyWindows } from '../../src/batch/verify';
import { listDeadLetters, replayDeadLetters } from '../../src/consumers/deadLetters';
import { streamStatus } from '../../src/redis/streamGroups';
import { formatStatus } from '../../src/cli/output';
import { Pipeline, T0, extraRealtimeConsumer, makePipeline } from '../helpers/context';
import { parseTagConfig, tagConfigVersion } from '../../src/core/tagConfig';
import { recordTagConfig, watchActiveTagConfig } from '../../src/redis/tagConfigs';
import { planTagConfigChange } from '../../src/batch/tagChange';
import { applyTagConfigChange } from '../../src/consumers/tagApply';
import { Scripts, runScript } from '../../src/lua/scripts';
import { silentLogger } from '../../src/core/logger';

const PARTITIONS = 8;
const MINUTE = 60_000;

/** Events of `n` users: user i has i % 5 + 1 clicks and i % 7 + 2 impressions, and one purchase of i + 0.5. */
function userEvents(n: number, now: number, tag = 'c'): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const user_id = `cu-${i}`;
    for (let k = 0; k < (i % 5) + 1; k++) events.push({ event_id: `${tag}-${i}-c${k}`, user_id, type: 'click', ts: now - k * MINUTE });
    for (let k = 0; k < (i % 7) + 2; k++) {
      events.push({ event_id: `${tag}-${i}-i${k}`, user_id, type: 'impression', ts: now - k * 1000, ad_id: `a${k % 3}`, campaign_id: 'camp' });
    }
    events.push({ event_id: `${tag}-${i}-p`, user_id, type: 'purchase', ts: now - 10 * MINUTE, amount: i + 0.5 });
  }
  return events;
}

describe('Redis Cluster: 3 masters on loopback', function () {
  this.timeout(60_000);
  let p: Pipeline;
  let cluster: Cluster;
  const masterOf = (key: string) => cluster.slots[calculateSlot(key)][0];

  beforeEach(async () => {
    p = await makePipeline({ cluster: true, partitions: PARTITIONS, now: T0 });
    cluster = p.redis as Cluster;
  });
  afterEach(() => p.close());

  it('maps every key of any valid user id to one slot; partitions and users spread over every master', async () => {
    const alphabet = 'ABCXYZabcxyz0189._:@-';
    const ids = ['a', ':', '@@', '-_-', 'u:{x}'.replace(/[{}]/g, ''), 'x'.repeat(128)];
    for (let i = 0; i < 2000; i++) {
      let id = '';
      const len = 1 + (i % 40);
      for (let j = 0; j < len; j++) id += alphabet[(i * 7 + j * 13 + ((i * j) % 5)) % alphabet.length];
      ids.push(id);
    }
    for (const prefix of ['', 'ps:', 'a.b-c_d:']) {
      const k = new Keys(prefix);
      for (const id of ids) {
        expect(validateEvent({ user_id: id, type: 'click', ts: T0 }, 0, { now: T0, maxFutureSkewMs: 0 }).ok, id).to.equal(true);
        const keys = [k.realtime(id), k.offline(id), k.batchWindows(id)];
        for (const t of EVENT_TYPES) keys.push(k.panes(id, t), k.paneIndex(id, t), k.legacyWindow(id, t), k.legacyWindowValues(id, t));
        const slots = new Set(keys.map((key) => calculateSlot(key)));
        expect([id, slots.size]).to.deep.equal([id, 1]);
        expect(calculateSlot(keys[0])).to.equal(calculateSlot(id)); // the slot is the user id's own
      }
    }
    // Characters that would change the hash tag never get into a key: validation refuses them.
    for (const bad of ['a{b', 'a}b', '{x}', 'a b', 'a\u0000b', 'ü']) {
      expect(validateEvent({ user_id: bad, type: 'click', ts: T0 }, 0, { now: T0, maxFutureSkewMs: 0 }).ok, bad).to.equal(false);
    }
    const masters = new Set(cluster.nodes('master').map((n) => `${n.options.host}:${n.options.port}`));
    expect(masters.size).to.equal(3);
    expect(new Set(p.keys.streams(PARTITIONS).map(masterOf))).to.deep.equal(masters);
    expect(new Set(Array.from({ length: 60 }, (_, i) => masterOf(p.keys.realtime(`cu-${i}`))))).to.deep.equal(masters);
  });

  it('ingest → windows → read: exact tags for users on every master; batch get in parallel by node', async () => {
    const events = userEvents(60, T0);
    const r = await p.producer.ingest(events);
    expect(r.ok).to.equal(true);
    expect(await p.consumer.drain()).to.equal(events.length);
    const users = Array.from({ length: 60 }, (_, i) => `cu-${i}`);
    const many = await p.reader.readMany([...users, 'nobody']);
    expect(many[60]).to.equal(null);
    for (let i = 0; i < 60; i++) {
      const one = await p.reader.read(users[i]);
      expect(one!.tags).to.include({
        clicks_24h: (i % 5) + 1,
        clicks_5m: Math.min((i % 5) + 1, 5),
        views_1h: (i % 7) + 2,
        purchases_24h: 1,
        spend_24h: i + 0.5,
      });
      expect(one!.tags.distinct_ads_1h).to.equal(Math.min((i % 7) + 2, 3));
      expect(many[i]).to.deep.equal(one);
    }
    // Replaying the same request changes nothing (idempotent by event id, per partition).
    await p.producer.ingest(events);
    await p.consumer.drain();
    expect(await p.reader.readMany(users)).to.deep.equal(many.slice(0, 60));
  });

  it('a running consumer reads every partition, and stop() wakes every blocked read at once', async () => {
    const c = extraRealtimeConsumer(p, 'live', { blockMs: 10_000, trimIntervalMs: 0 });
    await c.start();
    const events = userEvents(30, T0, 'run');
    await p.producer.ingest(events);
    const deadline = Date.now() + 10_000;
    while (c.processed < events.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(c.processed).to.equal(events.length);
    const started = Date.now();
    await c.stop();
    expect(Date.now() - started).to.be.lessThan(2000); // not the 10 s block time
    expect((await p.reader.read('cu-29'))!.tags.views_1h).to.equal((29 % 7) + 2);
  });

  describe('archive, trimming and batch', () => {
    let ods: string;
    beforeEach(() => {
      ods = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-ods-'));
    });
    afterEach(() => fs.rmSync(ods, { recursive: true, force: true }));

    it('archives every partition, trims each to what both groups finished, and the batch writes offline tags on every master', async () => {
      const events = userEvents(60, T0);
      await p.producer.ingest(events);
      const streams = p.keys.streams(PARTITIONS);
      const lengths = async () => Promise.all(streams.map((s) => cluster.xlen(s)));
      const archiver = new ArchiveConsumer({ redis: p.redis, keys: p.keys, partitions: PARTITIONS, consumerName: 'arch', odsDir: ods, trimIntervalMs: 0 });
      expect(await archiver.drain()).to.equal(events.length);
      // The realtime group has not read anything yet: nothing may be trimmed.
      expect((await lengths()).reduce((a, b) => a + b, 0)).to.equal(events.length);
      expect(await p.consumer.drain()).to.equal(events.length);
      expect(await lengths()).to.deep.equal(streams.map(() => 0));
      await archiver.stop();

      const summary = await runBatch({ redis: p.redis, keys: p.keys, tags: p.config.tags, odsDir: ods, asOf: T0, windows: true });
      expect(summary).to.include({ events: events.length, duplicates: 0, bad_lines: 0, users_written: 60, window_users_written: 60 });
      const owners = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const key = p.keys.offline(`cu-${i}`);
        const hash = await cluster.hgetall(key);
        expect(Number(hash.ltv_total)).to.equal(i + 0.5);
        expect(hash._run_id).to.equal(summary.run_id);
        owners.add(masterOf(key));
      }
      expect(owners.size).to.equal(3);
      const fused = await p.reader.read('cu-7');
      expect(fused!.tags).to.include({ ltv_total: 7.5, purchases_total: 1, clicks_24h: 3 });
      expect(fused!.meta.batch_run_id).to.equal(summary.run_id);
      const verified = await verifyWindows(p.redis, p.keys, p.config.tags.realtime);
      expect(verified.users_checked).to.equal(60);
      expect(verified.mismatches).to.deep.equal([]);
    });
  });

  it('dead-letters a poison entry from any partition and replays it to its own partition', async () => {
    const stream = p.keys.stream(5);
    await cluster.xadd(stream, '*', 'event_id', 'poison', 'user_id', 'cu-1', 'type', 'teleport', 'ts', String(T0));
    await p.producer.ingest(userEvents(10, T0));
    await p.consumer.drain();
    const letters = await listDeadLetters(p.redis, p.keys);
    expect(letters.map((l) => [l.stream, l.group, l.fields[1]])).to.deep.equal([[stream, 'realtime', 'poison']]);
    expect(((await cluster.xpending(stream, 'realtime')) as [number])[0]).to.equal(0);
    expect(await replayDeadLetters(p.redis, p.keys, PARTITIONS)).to.deep.equal({ replayed: 1, skipped: [], missing: [] });
    expect(await cluster.xlen(p.keys.deadLetters())).to.equal(0);
    const entries = await cluster.xrange(stream, '-', '+');
    expect(entries.some(([, f]) => f[1] === 'poison')).to.equal(true);
  });

  it('reports every partition and both groups in status', async () => {
    const events = userEvents(20, T0);
    await p.producer.ingest(events);
    await p.consumer.drain();
    const status = await streamStatus(p.redis, p.keys, PARTITIONS);
    expect(status.map((s) => s.stream)).to.deep.equal(p.keys.streams(PARTITIONS));
    expect(status.map((s) => s.node)).to.deep.equal(p.keys.streams(PARTITIONS).map(masterOf));
    const report = formatStatus(status, [], '/ods', T0);
    expect(report.split('\n')[0]).to.match(/^stream +node +length/);
    expect(report).to.include(`${p.keys.stream(0)}  ${masterOf(p.keys.stream(0))}`);
    const total = (g: string) => status.reduce((n, s) => n + (s.groups.find((x) => x.name === g)?.lag ?? 0), 0);
    expect(total('realtime')).to.equal(0);
    expect(total('archive')).to.equal(events.length);
    expect(status.reduce((n, s) => n + s.length, 0)).to.equal(events.length);
  });

  it('tag configs: record, apply an instant change with one switch, a follower and the reader switch; the same on every master', async () => {
    const shipped = p.config.tags;
    const doc = JSON.parse(JSON.stringify(shipped.document)) as { realtime: Record<string, unknown>[] };
    doc.realtime.push({ name: 'clicks_1h', event: 'click', aggregation: 'count', window: '1h' });
    const next = parseTagConfig(doc, 'next');
    expect((await recordTagConfig(cluster, p.keys, shipped)).version).to.equal(tagConfigVersion(shipped));
    expect((await p.producer.ingest(userEvents(30, T0))).ok).to.equal(true);
    await p.consumer.drain();
    const seen: string[] = [];
    const watch = watchActiveTagConfig(
      cluster,
      p.keys,
      tagConfigVersion(shipped),
      (a) => {
        seen.push(a.version);
        p.reader.setTags(a.config.realtime, undefined, a.generation);
        p.consumer.switchTags(
          a.config,
          a.generation,
          a.alsoWrite.map((w) => ({ generation: w.generation, realtime: w.config.realtime })),
        );
      },
      silentLogger,
      50,
    );
    try {
      const plan = await planTagConfigChange(cluster, p.keys, next, shipped, p.config.odsDir);
      const applied = await applyTagConfigChange(cluster, p.keys, next, plan, p.config.odsDir, { waitMs: 0, partitions: p.config.partitions });
      expect(applied.outcome).to.equal('switched');
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(seen).to.deep.equal([tagConfigVersion(next)]);
      // Users on every master: each click is at most 4 minutes old, so clicks_1h equals clicks_24h at once.
      const users = Array.from({ length: 30 }, (_, i) => `cu-${i}`);
      const profiles = await p.reader.readMany(users);
      profiles.forEach((pr, i) => expect(pr!.tags, users[i]).to.include({ clicks_1h: (i % 5) + 1, clicks_24h: (i % 5) + 1 }));
      // An event after the switch is written by the consumer under the new config.
      expect((await p.producer.ingest([{ event_id: 'after-switch', user_id: 'cu-1', type: 'click', ts: T0 }])).ok).to.equal(true);
      await p.consumer.drain();
      expect((await p.reader.read('cu-1'))!.tags).to.include({ clicks_1h: 3, clicks_24h: 3 });
      // A second apply planned against the old version changes nothing.
      expect(await runScript(cluster, Scripts.switchTagConfig(p.keys.tagConfigs(), tagConfigVersion(shipped), 'x', T0))).to.equal(0);

      // A change that needs a backfill (a 7-day click count): the streams replayed into a new
      // generation on every master (each user's keys in its own slot), then the switch.
      const doc7 = JSON.parse(JSON.stringify(next.document)) as { realtime: Record<string, unknown>[] };
      doc7.realtime.push({ name: 'clicks_7d', event: 'click', aggregation: 'count', window: '7d' });
      const next7 = parseTagConfig(doc7, 'next7');
      const plan7 = await planTagConfigChange(cluster, p.keys, next7, shipped, p.config.odsDir);
      const applied7 = await applyTagConfigChange(cluster, p.keys, next7, plan7, p.config.odsDir, {
        waitMs: 0,
        partitions: p.config.partitions,
        clock: p.clock.fn,
      });
      expect([applied7.how, applied7.backfill!.generation]).to.deep.equal(['backfill', 1]);
      expect(applied7.backfill!.stream_events).to.be.greaterThan(30);
      // (the follower may also have seen the pending config's state being written, with `next` still active)
      for (let i = 0; i < 100 && seen[seen.length - 1] !== tagConfigVersion(next7); i++) await new Promise((r) => setTimeout(r, 20));
      expect([seen[0], seen[seen.length - 1]]).to.deep.equal([tagConfigVersion(next), tagConfigVersion(next7)]);
      (await p.reader.readMany(users)).forEach((pr, i) =>
        expect(pr!.tags, users[i]).to.include({ clicks_7d: (i % 5) + 1 + (i === 1 ? 1 : 0), clicks_24h: (i % 5) + 1 + (i === 1 ? 1 : 0) }),
      );
      expect(await cluster.exists(p.keys.withGeneration(1).panes('cu-1', 'click'))).to.equal(1);
    } finally {
      await watch.stop();
    }
  });
});
