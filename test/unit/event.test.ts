import { expect } from 'chai';
import { fromStreamFields, toStreamFields, validateEvent } from '../../src/core/event';

const NOW = Date.UTC(2026, 0, 1);
const opts = { now: NOW, maxFutureSkewMs: 300_000 };

describe('event schema', () => {
  it('normalises a valid event: ISO ts to epoch ms, optional fields kept', () => {
    const r = validateEvent(
      { user_id: 'u-1', type: 'purchase', ts: '2026-01-01T00:00:00.250Z', event_id: 'e1', amount: 12.5, currency: 'EUR', ad_id: 'a', campaign_id: 'c' },
      0,
      opts,
    );
    expect(r).to.deep.equal({
      ok: true,
      event: { event_id: 'e1', user_id: 'u-1', type: 'purchase', ts: NOW + 250, ad_id: 'a', campaign_id: 'c', amount: 12.5, currency: 'EUR' },
    });
  });

  it('defaults ts to now and assigns a UUID event_id', () => {
    const r = validateEvent({ user_id: 'u', type: 'click' }, 0, opts);
    if (!r.ok) throw new Error('expected ok');
    expect(r.event.ts).to.equal(NOW);
    expect(r.event.event_id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('accepts ISO time zones with offsets', () => {
    const r = validateEvent({ user_id: 'u', type: 'click', ts: '2026-01-01T01:00:00+01:00' }, 0, opts);
    expect(r.ok && r.event.ts).to.equal(NOW);
  });

  it('reports every bad field of an item with its index', () => {
    const r = validateEvent({ user_id: 'bad{id}', type: 'view', ts: 1.5, amount: -1, currency: 'usd', extra: 1 }, 7, opts);
    expect(r).to.deep.equal({
      ok: false,
      errors: [
        { index: 7, field: 'extra', message: 'unknown field' },
        { index: 7, field: 'user_id', message: 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ -' },
        { index: 7, field: 'type', message: 'must be one of impression, click, purchase' },
        { index: 7, field: 'ts', message: 'must be a non-negative integer of epoch milliseconds' },
        { index: 7, field: 'amount', message: 'must be a finite number >= 0' },
        { index: 7, field: 'currency', message: 'must be a three-letter upper-case ISO 4217 code' },
      ],
    });
  });

  it('requires user_id, type, and amount for a purchase', () => {
    const r = validateEvent({ type: 'purchase' }, 0, opts);
    expect(r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`)).to.deep.equal(['user_id: is required', 'amount: is required for a purchase']);
  });

  it('refuses a time before 2000 at ingest, naming the likely mistake (epoch seconds); stored entries are not held to it', () => {
    const r = validateEvent({ user_id: 'u', type: 'click', ts: 1796526000 }, 0, opts);
    expect(r.ok ? null : r.errors).to.deep.equal([
      {
        index: 0,
        field: 'ts',
        message: '1796526000 is 1970-01-21 as epoch milliseconds, before 2000-01-01: epoch seconds? ts must be epoch milliseconds (or ISO-8601)',
      },
    ]);
    const iso = validateEvent({ user_id: 'u', type: 'click', ts: '1999-12-31T23:59:59Z' }, 0, opts);
    expect(iso.ok ? null : iso.errors).to.deep.equal([{ index: 0, field: 'ts', message: 'is before 2000-01-01: events that old are refused' }]);
    expect(validateEvent({ user_id: 'u', type: 'click', ts: 946_684_800_000 }, 0, opts).ok).to.equal(true);
    expect(validateEvent({ event_id: 'e', user_id: 'u', type: 'click', ts: 1796526000 }, 0, { ...opts, stored: true }).ok).to.equal(true);
  });

  it('rejects ts beyond the future skew, accepts it at the limit', () => {
    expect(validateEvent({ user_id: 'u', type: 'click', ts: NOW + 300_000 }, 0, opts).ok).to.equal(true);
    const r = validateEvent({ user_id: 'u', type: 'click', ts: NOW + 300_001 }, 0, opts);
    expect(r.ok ? null : r.errors).to.deep.equal([{ index: 0, field: 'ts', message: 'is more than 300000 ms in the future' }]);
  });

  it('rejects non-ISO date strings, numeric strings and non-finite numbers', () => {
    for (const ts of ['2026-01-01', '1767225600000', 'yesterday', '2026-01-01T00:00:00']) {
      expect(validateEvent({ user_id: 'u', type: 'click', ts }, 0, opts).ok, ts).to.equal(false);
    }
    for (const amount of [Infinity, NaN, '5']) {
      expect(validateEvent({ user_id: 'u', type: 'purchase', amount }, 0, opts).ok, String(amount)).to.equal(false);
    }
  });

  it('rejects non-objects and a __proto__ key', () => {
    expect(validateEvent([1], 2, opts)).to.deep.equal({ ok: false, errors: [{ index: 2, field: '', message: 'event must be a JSON object' }] });
    expect(validateEvent(null, 0, opts).ok).to.equal(false);
    const hostile = JSON.parse('{"user_id":"u","type":"click","__proto__":{"polluted":1}}');
    const r = validateEvent(hostile, 0, opts);
    expect(r.ok ? null : r.errors).to.deep.equal([{ index: 0, field: '__proto__', message: 'unknown field' }]);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('limits ids to 128 characters', () => {
    expect(validateEvent({ user_id: 'x'.repeat(128), type: 'click' }, 0, opts).ok).to.equal(true);
    expect(validateEvent({ user_id: 'x'.repeat(129), type: 'click' }, 0, opts).ok).to.equal(false);
  });

  it('round-trips through stream fields, and re-validation of stored entries needs event_id and ts', () => {
    const r = validateEvent({ user_id: 'u', type: 'purchase', ts: NOW, event_id: 'e', amount: 0.1, campaign_id: 'c' }, 0, opts);
    if (!r.ok) throw new Error('expected ok');
    const fields = toStreamFields(r.event);
    expect(fields).to.deep.equal(['event_id', 'e', 'user_id', 'u', 'type', 'purchase', 'ts', String(NOW), 'campaign_id', 'c', 'amount', '0.1']);
    const back = validateEvent(fromStreamFields(fields), 0, { ...opts, stored: true });
    expect(back).to.deep.equal(r);
    const missing = validateEvent(fromStreamFields(['user_id', 'u', 'type', 'click']), 0, { ...opts, stored: true });
    expect(missing.ok ? null : missing.errors.map((e) => e.field)).to.deep.equal(['event_id', 'ts']);
    const proto = validateEvent(fromStreamFields([...fields, '__proto__', 'x']), 0, { ...opts, stored: true });
    expect(proto.ok ? null : proto.errors.map((e) => e.field)).to.deep.equal(['__proto__']);
  });
});
