/**
 * One client certificate, many connections: each client process is its own member of the
 * cluster, `<certificate name>~<session>`, and none replaces another; the certificate's name stays
 * what identifies the person. Workers keep one connection per name. Real TLS on loopback.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ActorRef, certificateName } from '../../protocols/actor-ref.js';
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { Dialer } from '../../src/transport/websocket-client.js';
import { transportSettings } from '../../src/transport/settings.js';
import { silentLogger } from '../../src/log.js';
import { nextMemberEvent } from '../fixtures/member-events.js';
import type { TroupeError } from '../../src/errors.js';
import type { Hello } from '../../protocols/wire.js';
import { testPki } from '../fixtures/pki.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

describe('client sessions: one certificate, one member per connection', function () {
  let manager: ClusterSystem;
  let port: number;
  const logged: Record<string, unknown>[] = [];
  const systems: ClusterSystem[] = [];

  before(async function () {
    const log = pino({ level: 'info', base: { node: 'manager' } }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
    manager = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: TEST_MESSAGES, log, settings: { downAfterMs: 200 } });
    port = manager.address!.port;
    spawnEcho(manager);
  });

  afterEach(async function () {
    await Promise.all(systems.splice(0).map((s) => s.shutdown()));
  });

  after(async function () {
    await manager?.shutdown();
  });

  async function join(name: string): Promise<ClusterSystem> {
    const system = await ClusterSystem.start({ identity: testPki().identity(name), join: { host: '127.0.0.1', port }, messages: TEST_MESSAGES, log: silentLogger() });
    systems.push(system);
    await system.ready();
    return system;
  }

  const memberEvent = (match: (e: MemberEvent) => boolean): Promise<MemberEvent> => nextMemberEvent(manager, match);

  /** Dials with a hand-made hello; resolves with the dialer's failure. */
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
    return new Promise<{ error: TroupeError; fatal: boolean }>((resolve) => {
      dialer.on('failure', (error: TroupeError, detail: { fatal: boolean }) => resolve({ error, fatal: detail.fatal }));
      dialer.on('connected', () => resolve({ error: new Error('connected') as TroupeError, fatal: false }));
      dialer.start();
    }).finally(() => dialer.stop());
  }

  it('three clients of one certificate are three members, each served; the log names the certificate', async function () {
    const clients = [await join('client-1'), await join('client-1'), await join('client-1')];
    const names = clients.map((c) => c.node);
    for (const name of names) expect(name).to.match(/^client-1~[0-9a-f]{12}$/);
    expect(new Set(names).size).to.equal(3);
    expect(clients.map((c) => [c.certName, certificateName(c.node)])).to.deep.equal(Array(3).fill(['client-1', 'client-1']));
    for (const name of names) expect(manager.membership.get(name)?.status).to.equal('up');
    const pongs = await Promise.all(clients.map((c, i) => c.query<Pong>(new ActorRef('manager', 'echo'), (replyTo) => ({ type: 'ping', n: i, replyTo }), 5000)));
    expect(pongs.map((p) => p.n)).to.deep.equal([0, 1, 2]);
    const joined = logged.filter((l) => l.msg === 'node joined' && names.includes(l.peer as string));
    expect(joined.map((l) => [l.peer, l.certName, l.role])).to.have.deep.members(names.map((n) => [n, 'client-1', 'client']));
    expect(logged.filter((l) => l.msg === 'a node connected again while its old connection was open; replacing it')).to.deep.equal([]);
  });

  it('one client leaving does not disturb another; its member goes down and is then forgotten', async function () {
    const [a, b] = [await join('client-1'), await join('client-1')];
    const down = memberEvent((e) => e.node === a.node && e.status === 'down');
    await a.shutdown();
    await down;
    expect(manager.membership.get(a.node)).to.equal(undefined);
    expect(manager.membership.get(b.node)?.status).to.equal('up');
    const pong = await b.query<Pong>(new ActorRef('manager', 'echo'), (replyTo) => ({ type: 'ping', n: 7, replyTo }), 5000);
    expect(pong.n).to.equal(7);
    // A newcomer is not sent the departed session either.
    const c = await join('client-1');
    await c.query<Pong>(new ActorRef('manager', 'echo'), (replyTo) => ({ type: 'ping', n: 8, replyTo }), 5000);
    expect(c.membership.get(a.node)).to.equal(undefined);
    expect(c.membership.get(b.node)?.status).to.equal('up');
  });

  it('a client hello without a session, or under another certificate\'s name: TROUPE_E_NAME_MISMATCH, fatal', async function () {
    const bare = await dialWithHello('client-1', { node: 'client-1' });
    expect([bare.error.code, bare.fatal]).to.deep.equal(['TROUPE_E_NAME_MISMATCH', true]);
    expect(bare.error.message).to.contain('a client names each connection "client-1~SESSION", not "client-1"');
    const other = await dialWithHello('client-1', { node: 'client-2~abc' });
    expect([other.error.code, other.fatal]).to.deep.equal(['TROUPE_E_NAME_MISMATCH', true]);
    expect(other.error.message).to.contain('node name "client-2~abc" is not "client-1~SESSION"');
    expect(manager.membership.get('client-2~abc')).to.equal(undefined);
  });

  it('a worker may not carry a session: TROUPE_E_NAME_MISMATCH; a worker that redials still replaces its old connection', async function () {
    const sessioned = await dialWithHello('worker-2', { node: 'worker-2~abc' });
    expect(sessioned.error.code).to.equal('TROUPE_E_NAME_MISMATCH');
    expect(sessioned.error.message).to.contain('only a client\'s node name carries a session ("worker-2~abc")');
    const worker = await join('worker-2');
    expect(worker.node).to.equal('worker-2');
    // The same worker process again (same name and incarnation) on a second connection: it replaces the first.
    const identity = testPki().identity('worker-2');
    const again = new Dialer({
      host: '127.0.0.1',
      port,
      tls: identity,
      settings: transportSettings({ reconnect: false }),
      log: silentLogger(),
      hello: () => ({ t: 'hello', protocol: PROTOCOL_VERSION, node: 'worker-2', role: 'worker', incarnation: worker.incarnation, meta: {} }),
    });
    const lost = new Promise<void>((resolve) => worker.once('disconnected', () => resolve()));
    const connected = new Promise<void>((resolve) => again.once('connected', () => resolve()));
    again.start();
    try {
      await Promise.all([connected, lost]);
      expect(logged.filter((l) => l.msg === 'a node connected again while its old connection was open; replacing it').map((l) => l.peer)).to.deep.equal(['worker-2']);
    } finally {
      again.stop();
    }
  });
});
