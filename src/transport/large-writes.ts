/**
 * Large writes go to the TLS socket alone, never gathered with their neighbours into one buffer.
 *
 * Node's TLS socket, handed several buffers at once (a `writev`: ws corks every message's frame
 * header and payload together, and whatever queued while the socket was busy goes in one), copies
 * them all into one new buffer before it encrypts them (TLSWrap::DoWrite joins anything but a single
 * buffer). For a task's output that is a copy of every byte on every hop that sends it (the worker,
 * and the manager towards each submitter): 4–5 % of their CPU in `perf` at 200 MB/s, plus the page
 * faults of a fresh buffer of up to several MiB each time.
 *
 * `writeLargeAlone(socket)` replaces that socket's `_writev` (only that instance's): a batch whose
 * buffers are all under LARGE_WRITE_BYTES still goes in one `writev` (one TLS record, one syscall for
 * a batch of small frames, as before); otherwise the small buffers between the large ones are
 * joined (a copy of a few bytes: frame and raw headers), and each large buffer is written on its
 * own, in order, one after another. A large buffer thus costs one more TLS record and one more write
 * for its header: nothing beside the copy of the whole.
 *
 * Guarantees kept: order (each part is written once the one before it completed), and the batch's
 * one callback, called once all parts are written or with the first error (after which no further
 * part is written), as Node's own `_writev`.
 */
import type { Socket } from 'node:net';

/** A buffer of at least this many bytes is written on its own: 16 KiB (one TLS record's worth). */
export const LARGE_WRITE_BYTES = 16 * 1024;

interface Chunk {
  chunk: Buffer | string;
  encoding: BufferEncoding | 'buffer' | '';
}
type Chunks = Chunk[] & { allBuffers?: boolean };
type WritevSocket = Socket & {
  _writev: (chunks: Chunks, cb: (err?: Error | null) => void) => void;
  _write: (data: Buffer, encoding: string, cb: (err?: Error | null) => void) => void;
};

const installed = new WeakSet<Socket>();

/** Makes `socket` write each large buffer of a batch alone (see above). Idempotent. */
export function writeLargeAlone(socket: Socket): void {
  if (installed.has(socket)) return;
  const s = socket as WritevSocket;
  const gathered = s._writev;
  if (typeof gathered !== 'function') return;
  installed.add(socket);
  s._writev = function (this: WritevSocket, chunks: Chunks, cb: (err?: Error | null) => void): void {
    const parts = partsOf(chunks);
    if (parts === undefined) return gathered.call(this, chunks, cb);
    let i = 0;
    const next = (err?: Error | null): void => {
      if (err) return cb(err);
      if (i === parts.length) return cb();
      this._write(parts[i++]!, 'buffer', next);
    };
    next();
  };
}

/**
 * The buffers to write one after another: runs of small buffers joined, each large one alone; or
 * undefined when the batch has no large buffer (or holds strings), to be written as one.
 */
export function partsOf(chunks: readonly Chunk[] & { allBuffers?: boolean }): Buffer[] | undefined {
  if (chunks.allBuffers === false) return undefined;
  let large = false;
  for (const { chunk } of chunks) {
    if (typeof chunk === 'string') return undefined;
    if (chunk.length >= LARGE_WRITE_BYTES) large = true;
  }
  if (!large) return undefined;
  const parts: Buffer[] = [];
  let small: Buffer[] = [];
  const joinSmall = () => {
    if (small.length === 1) parts.push(small[0]!);
    else if (small.length > 1) parts.push(Buffer.concat(small));
    small = [];
  };
  for (const { chunk } of chunks) {
    const buffer = chunk as Buffer;
    if (buffer.length < LARGE_WRITE_BYTES) {
      small.push(buffer);
      continue;
    }
    joinSmall();
    parts.push(buffer);
  }
  joinSmall();
  return parts;
}
