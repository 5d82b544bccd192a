import { expect } from 'chai';
import { validateEvent } from '../../src/core/event';
import { CANONICAL_ODS_LINE, odsLine } from '../../src/ods/files';
import { TrafficGenerator } from '../../src/dev/simulate';

/** What the batch's reader makes of a line: the validated event, or undefined. */
function validated(line: string): object | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { stream_id: _s, ingested_at: _i, ...event } = raw as Record<string, unknown>;
  const r = validateEvent(event, 0, { now: 0, maxFutureSkewMs: Infinity, stored: true });
  return r.ok ? r.event : undefined;
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('canonical ODS lines (the batch reads these with DuckDB unchecked)', () => {
  it('matches every line the archiver writes for a valid event', () => {
    const gen = new TrafficGenerator(500, 7);
    for (let i = 0; i < 5000; i++) {
      const ts = Date.UTC(2026, 0, 1) + i * 977;
      const r = validateEvent(gen.next(ts), 0, { now: ts, maxFutureSkewMs: 0 });
      if (!r.ok) throw new Error('generator made an invalid event');
      const line = odsLine(r.event, `${ts}-${i}`);
      expect(CANONICAL_ODS_LINE.test(line.slice(0, -1)), line).to.equal(true);
    }
    const edge = { event_id: 'e'.repeat(128), user_id: 'A.z_0:9@-', type: 'purchase' as const, ts: 0, amount: 0, currency: 'EUR' };
    expect(CANONICAL_ODS_LINE.test(odsLine(edge, '0-0').slice(0, -1))).to.equal(true);
  });

  it('does not match a line the validator refuses, or one a reader could read otherwise', () => {
    const base =
      '{"event_id":"e1","user_id":"u1","type":"purchase","ts":1767225600000,"amount":12.5,"currency":"EUR","stream_id":"1767225600000-0","ingested_at":1767225600000}';
    expect(CANONICAL_ODS_LINE.test(base)).to.equal(true);
    const variants = [
      base.replace('"amount":12.5,', ''), // a purchase without an amount
      base.replace('12.5', '-12.5'),
      base.replace('12.5', '"12.5"'),
      base.replace('12.5', '1e999'), // Infinity once parsed
      base.replace('12.5', '012'),
      base.replace('"ts":1767225600000', '"ts":253402300800000'), // after the year 9999
      base.replace('"ts":1767225600000', '"ts":1767225600000.5'),
      base.replace('"ts":1767225600000', '"ts":"2026-01-01T00:00:00Z"'), // valid, but not as the archiver writes it
      base.replace('"type":"purchase"', '"type":"Purchase"'),
      base.replace('"user_id":"u1"', '"user_id":"u{1}"'),
      base.replace('"user_id":"u1"', `"user_id":"${'u'.repeat(129)}"`),
      base.replace('"currency":"EUR"', '"currency":"eur"'),
      base.replace('"currency":"EUR",', '"currency":"EUR","extra":1,'),
      base.replace('"event_id":"e1","user_id":"u1"', '"user_id":"u1","event_id":"e1"'), // another order
      base.replace('"stream_id":"1767225600000-0"', '"stream_id":"99999999999999999999-0"'), // beyond a 64-bit integer
      base.replace(',"amount"', ', "amount"'),
      base.replace('"e1"', '"e\\u0031"'),
      `${base} `,
      base.slice(0, -1),
    ];
    for (const line of variants) expect(CANONICAL_ODS_LINE.test(line), line).to.equal(false);
  });

  it('every mutation of a canonical line that still matches is an event the validator accepts as it stands', () => {
    const next = random(42);
    const alphabet = '{}[]":,.-+eE0123456789 abcdefghijklmnopqrstuvwxyzAZ_@\\';
    const base =
      '{"event_id":"e-1","user_id":"u.1","type":"click","ts":1767225600000,"ad_id":"a:1","campaign_id":"c@1","amount":0.25,"currency":"USD","stream_id":"1767225600000-3","ingested_at":1767225600000}';
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      let line = base;
      for (let m = 1 + Math.floor(next() * 3); m > 0; m--) {
        const at = Math.floor(next() * line.length);
        const op = next();
        const ch = alphabet[Math.floor(next() * alphabet.length)];
        line =
          op < 0.4 ? line.slice(0, at) + ch + line.slice(at + 1) : op < 0.7 ? line.slice(0, at) + line.slice(at + 1) : line.slice(0, at) + ch + line.slice(at);
      }
      if (!CANONICAL_ODS_LINE.test(line)) continue;
      matched++;
      const event = validated(line);
      expect(event, line).to.not.equal(undefined);
      // Exactly the validated event's fields, as parsed: nothing the validator normalised or dropped.
      const { stream_id: _s, ingested_at: _i, ...parsed } = JSON.parse(line) as Record<string, unknown>;
      expect(parsed, line).to.deep.equal(event);
    }
    expect(matched).to.be.greaterThan(100); // the test exercised matching mutations, not only refusals
  });
});
