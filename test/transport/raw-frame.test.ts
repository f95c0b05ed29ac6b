import { expect } from 'chai';
import { ActorRef } from '../../protocols/actor-ref.js';
import { decodeRawHeader, encodeRawHeader, isRawHeader, RAW_MIN_BYTES, rawBytesOf, withPayload } from '../../src/transport/raw-frame.js';

describe('raw frames: large `data` as a header and its payload', function () {
  const to = new ActorRef('manager', 'controller');
  const envelope = (data: unknown) => ({ t: 'send', to, msg: { type: 'workOutput', id: 't-1', stream: 'stdout', seq: 3, data } });

  it('only a `send` whose message has Uint8Array `data` of at least RAW_MIN_BYTES goes raw', function () {
    const big = Buffer.alloc(RAW_MIN_BYTES);
    expect(rawBytesOf(envelope(big))).to.equal(big);
    expect(rawBytesOf(envelope(new Uint8Array(RAW_MIN_BYTES)))).to.be.instanceOf(Uint8Array);
    expect(rawBytesOf(envelope(Buffer.alloc(RAW_MIN_BYTES - 1)))).to.equal(undefined);
    expect(rawBytesOf(envelope('x'.repeat(RAW_MIN_BYTES)))).to.equal(undefined);
    expect(rawBytesOf({ t: 'member' })).to.equal(undefined);
    expect(rawBytesOf({ t: 'send', msg: null })).to.equal(undefined);
  });

  it('a header and its payload give back the envelope, the payload being the very buffer received', function () {
    const data = Buffer.alloc(RAW_MIN_BYTES, 7);
    const sent = envelope(data);
    const header = encodeRawHeader(sent, data);
    expect(isRawHeader(header)).to.equal(true);
    expect(header.length).to.be.below(200);
    expect(sent.msg.data).to.equal(data); // the sender's message is left whole
    const received = Buffer.from(data);
    const got = withPayload(decodeRawHeader(header, RAW_MIN_BYTES), received) as ReturnType<typeof envelope>;
    expect(got).to.deep.equal(sent);
    expect(got.to).to.be.instanceOf(ActorRef);
    expect(got.msg.data).to.equal(received);
  });

  it('refuses a length over the bound, and a payload of another length', function () {
    const data = Buffer.alloc(RAW_MIN_BYTES);
    const header = encodeRawHeader(envelope(data), data);
    expect(() => decodeRawHeader(header, RAW_MIN_BYTES - 1)).to.throw(TypeError, `length must be an integer from 0 to ${RAW_MIN_BYTES - 1}`);
    expect(() => withPayload(decodeRawHeader(header, RAW_MIN_BYTES), data.subarray(1))).to.throw(TypeError, `a raw payload of ${RAW_MIN_BYTES - 1} bytes where its header said ${RAW_MIN_BYTES}`);
  });
});
