/**
 * The dialling side: connects out to the manager (so a node behind NAT can join), verifies the
 * server's certificate against the cluster CA and its hostname, sends hello, and waits for welcome.
 * When the connection is lost it dials again with capped, jittered exponential backoff, forever
 * unless told otherwise. A refusal that retrying cannot fix (a protocol version, name or role
 * mismatch; a certificate the server refuses, has revoked, or that we do not trust) stops the dialer.
 *
 * Events: `connected` (Connection, Welcome) · `disconnected` (CloseInfo) · `failure` (TroupeError,
 * {fatal, retryInMs}) · `stopped`.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { WebSocket } from './ws-library.js';
import type { Logger } from 'pino';
import type { Hello, Welcome } from '../../protocols/wire.js';
import { peerIdentity } from '../../certs/identity.js';
import { ErrorCodes, HandshakeError, TlsError, type TroupeError } from '../errors.js';
import { Backoff } from './backoff.js';
import { encodeFrame } from './codec.js';
import { CLOSE_NORMAL, Connection, type CloseInfo } from './connection.js';
import { FrameReader } from './frame-reader.js';
import { readHandshake } from './handshake.js';
import type { TransportSettings } from './settings.js';
import { describeDialError } from './tls-errors.js';
import type { TlsMaterial } from './websocket-server.js';

export interface DialOptions {
  host: string;
  port: number;
  tls: TlsMaterial;
  settings: TransportSettings;
  log: Logger;
  hello: () => Hello;
}

const FATAL: ReadonlySet<string> = new Set([
  ErrorCodes.PROTOCOL_VERSION,
  ErrorCodes.NAME_MISMATCH,
  ErrorCodes.ROLE_MISMATCH,
  ErrorCodes.CERT_NO_ROLE,
  ErrorCodes.TLS_REJECTED,
  ErrorCodes.TLS_UNTRUSTED,
  ErrorCodes.TLS_HOSTNAME,
  ErrorCodes.FORBIDDEN,
  ErrorCodes.REVOKED,
]);

export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export class Dialer extends EventEmitter {
  #options: DialOptions;
  #backoff: Backoff;
  #ws: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #connection: Connection | undefined;
  readonly target: string;

  constructor(options: DialOptions) {
    super();
    this.#options = options;
    this.#backoff = new Backoff(options.settings.reconnectMinMs, options.settings.reconnectMaxMs);
    this.target = formatAddress(options.host, options.port);
  }

  get connection(): Connection | undefined {
    return this.#connection;
  }

  start(): void {
    this.#dial();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#connection?.close(CLOSE_NORMAL, 'leaving');
    if (!this.#connection) this.#ws?.terminate();
    this.emit('stopped');
  }

  #dial(): void {
    if (this.#stopped) return;
    const { tls, settings, log } = this.#options;
    // Reads land in one reused buffer and whole messages are cut out of them (frame-reader.ts).
    const reader = new FrameReader(settings.maxFrameBytes);
    const ws = new WebSocket(`wss://${this.target}/troupe`, {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: true,
      perMessageDeflate: false,
      maxPayload: settings.maxFrameBytes,
      // An all-zero masking key: ws then neither masks what we send nor the manager unmasks it (a
      // copy and a byte-by-byte XOR of every frame, each way, without the native bufferutil). Masking
      // protects HTTP caches from scripts in browsers (RFC 6455 §10.3); inside our own TLS connection,
      // between two troupe nodes, there is neither.
      generateMask: (mask: Buffer) => void mask.fill(0),
      handshakeTimeout: settings.handshakeTimeoutMs,
      createConnection: ((options: ConnectionOptions & { path?: string; host?: string }) => {
        // As ws's own tlsConnect, but we learn when the TLS handshake completed (see below).
        // `onread` is tls.connect's (passed on to the socket) though @types/node leaves it out.
        const socket = tlsConnect({ ...options, path: undefined, servername: options.servername ?? (isIP(options.host ?? '') ? '' : options.host), onread: reader.onread } as ConnectionOptions);
        reader.attach(socket);
        socket.once('secureConnect', () => (secured = true));
        return socket;
      }) as never,
    });
    this.#ws = ws;
    let settled = false;
    let secured = false;
    let certified: ReturnType<typeof peerIdentity> = null;
    let certSerial = '';

    const fail = (error: TroupeError) => {
      if (settled) return;
      settled = true;
      clearTimeout(welcomeTimer);
      ws.removeAllListeners('message');
      ws.on('error', () => {});
      ws.terminate();
      const fatal = FATAL.has(error.code) || !settings.reconnect;
      const retryInMs = fatal ? undefined : this.#backoff.next();
      log.debug({ code: error.code, attempt: this.#backoff.attempts, retryInMs }, error.message);
      this.emit('failure', error, { fatal, retryInMs });
      if (fatal) this.stop();
      else this.#retry(retryInMs!);
    };

    const welcomeTimer = setTimeout(
      () => fail(new HandshakeError(ErrorCodes.HANDSHAKE_TIMEOUT, `${this.target}: no welcome within ${settings.handshakeTimeoutMs} ms`)),
      settings.handshakeTimeoutMs,
    );
    ws.on('upgrade', (res: IncomingMessage) => {
      const peerCertificate = (res.socket as TLSSocket).getPeerCertificate();
      certified = peerIdentity(peerCertificate);
      certSerial = typeof peerCertificate?.serialNumber === 'string' ? peerCertificate.serialNumber : '';
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // TLS 1.3 completes the client's side of the handshake before the server has checked our
      // certificate; the server's alert then races our upgrade request and is lost to the reset.
      // A reset right after a completed handshake, before any HTTP answer, is that refusal.
      if (secured && !certified && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        return fail(new TlsError(ErrorCodes.TLS_REJECTED, `${this.target} refused the TLS handshake: our certificate was refused (expired, not yet valid, or not signed by the cluster CA; the manager's log says which)`, { cause: err }));
      }
      fail(describeDialError(err, this.target));
    });
    ws.on('unexpected-response', (_req, res) => {
      fail(describeDialError(Object.assign(new Error(`unexpected HTTP ${res.statusCode} (not a troupe manager?)`), { code: 'EPROTO' }), this.target));
    });
    ws.on('close', (code) => {
      if (!settled) fail(describeDialError(Object.assign(new Error(`closed during handshake (${code})`), { code: 'ECONNRESET' }), this.target));
    });
    ws.on('open', () => {
      (ws as unknown as { _socket: TLSSocket })._socket?.setNoDelay(true);
      reader.open(ws as never);
      ws.send(encodeFrame([this.#options.hello()]));
    });
    ws.once('message', (data, isBinary) => {
      const read = readHandshake<Welcome>(data as Buffer, isBinary, 'welcome', certified);
      if (read.ok === 'rejected') {
        const code = read.reject.code as TroupeError['code'];
        const Kind = code.startsWith('TROUPE_E_TLS') ? TlsError : HandshakeError;
        return fail(new Kind(code, `${this.target} refused us: ${read.reject.reason}`));
      }
      if (read.ok === false) {
        const code = read.reject.code as TroupeError['code'];
        return fail(new HandshakeError(code, `${this.target}: ${read.reject.reason}`));
      }
      if (read.frame.role !== 'manager') {
        return fail(new HandshakeError(ErrorCodes.ROLE_MISMATCH, `${this.target} is a ${read.frame.role}, not a manager`));
      }
      settled = true;
      clearTimeout(welcomeTimer);
      ws.removeAllListeners('error');
      ws.removeAllListeners('close');
      this.#backoff.reset();
      const welcome = read.frame;
      const connection = new Connection(
        ws,
        { node: welcome.node, certName: certified!.name, certSerial, role: welcome.role, incarnation: welcome.incarnation, meta: welcome.meta, address: this.target },
        settings,
        log,
      );
      this.#connection = connection;
      connection.once('close', (info: CloseInfo) => {
        this.#connection = undefined;
        this.emit('disconnected', info);
        if (!this.#stopped && settings.reconnect) this.#retry(this.#backoff.next());
        else if (!this.#stopped) this.stop();
      });
      this.emit('connected', connection, welcome);
    });
  }

  #retry(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#dial(), delayMs);
  }
}
