/**
 * The one place that turns envelopes into bytes and back. A frame is one msgpack array of envelopes.
 * ActorRef is a msgpack extension (type 0x41), so a ref anywhere inside a message decodes as an
 * ActorRef; a malformed one fails the whole frame. The codec knows no message by name.
 *
 * Decoding is of untrusted bytes: msgpackr checks lengths against the buffer, and the structured
 * clone and record extensions are off, so a frame cannot make a cycle or define shared structures.
 *
 * Decoded refs are cached by node and path: a peer names the same few actors over and over, and a
 * hit skips both pattern checks and an allocation. A cached ref is shared by every message that
 * names it, so it is frozen. The cache is bounded; a peer sending endless distinct refs only misses.
 * Temporary refs (`$q/N`, `$r/N`) are used once, so they are not cached: caching them only churned
 * the cache and the heap (it doubled the cost of decoding a query).
 */
import { addExtension, Packr, Unpackr } from 'msgpackr';
import { ActorRef, isTemporaryPath } from '../../protocols/actor-ref.js';

const ACTOR_REF_EXTENSION = 0x41;
/** Refs the decode cache holds (node → path → ref) before it starts afresh: a few MiB at most. */
const REF_CACHE_MAX = 4096;

const refCache = new Map<string, Map<string, ActorRef>>();
let refCacheSize = 0;
/** The last ref decoded: a batch mostly names one actor, and comparing two short strings beats hashing them. */
let lastRef: ActorRef | undefined;

function readRef(node: unknown, path: unknown): ActorRef {
  if (lastRef !== undefined && node === lastRef.node && path === lastRef.path) return lastRef;
  if (typeof node !== 'string' || typeof path !== 'string') throw new TypeError('malformed actor reference');
  const hit = refCache.get(node)?.get(path);
  if (hit) return (lastRef = hit);
  const ref = ActorRef.parse(node, path);
  if (!ref) throw new TypeError('malformed actor reference');
  if (isTemporaryPath(path)) return ref;
  if (refCacheSize >= REF_CACHE_MAX) {
    refCache.clear();
    refCacheSize = 0;
  }
  let paths = refCache.get(node);
  if (!paths) refCache.set(node, (paths = new Map()));
  paths.set(path, Object.freeze(ref));
  refCacheSize++;
  return (lastRef = ref);
}

addExtension({
  Class: ActorRef,
  type: ACTOR_REF_EXTENSION,
  write(ref: ActorRef) {
    return [ref.node, ref.path];
  },
  read(data: unknown) {
    if (!Array.isArray(data) || data.length !== 2) throw new TypeError('malformed actor reference');
    return readRef(data[0], data[1]);
  },
});

/**
 * Typed arrays other than Uint8Array travel as their bytes (a Buffer on the other side). msgpackr,
 * without `moreTypes`, would copy them element by element into a byte field sized in bytes, sending
 * wrong values and whatever memory followed in its buffer.
 */
const TYPED_ARRAY_BYTES_EXTENSION = 0x42;
for (const Class of [Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView]) {
  addExtension({
    Class: Class as unknown as new () => unknown,
    type: TYPED_ARRAY_BYTES_EXTENSION,
    write(view: ArrayBufferView) {
      return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    },
    read(data: unknown) {
      if (!(data instanceof Uint8Array)) throw new TypeError('malformed typed array bytes');
      return data;
    },
  });
}

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
