import { expect } from 'chai';
import { profileView } from '../../src/api/routes/profiles';
import { flatProfile } from '../../src/profile/flat';

describe('GET /profile/:userId views', () => {
  it("reads the view from the request target's query (after the first ?, up to a #)", () => {
    const cases: [string, 'fused' | 'flat' | null][] = [
      ['/profile/a', 'fused'],
      ['/profile/a?', 'fused'],
      ['/profile/a?x=1', 'fused'],
      ['/profile/a?view=flat', 'flat'],
      ['/profile/a?x=1&view=flat', 'flat'],
      ['/profile/a?view=fl%61t', 'flat'],
      ['http://host:8080/profile/a?view=flat', 'flat'],
      ['/profile/a?view=flat#frag', 'flat'],
      ['/profile/a#frag?view=full', 'fused'],
      ['/profile/a?view=full#x', null],
      ['/profile/a?view=', null],
      ['/profile/a?view', null],
      ['/profile/a?view=flat&view=flat', null],
      ['/profile/a?view=Flat', null],
    ];
    expect(cases.map(([url]) => [url, profileView(url)])).to.deep.equal(cases);
  });

  it('flattens a profile: numbers as decimal text, count_by as JSON, text as is, null tags and meta left out', () => {
    const counts: Record<string, number> = Object.create(null);
    counts['c-1'] = 2;
    counts.__proto__ = 1;
    const flat = flatProfile({
      user_id: 'u',
      tags: { views_5m: 3, spend_24h: 470.5, tiny: 0.1 + 0.2, avg_1h: null, campaigns: counts, segment_id: 'high_value_user' },
      meta: { as_of: 1, last_event_at: null, batch_run_id: 'r', batch_at: 2 },
    });
    expect(JSON.parse(JSON.stringify(flat))).to.deep.equal({
      views_5m: '3',
      spend_24h: '470.5',
      tiny: '0.30000000000000004',
      campaigns: '{"c-1":2,"__proto__":1}',
      segment_id: 'high_value_user',
    });
  });
});
