import { expect } from 'chai';
import { matches, parseSelector } from '../../../actors/tasks/selector.js';
import { expectCode } from '../../fixtures/expect-code.js';

describe('task selectors', () => {
  const gpu = { name: 'worker-1', tags: ['gpu', 'ssd'], platform: 'linux', arch: 'x64' };
  const plain = { name: 'worker-2', tags: [], platform: 'darwin', arch: 'arm64' };

  it('the empty selector matches every worker', () => {
    for (const text of [undefined, '', '  ']) {
      const s = parseSelector(text);
      expect(s.terms).to.deep.equal([]);
      expect([matches(s, gpu), matches(s, plain)]).to.deep.equal([true, true]);
    }
  });

  it('every term must match; a key may repeat', () => {
    expect(matches(parseSelector('tag=gpu'), gpu)).to.equal(true);
    expect(matches(parseSelector('tag=gpu,tag=ssd'), gpu)).to.equal(true);
    expect(matches(parseSelector('tag=gpu,tag=tpu'), gpu)).to.equal(false);
    expect(matches(parseSelector('name=worker-2'), plain)).to.equal(true);
    expect(matches(parseSelector('platform=linux,arch=x64'), gpu)).to.equal(true);
    expect(matches(parseSelector('platform=linux'), plain)).to.equal(false);
  });

  it('normalizes spacing in its text', () => {
    expect(parseSelector(' tag = gpu , name=worker-1 ').text).to.equal('tag=gpu,name=worker-1');
  });

  it('an unknown key or a missing value: TROUPE_E_BAD_SELECTOR naming it', () => {
    expect(expectCode(() => parseSelector('colour=red'), 'TROUPE_E_BAD_SELECTOR').message).to.equal(
      'selector "colour=red": unknown key "colour"; use tag=…, name=…, platform=…, arch=…',
    );
    expect(expectCode(() => parseSelector('tag='), 'TROUPE_E_BAD_SELECTOR').message).to.equal('selector "tag=": tag needs a value (tag=…)');
    expect(expectCode(() => parseSelector('gpu'), 'TROUPE_E_BAD_SELECTOR').message).to.contain('unknown key "gpu"');
  });
});
