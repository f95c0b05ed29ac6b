/**
 * What a peer holding a valid certificate cannot do to the manager: crash it or wedge a link with a
 * deeply nested message, have more of its input handled after the strike limit, grow the manager's
 * memory by not reading, or hold a socket by trickling its handshake. And a query whose answer
 * cannot be sent fails at once with the reason. Real TLS on loopback, a real manager and worker,
 * raw peers that send whatever bytes they like.
 */
import { expect } from 'chai';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import type { CloseInfo } from '../../src/transport/connection.js';
import { encodeFrame } from '../../src/transport/codec.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { testPki } from '../fixtures/pki.js';
import { RawPeer } from '../fixtures/raw-peer.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

const MAX_FRAME = 256 * 1024;
const HIGH_WATER = 64 * 1024;
const MAX_BUFFERED = 512 * 1024;
const MAX_STRIKES = 5;
const HANDSHAKE_MS = 1500;
const settings = {
  transport: { maxFrameBytes: MAX_FRAME, highWaterBytes: HIGH_WATER, maxBufferedBytes: MAX_BUFFERED, maxStrikes: MAX_STRIKES, handshakeTimeoutMs: HANDSHAKE_MS },
};

/** A pino logger whose lines land in `lines`, parsed. */
function capturedLog(lines: Record<string, unknown>[]): Logger {
  return pino({ level: 'debug', base: { node: 'manager' } }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
}

/** [ {t: 'send', to, msg: {type: 'note', text, deep}} ] with `deep` nested `levels` maps deep, as raw bytes. */
function deepSend(to: ActorRef, levels: number): Buffer {
  const marker = 'DEEP-VALUE-MARKER';
  const frame = encodeFrame([{ t: 'send', to, msg: { type: 'note', text: 'deep', deep: marker } }]);
  const encodedMarker = Buffer.from([0xa0 + marker.length, ...Buffer.from(marker)]);
  const at = frame.indexOf(encodedMarker);
  const deep: number[] = [];
  for (let i = 0; i < levels; i++) deep.push(0x81, 0xa1, 0x61); // {"a": …
  deep.push(0x01);
  return Buffer.concat([frame.subarray(0, at), Buffer.from(deep), frame.subarray(at + encodedMarker.length)]);
}

describe('peer limits: what a peer with a valid certificate cannot do to the manager', function () {
  this.timeout(30_000);
  let manager: ClusterSystem;
  let worker: ClusterSystem;
  let port: number;
  const lines: Record<string, unknown>[] = [];
  const peers: RawPeer[] = [];
  const sockets: Socket[] = [];
  const echo1 = new ActorRef('worker-1', 'echo');

  before(async function () {
    const pki = testPki();
    manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: TEST_MESSAGES, settings, log: capturedLog(lines) });
    port = manager.address!.port;
    spawnEcho(manager);
    worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port }, messages: TEST_MESSAGES, settings });
    await worker.ready();
    spawnEcho(worker);
  });

  afterEach(async function () {
    for (const p of peers.splice(0)) p.close();
    for (const s of sockets.splice(0)) s.destroy();
    // The manager still serves its worker, both ways.
    expect(await manager.query<Pong>(echo1, (replyTo) => ({ type: 'ping', n: 42, replyTo }), 5000)).to.deep.equal({ type: 'pong', n: 42, from: 'worker-1' });
    const back = await worker.query<Pong>(new ActorRef('manager', 'echo'), (replyTo) => ({ type: 'ping', n: 43, replyTo }), 5000);
    expect(back).to.deep.equal({ type: 'pong', n: 43, from: 'manager' });
  });

  after(async function () {
    await worker?.shutdown();
    await manager?.shutdown();
  });

  /** A client names itself <certificate>~<session> in the cluster: `node` is that name. */
  async function joinRaw(name: string, role: 'worker' | 'client', node = name): Promise<RawPeer> {
    const peer = await RawPeer.join(port, { ...testPki().identity(name), name: node, role });
    peers.push(peer);
    await peer.envelope((e) => e.t === 'welcome');
    return peer;
  }

  describe('a map nested deep, addressed to another node', function () {
    for (const levels of [5000, 300]) {
      it(`${levels} levels: refused with TROUPE_E_DECODE; the manager lives and its link to the target still carries messages`, async function () {
        const peer = await joinRaw('worker-2', 'worker');
        peer.sendBytes(deepSend(echo1, levels));
        const error = await peer.envelope((e) => e.t === 'error');
        expect(error).to.deep.equal({ t: 'error', code: 'TROUPE_E_DECODE', reason: 'undecodable frame: nested deeper than 64 levels' });
        // Through the manager to worker-1 and back: the link to the target is not wedged.
        const q = new ActorRef('worker-2', '$q/deep');
        peer.sendEnvelopes([{ t: 'send', to: echo1, msg: { type: 'ping', n: levels, replyTo: q }, q }]);
        const pong = await peer.envelope((e) => e.t === 'send' && (e.msg as Pong).type === 'pong');
        expect(pong.msg).to.deep.equal({ type: 'pong', n: levels, from: 'worker-1' });
        expect(peer.ws.readyState).to.equal(peer.ws.OPEN);
      });
    }
  });

  describe('past the strike limit nothing more from the peer is handled', function () {
    let notes: unknown[];
    let recorder: ActorRef;
    beforeEach(function () {
      notes = [];
      recorder = manager.receiver((msg) => notes.push(msg));
      lines.length = 0;
    });
    afterEach(function () {
      manager.dropReceiver(recorder);
    });

    const bad = (i: number) => ({ t: 'send', to: new ActorRef('manager', 'echo'), msg: { type: 'no-such-type', i } });

    it('300 bad envelopes in one frame, then a good one: maxStrikes refusals, the good one dropped, closed 1008', async function () {
      const peer = await joinRaw('worker-2', 'worker');
      const frame = [...Array.from({ length: 300 }, (_, i) => bad(i)), { t: 'send', to: recorder, msg: { type: 'note', text: 'after the limit' } }];
      peer.sendEnvelopes(frame);
      expect(await peer.closed).to.deep.equal({ code: 1008, reason: 'TROUPE_E_TOO_MANY_ERRORS' });
      const errors = peer.frames.flat().filter((e) => (e as { t?: string }).t === 'error') as { code: string }[];
      expect(errors.map((e) => e.code)).to.deep.equal([...Array<string>(MAX_STRIKES).fill('TROUPE_E_UNKNOWN_MESSAGE'), 'TROUPE_E_TOO_MANY_ERRORS']);
      expect(notes).to.deep.equal([]);
      expect(lines.filter((l) => l.msg === 'disconnecting a peer that keeps sending invalid input')).to.have.length(1);
      expect(lines.filter((l) => l.msg === 'refused input from peer' && l.peer === 'worker-2')).to.have.length(1);
    });

    it('300 bad frames in one burst, then a good one: the same', async function () {
      const peer = await joinRaw('worker-2', 'worker');
      // One write: ws parses every frame of it in one go.
      const frames = Array.from({ length: 300 }, (_, i) => frameBytes(encodeFrame([bad(i)])));
      frames.push(frameBytes(encodeFrame([{ t: 'send', to: recorder, msg: { type: 'note', text: 'after the limit' } }])));
      (peer.ws as unknown as { _socket: Socket })._socket.write(Buffer.concat(frames));
      expect(await peer.closed).to.deep.equal({ code: 1008, reason: 'TROUPE_E_TOO_MANY_ERRORS' });
      const errors = peer.frames.flat().filter((e) => (e as { t?: string }).t === 'error');
      expect(errors).to.have.length(MAX_STRIKES + 1);
      expect(notes).to.deep.equal([]);
      expect(lines.filter((l) => l.msg === 'disconnecting a peer that keeps sending invalid input')).to.have.length(1);
    });
  });

  it('a client that stops reading and keeps asking is cut past maxBufferedBytes (slow-consumer, TROUPE_E_PEER_TOO_SLOW)', async function () {
    lines.length = 0;
    const peer = await joinRaw('client-1', 'client', 'client-1~raw1');
    const self = new ActorRef('client-1~raw1', 'self');
    // A check-in whose listing is ~100 KiB: each lookup answer is that big.
    peer.sendEnvelopes([{ t: 'checkIn', key: 'bulky', ref: self, meta: { pad: 'x'.repeat(100 * 1024) } }]);
    const disconnected = new Promise<CloseInfo>((resolve) => {
      const on = (node: string, info: CloseInfo) => node === 'client-1~raw1' && (manager.off('disconnected', on), resolve(info));
      manager.on('disconnected', on);
    });
    (peer.ws as unknown as { _socket: Socket })._socket.pause();
    // 300 answers of 100 KiB: 30 MiB, far past what the kernel's buffers hold.
    const lookups = Array.from({ length: 300 }, (_, i) => ({ t: 'lookup', key: 'bulky', replyTo: new ActorRef('client-1~raw1', `$r/${i}`) }));
    peer.sendEnvelopes(lookups);
    const info = await disconnected;
    expect(info.cause).to.equal('slow-consumer');
    const line = lines.find((l) => l.code === 'TROUPE_E_PEER_TOO_SLOW');
    expect(line).to.include({ msg: 'disconnecting a peer that does not read what we send', maxBufferedBytes: MAX_BUFFERED, peer: 'client-1~raw1' });
    expect(line!.bufferedBytes as number).to.be.greaterThan(MAX_BUFFERED);
  });

  it('refusals at the hello are rate-limited in the log: 25 bad hellos, at most 20 warn lines, the rest at debug', async function () {
    lines.length = 0;
    const id = testPki().identity('worker-3');
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        const peer = RawPeer.connect(port, id);
        peers.push(peer);
        await peer.opened;
        peer.sendBytes(Buffer.from([0xc1]));
        await peer.closed;
      }),
    );
    const refused = lines.filter((l) => l.msg === 'peer refused at handshake');
    expect(refused).to.have.length(25);
    expect(refused.filter((l) => l.level === 40).length).to.be.at.most(20);
    expect(refused.filter((l) => l.level === 20).length).to.be.at.least(5);
  });

  describe('one deadline for the whole handshake, from TCP accept to hello', function () {
    it('a TLS client trickling its upgrade request one header at a time is cut at the deadline', async function () {
      const id = testPki().identity('worker-3');
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: id.ca, cert: id.cert, key: id.key, servername: 'localhost', rejectUnauthorized: false });
      sockets.push(socket);
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
      socket.write('GET /troupe HTTP/1.1\r\nHost: localhost\r\n');
      let trickled = 0;
      const trickle = setInterval(() => socket.writable && socket.write(`X-Trickle-${trickled++}: a\r\n`), 100);
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      clearInterval(trickle);
      // It never finished its headers: the server cut it, not an answer.
      expect(socket.destroyed).to.equal(true);
      expect(trickled).to.be.greaterThan(0);
    });

    it('a plain TCP client that never starts TLS is cut at the deadline', async function () {
      const socket = netConnect({ host: '127.0.0.1', port });
      sockets.push(socket);
      socket.on('error', () => {});
      socket.write(Buffer.from([0x16, 0x03])); // the start of a TLS record, and nothing more
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      expect(socket.destroyed).to.equal(true);
    });
  });

  it('a local message nested past the bound is not sent (TROUPE_E_ENCODE at once), and the link carries the next one', async function () {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 100; i++) deep = { a: deep };
    const err = await worker.query(new ActorRef('manager', 'echo'), (replyTo) => ({ type: 'ping', n: 1, replyTo, deep }), 20_000).then(
      () => expect.fail('a message nested 100 deep was answered'),
      (e: Error & { code?: string }) => e,
    );
    expect(err.code).to.equal('TROUPE_E_ENCODE');
    expect(err.message).to.equal('a "ping" message to manager/echo could not be encoded: nested deeper than 64 levels');
    // afterEach asks both ways over the same link.
  });

  describe('a query whose answer cannot be sent fails at once with TROUPE_E_FRAME_TOO_LARGE', function () {
    let big: ActorRef[] = [];
    before(function () {
      // Answers every ping with a pong over the frame size limit.
      big = [manager, worker].map((system) =>
        system.spawn<undefined, { type: 'ping'; n: number; replyTo: ActorRef }>(
          (state, msg, ctx) => {
            ctx.cluster.dispatch(msg.replyTo, { type: 'pong', n: msg.n, from: ctx.cluster.node, pad: 'y'.repeat(MAX_FRAME + 1) });
            return state;
          },
          'big-answer',
        ),
      );
    });

    for (const [asker, target] of [['manager', 'worker-1'], ['worker-1', 'manager']] as const) {
      it(`${asker} asks ${target}: the answer is dropped where it would be sent, and the asker learns now`, async function () {
        const system = asker === 'manager' ? manager : worker;
        const ref = big.find((r) => r.node === target)!;
        const err = await system.query(ref, (replyTo) => ({ type: 'ping', n: 1, replyTo }), 20_000).then(
          () => expect.fail('an answer over the frame size limit arrived'),
          (e: Error & { code?: string }) => e,
        );
        expect(err.code).to.equal('TROUPE_E_FRAME_TOO_LARGE');
        expect(err.message).to.match(new RegExp(`^the answer could not be sent: a "pong" message to ${asker}/\\$q/\\S+ is \\d+ bytes encoded, over the frame size limit of ${MAX_FRAME}$`));
      });
    }
  });
});

/** A masked (as a client must) binary WebSocket frame holding `payload`. */
function frameBytes(payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i & 3]!;
  let head: Buffer;
  if (payload.length < 126) head = Buffer.from([0x82, 0x80 | payload.length]);
  else if (payload.length < 65536) head = Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  else throw new RangeError('frame too long for this helper');
  return Buffer.concat([head, mask, masked]);
}
