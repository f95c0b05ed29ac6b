import { expect } from 'chai';
import { HEAP_GROWING_PERCENT, SMALL_HEAP_BYTES, heapGrowingPercent } from '../../actors/heap-growth.js';

describe('heap growth of a streaming node', function () {
  it('a small heap grows HEAP_GROWING_PERCENT before a full collection; from SMALL_HEAP_BYTES on, V8 chooses (0)', function () {
    expect(HEAP_GROWING_PERCENT).to.equal(300);
    expect(heapGrowingPercent(14 * 1024 * 1024)).to.equal(300);
    expect(heapGrowingPercent(SMALL_HEAP_BYTES - 1)).to.equal(300);
    expect(heapGrowingPercent(SMALL_HEAP_BYTES)).to.equal(0);
    expect(heapGrowingPercent(1024 * 1024 * 1024)).to.equal(0);
  });
});
