import { expect } from 'chai';
import { bodyToItems } from '../../src/api/parseBody';

describe('request body parsing', () => {
  it('takes one object, an array, or NDJSON lines (blank lines skipped)', () => {
    expect(bodyToItems({ a: 1 }, false, 10)).to.deep.equal({ ok: true, items: [{ a: 1 }] });
    expect(bodyToItems([{ a: 1 }, { b: 2 }], false, 10)).to.deep.equal({ ok: true, items: [{ a: 1 }, { b: 2 }] });
    expect(bodyToItems('{"a":1}\n\n{"b":2}\r\n', true, 10)).to.deep.equal({ ok: true, items: [{ a: 1 }, { b: 2 }] });
  });

  it('reports NDJSON lines that are not JSON with item index and line number', () => {
    expect(bodyToItems('{"a":1}\n\nnope\n{"b":2}\n{', true, 10)).to.deep.equal({
      ok: false,
      status: 400,
      errors: [
        { index: 1, field: '', message: 'line 3: not valid JSON' },
        { index: 3, field: '', message: 'line 5: not valid JSON' },
      ],
    });
  });

  it('rejects empty bodies, scalars, and more events than allowed (413)', () => {
    expect(bodyToItems([], false, 10)).to.deep.include({ ok: false, status: 400 });
    expect(bodyToItems('\n', true, 10)).to.deep.include({ ok: false, status: 400 });
    expect(bodyToItems(42, false, 10)).to.deep.include({ ok: false, status: 400 });
    expect(bodyToItems([1, 2, 3], false, 2)).to.deep.equal({
      ok: false,
      status: 413,
      errors: [{ index: 2, field: '', message: 'at most 2 events per request' }],
    });
    expect(bodyToItems('{}\n{}\n{}\n', true, 2)).to.deep.include({ ok: false, status: 413 });
  });
});
