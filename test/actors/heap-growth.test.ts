import { expect } from 'chai';
import { HEAP_GROWING_PERCENT, RECEIVER_GROWTH, SMALL_HEAP_BYTES, heapGrowingPercent } from '../../actors/heap-growth.js';

describe('heap growth of a streaming node', function () {
  it('a small heap grows HEAP_GROWING_PERCENT before a full collection; from SMALL_HEAP_BYTES on, V8 chooses (0)', function () {
    expect(HEAP_GROWING_PERCENT).to.equal(300);
    expect(heapGrowingPercent(14 * 1024 * 1024)).to.equal(300);
    expect(heapGrowingPercent(SMALL_HEAP_BYTES - 1)).to.equal(300);
    expect(heapGrowingPercent(SMALL_HEAP_BYTES)).to.equal(0);
    expect(heapGrowingPercent(1024 * 1024 * 1024)).to.equal(0);
  });

  it("the run client's heap grows 11× while under 16 MiB; from there on, V8 chooses", function () {
    expect(RECEIVER_GROWTH).to.deep.equal({ percent: 1000, belowBytes: 16 * 1024 * 1024 });
    expect(heapGrowingPercent(9 * 1024 * 1024, RECEIVER_GROWTH)).to.equal(1000);
    expect(heapGrowingPercent(16 * 1024 * 1024, RECEIVER_GROWTH)).to.equal(0);
  });
});
