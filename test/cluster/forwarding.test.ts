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
    // Each is pushed as soon as it exists, so that a failure here still shuts down what started.
    systems.push((worker1 = await ClusterSystem.start({ identity: pki.identity('worker-1'), join, messages: TEST_MESSAGES, log: silentLogger(), settings })));
    systems.push((worker2 = await ClusterSystem.start({ identity: pki.identity('worker-2'), join, messages: TEST_MESSAGES, log: silentLogger(), settings })));
    systems.push((client = await ClusterSystem.start({ identity: pki.identity('client-1'), join, messages: TEST_MESSAGES, log: silentLogger(), settings })));
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

  describe('the cluster\'s own messages are believed only from who may state them', function () {
    // Forgers of their own: the manager counts their forgeries as strikes (three cut the link).
    let forger1: ClusterSystem;
    let forger2: ClusterSystem;

    before(async function () {
      const pki = testPki();
      const join = { host: '127.0.0.1', port: systems[0]!.address!.port };
      forger1 = await ClusterSystem.start({ identity: pki.identity('worker-3'), join, messages: TEST_MESSAGES, log: silentLogger() });
      systems.push(forger1);
      forger2 = await ClusterSystem.start({ identity: pki.identity('worker-4'), join, messages: TEST_MESSAGES, log: silentLogger() });
      systems.push(forger2);
      await Promise.all([forger1.ready(), forger2.ready()]);
    });

    /** Collects what arrives at a receiver on `system`; `until` resolves when a `note` with that text arrives. */
    function inbox(system: ClusterSystem) {
      const got: unknown[] = [];
      const waiting = new Map<string, () => void>();
      const ref = system.receiver((msg) => {
        got.push(msg);
        const text = (msg as { type?: string; text?: string }).type === 'note' ? (msg as { text: string }).text : undefined;
        if (text !== undefined) waiting.get(text)?.();
      });
      const until = (text: string) => new Promise<void>((resolve) => waiting.set(text, resolve));
      return { ref, got, until };
    }

    it('a worker reporting that an actor of another node stopped: refused, never delivered', async function () {
      const box = inbox(client);
      const marker = box.until('after');
      forger1.dispatch(box.ref, { type: 'terminated', ref: echo2, reason: 'node-down' });
      forger1.dispatch(box.ref, { type: 'listing', key: 'worker', entries: [] });
      // Same sender, same receiver: delivered in order, so the note comes after anything that got through.
      forger1.dispatch(box.ref, { type: 'note', text: 'after' });
      await marker;
      expect(box.got).to.deep.equal([{ type: 'note', text: 'after' }]);
      expect(client.membership.get('worker-2')?.status).to.equal('up');
    });

    it('sent straight to the manager, the same forgery is refused with TROUPE_E_FORBIDDEN, and its query fails at once', async function () {
      const manager = systems[0]!;
      const got: unknown[] = [];
      const box = manager.receiver((msg) => got.push(msg));
      const err = await forger2.query(box, () => ({ type: 'terminated', ref: echo2, reason: 'stopped' }), 5000).then(
        () => expect.fail('the forged message was answered'),
        (e: Error & { code?: string }) => e,
      );
      expect(err.code).to.equal('TROUPE_E_FORBIDDEN');
      expect(err.message).to.equal(`worker-4 may not report the termination of ${echo2}`);
      expect(got).to.deep.equal([]);
      manager.dropReceiver(box);
    });

    it('a node reporting the end of its own actor is believed: a watch fires, and watching again fires at once', async function () {
      const target = worker2.spawn((s: null) => s, 'short-lived', { initialState: null });
      const seen: unknown[] = [];
      let next: ((msg: unknown) => void) | undefined;
      const watcher = worker1.receiver((msg) => (seen.push(msg), next?.(msg)));
      const arrives = () => new Promise<unknown>((resolve) => (next = resolve));
      // Watch, and make sure worker-2 has registered it before the actor stops (a ping on the same path).
      worker1.watch(watcher, target);
      await worker1.query(echo2, (replyTo) => ({ type: 'ping', n: 1, replyTo }), 5000);
      let first = arrives();
      worker2.stop(target);
      expect(await first).to.deep.equal({ type: 'terminated', ref: target, reason: 'stopped' });
      first = arrives();
      worker1.watch(watcher, target);
      expect(await first).to.deep.equal({ type: 'terminated', ref: target, reason: 'stopped' });
      expect(seen).to.have.length(2);
    });
  });

  it('a message over the frame size limit: its query fails at once with TROUPE_E_FRAME_TOO_LARGE, and the link stays', async function () {
    this.timeout(60_000);
    const letters: string[] = [];
    const onLetter = (l: { code: string }) => letters.push(l.code);
    worker1.on('deadLetter', onLetter);
    const big = 'x'.repeat(17 * 1024 * 1024);
    const err = await worker1.query(echo2, (replyTo) => ({ type: 'ping', n: 1, replyTo, pad: big }), 60_000).then(
      () => expect.fail('an oversize message was answered'),
      (e: Error & { code?: string }) => e,
    );
    worker1.off('deadLetter', onLetter);
    expect(err.code).to.equal('TROUPE_E_FRAME_TOO_LARGE');
    expect(err.message).to.match(/^a "ping" message to worker-2\/echo is \d+ bytes encoded, over the frame size limit of 16777216$/);
    expect(letters).to.deep.equal(['TROUPE_E_FRAME_TOO_LARGE']);
    const pong = await worker1.query<Pong>(echo2, (replyTo) => ({ type: 'ping', n: 8, replyTo }), 5000);
    expect(pong).to.deep.equal({ type: 'pong', n: 8, from: 'worker-2' });
  });
});
