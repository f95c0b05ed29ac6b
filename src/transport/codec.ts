/**
 * The one place that turns envelopes into bytes and back. A frame is one msgpack array of envelopes.
 * ActorRef is a msgpack extension (type 0x41), so a ref anywhere inside a message decodes as an
 * ActorRef; a malformed one fails the whole frame. The codec knows no message by name.
 *
 * Decoding is of untrusted bytes: msgpackr checks lengths against the buffer, and the structured
 * clone and record extensions are off, so a frame cannot make a cycle or define shared structures.
 */
import { addExtension, Packr, Unpackr } from 'msgpackr';
import { ActorRef } from '../../protocols/actor-ref.js';

const ACTOR_REF_EXTENSION = 0x41;

addExtension({
  Class: ActorRef,
  type: ACTOR_REF_EXTENSION,
  write(ref: ActorRef) {
    return [ref.node, ref.path];
  },
  read(data: unknown) {
    const ref = Array.isArray(data) && data.length === 2 ? ActorRef.parse(data[0], data[1]) : undefined;
    if (!ref) throw new TypeError('malformed actor reference');
    return ref;
  },
});

const options = { useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true } as const;
const packr = new Packr(options);
const unpackr = new Unpackr(options);

/** Encodes a batch of envelopes (or any value) as one frame. */
export function encodeFrame(envelopes: readonly unknown[]): Buffer {
  return packr.pack(envelopes);
}

/** Decodes one frame into its envelopes; throws when the bytes are not one msgpack array. */
export function decodeFrame(frame: Buffer | Uint8Array): unknown[] {
  const value: unknown = unpackr.unpack(frame);
  if (!Array.isArray(value)) throw new TypeError('a frame must be a msgpack array of envelopes');
  return value;
}
