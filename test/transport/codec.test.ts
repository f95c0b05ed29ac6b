/**
 * The codec's public functions, on real msgpack bytes. The TROUPE_E_DECODE code is given by the
 * connection (src/transport/connection.ts) to whatever decodeFrame throws; here we check that it
 * throws for every kind of bad frame, and never for a good one.
 */
import { expect } from 'chai';
import { checkNesting, decodeFrame, encodeFrame, MAX_NESTING_DEPTH } from '../../src/transport/codec.js';
import { ActorRef } from '../../protocols/actor-ref.js';

function decodeError(bytes: number[] | Buffer): Error {
  try {
    decodeFrame(Buffer.from(bytes));
  } catch (err) {
    expect(err).to.be.instanceOf(Error);
    return err as Error;
  }
  return expect.fail(`decoded ${Buffer.from(bytes).toString('hex')}, but should have thrown`);
}

const str = (s: string): number[] => [0xa0 + s.length, ...Buffer.from(s, 'latin1')];

describe('unit: transport codec', () => {
  describe('round trip', () => {
    it('gives back a batch of envelopes as they were', () => {
      const batch = [
        { t: 'send', to: new ActorRef('worker-1', 'echo'), msg: { type: 'ping', n: 42, list: [1, 'two', null, true, 1.5, -7] } },
        { t: 'error', code: 'TROUPE_E_DECODE', reason: 'é ✓ unicode' },
        { t: 'member', node: 'manager', role: 'manager', incarnation: 'abc', status: 'up', meta: {} },
      ];
      expect(decodeFrame(encodeFrame(batch))).to.deep.equal(batch);
    });

    it('an empty batch is an empty array', () => {
      expect(decodeFrame(encodeFrame([]))).to.deep.equal([]);
    });

    it('brings back an ActorRef anywhere in a message as an ActorRef, equal by value', () => {
      const to = new ActorRef('worker-1', 'echo');
      const q = new ActorRef('manager', '$q/17');
      const nested = new ActorRef('client-1', 'a/b/c');
      const [envelope] = decodeFrame(encodeFrame([{ t: 'send', to, q, msg: { type: 'relay', deep: [{ ref: nested }] } }])) as [
        { to: unknown; q: unknown; msg: { deep: { ref: unknown }[] } },
      ];
      expect(envelope.to).to.be.instanceOf(ActorRef);
      expect(envelope.q).to.be.instanceOf(ActorRef);
      expect(envelope.msg.deep[0]!.ref).to.be.instanceOf(ActorRef);
      expect((envelope.to as ActorRef).equals(to)).to.equal(true);
      expect((envelope.q as ActorRef).toString()).to.equal('manager/$q/17');
      expect((envelope.msg.deep[0]!.ref as ActorRef).toString()).to.equal('client-1/a/b/c');
    });

    it('writes an ActorRef as extension 0x41 holding [node, path] (the wire format: changing it needs a protocol bump)', () => {
      const frame = encodeFrame([new ActorRef('n1', 'a')]);
      expect([...frame]).to.deep.equal([0x91, 0xd4, 0x41, 0x00, 0x92, ...str('n1'), ...str('a')]);
    });

    it('a plain {node, path} map stays a plain object: only the extension makes a ref', () => {
      const [value] = decodeFrame(encodeFrame([{ node: 'n1', path: 'a' }]));
      expect(value).to.not.be.instanceOf(ActorRef);
      expect(Object.getPrototypeOf(value)).to.equal(Object.prototype);
      expect(value).to.deep.equal({ node: 'n1', path: 'a' });
    });

    it('decodes the same ref the same way every time, and a bad one after a good one still fails', () => {
      const frame = encodeFrame([new ActorRef('worker-1', 'echo'), new ActorRef('worker-1', 'echo')]);
      const [x, y] = decodeFrame(frame) as ActorRef[];
      const [z] = decodeFrame(frame) as ActorRef[];
      for (const r of [x!, y!, z!]) expect([r.node, r.path]).to.deep.equal(['worker-1', 'echo']);
      expect(decodeError([0x91, 0xd4, 0x41, 0x00, 0x93, ...str('worker-1'), ...str('echo'), 0x01]).message).to.equal('malformed actor reference');
    });

    it('keeps bytes as bytes', () => {
      const [value] = decodeFrame(encodeFrame([Buffer.from([0, 1, 254, 255])]));
      expect(Buffer.isBuffer(value)).to.equal(true);
      expect([...(value as Buffer)]).to.deep.equal([0, 1, 254, 255]);
    });

    it('round-trips a full batch of 1024 envelopes and a 1 MiB string', () => {
      const batch = Array.from({ length: 1024 }, (_, i) => ({ t: 'send', to: new ActorRef('w', `a${i}`), msg: { type: 'note', i } }));
      expect(decodeFrame(encodeFrame(batch))).to.deep.equal(batch);
      const big = 'x'.repeat(1024 * 1024);
      expect(decodeFrame(encodeFrame([{ text: big }]))).to.deep.equal([{ text: big }]);
    });

    it('a frame already returned is not overwritten by later encodes (ws may still be sending it)', () => {
      const first = encodeFrame([{ t: 'send', msg: 'first frame' }]);
      const copy = Buffer.from(first);
      for (let i = 0; i < 5000; i++) encodeFrame([{ t: 'send', i, msg: 'y'.repeat(i % 200) }]);
      expect(first.equals(copy)).to.equal(true);
      expect(decodeFrame(first)).to.deep.equal([{ t: 'send', msg: 'first frame' }]);
    });
  });

  describe('bad frames throw', () => {
    it('an empty frame', () => {
      expect(decodeError([]).message).to.equal('Unexpected end of MessagePack data');
    });

    it('a truncated array', () => {
      expect(decodeError([0x92, 0x01]).message).to.equal('Unexpected end of MessagePack data');
    });

    it('bytes after the one array', () => {
      expect(decodeError([0x90, 0x01]).message).to.match(/^Data read, but end of buffer not reached/);
    });

    it('a value that is not an array: a map, a number, a string', () => {
      for (const bytes of [[0x80], [0x01], str('hello')]) {
        const err = decodeError(bytes);
        expect(err).to.be.instanceOf(TypeError);
        expect(err.message).to.equal('a frame must be a msgpack array of envelopes');
      }
    });

    it('random bytes', () => {
      // Fixed bytes that once came from randomBytes: an unassigned 0xc1, then noise.
      expect(() => decodeFrame(Buffer.from('91c1d9ff00', 'hex'))).to.throw();
      expect(() => decodeFrame(Buffer.from('dd7fffffff', 'hex'))).to.throw();
    });

    it('an unknown extension type', () => {
      expect(decodeError([0x91, 0xd4, 0x05, 0x00]).message).to.equal('Unknown extension 5');
    });

    it('a malformed ActorRef extension fails the whole frame', () => {
      // [1, "a"]: the node is not a string
      expect(decodeError([0x92, 0x01, 0xd4, 0x41, 0x00, 0x92, 0x01, ...str('a')]).message).to.equal('malformed actor reference');
      // ["n1"]: one element, not two
      expect(decodeError([0x91, 0xd4, 0x41, 0x00, 0x91, ...str('n1')]).message).to.equal('malformed actor reference');
      // ["n1", "a", "extra"]: three elements, not two
      expect(decodeError([0x91, 0xd4, 0x41, 0x00, 0x93, ...str('n1'), ...str('a'), ...str('extra')]).message).to.equal('malformed actor reference');
      // "n1/a": a string, not [node, path]
      expect(decodeError([0x91, 0xd4, 0x41, 0x00, ...str('n1/a')]).message).to.equal('malformed actor reference');
    });

    it('an ActorRef that is not a valid ref fails on decode, though it could be encoded', () => {
      const frame = encodeFrame([new ActorRef('bad name', 'x')]);
      expect(decodeError(frame).message).to.equal('malformed actor reference');
      expect(decodeError(encodeFrame([new ActorRef('n1', 'a//b')])).message).to.equal('malformed actor reference');
    });

    it('a structured-clone pointer (a cycle) is refused', () => {
      expect(decodeError([0x91, 0xd6, 0x70, 0, 0, 0, 0]).message).to.equal('Structured clone extension is disabled');
      expect(decodeError([0x91, 0xd6, 0x69, 0, 0, 0, 0, 0x80]).message).to.equal('Structured clone extension is disabled');
    });
  });

  describe('untrusted input stays contained', () => {
    it('a "__proto__" key does not change the prototype of the decoded map', () => {
      // [{"__proto__": {"x": 1}}]
      const [value] = decodeFrame(Buffer.from([0x91, 0x81, ...str('__proto__'), 0x81, ...str('x'), 0x01])) as [Record<string, unknown>];
      expect(Object.getPrototypeOf(value)).to.equal(Object.prototype);
      expect(value.x).to.equal(undefined);
      expect(({} as Record<string, unknown>).x).to.equal(undefined);
    });

    it('a record structure is not accepted, neither defined inline nor used from an earlier frame (no shared structures)', () => {
      // [record 0x40 with keys ["t"] defined inline, value "send"]: troupe never writes records.
      const defining = [0x91, 0xd4, 0x72, 0x40, 0x91, ...str('t'), ...str('send')];
      expect(decodeError(defining).message).to.equal('msgpack extension type 0x72 is not accepted');
      // The same record used without its definition: 0x40 is just the integer 64, and a byte is left over.
      const using = [0x91, 0x40, ...str('send')];
      expect(decodeError(using).message).to.match(/^Data read, but end of buffer not reached/);
    });
  });

  it('typed arrays other than Uint8Array arrive as their own bytes, nothing more', () => {
    const floats = new Float32Array([1, 2]);
    const [value] = decodeFrame(encodeFrame([floats])) as [Uint8Array];
    expect([...value]).to.deep.equal([0, 0, 128, 63, 0, 0, 0, 64]);
    const window = new Float64Array([1, 2, 3, 4]).subarray(1, 3);
    const [bytes] = decodeFrame(encodeFrame([window])) as [Uint8Array];
    expect(Buffer.from(bytes).equals(Buffer.from(window.buffer, window.byteOffset, window.byteLength))).to.equal(true);
  });

  describe('nesting is bounded (MAX_NESTING_DEPTH, the frame array counting as 1)', () => {
    /** A frame [ {t:'send', msg: m} ] where m is `levels` maps deep, as raw bytes (no encoder recursion). */
    function deepMaps(levels: number): Buffer {
      const head = [0x91, 0x82, ...str('t'), ...str('send'), ...str('msg')];
      const bytes: number[] = [...head];
      for (let i = 0; i < levels; i++) bytes.push(0x81, ...str('a'));
      bytes.push(0x01);
      return Buffer.from(bytes);
    }
    const deepArrays = (levels: number) => Buffer.from([...Array(levels).fill(0x91), 0x01]);

    it('is 64', () => {
      expect(MAX_NESTING_DEPTH).to.equal(64);
    });

    it('a frame exactly at the bound decodes; one level more is refused, naming the bound', () => {
      expect(decodeFrame(deepArrays(64))).to.have.length(1);
      expect(decodeError(deepArrays(65)).message).to.equal('nested deeper than 64 levels');
      // frame array + envelope map = 2 levels, then the message's maps
      expect(() => decodeFrame(deepMaps(62))).to.not.throw();
      expect(decodeError(deepMaps(63)).message).to.equal('nested deeper than 64 levels');
    });

    it('a few hundred and a few thousand levels are refused before msgpackr recurses', () => {
      expect(decodeError(deepMaps(300)).message).to.equal('nested deeper than 64 levels');
      expect(decodeError(deepMaps(5000)).message).to.equal('nested deeper than 64 levels');
      expect(decodeError(deepArrays(100_000)).message).to.equal('nested deeper than 64 levels');
    });

    it('nesting through map keys and through our extensions counts too', () => {
      // A map key that is itself an array, 70 deep.
      const keyDeep = Buffer.from([0x91, 0x81, ...Array(70).fill(0x91), 0x01, 0x01]);
      expect(decodeError(keyDeep).message).to.equal('nested deeper than 64 levels');
      // An ActorRef wrapping nothing but arrays: the value after the ext header is one level down.
      const refDeep = Buffer.from([0x91, ...Array(70).fill(0).flatMap(() => [0xd4, 0x41, 0x00]), 0x01]);
      expect(decodeError(refDeep).message).to.equal('nested deeper than 64 levels');
    });

    it('refuses the msgpackr extensions that read a value inline (Set, Error, RegExp, records, bundled strings)', () => {
      for (const type of [0x62, 0x65, 0x72, 0x73, 0x78]) {
        expect(decodeError([0x91, 0xd4, type, 0x00, 0x90]).message).to.equal(`msgpack extension type 0x${type.toString(16)} is not accepted`);
      }
    });

    it('a count larger than the bytes left is truncation, not a long loop', () => {
      expect(decodeError([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]).message).to.equal('Unexpected end of MessagePack data');
      expect(decodeError([0x91, 0xdf, 0x7f, 0xff, 0xff, 0xff]).message).to.equal('Unexpected end of MessagePack data');
    });

    it('everything the encoder writes passes the scan: strings, bins, floats, ints, dates, undefined, refs, typed arrays', () => {
      const value = [
        { t: 'send', to: new ActorRef('n1', 'a'), msg: { s: 'x'.repeat(70_000), b: Buffer.alloc(70_000, 1), f: 1.5, big: 2 ** 40, neg: -(2 ** 40), small: -3 } },
        { d: new Date(0), d2: new Date(1_700_000_000_123), d3: new Date(-1), u: undefined, n: null, t: true, f: false },
        new Float64Array([1, 2]),
        's'.repeat(40), 's'.repeat(300), Buffer.alloc(10), -1, 255, 65535, 2 ** 32 - 1, -129, -40000,
      ];
      const frame = encodeFrame(value);
      expect(() => checkNesting(frame)).to.not.throw();
      expect(decodeFrame(frame)).to.have.length(value.length);
    });
  });
});
