/**
 * A connection's read path: TLS reads land in one reused buffer (`onread`), and whole binary
 * WebSocket messages are cut out of them here, each copied once into a buffer of its own size. The
 * dialling side sets it up at `tls.connect`; the listening side takes over an accepted socket's
 * reads once ws is open on it (`takeOver`).
 *
 * Why: a `troupe run` client receives every byte of a task's output, and the manager every byte a
 * worker sends. Node hands a TLS socket's
 * reads over 16 KiB at a time, each in a new buffer, through the socket's readable stream into ws's
 * receiver (a writable stream of its own), which keeps them and joins them into the message: per
 * 16 KiB an allocation, two streams' bookkeeping and a parse, and per message a copy. In `perf` that
 * was about a third of the client's CPU at 200 MB/s. Here, per 16 KiB: one call and one copy into
 * the message.
 *
 * What is read here: an unfragmented binary data frame (FIN set, RSV clear, opcode 2) of at most
 * `maxPayload` bytes, unmasked from a listener, masked with an all-zero key from a dialler (ours). Its payload is emitted on the WebSocket as ws would (`message`,
 * buffer, true), in order. A ping or a pong goes, whole, to ws's own receiver, which answers and
 * reports it as before. Any other frame (close, text, a fragment, anything ws would refuse: masked,
 * RSV bits, too large) goes to ws's receiver, and so does everything after it: from then on ws reads
 * the connection exactly as before. So what a peer may send, and what it gets for a bad frame, is
 * unchanged.
 *
 * Before the WebSocket is open (the HTTP upgrade) and in any state this reader cannot vouch for
 * (bytes already queued on the socket when it opened), reads go to the socket's readable side as
 * Node would have delivered them: nothing changes for them.
 */
import type { Socket } from 'node:net';

/**
 * The size of the reused read buffer: 16 KiB, as much as TLS hands over in one read (its clear-text
 * chunk). One per connection, so a manager with thousands of workers holds thousands: 64 KiB would
 * reserve four times the memory for nothing.
 */
export const READ_BUFFER_BYTES = 16 * 1024;

/** What the reader needs of a ws WebSocket: its events, and its receiver (ws's internal). */
interface WebSocketLike {
  emit(event: 'message', data: Buffer, isBinary: boolean): boolean;
  _receiver?: { write(chunk: Buffer): boolean };
}

const OPCODE_BINARY = 0x2;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

export class FrameReader {
  /** The buffer every read lands in. */
  readonly buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  #socket: Socket | undefined;
  #ws: WebSocketLike | undefined;
  /** Where reads go: the socket's readable side (until open), frames read here, or all to ws's receiver. */
  #mode: 'socket' | 'frames' | 'receiver' = 'socket';
  /** A frame header being gathered across reads (at most 14 bytes). */
  #header = Buffer.allocUnsafe(14);
  #headerLength = 0;
  /** The message being filled, and how much of it is. */
  #message: Buffer | undefined;
  #filled = 0;
  /** Bytes of the current control frame's payload still to hand to ws's receiver. */
  #passOn = 0;

  /**
   * `side`: the dialler reads the listener's frames, which are never masked; the listener reads a
   * dialler's, which always are (ours with an all-zero key, websocket-client.ts): only those are
   * read here, any other key goes to ws, which unmasks.
   */
  constructor(
    private readonly maxPayload: number,
    private readonly side: 'dialler' | 'listener' = 'dialler',
  ) {}

  /**
   * The listening side: an accepted socket's reads come here from now on (`ws` just opened on it,
   * nothing read yet). Node gives no `onread` for a server's sockets, so this sets what
   * `tls.connect({ onread })` would have (its stream's user buffer, and the symbols its read
   * callback looks at); where this Node has not got them, or something is already queued,
   * nothing changes and ws reads as before. Returns whether it took over.
   */
  takeOver(socket: Socket, ws: WebSocketLike & { _receiver?: { _bufferedBytes?: number } }): boolean {
    const symbols = Object.getOwnPropertySymbols(socket);
    const symbol = (name: string) => symbols.find((x) => x.description === name);
    const [kBuffer, kBufferCb, kBufferGen] = [symbol('kBuffer'), symbol('kBufferCb'), symbol('kBufferGen')];
    const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } })._handle;
    const own = socket as unknown as Record<symbol, unknown>;
    if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined || typeof handle?.useUserBuffer !== 'function') return false;
    if (own[kBuffer] !== null || socket.readableLength > 0 || ws._receiver === undefined || ws._receiver._bufferedBytes !== 0) return false;
    handle.useUserBuffer(this.buffer);
    own[kBuffer] = this.buffer;
    own[kBufferCb] = (n: number) => this.#read(n);
    own[kBufferGen] = null;
    this.#socket = socket;
    this.#ws = ws;
    this.#mode = 'frames';
    return true;
  }

  /** Where reads go now: the socket (before open), frames read here, or ws's receiver (for good). */
  get mode(): 'socket' | 'frames' | 'receiver' {
    return this.#mode;
  }

  /** The `onread` option for `tls.connect`. */
  get onread(): { buffer: Buffer; callback: (n: number, buf: Uint8Array) => boolean } {
    return { buffer: this.buffer, callback: (n) => this.#read(n) };
  }

  /** The socket the reads come from; until `open`, they go to its readable side. */
  attach(socket: Socket): void {
    this.#socket = socket;
  }

  /** The WebSocket is open on the socket: from the next read on, frames are read here. */
  open(ws: WebSocketLike): void {
    // Anything already queued on the socket is ws's; so is the rest then, to keep the order.
    if (this.#socket === undefined || this.#socket.readableLength > 0 || ws._receiver === undefined) return;
    this.#ws = ws;
    this.#mode = 'frames';
  }

  #read(n: number): boolean {
    if (this.#mode === 'socket') {
      this.#socket?.push(Buffer.from(this.buffer.subarray(0, n)));
      return true;
    }
    let at = 0;
    while (at < n) {
      if (this.#mode === 'receiver') {
        this.#toReceiver(at, n);
        return true;
      }
      if (this.#passOn > 0) {
        const take = Math.min(this.#passOn, n - at);
        this.#passOn -= take;
        this.#toReceiver(at, at + take);
        at += take;
      } else if (this.#message !== undefined) {
        const take = Math.min(this.#message.length - this.#filled, n - at);
        this.buffer.copy(this.#message, this.#filled, at, at + take);
        this.#filled += take;
        at += take;
        if (this.#filled === this.#message.length) this.#deliver();
      } else {
        at = this.#readHeader(at, n);
      }
    }
    return true;
  }

  /** Gathers a frame header from `buffer[at, n)`; once whole, decides who reads the frame. Returns where it stopped. */
  #readHeader(at: number, n: number): number {
    const header = this.#header;
    while (at < n) {
      header[this.#headerLength++] = this.buffer[at++]!;
      const need = headerLengthOf(header, this.#headerLength);
      if (need === undefined || this.#headerLength < need) continue;
      this.#headerLength = 0;
      this.#frame(need);
      return at;
    }
    return at;
  }

  /** A whole header of `length` bytes is in #header: read the frame here, or hand it to ws. */
  #frame(length: number): void {
    const header = this.#header;
    const fin = (header[0]! & 0x80) !== 0;
    const rsv = header[0]! & 0x70;
    const opcode = header[0]! & 0x0f;
    const masked = (header[1]! & 0x80) !== 0;
    const payload = payloadLengthOf(header);
    // The dialler's frames are masked, with a key in the header's last four bytes: only a zero key reads as is.
    const keyed = masked && (header[length - 4]! | header[length - 3]! | header[length - 2]! | header[length - 1]!) !== 0;
    const plain = fin && rsv === 0 && masked === (this.side === 'listener') && !keyed;
    if (plain && opcode === OPCODE_BINARY && payload <= this.maxPayload) {
      this.#message = Buffer.allocUnsafe(payload);
      this.#filled = 0;
      if (payload === 0) this.#deliver();
      return;
    }
    const headerBytes = Buffer.from(header.subarray(0, length));
    if (plain && (opcode === OPCODE_PING || opcode === OPCODE_PONG) && payload <= 125) {
      // A heartbeat: ws answers and reports it; the next frame is ours again.
      this.#passOn = payload;
      this.#ws!._receiver!.write(headerBytes);
      return;
    }
    // Anything else (close, text, fragments, what ws refuses): ws reads it and all that follows.
    this.#mode = 'receiver';
    this.#ws!._receiver!.write(headerBytes);
  }

  #deliver(): void {
    const message = this.#message!;
    this.#message = undefined;
    this.#filled = 0;
    this.#ws!.emit('message', message, true);
  }

  /** `buffer[from, to)`, copied, to ws's receiver (which keeps what it is given). */
  #toReceiver(from: number, to: number): void {
    this.#ws!._receiver!.write(Buffer.from(this.buffer.subarray(from, to)));
  }
}

/** How long the header starting in `header[0, have)` is, or undefined until its second byte is there. */
function headerLengthOf(header: Buffer, have: number): number | undefined {
  if (have < 2) return undefined;
  const len7 = header[1]! & 0x7f;
  const masked = (header[1]! & 0x80) !== 0;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
}

/** The payload length a whole header gives. */
function payloadLengthOf(header: Buffer): number {
  const len7 = header[1]! & 0x7f;
  if (len7 === 126) return header.readUInt16BE(2);
  if (len7 === 127) return header.readUInt32BE(2) * 2 ** 32 + header.readUInt32BE(6);
  return len7;
}
