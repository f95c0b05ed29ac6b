/**
 * Who the manager tells of whom (links.ts): a client of every member, a worker of every member
 * that is not a worker, and of a worker only once the two talk. So a join costs the other workers
 * nothing, and still a watch between workers fires node-down and a query fails at once.
 */
import { expect } from 'chai';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { silentLogger } from '../../src/log.js';
import { nextMemberEvent as nextEvent } from '../fixtures/member-events.js';
import { testPki, type Pki } from '../fixtures/pki.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

describe('cluster: who is told of whom', function () {
  const systems: ClusterSystem[] = [];
  let pki: Pki;
  let join: { host: string; port: number };
  let manager: ClusterSystem;
  let worker1: ClusterSystem;
  let worker2: ClusterSystem;
  let client: ClusterSystem;
  const start = async (name: string): Promise<ClusterSystem> => {
    const system = await ClusterSystem.start({ identity: pki.identity(name), join, messages: TEST_MESSAGES, log: silentLogger() });
    systems.push(system);
    await system.ready();
    return system;
  };
  const names = (system: ClusterSystem) => system.members().map((m) => `${m.node} ${m.status}`).sort();

  before(async function () {
    pki = testPki();
    systems.push((manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() })));
    join = { host: '127.0.0.1', port: manager.address!.port };
    worker1 = await start('worker-1');
    worker2 = await start('worker-2');
    await start('worker-3');
    spawnEcho(worker2);
    // The client's up reaches worker-1 after anything the manager told it of worker-2 and worker-3.
    const clientSeen = nextEvent(worker1, (e) => e.role === 'client' && e.status === 'up');
    client = await start('client-1');
    await clientSeen;
  });

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  it('a worker is not told of the other workers; it is told of the clients, and a client of every member', function () {
    expect(names(worker1)).to.deep.equal([`${client.node} up`, 'manager up', 'worker-1 up']);
    expect(names(client)).to.deep.equal([`${client.node} up`, 'manager up', 'worker-1 up', 'worker-2 up', 'worker-3 up']);
  });

  it('two workers that talk are told of each other; a watch between them fires node-down, and a query then fails at once', async function () {
    const echo2 = new ActorRef('worker-2', 'echo');
    const seen: unknown[] = [];
    let next: ((msg: unknown) => void) | undefined;
    const watcher = worker1.receiver((msg) => (seen.push(msg), next?.(msg)));
    const arrives = () => new Promise<unknown>((resolve) => (next = resolve));
    // worker-1 was never told of worker-2: it may be up, so the watch goes to the manager, which introduces the two.
    worker1.watch(watcher, echo2);
    const pong = await worker1.query<Pong>(echo2, (replyTo) => ({ type: 'ping', n: 1, replyTo }), 5000);
    expect(pong).to.deep.equal({ type: 'pong', n: 1, from: 'worker-2' });
    expect(worker1.membership.get('worker-2')?.status).to.equal('up');
    expect(worker2.membership.get('worker-1')?.status).to.equal('up');
    expect(worker2.membership.get('worker-3')).to.equal(undefined);

    let fired = arrives();
    await worker2.shutdown();
    expect(await fired).to.deep.equal({ type: 'terminated', ref: echo2, reason: 'node-down' });
    expect(worker1.membership.get('worker-2')?.status).to.equal('down');
    fired = arrives();
    worker1.watch(watcher, echo2);
    expect(await fired).to.deep.equal({ type: 'terminated', ref: echo2, reason: 'node-down' });
    const err = await worker1.query(echo2, (replyTo) => ({ type: 'ping', n: 2, replyTo }), 5000).then(
      () => expect.fail('a query to a down worker was answered'),
      (e: Error & { code?: string }) => e,
    );
    expect(err.code).to.equal('TROUPE_E_NODE_DOWN');
    expect(seen).to.have.length(2);
  });

  it('a watch on a worker it was never told of that is not there: node-down from the manager at once', async function () {
    const target = new ActorRef('worker-9', 'echo');
    const fired = new Promise<unknown>((resolve) => worker1.watch(worker1.receiver(resolve), target));
    expect(await fired).to.deep.equal({ type: 'terminated', ref: target, reason: 'node-down' });
  });

  it('a worker restarted: a client is told it left (held up to ANNOUNCE_BATCH_MS), then of its new incarnation, in that order', async function () {
    const old = systems.find((s) => s.node === 'worker-3')!;
    const events: string[] = [];
    client.on('member', (e: MemberEvent) => void (e.node === 'worker-3' && events.push(`${e.status} ${e.incarnation}`)));
    const gone = nextEvent(manager, (e) => e.node === 'worker-3' && e.status === 'down');
    await old.shutdown();
    await gone;
    const back = nextEvent(client, (e) => e.node === 'worker-3' && e.status === 'up');
    const fresh = await start('worker-3');
    await back;
    expect(events).to.deep.equal([`unreachable ${old.incarnation}`, `down ${old.incarnation}`, `up ${fresh.incarnation}`]);
    expect(worker1.membership.get('worker-3')).to.equal(undefined);
  });
});
