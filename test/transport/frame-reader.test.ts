/**
 * The dialling side's read path (frame-reader.ts), on a real TLS WebSocket on loopback: whole
 * binary messages are cut out of the reused read buffer, in order and byte for byte, however the
 * reads split them; pings are still answered; a fragmented message hands the connection to ws's
 * own receiver for good, and what follows (text too) and a close still arrive as ws reads them.
 */
import { expect } from 'chai';
import https from 'node:https';
import tls, { type ConnectionOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from '../../src/transport/ws-library.js';
import { FrameReader } from '../../src/transport/frame-reader.js';
import { testPki } from '../fixtures/pki.js';

describe('FrameReader: the dialling side reads whole binary messages itself', function () {
  const cleanups: (() => unknown)[] = [];
  afterEach(async function () {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A TLS WebSocket server on loopback (port from the OS), closed after the test. */
  const listening = async () => {
    const manager = testPki().identity('manager');
    const server = https.createServer({ cert: manager.cert, key: manager.key });
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    cleanups.push(() => server.closeAllConnections());
    return { manager, server, wss };
  };

  it('binary messages of every size arrive in order, pings are answered, and after a fragmented message ws reads the rest, text and close included', async function () {
    const { manager, server, wss } = await listening();
    const pongs: Buffer[] = [];
    const serverSide = new Promise<import('ws').WebSocket>((resolve) => wss.on('connection', (ws) => (ws.on('pong', (d: Buffer) => pongs.push(d)), resolve(ws))));

    const reader = new FrameReader(16 * 1024 * 1024);
    const ws = new WebSocket(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      perMessageDeflate: false,
      createConnection: ((options: ConnectionOptions) => {
        const socket = tls.connect({ ...options, ca: manager.ca, checkServerIdentity: () => undefined, servername: '', onread: reader.onread } as ConnectionOptions);
        reader.attach(socket);
        return socket;
      }) as never,
    });
    cleanups.push(() => ws.terminate());
    const received: { data: Buffer; binary: boolean }[] = [];
    const modes: string[] = [];
    ws.on('message', (data: Buffer, binary: boolean) => {
      received.push({ data: Buffer.from(data), binary });
      modes.push(reader.mode);
    });
    const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)));
    await new Promise<void>((resolve, reject) => ws.once('open', () => (reader.open(ws as never), resolve())).once('error', reject));
    const peer = await serverSide;
    expect(reader.mode).to.equal('frames');

    const large = Buffer.alloc(300 * 1024);
    for (let i = 0; i < large.length; i++) large[i] = i % 251;
    const sent: { data: Buffer; binary: boolean }[] = [];
    const send = (data: Buffer | string, options: { fin?: boolean; binary?: boolean } = {}) => peer.send(data, options);
    const expectMessage = (data: Buffer, binary = true) => sent.push({ data, binary });

    send(Buffer.from('small'));
    expectMessage(Buffer.from('small'));
    peer.ping(Buffer.from('beat'));
    send(large);
    expectMessage(large);
    send(Buffer.alloc(0));
    expectMessage(Buffer.alloc(0));
    // A fragmented message: from here on ws's receiver reads everything.
    send(Buffer.from('frag-'), { fin: false });
    send(Buffer.from('ment'), { fin: true });
    expectMessage(Buffer.from('frag-ment'));
    send(large.subarray(0, 100 * 1024));
    expectMessage(large.subarray(0, 100 * 1024));
    send('text', { binary: false });
    expectMessage(Buffer.from('text'), false);
    send(Buffer.from('last'));
    expectMessage(Buffer.from('last'));
    peer.close(4000, 'bye');

    expect(await closed).to.equal(4000);
    expect(received).to.deep.equal(sent);
    expect(pongs.map(String)).to.deep.equal(['beat']);
    // The first three were read here; the fragmented one and all after it by ws.
    expect(modes).to.deep.equal(['frames', 'frames', 'frames', 'receiver', 'receiver', 'receiver', 'receiver']);
  });

  it('the listening side: a dialler\'s zero-key masked frames are read here, a real mask key hands the connection to ws, and every message arrives in order', async function () {
    const { manager, server, wss } = await listening();
    const reader = new FrameReader(16 * 1024 * 1024, 'listener');
    const received: { data: Buffer; mode: string }[] = [];
    let tookOver = false;
    const closed = new Promise<number>((resolve) => {
      wss.on('connection', (ws, req) => {
        tookOver = reader.takeOver(req.socket as TLSSocket, ws as never);
        ws.on('message', (data: Buffer) => received.push({ data: Buffer.from(data), mode: reader.mode }));
        ws.on('close', (code: number) => resolve(code));
      });
    });
    let zeroKey = true;
    const ws = new WebSocket(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      perMessageDeflate: false,
      // As websocket-client.ts: an all-zero key; from the fourth message on, a real one.
      generateMask: (mask: Buffer) => void (zeroKey ? mask.fill(0) : mask.fill(0x5a)),
      createConnection: ((options: ConnectionOptions) => tls.connect({ ...options, ca: manager.ca, checkServerIdentity: () => undefined, servername: '' })) as never,
    });
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const large = Buffer.alloc(200 * 1024);
    for (let i = 0; i < large.length; i++) large[i] = i % 253;
    ws.send(Buffer.from('hello'));
    ws.ping(Buffer.from('beat'));
    ws.send(large);
    ws.send(Buffer.alloc(0));
    await new Promise<void>((resolve) => ws.send(Buffer.from('zero'), () => resolve()));
    zeroKey = false;
    ws.send(Buffer.from('keyed'));
    ws.send(large.subarray(1000));
    ws.close(4001, 'done');

    expect(await closed).to.equal(4001);
    expect(tookOver).to.equal(true);
    expect(received.map((r) => r.data)).to.deep.equal([Buffer.from('hello'), large, Buffer.alloc(0), Buffer.from('zero'), Buffer.from('keyed'), large.subarray(1000)]);
    expect(received.map((r) => r.mode)).to.deep.equal(['frames', 'frames', 'frames', 'frames', 'receiver', 'receiver']);
  });
});
