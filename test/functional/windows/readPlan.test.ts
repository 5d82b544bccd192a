import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import type { Redis } from 'ioredis';
import { parseTagConfig } from '../../../src/core/tagConfig';
import { ProfileReader } from '../../../src/profile/reader';
import { Pipeline, T0, feed, makePipeline } from '../../helpers/context';

/** The plan argument of each readProfile call MONITOR saw (FCALL_RO fn numkeys keys… now plan tags offline id): its length, and the id. */
function planArgs(calls: string[][]): { planBytes: number; id: string }[] {
  return calls
    .filter((a) => a[0].toUpperCase() === 'FCALL_RO' && a[1].endsWith('_readProfile'))
    .map((a) => {
      const keys = Number(a[2]);
      return { planBytes: a[3 + keys + 1].length, id: a[3 + keys + 4] };
    });
}

describe('a read names its window plan by id, and sends the plan only to a library load that lacks it (real Redis)', () => {
  let p: Pipeline;
  before(async () => {
    p = await makePipeline({ partitions: 1 });
    const events = ['u1', 'u1', 'u2'].map((user, i) => ({
      event_id: `e${i}`,
      user_id: user,
      type: 'impression',
      ts: T0 - 1000 * (i + 1),
      ad_id: 'ad-1',
      campaign_id: 'c-1',
    }));
    await feed(p, events);
  });
  after(() => p.close());

  it('answers the first read of a plan this server has not seen (sent again with the plan), then sends the id alone', async () => {
    // A config no read on this server has used: a tag of its own name.
    const name = `views_${process.pid}_${Date.now() % 1_000_000}`;
    const shipped = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', '..', 'config', 'tags.json'), 'utf8')) as { realtime: unknown[] };
    const tags = parseTagConfig({ realtime: [...shipped.realtime, { name, event: 'impression', aggregation: 'count', window: '7m' }] }).realtime;
    const calls: string[][] = [];
    const monitor = await (p.redis as Redis).monitor();
    monitor.on('monitor', (_time: string, args: string[]) => calls.push(args));
    try {
      const reader = new ProfileReader(p.redis, p.keys, tags, () => T0);
      const first = await reader.read('u1');
      const second = await reader.read('u1');
      const many = await reader.readMany(['u1', 'u2', 'nobody']);
      await new Promise((r) => setTimeout(r, 100));
      expect(first!.tags[name]).to.equal(2);
      expect(second).to.deep.equal(first);
      expect(many.map((m) => m?.tags[name] ?? null)).to.deep.equal([2, 1, null]);
      const sent = planArgs(calls);
      // The first read: by id (answered -1), then with the plan; every read after: by id alone.
      expect(sent.map((s) => s.planBytes > 0)).to.deep.equal([false, true, false, false, false, false]);
      expect(new Set(sent.map((s) => s.id)).size).to.equal(1);
      expect(sent[0].id).to.match(/^[0-9a-f]{32}$/);
    } finally {
      monitor.disconnect();
    }
  });
});
