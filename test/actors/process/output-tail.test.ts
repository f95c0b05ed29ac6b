import { expect } from 'chai';
import { OutputTail } from '../../../actors/process/output-tail.js';

describe('actors: OutputTail', function () {
  it('keeps exactly the last `limit` bytes, across chunks and within one large chunk', function () {
    const tail = new OutputTail(8);
    for (const s of ['abc', 'defgh', 'ij']) tail.push(Buffer.from(s));
    expect(tail.text()).to.equal('cdefghij');
    tail.push(Buffer.from('0123456789'));
    expect(tail.text()).to.equal('23456789');
  });

  it('copies what it keeps: a reused buffer does not change the tail', function () {
    const tail = new OutputTail(4);
    const buf = Buffer.from('abcd');
    tail.push(buf);
    buf.fill('x');
    expect(tail.toBuffer().toString()).to.equal('abcd');
  });

  it('a limit of 0 keeps nothing', function () {
    const tail = new OutputTail(0);
    tail.push(Buffer.from('abc'));
    expect(tail.text()).to.equal('');
  });
});
