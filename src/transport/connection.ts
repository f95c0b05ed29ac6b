/**
 * One established, authenticated connection to a peer, after the handshake.
 *
 * Ordering: envelopes are delivered in the order they were sent (one WebSocket, one writer queue).
 * Delivery: at most once. If the connection drops, envelopes not yet written are lost; the layers
 * above learn of the loss through `close` and recover (the cluster marks the node unreachable).
 * Batching: the first envelope of a turn is written at once (lowest latency when idle); the rest of
 * that turn are packed into one frame at the next `setImmediate`, at most `maxBatch` a frame. A
 * message with large `data` (raw-frame.ts) goes as a raw header and payload instead, written at
 * once after whatever was queued before it, so the order holds.
 * Liveness: a peer silent (no frame, no ping, no pong) for the heartbeat timeout is terminated with
 * reason `heartbeat-timeout`. The dialling side pings every heartbeat interval; the listening side
 * pings only a peer it has not heard from for 1.5 intervals (a peer that does not ping). Between two
 * troupe nodes that is one ping and one pong per interval, half of what both sides pinging costs: a
 * manager with a thousand idle workers handles 2,000 frames a second instead of 4,000. Both sides
 * still hear from each other every interval, so either one notices the other frozen in time.
 * Round trip: each pong answering our ping is timed and emitted as `rtt` (seconds); our ping carries
 * the last round trip we measured (4 bytes, microseconds), so the side that seldom pings learns it too.
 * Bad input: every decoded envelope is checked; a bad frame or envelope is answered with an `error`
 * envelope and logged once per code; a peer that collects `maxStrikes` inside the strike window is
 * disconnected (1008); from the moment it is, nothing more it sent is handled, not even the rest of
 * a frame or of a burst already read. Frames over `maxFrameBytes` are closed by ws with 1009.
 * Sending never wedges the link: an envelope that cannot be sent (alone over `maxFrameBytes`, or
 * that cannot be encoded) is dropped and reported as `undeliverable` (envelope, code, reason), so the
 * cluster can fail the query it belongs to at once; a batch that fails is split, and the envelopes
 * after it still go.
 * Memory: what we hold for a peer (written but not yet flushed to the kernel, i.e. ws's and the
 * socket's buffers) is bounded by `maxBufferedBytes`. Senders that can wait use `congested` and
 * 'drain' (at `highWaterBytes`, far below); a peer that stops reading and lets us pass the bound is
 * cut (cause `slow-consumer`, TROUPE_E_PEER_TOO_SLOW in the log).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Role } from '../../protocols/roles.js';
import { checkEnvelope, type Envelope } from '../../protocols/wire.js';
import { ErrorCodes, messageOf, type ErrorCode } from '../errors.js';
import { checkNesting, decodeFrame, encodeFrame } from './codec.js';
import { decodeRawHeader, encodeRawHeader, isRawHeader, rawBytesOf, withPayload, type RawHeader } from './raw-frame.js';
import { LogLimiter } from './log-limiter.js';
import { writeLargeAlone } from './large-writes.js';
import { addTick, heartbeatTickMs, removeTick } from './heartbeat-clock.js';
import type { TransportSettings } from './settings.js';

export interface PeerInfo {
  node: string;
  /** The name (CN) of the peer's verified certificate: who it is, for authorization and audit. A client's `node` is `<certName>~<session>`. */
  certName: string;
  /** Its certificate's serial number (hex, as the TLS stack gives it): what a revocation names. */
  certSerial: string;
  role: Role;
  incarnation: string;
  meta: Record<string, unknown>;
  /** host:port of the peer's socket. */
  address: string;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Set when we closed it: why. */
  cause?: 'heartbeat-timeout' | 'too-many-errors' | 'closed' | 'replaced' | 'slow-consumer';
}

export type EnvelopeHandler = (envelope: Envelope, connection: Connection) => void;

/** WebSocket close codes used here. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;

/** Refusals are logged once per code per connection, and across connections at most a burst a minute. */
const refusalLog = new LogLimiter();
/** A peer can make us drop envelopes (by asking for huge answers): those lines are limited too. */
const dropLog = new LogLimiter();

export class Connection extends EventEmitter {
  readonly peer: PeerInfo;
  /** Called for every valid envelope, in order. Set by the owner before the first frame can arrive. */
  onEnvelope: EnvelopeHandler = () => {};
  #ws: WebSocket;
  #settings: TransportSettings;
  #log: Logger;
  #queue: Envelope[] = [];
  /** The raw header whose payload is the next message (null: a bad header's, to be dropped). */
  #rawHeader: RawHeader | null | undefined;
  #scheduled = false;
  #unflushedBytes = 0;
  #congested = false;
  #lastSeen = Date.now();
  #lastPing = 0;
  #pingSentAt = 0;
  #lastRttUs = 0;
  /** Ping every interval (the dialling side), or only a silent peer (the listening side). */
  #pingAlways: boolean;
  #tickMs: number;
  #strikes: number[] = [];
  #logged = new Set<string>();
  #closed = false;
  /** We closed (or cut) it: nothing more is read or sent, though 'close' has not come yet. */
  #closing = false;
  #closeCause: CloseInfo['cause'];
  /** Counters, for status and benchmarks. */
  readonly stats = { framesIn: 0, framesOut: 0, envelopesIn: 0, envelopesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 };

  constructor(ws: WebSocket, peer: PeerInfo, settings: TransportSettings, log: Logger, side: 'dialler' | 'listener' = 'dialler') {
    super();
    this.#pingAlways = side === 'dialler';
    this.#ws = ws;
    this.peer = peer;
    this.#settings = settings;
    this.#log = log.child({ peer: peer.node });
    // A task's output is written as it is, not copied into one buffer with its frame header (large-writes.ts).
    const socket = (ws as unknown as { _socket?: Socket })._socket;
    if (socket) writeLargeAlone(socket);
    ws.on('message', (data, isBinary) => this.#receive(data as Buffer, isBinary));
    ws.on('pong', () => {
      this.#lastSeen = Date.now();
      if (this.#pingSentAt > 0) this.#rtt((this.#lastRttUs = Math.min(0xffffffff, Math.round((performance.now() - this.#pingSentAt) * 1000))));
      this.#pingSentAt = 0;
    });
    ws.on('ping', (data: Buffer) => {
      this.#lastSeen = Date.now();
      if (data.length === 4 && data.readUInt32BE(0) > 0) this.#rtt(data.readUInt32BE(0));
    });
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    ws.on('error', (err) => this.#log.debug({ err: err.message }, 'connection error'));
    // Silence is checked four times per interval, so a frozen peer is cut within the timeout plus
    // a quarter interval of its last frame.
    this.#tickMs = heartbeatTickMs(settings.heartbeatIntervalMs);
    addTick(this.#tickMs, this.#beat);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while more than highWaterBytes are written but not yet flushed; wait for 'drain'. */
  get congested(): boolean {
    return this.#congested;
  }

  /** Queues an envelope; see the batching rule above. Returns false when the connection is closed. */
  send(envelope: Envelope): boolean {
    if (this.#closed || this.#closing) {
      this.stats.dropped++;
      return false;
    }
    const raw = rawBytesOf(envelope);
    if (raw !== undefined) {
      this.#flush();
      this.#writeRaw(envelope, raw);
      return true;
    }
    this.#queue.push(envelope);
    if (this.#queue.length >= this.#settings.maxBatch) {
      this.#flush();
    } else if (!this.#scheduled) {
      // Scheduled before the write, so that nothing the write does can leave the queue unscheduled.
      this.#scheduled = true;
      setImmediate(this.#flushScheduled);
      // Idle link: write now, and coalesce whatever else this turn sends.
      if (this.#unflushedBytes === 0) this.#flush();
    }
    return true;
  }

  /** Writes every queued envelope now. */
  flush(): void {
    this.#flush();
  }

  close(code = CLOSE_NORMAL, reason = ''): void {
    if (this.#closed || this.#closing) return;
    this.#flush();
    this.#closing = true;
    this.#closeCause ??= 'closed';
    this.#ws.close(code, reason.slice(0, 120));
    // A peer that does not answer the close handshake is cut off.
    setTimeout(() => this.#ws.terminate(), 1000).unref();
  }

  /** Cuts the connection without a close handshake. */
  terminate(cause: CloseInfo['cause'] = 'closed'): void {
    this.#closing = true;
    this.#closeCause ??= cause;
    this.#ws.terminate();
  }

  /** Tells the peer why one of its frames or envelopes was refused, and counts a strike. */
  refuse(code: ErrorCode, reason: string): void {
    if (this.#closed || this.#closing) return;
    if (!this.#logged.has(code)) {
      this.#logged.add(code);
      refusalLog.warn(this.#log, { code, reason }, 'refused input from peer');
    }
    this.send({ t: 'error', code, reason });
    const now = Date.now();
    this.#strikes.push(now);
    while (this.#strikes.length > 0 && now - this.#strikes[0]! > this.#settings.strikeWindowMs) this.#strikes.shift();
    if (this.#strikes.length >= this.#settings.maxStrikes) {
      refusalLog.warn(this.#log, { code: ErrorCodes.TOO_MANY_ERRORS, strikes: this.#strikes.length }, 'disconnecting a peer that keeps sending invalid input');
      this.send({ t: 'error', code: ErrorCodes.TOO_MANY_ERRORS, reason: `${this.#strikes.length} invalid frames or messages` });
      this.#closeCause = 'too-many-errors';
      this.close(CLOSE_POLICY, ErrorCodes.TOO_MANY_ERRORS);
    }
  }

  #flushScheduled = (): void => {
    this.#scheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#queue.length === 0 || this.#closed || this.#closing) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#write(batch);
  }

  #write(batch: Envelope[]): void {
    if (this.#closing) {
      this.stats.dropped += batch.length;
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(batch);
      // The peer refuses a frame nested deeper than the codec's bound; so do we, before it costs a strike.
      checkNesting(frame);
    } catch (err) {
      return this.#split(batch, ErrorCodes.ENCODE, (what) => `${what} could not be encoded: ${messageOf(err).slice(0, 200)}`);
    }
    if (frame.length > this.#settings.maxFrameBytes) {
      // One envelope over the limit would cost us the connection: it is dropped instead.
      return this.#split(batch, ErrorCodes.FRAME_TOO_LARGE, (what) => `${what} is ${frame.length} bytes encoded, over the frame size limit of ${this.#settings.maxFrameBytes}`);
    }
    const bytes = frame.length;
    this.#unflushedBytes += bytes;
    this.stats.framesOut++;
    this.stats.envelopesOut += batch.length;
    this.stats.bytesOut += bytes;
    try {
      this.#ws.send(frame, { binary: true }, this.#written.bind(this, bytes));
    } catch (err) {
      // The socket is going; 'close' follows and accounts for the loss.
      this.#log.debug({ err: messageOf(err) }, 'write on a closing socket');
      return;
    }
    this.#afterWrite();
  }

  /** One envelope as a raw header and its payload (raw-frame.ts): the payload's buffer is written as it is. */
  #writeRaw(envelope: Envelope, data: Uint8Array): void {
    if (this.#closing) {
      this.stats.dropped++;
      return;
    }
    let header: Buffer;
    try {
      header = encodeRawHeader(envelope, data);
    } catch (err) {
      return this.#split([envelope], ErrorCodes.ENCODE, (what) => `${what} could not be encoded: ${messageOf(err).slice(0, 200)}`);
    }
    if (data.byteLength > this.#settings.maxFrameBytes || header.length > this.#settings.maxFrameBytes) {
      return this.#split([envelope], ErrorCodes.FRAME_TOO_LARGE, (what) => `${what} carries ${data.byteLength} bytes, over the frame size limit of ${this.#settings.maxFrameBytes}`);
    }
    const bytes = header.length + data.byteLength;
    this.#unflushedBytes += bytes;
    this.stats.framesOut += 2;
    this.stats.envelopesOut++;
    this.stats.bytesOut += bytes;
    try {
      this.#ws.send(header, { binary: true });
      this.#ws.send(data, { binary: true }, this.#written.bind(this, bytes));
    } catch (err) {
      this.#log.debug({ err: messageOf(err) }, 'write on a closing socket');
      return;
    }
    this.#afterWrite();
  }

  #afterWrite(): void {
    if (!this.#congested && this.#unflushedBytes > this.#settings.highWaterBytes) this.#congested = true;
    if (this.#unflushedBytes > this.#settings.maxBufferedBytes) this.#tooSlow();
  }

  /** A batch that could not be written: halves are tried alone, down to the one envelope at fault. */
  #split(batch: Envelope[], code: ErrorCode, why: (what: string) => string): void {
    if (batch.length > 1) {
      const half = batch.length >> 1;
      this.#write(batch.slice(0, half));
      this.#write(batch.slice(half));
      return;
    }
    const envelope = batch[0]!;
    const type = envelope.t === 'send' ? messageType(envelope.msg) : envelope.t;
    const reason = why(envelope.t === 'send' ? `a "${type}" message to ${envelope.to}` : `a "${type}" envelope`);
    this.stats.dropped++;
    dropLog.warn(this.#log, { code, type }, 'dropped an envelope that cannot be sent');
    try {
      this.emit('undeliverable', envelope, code, reason);
    } catch (err) {
      this.#log.error({ err, type }, 'undeliverable handler failed');
    }
  }

  /**
   * The peer is not reading and we hold more than `maxBufferedBytes` for it: cut it. (A close
   * handshake would queue behind what it does not read.)
   */
  #tooSlow(): void {
    this.#log.warn(
      { code: ErrorCodes.PEER_TOO_SLOW, bufferedBytes: this.#unflushedBytes, maxBufferedBytes: this.#settings.maxBufferedBytes },
      'disconnecting a peer that does not read what we send',
    );
    this.terminate('slow-consumer');
  }

  #written(bytes: number): void {
    this.#unflushedBytes -= bytes;
    if (this.#congested && this.#unflushedBytes <= this.#settings.highWaterBytes >> 1) {
      this.#congested = false;
      this.emit('drain');
    }
  }

  #receive(data: Buffer, isBinary: boolean): void {
    // Frames of a peer we are cutting off, read in the same burst as the one that did it, are dropped.
    if (this.#closing || this.#closed) return;
    this.#lastSeen = Date.now();
    this.stats.framesIn++;
    this.stats.bytesIn += data.length;
    if (this.#rawHeader !== undefined) return this.#receivePayload(data, isBinary);
    if (!isBinary) {
      this.refuse(ErrorCodes.DECODE, 'text frames are not accepted; send binary msgpack');
      return;
    }
    if (isRawHeader(data)) {
      try {
        this.#rawHeader = decodeRawHeader(data, this.#settings.maxFrameBytes);
      } catch (err) {
        // Its payload comes next all the same: it is dropped, not read as a frame.
        this.#rawHeader = null;
        this.refuse(ErrorCodes.RAW_FRAME, `bad raw header: ${(err as Error).message.slice(0, 200)}`);
      }
      return;
    }
    let envelopes: unknown[];
    try {
      envelopes = decodeFrame(data);
    } catch (err) {
      this.refuse(ErrorCodes.DECODE, `undecodable frame: ${(err as Error).message.slice(0, 200)}`);
      return;
    }
    this.#handle(envelopes);
  }

  /** The message after a raw header: its payload, checked against what the header said. */
  #receivePayload(data: Buffer, isBinary: boolean): void {
    const header = this.#rawHeader;
    this.#rawHeader = undefined;
    if (header === null || header === undefined) return;
    let envelope: unknown;
    try {
      if (!isBinary) throw new TypeError('a raw payload must be a binary message');
      envelope = withPayload(header, data);
    } catch (err) {
      this.refuse(ErrorCodes.RAW_FRAME, `bad raw payload: ${(err as Error).message.slice(0, 200)}`);
      return;
    }
    this.#handle([envelope]);
  }

  #handle(envelopes: unknown[]): void {
    for (const envelope of envelopes) {
      if (this.#closed || this.#closing) return;
      const invalid = checkEnvelope(envelope);
      if (invalid) {
        this.refuse(invalid.code, invalid.reason);
        continue;
      }
      this.stats.envelopesIn++;
      try {
        this.onEnvelope(envelope as Envelope, this);
      } catch (err) {
        // A handler bug must not take the node down with it; it is logged with its stack.
        this.#log.error({ err, type: (envelope as Envelope).t }, 'envelope handler failed');
      }
    }
  }

  #beat = (now: number): void => {
    if (this.#closed) return;
    const interval = this.#settings.heartbeatIntervalMs;
    if (now - this.#lastSeen > this.#settings.heartbeatTimeoutMs) {
      this.#log.warn({ silentMs: now - this.#lastSeen }, 'peer silent past the heartbeat timeout');
      this.terminate('heartbeat-timeout');
      return;
    }
    // A tick is a quarter interval: "an interval since the last ping" within a tick's slack.
    if (now - this.#lastPing < interval - this.#tickMs / 2) return;
    if (!this.#pingAlways && now - this.#lastSeen < interval * 1.5) return;
    this.#lastPing = now;
    try {
      const rtt = Buffer.alloc(4);
      rtt.writeUInt32BE(this.#lastRttUs);
      this.#ws.ping(rtt);
      this.#pingSentAt = performance.now();
    } catch {
      // The socket is closing; 'close' follows.
    }
  };

  #rtt(us: number): void {
    if (this.listenerCount('rtt') > 0) this.emit('rtt', us / 1e6);
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    removeTick(this.#tickMs, this.#beat);
    this.stats.dropped += this.#queue.length;
    this.#queue = [];
    const info: CloseInfo = { code, reason, cause: this.#closeCause };
    this.emit('close', info);
  }
}

function messageType(msg: unknown): string {
  const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type.slice(0, 64) : typeof msg;
}
