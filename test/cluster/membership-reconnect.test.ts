/**
 * A node that loses the manager for less than its downAfter and comes back must not keep a stale
 * view: what changed while it was away (a node that left) reaches it with the manager's table. A
 * worker knows another worker once the two have talked (links.ts): then it is told of its changes.
 */
import net from 'node:net';
import { expect } from 'chai';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { silentLogger } from '../../src/log.js';
import { nextMemberEvent as nextEvent } from '../fixtures/member-events.js';
import { testPki } from '../fixtures/pki.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

/** A TCP relay to the manager that the test can cut and hold shut. */
class Relay {
  readonly server: net.Server;
  open = true;
  #sockets = new Set<net.Socket>();

  constructor(target: number) {
    this.server = net.createServer((inbound) => {
      if (!this.open) return void inbound.destroy();
      const outbound = net.connect(target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  cut(): void {
    this.open = false;
    for (const s of this.#sockets) s.destroy();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('membership after a short loss of the manager', function () {
  const systems: ClusterSystem[] = [];
  let relay: Relay;

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
    await relay?.close();
  });

  it('a node that left while we were away is down in our view once we are back', async function () {
    const pki = testPki();
    const manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
    systems.push(manager);
    relay = new Relay(manager.address!.port);
    const relayPort = await relay.listen();
    // worker-1 reaches the manager through the relay, and would wait 60 s before downing it: a short loss stays short.
    const settings = { downAfterMs: 60_000, transport: { reconnectMinMs: 10, reconnectMaxMs: 50 } };
    const worker1 = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port: relayPort }, log: silentLogger(), settings, messages: TEST_MESSAGES });
    systems.push(worker1);
    await worker1.ready();
    const worker2 = await ClusterSystem.start({ identity: pki.identity('worker-2'), join: { host: '127.0.0.1', port: manager.address!.port }, log: silentLogger(), messages: TEST_MESSAGES });
    systems.push(worker2);
    await worker2.ready();
    spawnEcho(worker2);
    // worker-1 talks to worker-2: the manager introduces the two, and worker-1 follows worker-2 from then on.
    const pong = await worker1.query<Pong>(new ActorRef('worker-2', 'echo'), (replyTo) => ({ type: 'ping', n: 1, replyTo }), 5000);
    expect(pong).to.deep.equal({ type: 'pong', n: 1, from: 'worker-2' });
    expect(worker1.membership.get('worker-2')?.status).to.equal('up');

    const seen: string[] = [];
    worker1.on('member', (e: MemberEvent) => seen.push(`${e.node} ${e.status}`));
    const lost = nextEvent(worker1, (e) => e.node === 'manager' && e.status === 'unreachable');
    relay.cut();
    await lost;
    // While worker-1 is away, worker-2 leaves: the manager downs it at once.
    const gone = nextEvent(manager, (e) => e.node === 'worker-2' && e.status === 'down');
    await worker2.shutdown();
    await gone;
    const down = nextEvent(worker1, (e) => e.node === 'worker-2' && e.status === 'down');
    relay.open = true;
    await down;
    expect(seen).to.deep.equal(['manager unreachable', 'manager up', 'worker-2 down']);
    expect(worker1.membership.get('manager')?.status).to.equal('up');
  });
});
