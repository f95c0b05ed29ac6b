/**
 * The listening side: an HTTPS server that requests and verifies client certificates against the
 * cluster CA only (TLS fails before any byte of ours is read otherwise), and a ws server on it with
 * permessage-deflate off, TCP_NODELAY on, a frame size limit and a handshake deadline.
 * A peer becomes a Connection once its hello matches its certificate and `accept` agrees.
 * The deadline (`handshakeTimeoutMs`) runs from TCP accept to a valid hello, over TLS, the HTTP
 * upgrade and the hello together: a peer trickling its bytes cannot hold a socket longer. Refusals
 * (at TLS or at the hello) are logged through one LogLimiter: a burst a minute at warn, then debug.
 */
import { EventEmitter } from 'node:events';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from './ws-library.js';
import type { Logger } from 'pino';
import type { Hello, Reject, Welcome } from '../../protocols/wire.js';
import { peerIdentity } from '../../certs/identity.js';
import { ErrorCodes, TroupeError } from '../errors.js';
import { encodeFrame } from './codec.js';
import { CLOSE_GOING_AWAY, CLOSE_POLICY, Connection } from './connection.js';
import { readHandshake } from './handshake.js';
import type { TransportSettings } from './settings.js';
import { describeAcceptError } from './tls-errors.js';
import { LogLimiter } from './log-limiter.js';
import { LINK_CIPHERS } from './cipher-order.js';
import { FrameReader } from './frame-reader.js';

/** OpenSSL's words for the verification failures a client certificate can meet. */
const VERIFY_FAILURES: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_REVOKED: 'certificate revoked',
  INVALID_PURPOSE: 'unsupported certificate purpose',
};

export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
}

export interface ServerOptions {
  tls: TlsMaterial;
  host: string;
  port: number;
  settings: TransportSettings;
  log: Logger;
  /** Our side of the handshake. */
  welcome: () => Welcome;
  /** A last word on a peer whose hello matched its certificate (its name and serial number): a reject refuses it. */
  accept?: (hello: Hello, certificate: { name: string; serial: string }) => Reject | undefined;
}

export class TransportServer extends EventEmitter {
  #options: ServerOptions;
  #https: https.Server;
  #wss: WebSocketServer;
  #sockets = new Set<WebSocket>();
  #refusals = new LogLimiter();
  readonly #arrivals = new WeakMap<Socket, string>();
  /** Each TCP socket's handshake deadline, until its hello is read; `expire` is what the deadline does. */
  readonly #deadlines = new WeakMap<Socket, { timer: NodeJS.Timeout; expire: () => void }>();

  constructor(options: ServerOptions) {
    super();
    this.#options = options;
    const { tls, settings, log } = options;
    this.#https = https.createServer({
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ciphers: LINK_CIPHERS,
      honorCipherOrder: true,
      handshakeTimeout: settings.handshakeTimeoutMs,
    });
    this.#https.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('troupe speaks WebSocket here\n');
    });
    // Remember each TCP peer's address on arrival: a refused TLS socket is destroyed (and forgets
    // it) before 'tlsClientError' fires.
    this.#https.on('connection', (raw: Socket) => {
      this.#arrivals.set(raw, `${raw.remoteAddress}:${raw.remotePort}`);
      const deadline = {
        expire: () => {
          log.debug({ from: this.#arrivals.get(raw) }, 'a peer did not complete the handshake in time');
          raw.destroy();
        },
        timer: setTimeout(() => deadline.expire(), settings.handshakeTimeoutMs),
      };
      deadline.timer.unref();
      this.#deadlines.set(raw, deadline);
      raw.once('close', () => clearTimeout(deadline.timer));
    });
    this.#https.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      const from = this.#peerAddress(socket);
      // Node completes the TLS handshake, then checks the client's certificate and destroys the
      // socket without an error when it fails; the reason is left on the socket.
      const verifyFailure = (socket as TLSSocket & { authorizationError?: string }).authorizationError;
      if (verifyFailure) err = Object.assign(new Error(verifyFailure), { code: verifyFailure, reason: VERIFY_FAILURES[verifyFailure] });
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        log.debug({ from, reason: err.code }, 'a peer left during the TLS handshake');
        return;
      }
      // Rate-limited: a port scanner must not flood the log.
      const reason = describeAcceptError(err);
      this.#refusals.warn(log, { from, reason }, 'TLS handshake refused');
      this.emit('refused', { from, code: 'TROUPE_E_TLS_REJECTED', reason });
    });
    this.#wss = new WebSocketServer({
      server: this.#https,
      perMessageDeflate: false,
      maxPayload: settings.maxFrameBytes,
      clientTracking: false,
    });
    this.#wss.on('connection', (ws, req) => this.#onSocket(ws, req));
    this.#wss.on('error', (err) => log.error({ err }, 'websocket server error'));
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, this.#options.host, this.#options.port));
      this.#https.once('error', onError);
      this.#https.listen(this.#options.port, this.#options.host, () => {
        this.#https.off('error', onError);
        resolve(this.#https.address() as AddressInfo);
      });
    });
  }

  get address(): AddressInfo {
    return this.#https.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.close(CLOSE_GOING_AWAY, 'manager stopping');
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#https.closeAllConnections();
    await new Promise<void>((resolve) => this.#https.close(() => resolve()));
  }

  #peerAddress(socket: TLSSocket): string {
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    return (raw && this.#arrivals.get(raw)) ?? (socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'a peer that already left');
  }

  #onSocket(ws: WebSocket, req: IncomingMessage): void {
    const { settings, log } = this.#options;
    const socket = req.socket as TLSSocket;
    socket.setNoDelay(true);
    const address = `${socket.remoteAddress}:${socket.remotePort}`;
    const peerCertificate = socket.getPeerCertificate();
    const certified = peerIdentity(peerCertificate);
    const serial = typeof peerCertificate?.serialNumber === 'string' ? peerCertificate.serialNumber : '';
    this.#sockets.add(ws);
    // Reads land in one reused buffer and whole messages are cut out of them (frame-reader.ts).
    new FrameReader(settings.maxFrameBytes, 'listener').takeOver(socket, ws as never);
    ws.on('close', () => this.#sockets.delete(ws));
    ws.on('error', (err) => log.debug({ from: address, err: err.message }, 'socket error before handshake'));

    const refuse = (rejection: Reject) => {
      this.#refusals.warn(log, { from: address, claimed: certified?.name, code: rejection.code, reason: rejection.reason }, 'peer refused at handshake');
      this.emit('refused', { from: address, code: rejection.code, reason: rejection.reason });
      ws.send(encodeFrame([rejection]));
      ws.close(CLOSE_POLICY, rejection.code);
      setTimeout(() => ws.terminate(), 1000).unref();
    };
    const timedOut = () => refuse({ t: 'reject', code: ErrorCodes.HANDSHAKE_TIMEOUT, reason: `no hello within ${settings.handshakeTimeoutMs} ms` });
    // The deadline set at TCP accept goes on; now it ends with a reject the peer can read. (Without
    // the raw socket, a fresh deadline.)
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    const deadline = raw ? this.#deadlines.get(raw) : undefined;
    let timer: NodeJS.Timeout | undefined;
    if (deadline) deadline.expire = timedOut;
    else timer = setTimeout(timedOut, settings.handshakeTimeoutMs);
    const stopDeadline = () => (deadline ? clearTimeout(deadline.timer) : clearTimeout(timer));
    ws.once('close', stopDeadline);
    ws.once('message', (data, isBinary) => {
      stopDeadline();
      const read = readHandshake<Hello>(data as Buffer, isBinary, 'hello', certified);
      if (read.ok !== true) return refuse(read.reject);
      const hello = read.frame;
      const refused = this.#options.accept?.(hello, { name: certified!.name, serial });
      if (refused) return refuse(refused);
      ws.send(encodeFrame([this.#options.welcome()]));
      const connection = new Connection(
        ws,
        { node: hello.node, certName: certified!.name, certSerial: serial, role: hello.role, incarnation: hello.incarnation, meta: hello.meta, address },
        settings,
        log,
        'listener',
      );
      this.emit('connection', connection);
    });
  }
}

/** Why a manager could not listen, in words, with the system error kept as the cause. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const why =
    err.code === 'EADDRINUSE'
      ? 'the address is in use (another manager? pass --port 0 for a free one)'
      : err.code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges)'
        : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
          ? 'no such local address'
          : err.message;
  return new TroupeError(ErrorCodes.LISTEN, `cannot listen on ${host}:${port}: ${why}`, { cause: err });
}
