/**
 * The one place that turns envelopes into bytes and back. A frame is one msgpack array of envelopes.
 * ActorRef is a msgpack extension (type 0x41), so a ref anywhere inside a message decodes as an
 * ActorRef; a malformed one fails the whole frame. The codec knows no message by name.
 *
 * Decoding is of untrusted bytes: msgpackr checks lengths against the buffer, and the structured
 * clone and record extensions are off, so a frame cannot make a cycle or define shared structures.
 *
 * Nesting is bounded: before msgpackr sees a frame, an iterative scan of its bytes refuses one nested
 * deeper than MAX_NESTING_DEPTH containers (the frame's own array is level 1), so no decoded value
 * can overflow the stack of anything that walks it later (re-encoding for forwarding, schema checks,
 * logging). The same scan accepts only the extensions this codec writes (ActorRef, typed-array
 * bytes, undefined, timestamps, and payload-only ones msgpackr itself refuses): msgpackr's others
 * (Set, Error, RegExp, bundled strings, records) read values the scan would
 * have to follow, and troupe never sends them.
 *
 * Decoded refs are cached by node and path: a peer names the same few actors over and over, and a
 * hit skips both pattern checks and an allocation. A cached ref is shared by every message that
 * names it, so it is frozen. The cache is bounded; a peer sending endless distinct refs only misses.
 * Temporary refs (`$q/N`, `$r/N`) are used once, so they are not cached: caching them only churned
 * the cache and the heap (it doubled the cost of decoding a query).
 */
import { addExtension, Packr, Unpackr } from './msgpackr-library.js';
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

/** The deepest nesting a frame may have, counting the frame's array as 1 and an ActorRef as 1. */
export const MAX_NESTING_DEPTH = 64;

/**
 * Walks one msgpack value without building it and throws when it nests deeper than `maxDepth`, is
 * cut short, or holds an extension we do not accept. Iterative: a stack of items left per level.
 */
export function checkNesting(src: Uint8Array, maxDepth = MAX_NESTING_DEPTH): void {
  const end = src.length;
  const left = maxDepth === MAX_NESTING_DEPTH ? LEFT : new Float64Array(maxDepth);
  let depth = 0;
  let pos = 0;
  for (;;) {
    if (pos >= end) throw new TypeError(TRUNCATED);
    const b = src[pos++]!;
    let items = 0;
    if (b < 0x80) {
      // positive fixint
    } else if (b < 0x90) items = (b & 0x0f) * 2;
    else if (b < 0xa0) items = b & 0x0f;
    else if (b < 0xc0) pos += b & 0x1f;
    else if (b >= 0xe0 || b <= 0xc3) {
      // negative fixint, nil, (never used), false, true
    } else {
      let head = 0;
      let length = 0;
      switch (b) {
        case 0xc4: case 0xd9: head = 1; break;
        case 0xc5: case 0xda: head = 2; break;
        case 0xc6: case 0xdb: head = 4; break;
        case 0xc7: head = 1; break;
        case 0xc8: head = 2; break;
        case 0xc9: head = 4; break;
        case 0xdc: case 0xde: head = 2; break;
        case 0xdd: case 0xdf: head = 4; break;
      }
      if (pos + head > end) throw new TypeError(TRUNCATED);
      if (head === 1) length = src[pos]!;
      else if (head === 2) length = (src[pos]! << 8) | src[pos + 1]!;
      else if (head === 4) length = src[pos]! * 0x1000000 + ((src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!);
      pos += head;
      switch (b) {
        case 0xc4: case 0xc5: case 0xc6: case 0xd9: case 0xda: case 0xdb: pos += length; break;
        case 0xc7: case 0xc8: case 0xc9: checkExtension(src[pos]!, false); pos += 1 + length; break;
        case 0xca: case 0xce: case 0xd2: pos += 4; break;
        case 0xcb: case 0xcf: case 0xd3: pos += 8; break;
        case 0xcc: case 0xd0: pos += 1; break;
        case 0xcd: case 0xd1: pos += 2; break;
        // fixext 1: our extensions are a marker byte, then the value they wrap, written inline.
        case 0xd4: if (checkExtension(src[pos]!, true)) items = 1; pos += 2; break;
        case 0xd5: case 0xd6: case 0xd7: case 0xd8: checkExtension(src[pos]!, false); pos += 1 + (1 << (b - 0xd4)); break;
        case 0xdc: case 0xdd: items = length; break;
        case 0xde: case 0xdf: items = length * 2; break;
      }
    }
    if (items > 0) {
      if (depth >= maxDepth) throw new TypeError(`nested deeper than ${maxDepth} levels`);
      // More items than bytes left cannot be: refuse before trusting the count.
      if (items > end - pos) throw new TypeError(TRUNCATED);
      left[depth++] = items;
      continue;
    }
    if (pos > end) throw new TypeError(TRUNCATED);
    // One item done: close every level it completed.
    while (depth > 0 && --left[depth - 1]! === 0) depth--;
    if (depth === 0) return;
  }
}

const LEFT = new Float64Array(MAX_NESTING_DEPTH);

/** msgpackr's message for a cut-short frame, so that a frame is refused in the same words either way. */
const TRUNCATED = 'Unexpected end of MessagePack data';

/**
 * msgpackr extensions that read a value after their header (error, Set, RegExp, bundled strings,
 * record definitions). Troupe writes none of them (moreTypes and records are
 * off), and following them would make this scan a second decoder: they are refused.
 */
const INLINE_EXTENSIONS: ReadonlySet<number> = new Set([0x62, 0x65, 0x72, 0x73, 0x78]);

/**
 * Returns true for our extensions whose value follows inline (one more level); throws for the ones
 * we refuse. Any other type carries only its payload bytes, and msgpackr decides (most it refuses).
 */
function checkExtension(type: number, fixext1: boolean): boolean {
  if (fixext1 && (type === ACTOR_REF_EXTENSION || type === TYPED_ARRAY_BYTES_EXTENSION)) return true;
  if (INLINE_EXTENSIONS.has(type)) throw new TypeError(`msgpack extension type 0x${type.toString(16)} is not accepted`);
  return false;
}

const options = { useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true } as const;
const packr = new Packr(options);
const unpackr = new Unpackr(options);

/** Encodes a batch of envelopes (or any value) as one frame. */
export function encodeFrame(envelopes: readonly unknown[]): Buffer {
  return packr.pack(envelopes);
}

/**
 * The bytes one value takes inside a frame (msgpack is a concatenation: a frame is an array header
 * then its items' bytes). Valid only until the next encode: the packer reuses its buffer.
 */
export function encodeItem(value: unknown): Buffer {
  return packr.pack(value);
}

/** Decodes one frame into its envelopes; throws when the bytes are not one msgpack array. */
export function decodeFrame(frame: Buffer | Uint8Array): unknown[] {
  checkNesting(frame);
  const value: unknown = unpackr.unpack(frame);
  if (!Array.isArray(value)) throw new TypeError('a frame must be a msgpack array of envelopes');
  return value;
}
