import { expect } from 'chai';
import { createHash } from 'crypto';
import { eventFingerprint } from '../../src/consumers/windowWriter';

describe('eventFingerprint: the 6 bytes of an event id that dedup entries keep', () => {
  it("is the first 6 bytes of the id's SHA-1, UTF-8 encoded (entries already in Redis stay valid)", () => {
    expect(eventFingerprint('abc').toString('hex')).to.equal('a9993e364706');
    for (const id of ['imp-81', 'ü-événement-☃', '', 'x'.repeat(300)]) {
      expect(eventFingerprint(id).equals(createHash('sha1').update(id, 'utf8').digest().subarray(0, 6)), id).to.equal(true);
    }
  });
});
