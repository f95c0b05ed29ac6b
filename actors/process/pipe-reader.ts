/**
 * Reads one output pipe of a command, handed to this process by the spawner (spawner.ts; a libuv
 * handle from the Node spawner, a descriptor number from the native one), in large
 * chunks: each read goes into the free end of a READ_BUFFER_BYTES buffer, and what was read is
 * delivered as one chunk once a turn of the event loop has passed without a read (the pipe is
 * drained), once the buffer is nearly full, or once its first byte has waited MAX_COALESCE_MS.
 * Output that trickles in is delivered as it comes, a turn later; output that pours in is delivered
 * in chunks of up to READ_BUFFER_BYTES, each the bytes as read, not copied.
 *
 * Guarantees: the bytes are delivered in order, each once; `pause()` stops reading at once (the
 * command then blocks on its full pipe) and delivers nothing more until `resume()`, except the one
 * chunk already read; at end-of-file (or `destroy()`) what was read is delivered, then `onClose`
 * is called, once. A chunk shares its buffer with the chunks delivered before and after it, never
 * with anything written later: memory held by kept chunks is at most their bytes plus one buffer.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** The most one chunk holds, and the size of each read buffer: 1 MiB. */
export const READ_BUFFER_BYTES = 1024 * 1024;
/** A buffer with less free space than this is full: a new one is taken for the next read. */
const MIN_READ_BYTES = 64 * 1024;
/** The longest a byte read waits for more to join it while the pipe keeps pouring: 5 ms. */
export const MAX_COALESCE_MS = 5;

export class PipeReader {
  readonly #socket: net.Socket;
  #buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  /** The first byte read but not delivered. */
  #start = 0;
  /** The first free byte. */
  #end = 0;
  #queued = false;
  /** A read since the last check (#flush): the pipe is not drained yet. */
  #fresh = false;
  /** When the first undelivered byte was read (performance.now()). */
  #since = 0;
  #paused = false;
  #closed = false;

  constructor(
    handle: unknown,
    private readonly onData: (data: Buffer) => void,
    private readonly onClose: () => void,
  ) {
    // `handle`: a libuv pipe, as the IPC channel gave it (an option Node takes but does not type),
    // or a descriptor of ours (the native spawner's pipe, opened through /proc: native-channel.ts).
    this.#socket = new net.Socket({
      ...(typeof handle === 'number' ? { fd: handle } : { handle }),
      readable: true,
      writable: false,
      onread: { buffer: () => this.#free(), callback: (n: number) => this.#read(n) },
    } as unknown as net.SocketConstructorOpts);
    this.#socket.on('error', () => {}); // a read error ends the pipe; 'close' follows
    this.#socket.on('close', () => {
      this.#deliver();
      this.#closed = true;
      this.onClose();
    });
    this.#socket.resume(); // flowing, so that end-of-file is seen
  }

  pause(): void {
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    this.#paused = false;
    if (!this.#closed) this.#socket.resume();
  }

  /** Delivers what was read, stops reading and closes the pipe (what still holds it writes nowhere); `onClose` follows. */
  destroy(): void {
    this.#deliver();
    this.#socket.destroy();
  }

  // Called after each read (and once before the first): where the next read goes.
  #free(): Buffer {
    return this.#buf.subarray(this.#end);
  }

  #read(n: number): void {
    if (this.#end === this.#start) this.#since = performance.now();
    this.#end += n;
    this.#fresh = true;
    if (this.#buf.length - this.#end < MIN_READ_BYTES) {
      // Full: delivered now, and the next read (set up right after this returns) goes to a new buffer.
      this.#deliver();
      this.#buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      this.#start = this.#end = 0;
    } else if (!this.#queued) {
      this.#queued = true;
      setImmediate(this.#flush);
    }
  }

  #flush = (): void => {
    // Read again in the turn that just passed: more is coming; wait a turn (within the bound).
    if (this.#fresh && !this.#paused && !this.#closed && performance.now() - this.#since < MAX_COALESCE_MS) {
      this.#fresh = false;
      setImmediate(this.#flush);
      return;
    }
    this.#queued = false;
    this.#fresh = false;
    this.#deliver();
  };

  #deliver(): void {
    if (this.#end === this.#start) return;
    const data = this.#buf.subarray(this.#start, this.#end);
    this.#start = this.#end;
    this.onData(data);
  }
}
