/**
 * An envelope encoded once for many links (src/cluster/encoded-envelope.ts): the frame a connection
 * writes with it holds the very bytes of the plain envelope, and its extension type, never written,
 * is refused if a peer sends it. End to end, through real sockets: the membership tests.
 */
import { expect } from 'chai';
import { EncodedEnvelope } from '../../src/cluster/encoded-envelope.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { decodeFrame, encodeFrame } from '../../src/transport/codec.js';

describe('cluster: an envelope encoded once', () => {
  const member = { t: 'member', node: 'worker-7', role: 'worker', incarnation: 'a1b2', status: 'down', meta: { tags: ['gpu'], cpus: 8, nested: { x: [1, 2.5, null, true] } } } as const;
  const send = { t: 'send', to: new ActorRef('manager', 'controller'), msg: { type: 'workResult', n: 1 } };

  it('a frame with it is byte for byte the frame with the plain envelope, among others', () => {
    const once = new EncodedEnvelope(member);
    const plain = encodeFrame([send, member, send, member]);
    const withEncoded = encodeFrame([send, once.asEnvelope(), send, once.asEnvelope()]);
    expect(Buffer.compare(withEncoded, plain)).to.equal(0);
    expect(decodeFrame(withEncoded)[1]).to.deep.equal(member);
    expect(once.t).to.equal('member');
  });

  it('alone in a frame, and the same object in many frames', () => {
    const once = new EncodedEnvelope(member);
    for (let i = 0; i < 3; i++) expect(Buffer.compare(encodeFrame([once.asEnvelope()]), encodeFrame([member]))).to.equal(0);
  });

  it('its extension type from a peer is refused with an error, not decoded', () => {
    // A frame [ext 0x7e of one byte]: fixext1 (0xd4), type 0x7e, payload 0x00.
    expect(() => decodeFrame(Buffer.from([0x91, 0xd4, 0x7e, 0x00]))).to.throw();
  });
});
