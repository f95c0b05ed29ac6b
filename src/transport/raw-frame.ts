/**
 * Raw frames: a message's bytes carried as they are, never packed into msgpack nor parsed out of it.
 *
 * A `send` envelope whose message has a `data` field of at least RAW_MIN_BYTES bytes (a task's
 * output) crosses a connection as two WebSocket messages, in this order and nothing between them:
 *   1. the header: the three bytes RAW_HEADER_PREFIX, then one msgpack array `[envelope, n]`, the
 *      envelope with `data` left out of its message and `n` the byte length of `data`;
 *   2. the payload: exactly those `n` bytes.
 * The prefix is a msgpack value that is not an array (a fixext 1 of type 0x52, 'R'), so a header is
 * never taken for a frame (a frame is one msgpack array) nor a frame for a header. The receiver puts the payload back as the message's `data` and
 * checks the whole envelope exactly as one that came in a frame (protocols/wire.ts, then the
 * message catalog): nothing is trusted for having come raw.
 *
 * Why: the manager forwards a worker's output to its submitters. In a frame it was copied into the
 * packer's buffer on every hop; raw, the payload a worker read from the command's pipe is the buffer
 * ws writes, and the one the manager received is the one it writes on (and journals): no copy, no
 * parse. The manager reads only the header (which task, which stream, which chunk) to route it and to
 * check that the worker speaks for its own task.
 *
 * Refusals (TROUPE_E_RAW_FRAME): a header that does not decode or is not `[send envelope without
 * data, length within maxFrameBytes]`, or a payload of another length than the header said. After a
 * header, the next message is its payload whatever the header said, so one bad header costs one
 * refusal, never a second one for its payload read as a frame.
 */
import { checkNesting, decodeFrame, encodeItem } from './codec.js';

/** The first bytes of a raw header: msgpack fixext 1, type 0x52, value 0. */
export const RAW_HEADER_PREFIX: readonly number[] = [0xd4, 0x52, 0x00];
/**
 * The smallest `data` sent raw, in bytes: 16 KiB. Below it a second WebSocket message (and TLS
 * record) costs more than the copy it saves, and a small chunk rides in a batch with its neighbours.
 */
export const RAW_MIN_BYTES = 16 * 1024;

const PREFIX = Buffer.from(RAW_HEADER_PREFIX);

/** The bytes of `envelope` to send raw, or undefined when it goes in a frame. */
export function rawBytesOf(envelope: { t: string; msg?: unknown }): Uint8Array | undefined {
  if (envelope.t !== 'send') return undefined;
  const msg = envelope.msg;
  if (typeof msg !== 'object' || msg === null) return undefined;
  const data = (msg as { data?: unknown }).data;
  return data instanceof Uint8Array && data.byteLength >= RAW_MIN_BYTES ? data : undefined;
}

/** The header message for `envelope`, whose message's `data` is `data`. Throws when it cannot be encoded. */
export function encodeRawHeader(envelope: { t: string; msg?: unknown }, data: Uint8Array): Buffer {
  const { data: _left, ...rest } = envelope.msg as { data: Uint8Array };
  const packed = encodeItem([{ ...envelope, msg: rest }, data.byteLength]);
  checkNesting(packed);
  return Buffer.concat([PREFIX, packed]);
}

/** True when a received message is a raw header. */
export function isRawHeader(message: Uint8Array): boolean {
  return message.length >= PREFIX.length && PREFIX.every((byte, i) => message[i] === byte);
}

/** A decoded header: the envelope (its message without `data`, still unchecked) and the payload's length. */
export interface RawHeader {
  envelope: { t: 'send'; msg: Record<string, unknown> };
  length: number;
}

/** Decodes a raw header; throws a TypeError saying what is wrong with it. */
export function decodeRawHeader(message: Buffer, maxBytes: number): RawHeader {
  const value = decodeFrame(message.subarray(PREFIX.length));
  if (value.length !== 2) throw new TypeError('a raw header must be [envelope, length]');
  const [envelope, length] = value;
  if (typeof envelope !== 'object' || envelope === null || (envelope as { t?: unknown }).t !== 'send') throw new TypeError('a raw header must carry a "send" envelope');
  const msg = (envelope as { msg?: unknown }).msg;
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new TypeError('a raw header\'s envelope must carry a message map');
  if (Object.hasOwn(msg, 'data')) throw new TypeError('a raw header\'s message must leave "data" to the payload');
  if (!Number.isSafeInteger(length) || (length as number) < 0 || (length as number) > maxBytes) {
    throw new TypeError(`a raw header's length must be an integer from 0 to ${maxBytes}`);
  }
  return { envelope: envelope as RawHeader['envelope'], length: length as number };
}

/** The envelope a header and its payload make: the payload is the message's `data`, as it is. */
export function withPayload(header: RawHeader, payload: Buffer): unknown {
  if (payload.length !== header.length) throw new TypeError(`a raw payload of ${payload.length} bytes where its header said ${header.length}`);
  header.envelope.msg.data = payload;
  return header.envelope;
}
