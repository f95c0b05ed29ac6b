/**
 * Bad input gets a clear error with a stable code, and nothing breaks: each case is a real TLS
 * connection on loopback to a real manager, and after each one the manager still serves a good
 * worker that joined before it.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import { Dialer } from '../../src/transport/websocket-client.js';
import { transportSettings } from '../../src/transport/settings.js';
import { describeDialError } from '../../src/transport/tls-errors.js';
import { silentLogger } from '../../src/log.js';
import type { TroupeError } from '../../src/errors.js';
import type { Hello } from '../../protocols/wire.js';
import { testPki } from '../fixtures/pki.js';
import { RawPeer } from '../fixtures/raw-peer.js';
import { encodeFrame, encodeItem } from '../../src/transport/codec.js';
import { RAW_HEADER_PREFIX } from '../../src/transport/raw-frame.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

const MAX_FRAME = 256 * 1024;
const MAX_STRIKES = 5;

describe('bad input: a clear error with a stable code, and the manager keeps serving', function () {
  let manager: ClusterSystem;
  let worker: ClusterSystem;
  let port: number;
  const peers: RawPeer[] = [];
  const systems: ClusterSystem[] = [];

  before(async function () {
    const pki = testPki();
    manager = await ClusterSystem.start({
      identity: pki.identity('manager'),
      listen: { host: '127.0.0.1', port: 0 },
      messages: TEST_MESSAGES,
      settings: { transport: { maxFrameBytes: MAX_FRAME, maxStrikes: MAX_STRIKES, handshakeTimeoutMs: 500 } },
    });
    port = manager.address!.port;
    spawnEcho(manager);
    worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port }, messages: TEST_MESSAGES });
    await worker.ready();
    spawnEcho(worker);
  });

  afterEach(async function () {
    // The good worker is still served, both ways, after every case.
    const pong = await manager.query<Pong>(new ActorRef('worker-1', 'echo'), (replyTo) => ({ type: 'ping', n: 42, replyTo }), 5000);
    expect(pong).to.deep.equal({ type: 'pong', n: 42, from: 'worker-1' });
    const back = await worker.query<Pong>(new ActorRef('manager', 'echo'), (replyTo) => ({ type: 'ping', n: 43, replyTo }), 5000);
    expect(back).to.deep.equal({ type: 'pong', n: 43, from: 'manager' });
    for (const p of peers.splice(0)) p.close();
    await Promise.all(systems.splice(0).map((s) => s.shutdown()));
  });

  after(async function () {
    await worker?.shutdown();
    await manager?.shutdown();
  });

  /** Starts a node that should be refused, and returns the error its ready() rejects with. */
  async function refusedJoin(identity: Parameters<typeof ClusterSystem.start>[0]['identity']): Promise<TroupeError> {
    const system = await ClusterSystem.start({ identity, join: { host: '127.0.0.1', port } });
    systems.push(system);
    return system.ready().then(
      () => expect.fail('joined, but should have been refused'),
      (err: TroupeError) => err,
    );
  }

  /** Dials with our own transport but a hand-made hello; resolves with the dialer's failure. */
  function dialWithHello(name: string, hello: Partial<Hello>): Promise<{ error: TroupeError; fatal: boolean }> {
    const identity = testPki().identity(name);
    const dialer = new Dialer({
      host: '127.0.0.1',
      port,
      tls: identity,
      settings: transportSettings({ reconnect: false }),
      log: silentLogger(),
      hello: () => ({ t: 'hello', protocol: PROTOCOL_VERSION, node: identity.name, role: identity.role, incarnation: 'x-1', meta: {}, ...hello }),
    });
    return new Promise((resolve) => {
      dialer.on('failure', (error: TroupeError, detail: { fatal: boolean }) => resolve({ error, fatal: detail.fatal }));
      dialer.on('connected', () => resolve({ error: new Error('connected') as TroupeError, fatal: false }));
      dialer.start();
    }).finally(() => dialer.stop()) as Promise<{ error: TroupeError; fatal: boolean }>;
  }

  it('no client certificate: TLS refuses it (TROUPE_E_TLS_REJECTED)', async function () {
    const peer = RawPeer.connect(port, { ca: testPki().identity('worker-1').ca });
    peers.push(peer);
    const err = await peer.opened.then(
      () => peer.closed.then((c) => Object.assign(new Error(`closed ${c.code}`), { code: 'ECONNRESET' })),
      (e: Error & { code?: string }) => e,
    );
    const described = describeDialError(err, `127.0.0.1:${port}`);
    expect(described.code).to.equal('TROUPE_E_TLS_REJECTED');
    expect(described.message).to.contain('no client certificate');
  });

  function nextRefusal(): Promise<{ code: string; reason: string }> {
    return new Promise((resolve) => manager.once('refused', resolve));
  }

  it('a certificate from another CA: refused at TLS (the manager says why), the node stops dialling', async function () {
    const refusal = nextRefusal();
    const err = await refusedJoin({ name: 'worker-9', role: 'worker', ...testPki().raw('other-ca-worker') });
    expect(err.code).to.equal('TROUPE_E_TLS_REJECTED');
    expect(err.message).to.contain('our certificate was refused');
    expect(await refusal).to.deep.include({ code: 'TROUPE_E_TLS_REJECTED', reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate' });
  });

  it('an expired certificate: refused at TLS (the manager says it expired), the node stops dialling', async function () {
    const refusal = nextRefusal();
    const err = await refusedJoin({ name: 'worker-8', role: 'worker', ...testPki().raw('expired-worker') });
    expect(err.code).to.equal('TROUPE_E_TLS_REJECTED');
    expect(await refusal).to.deep.include({ code: 'TROUPE_E_TLS_REJECTED', reason: 'CERT_HAS_EXPIRED: certificate has expired' });
  });

  it('a "manager" listening with a certificate not made for servers: the node stops with TROUPE_E_TLS_UNTRUSTED', async function () {
    // The role is the caller's word here; the certificate is still a worker's (clientAuth only).
    const impostor = await ClusterSystem.start({ identity: { ...testPki().identity('worker-3'), role: 'manager' }, listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
    systems.push(impostor);
    const joiner = await ClusterSystem.start({ identity: testPki().identity('worker-2'), join: { host: '127.0.0.1', port: impostor.address!.port }, log: silentLogger() });
    systems.push(joiner);
    const err = await joiner.ready().then(
      () => expect.fail('joined a server holding a worker certificate'),
      (e: TroupeError) => e,
    );
    expect(err.code).to.equal('TROUPE_E_TLS_UNTRUSTED');
    expect(err.message).to.contain("the server's certificate is not trusted by our CA (INVALID_PURPOSE)");
  });

  it('a certificate without a role: TROUPE_E_CERT_NO_ROLE at the handshake', async function () {
    const err = await refusedJoin({ name: 'worker-7', role: 'worker', ...testPki().raw('no-role-worker') });
    expect(err.code).to.equal('TROUPE_E_CERT_NO_ROLE');
  });

  it('a worker certificate claiming to be the manager: TROUPE_E_ROLE_MISMATCH', async function () {
    const { error, fatal } = await dialWithHello('worker-2', { role: 'manager' });
    expect(error.code).to.equal('TROUPE_E_ROLE_MISMATCH');
    expect(error.message).to.contain('role "manager" does not match its certificate\'s role "worker"');
    expect(fatal).to.equal(true);
    expect(manager.membership.get('worker-2')).to.equal(undefined);
  });

  it('a node name that does not match its certificate: TROUPE_E_NAME_MISMATCH', async function () {
    const { error } = await dialWithHello('worker-2', { node: 'worker-3' });
    expect(error.code).to.equal('TROUPE_E_NAME_MISMATCH');
    expect(error.message).to.contain('node name "worker-3" does not match its certificate\'s "worker-2"');
    expect(manager.membership.get('worker-3')).to.equal(undefined);
  });

  it('a protocol version mismatch: TROUPE_E_PROTOCOL_VERSION naming both versions', async function () {
    const { error } = await dialWithHello('worker-2', { protocol: PROTOCOL_VERSION + 1 });
    expect(error.code).to.equal('TROUPE_E_PROTOCOL_VERSION');
    expect(error.message).to.contain(`peer speaks ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}`);
  });

  it('a peer that never says hello: reject TROUPE_E_HANDSHAKE_TIMEOUT, then closed', async function () {
    const id = testPki().identity('worker-2');
    const peer = RawPeer.connect(port, id);
    peers.push(peer);
    await peer.opened;
    expect(await peer.envelope((e) => e.t === 'reject')).to.include({ code: 'TROUPE_E_HANDSHAKE_TIMEOUT' });
    expect((await peer.closed).code).to.equal(1008);
  });

  describe('after the handshake', function () {
    let peer: RawPeer;

    beforeEach(async function () {
      const id = testPki().identity('worker-2');
      peer = await RawPeer.join(port, { ...id, name: 'worker-2', role: 'worker' });
      peers.push(peer);
      await peer.envelope((e) => e.t === 'welcome');
    });

    it('a frame over the size limit closes the connection with 1009', async function () {
      peer.sendBytes(Buffer.alloc(MAX_FRAME + 1));
      expect((await peer.closed).code).to.equal(1009);
    });

    it('random bytes instead of msgpack: an error envelope TROUPE_E_DECODE, the connection stays', async function () {
      peer.sendBytes(Buffer.concat([Buffer.from([0xc1]), randomBytes(64)]));
      expect(await peer.envelope((e) => e.t === 'error')).to.include({ code: 'TROUPE_E_DECODE' });
      expect(peer.ws.readyState).to.equal(peer.ws.OPEN);
    });

    const rawHeader = (value: unknown) => Buffer.concat([Buffer.from(RAW_HEADER_PREFIX), encodeItem(value)]);
    const errors = () => peer.frames.flat().filter((e) => (e as { t?: string }).t === 'error') as { code: string; reason: string }[];
    const echoSend = { t: 'send', to: new ActorRef('manager', 'echo'), msg: { type: 'ping' } };

    it('bad raw headers (src/transport/raw-frame.ts): TROUPE_E_RAW_FRAME each, and the payload after each is dropped, not read as a frame', async function () {
      const payload = encodeFrame([{ t: 'launch-missiles' }]); // read as a frame, it would be refused as unknown
      for (const header of [
        Buffer.concat([Buffer.from(RAW_HEADER_PREFIX), randomBytes(16)]),
        rawHeader([{ ...echoSend, msg: { type: 'ping', data: payload } }, payload.length]),
        rawHeader([echoSend, MAX_FRAME + 1]),
      ]) {
        peer.sendBytes(header);
        peer.sendBytes(payload);
      }
      peer.sendEnvelopes([{ t: 'probe' }]);
      await peer.envelope((e) => e.t === 'error' && String(e.reason).includes('probe'));
      // (Four strikes: under this manager's MAX_STRIKES.)
      expect(errors().map((e) => e.code)).to.deep.equal([...Array(3).fill('TROUPE_E_RAW_FRAME'), 'TROUPE_E_UNKNOWN_MESSAGE']);
      expect(errors()[1]!.reason).to.equal('bad raw header: a raw header\'s message must leave "data" to the payload');
      expect(errors()[2]!.reason).to.equal(`bad raw header: a raw header's length must be an integer from 0 to ${MAX_FRAME}`);
      expect(peer.ws.readyState).to.equal(peer.ws.OPEN);
    });

    it('a raw header of another envelope than `send`, a raw payload of another length than its header said: TROUPE_E_RAW_FRAME, the connection stays', async function () {
      peer.sendBytes(rawHeader([{ t: 'watch', watcher: new ActorRef('worker-2', 'a'), target: new ActorRef('manager', 'b') }, 10]));
      peer.sendBytes(Buffer.alloc(10));
      peer.sendBytes(rawHeader([echoSend, 100]));
      peer.sendBytes(Buffer.alloc(99));
      await peer.envelope((e) => e.t === 'error' && String(e.reason).includes('payload'));
      expect(errors()).to.deep.equal([
        { t: 'error', code: 'TROUPE_E_RAW_FRAME', reason: 'bad raw header: a raw header must carry a "send" envelope' },
        { t: 'error', code: 'TROUPE_E_RAW_FRAME', reason: 'bad raw payload: a raw payload of 99 bytes where its header said 100' },
      ]);
      expect(peer.ws.readyState).to.equal(peer.ws.OPEN);
    });

    it('a peer that keeps sending garbage is disconnected (TROUPE_E_TOO_MANY_ERRORS, 1008)', async function () {
      for (let i = 0; i < MAX_STRIKES; i++) peer.sendBytes(Buffer.from([0xc1]));
      expect(await peer.envelope((e) => e.t === 'error' && e.code === 'TROUPE_E_TOO_MANY_ERRORS')).to.include({ code: 'TROUPE_E_TOO_MANY_ERRORS' });
      expect(await peer.closed).to.deep.equal({ code: 1008, reason: 'TROUPE_E_TOO_MANY_ERRORS' });
    });

    it('an envelope of an unknown type: TROUPE_E_UNKNOWN_MESSAGE', async function () {
      peer.sendEnvelopes([{ t: 'launch-missiles' }]);
      expect(await peer.envelope((e) => e.t === 'error')).to.deep.equal({ t: 'error', code: 'TROUPE_E_UNKNOWN_MESSAGE', reason: 'unknown envelope type "launch-missiles"' });
    });

    it('an actor message of an unknown type: TROUPE_E_UNKNOWN_MESSAGE, and the query it carried fails at once', async function () {
      const q = new ActorRef('worker-2', '$q/1');
      peer.sendEnvelopes([{ t: 'send', to: new ActorRef('manager', 'echo'), msg: { type: 'no-such-type' }, q }]);
      expect(await peer.envelope((e) => e.t === 'error')).to.deep.equal({ t: 'error', code: 'TROUPE_E_UNKNOWN_MESSAGE', reason: 'unknown message type "no-such-type"' });
      expect(await peer.envelope((e) => e.t === 'undeliverable')).to.include({ code: 'TROUPE_E_UNKNOWN_MESSAGE' });
    });

    it('a well-formed message of the wrong shape: TROUPE_E_INVALID_MESSAGE naming the field', async function () {
      peer.sendEnvelopes([{ t: 'send', to: new ActorRef('manager', 'echo'), msg: { type: 'ping', n: 'seven', replyTo: new ActorRef('worker-2', 'x') } }]);
      const error = await peer.envelope((e) => e.t === 'error');
      expect(error).to.include({ code: 'TROUPE_E_INVALID_MESSAGE' });
      expect(error.reason).to.contain('message "ping" at /n');
    });

    it('an envelope missing its target: TROUPE_E_INVALID_MESSAGE', async function () {
      peer.sendEnvelopes([{ t: 'send', msg: { type: 'note', text: 'hi' } }]);
      const error = await peer.envelope((e) => e.t === 'error');
      expect(error).to.include({ code: 'TROUPE_E_INVALID_MESSAGE' });
      expect(error.reason).to.contain('envelope "send"');
    });

    it('a message to an actor that does not exist: a dead letter, and TROUPE_E_NO_SUCH_ACTOR to the query', async function () {
      const before = manager.deadLetterCount;
      const q = new ActorRef('worker-2', '$q/2');
      peer.sendEnvelopes([{ t: 'send', to: new ActorRef('manager', 'nobody'), msg: { type: 'ping', n: 1, replyTo: q }, q }]);
      expect(await peer.envelope((e) => e.t === 'undeliverable')).to.deep.equal({ t: 'undeliverable', to: q, code: 'TROUPE_E_NO_SUCH_ACTOR', reason: 'no actor at manager/nobody' });
      expect(manager.deadLetterCount).to.equal(before + 1);
    });

    it('a worker sending what only managers and clients may: TROUPE_E_FORBIDDEN', async function () {
      const q = new ActorRef('worker-2', '$q/3');
      peer.sendEnvelopes([{ t: 'send', to: new ActorRef('manager', 'echo'), msg: { type: 'privileged', replyTo: q }, q }]);
      expect(await peer.envelope((e) => e.t === 'error')).to.deep.equal({ t: 'error', code: 'TROUPE_E_FORBIDDEN', reason: 'a worker may not send "privileged"' });
      expect(await peer.envelope((e) => e.t === 'undeliverable')).to.include({ code: 'TROUPE_E_FORBIDDEN' });
    });

    it('a worker posing as the manager in membership, or checking in another node\'s actor: TROUPE_E_FORBIDDEN', async function () {
      peer.sendEnvelopes([{ t: 'member', node: 'worker-1', role: 'worker', incarnation: 'fake', status: 'down', meta: {} }]);
      expect(await peer.envelope((e) => e.t === 'error')).to.include({ code: 'TROUPE_E_FORBIDDEN' });
      peer.sendEnvelopes([{ t: 'checkIn', key: 'worker', ref: new ActorRef('worker-1', 'echo'), meta: {} }]);
      expect(await peer.envelope((e) => e.t === 'error' && String(e.reason).includes('may not act for'))).to.include({ code: 'TROUPE_E_FORBIDDEN' });
      expect(manager.membership.get('worker-1')?.status).to.equal('up');
    });
  });
});
