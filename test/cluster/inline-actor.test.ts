/**
 * An actor spawned `inline` (spawn-options.ts, nact-drain.ts): a message sent on its node that finds
 * it idle outside every actor's turn is handled before `dispatch` returns; one from another node
 * waits for a turn, as one sent inside another actor's turn or behind turns other actors wait for
 * does; its mailbox keeps the order.
 */
import { expect } from 'chai';
import type { ActorRef } from '../../protocols/actor-ref.js';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';
import { TEST_MESSAGES, type Note } from '../fixtures/test-protocol.js';

describe('an inline actor', function () {
  const systems: ClusterSystem[] = [];
  let manager: ClusterSystem;
  let worker: ClusterSystem;
  /** What the actors did, in order. */
  const log: string[] = [];
  let inline: ActorRef;
  /** Called once the actor has logged its stack. */
  let stackLogged: (() => void) | undefined;

  before(async function () {
    const pki = testPki();
    systems.push((manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: TEST_MESSAGES, log: silentLogger() })));
    systems.push((worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port: manager.address!.port }, messages: TEST_MESSAGES, log: silentLogger() })));
    await worker.ready();
    inline = manager.spawn<null, Note>(
      (state, msg, ctx) => {
        if (msg.text === 'throw') throw new Error('a behaviour that throws');
        if (msg.text === 'stack') {
          const limit = Error.stackTraceLimit;
          Error.stackTraceLimit = Infinity;
          const stack = new Error().stack ?? '';
          Error.stackTraceLimit = limit;
          log.push(`stack from ${ctx.from ?? 'here'}: ${stack.includes('processImmediate') ? 'a turn of its own' : 'the caller\'s turn'}`);
          stackLogged?.();
          return state;
        }
        log.push(msg.text);
        // Messages to itself while busy: after this one, in the order sent.
        if (msg.text === 'first') for (const text of ['second', 'third']) ctx.cluster.dispatch(ctx.ref, { type: 'note', text } satisfies Note);
        return state;
      },
      'inline',
      { initialState: null, onCrash: 'resume', inline: true },
    );
  });

  beforeEach(() => (log.length = 0));

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  it('handles a message dispatched outside any turn before dispatch returns; what it sends itself meanwhile follows, in order', function () {
    manager.dispatch(inline, { type: 'note', text: 'first' } satisfies Note);
    log.push('dispatch returned');
    expect(log).to.deep.equal(['first', 'second', 'third', 'dispatch returned']);
  });

  it('a message from another node still waits for a turn of its own (what one poll phase reads is handled together)', async function () {
    const done = new Promise<void>((resolve) => (stackLogged = resolve));
    worker.dispatch(inline, { type: 'note', text: 'stack' } satisfies Note);
    await done;
    expect(log).to.deep.equal(['stack from worker-1: a turn of its own']);
  });

  it("waits for another actor's turn to end when sent from inside it", async function () {
    const outer = manager.spawn<null, Note>((state, msg, ctx) => {
      ctx.cluster.dispatch(inline, { type: 'note', text: `from ${msg.text}` } satisfies Note);
      log.push(`${msg.text} done`);
      return state;
    }, 'outer');
    manager.dispatch(outer, { type: 'note', text: 'outer' } satisfies Note);
    expect(log).to.deep.equal([]);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).to.deep.equal(['outer done', 'from outer']);
    manager.stop(outer);
  });

  it('waits behind the turns other actors already wait for: it never overtakes what was sent to them before', async function () {
    const other = manager.spawn<null, Note>((state, msg) => (log.push(msg.text), state), 'other');
    manager.dispatch(other, { type: 'note', text: 'to the other, first' } satisfies Note);
    manager.dispatch(inline, { type: 'note', text: 'to the inline one, after' } satisfies Note);
    expect(log).to.deep.equal([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).to.deep.equal(['to the other, first', 'to the inline one, after']);
    // Once nothing waits, it is inline again.
    manager.dispatch(inline, { type: 'note', text: 'alone' } satisfies Note);
    expect(log.at(-1)).to.equal('alone');
    manager.stop(other);
  });

  it('a throw in its behaviour goes to its crash policy, not to the dispatcher; the next message is handled', async function () {
    expect(() => manager.dispatch(inline, { type: 'note', text: 'throw' } satisfies Note)).not.to.throw();
    manager.dispatch(inline, { type: 'note', text: 'after the throw' } satisfies Note);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).to.deep.equal(['after the throw']);
  });
});
