/**
 * Messages between two workers pass through the manager, which stamps who sent them: the receiver
 * checks them against the sender's role, and a refusal is the sender's fault, never the manager's link.
 */
import { expect } from 'chai';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';
import { spawnEcho } from '../fixtures/test-actors.js';

describe('forwarding between workers through the manager', function () {
  const systems: ClusterSystem[] = [];
  let worker1: ClusterSystem;
  let worker2: ClusterSystem;
  let client: ClusterSystem;
  const echo2 = new ActorRef('worker-2', 'echo');

  before(async function () {
    const pki = testPki();
    // The manager does not know the test messages: it passes them on, and each receiver checks them.
    const manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger(), settings: { transport: { maxStrikes: 3 } } });
    systems.push(manager);
    const join = { host: '127.0.0.1', port: manager.address!.port };
    const settings = { transport: { maxStrikes: 3 } };
    worker1 = await ClusterSystem.start({ identity: pki.identity('worker-1'), join, messages: TEST_MESSAGES, log: silentLogger(), settings });
    worker2 = await ClusterSystem.start({ identity: pki.identity('worker-2'), join, messages: TEST_MESSAGES, log: silentLogger(), settings });
    client = await ClusterSystem.start({ identity: pki.identity('client-1'), join, messages: TEST_MESSAGES, log: silentLogger(), settings });
    systems.push(worker1, worker2, client);
    await Promise.all([worker1.ready(), worker2.ready(), client.ready()]);
    spawnEcho(worker2);
  });

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  it('a message only managers and clients may send, from a worker: refused at the receiver, and no link is cut', async function () {
    for (let i = 0; i < 10; i++) {
      const err = await worker1.query(echo2, (replyTo) => ({ type: 'privileged', replyTo }), 5000).then(
        () => expect.fail('a worker was allowed to send "privileged"'),
        (e: Error & { code?: string }) => e,
      );
      expect(err.code).to.equal('TROUPE_E_FORBIDDEN');
      expect(err.message).to.equal('a worker may not send "privileged"');
    }
    // Ten refusals, three strikes allowed: worker-2's link to the manager is still up, and both serve.
    expect(worker2.membership.get('manager')?.status).to.equal('up');
    const pong = await worker1.query<Pong>(echo2, (replyTo) => ({ type: 'ping', n: 7, replyTo }), 5000);
    expect(pong).to.deep.equal({ type: 'pong', n: 7, from: 'worker-2' });
  });

  it('the same message from a client is delivered: the receiver judges by the original sender', async function () {
    const pong = await client.query<Pong>(echo2, (replyTo) => ({ type: 'privileged', replyTo }), 5000);
    expect(pong).to.deep.equal({ type: 'pong', n: -1, from: 'worker-2' });
  });

  it('query reply refs cannot be guessed by another node', async function () {
    const seen = new Set<string>();
    const paths: string[] = [];
    await Promise.all(
      [1, 2, 3].map(() =>
        worker1.query<Pong>(echo2, (replyTo) => {
          paths.push(replyTo.path);
          return { type: 'ping', n: 1, replyTo };
        }),
      ),
    );
    for (const p of paths) {
      expect(p).to.match(/^\$q\/\d+\.[0-9a-f]{12}$/);
      seen.add(p.split('.')[1]!);
    }
    expect(seen.size).to.equal(3);
  });
});
