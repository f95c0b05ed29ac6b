/**
 * The raw ws + mTLS + msgpackr pieces both transport baselines use (bench/transport.ts and its
 * child, bench/transport-child.ts): an https server demanding a client certificate from the cluster
 * CA with ws on it, and a dial to it. No troupe code: this is what troupe is measured against.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { Identity } from '../certs/index.js';

export const MANAGER = 'manager';
export const WORKER = 'worker-1';
/** Messages per frame on the raw one-way baseline. */
export const RAW_BATCH = 1_024;

/** An https server that demands a client certificate from the cluster CA, and ws on it. */
export async function rawServer(identity: Identity, onSocket: (ws: WebSocket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const server = https.createServer({ cert: identity.cert, key: identity.key, ca: identity.ca, requestCert: true, rejectUnauthorized: true });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    req.socket.setNoDelay(true);
    onSocket(ws);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function rawDial(identity: Identity, port: number): Promise<WebSocket> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}`, { ca: identity.ca, cert: identity.cert, key: identity.key, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}
