/**
 * ClusterSystem.linkStats: what the transport counted on the link that carries messages to a node,
 * both ways, as framed for the wire; on a spoke, the hub link's.
 */
import { expect } from 'chai';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

describe('cluster: linkStats', function () {
  const systems: ClusterSystem[] = [];
  let manager: ClusterSystem;
  let worker1: ClusterSystem;
  let worker2: ClusterSystem;

  before(async function () {
    const pki = testPki();
    systems.push((manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: TEST_MESSAGES, log: silentLogger() })));
    const join = { host: '127.0.0.1', port: manager.address!.port };
    systems.push((worker1 = await ClusterSystem.start({ identity: pki.identity('worker-1'), join, messages: TEST_MESSAGES, log: silentLogger() })));
    systems.push((worker2 = await ClusterSystem.start({ identity: pki.identity('worker-2'), join, messages: TEST_MESSAGES, log: silentLogger() })));
    await Promise.all([worker1.ready(), worker2.ready()]);
    spawnEcho(worker2);
  });

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  it('counts each message and its bytes on both ends of the link, the same on both', async function () {
    const echo = new ActorRef('worker-2', 'echo');
    // One round trip first, so that whatever the join still had in flight has arrived.
    await manager.query<Pong>(echo, (replyTo) => ({ type: 'ping', n: 0, replyTo }), 5000);
    const before = { manager: manager.linkStats('worker-2')!, worker: worker2.linkStats('manager')! };
    for (let n = 1; n <= 20; n++) await manager.query<Pong>(echo, (replyTo) => ({ type: 'ping', n, replyTo }), 5000);
    const after = { manager: manager.linkStats('worker-2')!, worker: worker2.linkStats('manager')! };
    expect(after.manager.messagesOut - before.manager.messagesOut).to.equal(20);
    expect(after.manager.messagesIn - before.manager.messagesIn).to.equal(20);
    expect(after.worker.messagesIn - before.worker.messagesIn).to.equal(20);
    const sent = after.manager.bytesOut - before.manager.bytesOut;
    expect(sent).to.be.greaterThan(20 * 10);
    expect(after.worker.bytesIn - before.worker.bytesIn).to.equal(sent);
    expect(after.worker.bytesOut - before.worker.bytesOut).to.equal(after.manager.bytesIn - before.manager.bytesIn);
  });

  it('on a spoke, any node is reached through the hub: its link is the one counted', async function () {
    await worker1.query<Pong>(new ActorRef('worker-2', 'echo'), (replyTo) => ({ type: 'ping', n: 0, replyTo }), 5000);
    expect(worker1.linkStats('worker-2')).to.deep.equal(worker1.linkStats('manager'));
    expect(worker1.linkStats('manager')!.messagesIn).to.be.greaterThan(0);
  });

  it('no link, no stats', function () {
    expect(manager.linkStats('worker-9')).to.equal(undefined);
  });
});
