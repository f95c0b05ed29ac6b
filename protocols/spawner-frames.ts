/**
 * The native spawner's channel (actors/process/spawn-helper.c): protocols/spawner.ts's messages as
 * binary frames over the helper's stdin (worker → helper) and stdout (helper → worker), sockets.
 * Not Node's IPC: its 'advanced' serialization is V8's format, which C does not speak.
 *
 * A frame: its length (u32 LE, the bytes after this field, at least 1), a type byte, then the fields,
 * fixed little-endian: ids u32, a stream a byte (0 stdout, 1 stderr).
 *
 *   worker → helper                          helper → worker
 *   1 spawn   id, env count u32, then cwd,   1 failed  id, then the message (UTF-8)
 *             command, each NAME=VALUE,      2 out     id, stream, then the bytes
 *             each NUL-terminated            3 eof     id, stream
 *   2 ack     count u32, then (id, n u32)*   4 pipe    id, stream, the helper's descriptor u32:
 *   3 abandon id                                       open /proc/HELPER/fd/N, then say `taken`
 *   4 signal  id, signal number (15, 9)      5 exit    id, code i32 (-1: none), signal u32 (0: none)
 *   5 taken   id, stream: our copy is open,
 *             the helper closes its own
 *
 * The guarantees are protocols/spawner.ts's (order, the window, pid records on descriptor 3 as
 * 8-byte records). Both sides check everything: FrameDecoder refuses any frame that is not exactly
 * one of the above (the worker then ends the helper); the helper skips a frame it cannot use and
 * exits when a length makes the stream unreadable (spawn-helper.c). This module imports nothing.
 */
import type { FromSpawner, ToSpawner } from './spawner.js';

/** The largest frame the helper reads: 8 MiB (a spawn's command and environment; execve takes far less). */
export const MAX_TO_HELPER_FRAME = 8 * 1024 * 1024;
/** The largest frame the worker takes from the helper: an `out` of one 64 KiB read, and a `failed` message: 128 KiB. */
export const MAX_FROM_HELPER_FRAME = 128 * 1024;
/** The helper's pid records: its descriptor 3 (protocols/spawner.ts's records, another descriptor). */
export const HELPER_PID_FD = 3;

const T = { spawn: 1, ack: 2, abandon: 3, signal: 4, taken: 5 } as const;
const F = { failed: 1, out: 2, eof: 3, pipe: 4, exit: 5 } as const;
const SIGNAL_NUMBERS = { SIGTERM: 15, SIGKILL: 9 } as const;

/** The worker has its own descriptor of a handed-over pipe: the helper closes its copy. */
export interface Taken {
  t: 'taken';
  id: number;
  s: 0 | 1;
}
/** A `pipe` as the helper sends it: with its descriptor's number in the helper. */
export type FromHelper = Exclude<FromSpawner, { t: 'pipe' }> | { t: 'pipe'; id: number; s: 0 | 1; fd: number };

const header = (length: number, type: number): Buffer => {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32LE(length, 0);
  b[4] = type;
  return b;
};

/** One frame for the helper; a string says why it cannot be sent (a NUL in a string, too large). */
export function encodeToHelper(m: ToSpawner | Taken): Buffer | string {
  switch (m.t) {
    case 'spawn': {
      const env = Object.entries(m.env);
      const parts = [m.cwd, m.command, ...env.map(([k, v]) => `${k}=${v}`)];
      if (parts.some((p) => p.includes('\0'))) return 'a NUL byte in the cwd, command or environment';
      if (env.some(([k]) => k === '' || k.includes('='))) return 'a variable name that is empty or holds "="';
      const text = Buffer.from(`${parts.join('\0')}\0`);
      const length = 1 + 8 + text.length;
      if (length > MAX_TO_HELPER_FRAME) return `the command and its environment are ${text.length} bytes, over the spawner's ${MAX_TO_HELPER_FRAME} (E2BIG)`;
      const b = header(length, T.spawn);
      const fields = Buffer.allocUnsafe(8);
      fields.writeUInt32LE(m.id, 0);
      fields.writeUInt32LE(env.length, 4);
      return Buffer.concat([b, fields, text]);
    }
    case 'ack': {
      const b = Buffer.allocUnsafe(5 + 4 + 8 * m.acks.length);
      b.writeUInt32LE(b.length - 4, 0);
      b[4] = T.ack;
      b.writeUInt32LE(m.acks.length, 5);
      m.acks.forEach(([id, n], i) => {
        b.writeUInt32LE(id, 9 + 8 * i);
        b.writeUInt32LE(Math.min(n, 0xffffffff), 13 + 8 * i);
      });
      return b;
    }
    case 'abandon': {
      const b = Buffer.allocUnsafe(9);
      b.writeUInt32LE(5, 0);
      b[4] = T.abandon;
      b.writeUInt32LE(m.id, 5);
      return b;
    }
    case 'signal':
    case 'taken': {
      const b = Buffer.allocUnsafe(10);
      b.writeUInt32LE(6, 0);
      b[4] = m.t === 'signal' ? T.signal : T.taken;
      b.writeUInt32LE(m.id, 5);
      b[9] = m.t === 'signal' ? SIGNAL_NUMBERS[m.signal] : m.s;
      return b;
    }
  }
}

/** The signals an `exit` may name, by number (Linux numbering, as the helper reports them). */
export type SignalNames = Readonly<Record<number, string>>;

/**
 * Cuts the helper's stdout into frames and checks each. `push` returns false (and takes nothing
 * more) at the first frame that is not one of the protocol's: the worker then ends the helper.
 */
export class FrameDecoder {
  #rest: Buffer = Buffer.alloc(0);
  #broken = '';

  constructor(
    private readonly signals: SignalNames,
    private readonly onFrame: (m: FromHelper) => void,
  ) {}

  /** Why the stream was refused ('' while it is not). */
  get broken(): string {
    return this.#broken;
  }

  push(chunk: Buffer): boolean {
    if (this.#broken) return false;
    let b = this.#rest.length === 0 ? chunk : Buffer.concat([this.#rest, chunk]);
    let at = 0;
    while (b.length - at >= 4) {
      const length = b.readUInt32LE(at);
      if (length < 1 || length > MAX_FROM_HELPER_FRAME) return this.#refuse(`a frame of ${length} bytes`);
      if (b.length - at < 4 + length) break;
      const m = this.#decode(b.subarray(at + 4, at + 4 + length));
      if (typeof m === 'string') return this.#refuse(m);
      at += 4 + length;
      this.onFrame(m);
    }
    b = b.subarray(at);
    // What is left is copied: it must not hold the whole chunk (a chunk's bytes stay in an `out` otherwise).
    this.#rest = b.length === 0 ? Buffer.alloc(0) : Buffer.from(b);
    return true;
  }

  #refuse(why: string): false {
    this.#broken = why;
    this.#rest = Buffer.alloc(0);
    return false;
  }

  #decode(f: Buffer): FromHelper | string {
    const type = f[0]!;
    const n = f.length - 1;
    const id = n >= 4 ? f.readUInt32LE(1) : 0;
    if (id === 0) return `a frame of type ${type} without an id`;
    const s = f[5];
    const stream = s === 0 || s === 1 ? s : undefined;
    switch (type) {
      case F.failed:
        return { t: 'failed', id, error: f.subarray(5).toString('utf8') };
      case F.out:
        if (n < 5 || stream === undefined) return 'a bad out frame';
        return { t: 'out', id, s: stream, d: f.subarray(6) };
      case F.eof:
        if (n !== 5 || stream === undefined) return 'a bad eof frame';
        return { t: 'eof', id, s: stream };
      case F.pipe: {
        if (n !== 9 || stream === undefined) return 'a bad pipe frame';
        const fd = f.readUInt32LE(6);
        if (fd > 0x7fffffff) return 'a bad pipe frame';
        return { t: 'pipe', id, s: stream, fd };
      }
      case F.exit: {
        if (n !== 12) return 'a bad exit frame';
        const code = f.readInt32LE(5);
        const number = f.readUInt32LE(9);
        const signal = number === 0 ? null : this.signals[number];
        // Exactly one of the two: a code 0-255, or a signal we know.
        if (signal === undefined || (code === -1) === (signal === null) || code < -1 || code > 255) return 'a bad exit frame';
        return { t: 'exit', id, code: code === -1 ? null : code, signal };
      }
      default:
        return `a frame of unknown type ${type}`;
    }
  }
}
