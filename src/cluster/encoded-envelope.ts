/**
 * An envelope encoded once, to be sent as it is on many links. The manager tells every node of each
 * change of membership, and each newcomer of every member: encoding every copy anew made a hundred
 * workers going down at once cost a thousand-worker manager most of a second of msgpack (bench:scale).
 *
 * Guarantees: a Connection queues an EncodedEnvelope like any envelope, and the frame it writes holds
 * exactly the bytes the codec would have written for the plain envelope (msgpack is a concatenation:
 * the extension below writes the bytes in place, with no extension header). Its type number never
 * appears on the wire; a peer that sends it is refused like any bad frame. Only for envelopes of plain
 * data (no ActorRef, no typed arrays): those are encoded here with the codec's packer.
 */
import { addExtension } from '../transport/msgpackr-library.js';
import type { Envelope } from '../../protocols/wire.js';
import { encodeItem } from '../transport/codec.js';

/** A type number for msgpackr's bookkeeping only: nothing is ever written with it. */
const NEVER_ON_THE_WIRE = 0x7e;

export class EncodedEnvelope {
  readonly bytes: Uint8Array;

  /** `envelope` must be plain data (see the module comment); `t` is kept for what reports on an envelope. */
  constructor(envelope: Extract<Envelope, { t: 'member' }>) {
    this.t = envelope.t;
    // The codec's own packer, so the same bytes as the plain envelope; a copy, since it reuses its buffer.
    this.bytes = Uint8Array.from(encodeItem(envelope));
  }

  readonly t: Envelope['t'];

  /** As the Connection takes it (it is written in place of the envelope). */
  asEnvelope(): Envelope {
    return this as unknown as Envelope;
  }
}

addExtension({
  Class: EncodedEnvelope,
  type: NEVER_ON_THE_WIRE,
  pack(value: EncodedEnvelope, allocate: (size: number) => { target: Uint8Array; position: number }) {
    const { target, position } = allocate(value.bytes.length);
    target.set(value.bytes, position);
  },
  read() {
    throw new TypeError(`msgpack extension type 0x${NEVER_ON_THE_WIRE.toString(16)} is not accepted`);
  },
} as unknown as Parameters<typeof addExtension>[0]);
