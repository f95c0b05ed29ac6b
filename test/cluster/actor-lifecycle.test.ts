/**
 * Stopping an actor and spawning another under the same name in the same turn: the new one is
 * reachable from its node and from others, and only the old one's watchers hear of an end.
 */
import { expect } from 'chai';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';
import { spawnEcho } from '../fixtures/test-actors.js';
import { TEST_MESSAGES, type Pong } from '../fixtures/test-protocol.js';

describe('an actor stopped and respawned under its name in one turn', function () {
  const systems: ClusterSystem[] = [];
  let manager: ClusterSystem;
  let worker: ClusterSystem;

  before(async function () {
    const pki = testPki();
    systems.push((manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: TEST_MESSAGES, log: silentLogger() })));
    systems.push((worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port: manager.address!.port }, messages: TEST_MESSAGES, log: silentLogger() })));
    await worker.ready();
  });

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  it('the new actor answers, locally and remotely; the old one\'s watcher hears "stopped" once, the new one\'s nothing', async function () {
    const old = spawnEcho(worker);
    const heard: { who: string; msg: unknown }[] = [];
    const oldWatcher = worker.receiver((msg) => heard.push({ who: 'old', msg }));
    worker.watch(oldWatcher, old);

    worker.stop(old);
    const fresh = spawnEcho(worker);
    const newWatcher = worker.receiver((msg) => heard.push({ who: 'new', msg }));
    worker.watch(newWatcher, fresh);

    expect(fresh.equals(old)).to.equal(true);
    expect(worker.isAlive(fresh)).to.equal(true);
    const local = await worker.query<Pong>(fresh, (replyTo) => ({ type: 'ping', n: 1, replyTo }), 5000);
    const remote = await manager.query<Pong>(fresh, (replyTo) => ({ type: 'ping', n: 2, replyTo }), 5000);
    expect([local, remote]).to.deep.equal([
      { type: 'pong', n: 1, from: 'worker-1' },
      { type: 'pong', n: 2, from: 'worker-1' },
    ]);
    // nact's own afterStop for the old actor has run by now (a turn after stop); the books are unchanged by it.
    await new Promise((resolve) => setImmediate(resolve));
    expect(worker.isAlive(fresh)).to.equal(true);
    expect(heard).to.deep.equal([{ who: 'old', msg: { type: 'terminated', ref: old, reason: 'stopped' } }]);

    worker.stop(fresh);
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard.map((h) => h.who)).to.deep.equal(['old', 'new']);
  });
});
