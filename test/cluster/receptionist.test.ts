/**
 * The registry publishes changes at the next event-loop turn (setImmediate); `nextTurn` awaits a
 * setImmediate queued after the registry's, so it runs once the listings are out: no sleeps.
 */
import { expect } from 'chai';
import { LocalRegistrations, Registry } from '../../src/cluster/receptionist.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import type { Listing } from '../../protocols/cluster-messages.js';

const ref = (node: string, path: string): ActorRef => new ActorRef(node, path);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What each subscriber received, as "subscriber <- key: entry, entry". */
function sinkLog(): { sent: string[]; sink: (to: ActorRef, listing: Listing) => void } {
  const sent: string[] = [];
  return {
    sent,
    sink(to, listing) {
      expect(listing.type).to.equal('listing');
      sent.push(`${to} <- ${listing.key}: ${listing.entries.map((e) => `${e.ref}${JSON.stringify(e.meta)}`).join(', ')}`);
    },
  };
}

describe('unit: cluster receptionist (Registry)', () => {
  let log: ReturnType<typeof sinkLog>;
  let registry: Registry;

  beforeEach(() => {
    log = sinkLog();
    registry = new Registry(log.sink);
  });

  it('listing holds every entry checked in under a key, with its ref and meta', () => {
    registry.checkIn('worker', ref('worker-1', 'w'), { slots: 2 });
    registry.checkIn('worker', ref('worker-2', 'w'), {});
    registry.checkIn('other', ref('worker-1', 'x'), {});
    const listing = registry.listing('worker');
    expect(listing).to.deep.equal({
      type: 'listing',
      key: 'worker',
      entries: [
        { ref: ref('worker-1', 'w'), meta: { slots: 2 } },
        { ref: ref('worker-2', 'w'), meta: {} },
      ],
    });
    expect(registry.listing('nothing')).to.deep.equal({ type: 'listing', key: 'nothing', entries: [] });
    expect(registry.keys()).to.deep.equal(['worker', 'other']);
  });

  it('checking in the same ref again replaces its meta, not adds an entry', () => {
    registry.checkIn('worker', ref('worker-1', 'w'), { v: 1 });
    registry.checkIn('worker', ref('worker-1', 'w'), { v: 2 });
    expect(registry.listing('worker').entries).to.deep.equal([{ ref: ref('worker-1', 'w'), meta: { v: 2 } }]);
  });

  it('a subscriber gets the current listing at once', () => {
    registry.checkIn('worker', ref('worker-1', 'w'), {});
    log.sent.length = 0;
    registry.subscribe('worker', ref('manager', 'pool'));
    expect(log.sent).to.deep.equal(['manager/pool <- worker: worker-1/w{}']);
  });

  it('changes of one turn are published once, at the next turn, as the whole listing', async () => {
    registry.subscribe('worker', ref('manager', 'pool'));
    registry.subscribe('worker', ref('client-1', 'ui'));
    log.sent.length = 0;
    registry.checkIn('worker', ref('worker-1', 'w'), {});
    registry.checkIn('worker', ref('worker-2', 'w'), {});
    registry.checkOut('worker', ref('worker-1', 'w'));
    expect(log.sent).to.deep.equal([]);
    await nextTurn();
    expect(log.sent).to.deep.equal(['manager/pool <- worker: worker-2/w{}', 'client-1/ui <- worker: worker-2/w{}']);
    await nextTurn();
    expect(log.sent).to.have.length(2);
  });

  it('only the subscribers of the changed key hear of it', async () => {
    registry.subscribe('worker', ref('manager', 'pool'));
    registry.subscribe('other', ref('manager', 'o'));
    log.sent.length = 0;
    registry.checkIn('other', ref('worker-1', 'x'), {});
    await nextTurn();
    expect(log.sent).to.deep.equal(['manager/o <- other: worker-1/x{}']);
  });

  it('checkOut of a ref that is not checked in publishes nothing', async () => {
    registry.subscribe('worker', ref('manager', 'pool'));
    log.sent.length = 0;
    registry.checkOut('worker', ref('worker-1', 'w'));
    registry.checkOut('nothing', ref('worker-1', 'w'));
    await nextTurn();
    expect(log.sent).to.deep.equal([]);
  });

  it('an unsubscribed actor gets no more listings', async () => {
    registry.subscribe('worker', ref('manager', 'pool'));
    registry.unsubscribe('worker', ref('manager', 'pool'));
    registry.unsubscribe('nothing', ref('manager', 'pool'));
    log.sent.length = 0;
    registry.checkIn('worker', ref('worker-1', 'w'), {});
    await nextTurn();
    expect(log.sent).to.deep.equal([]);
  });

  it('removeRef takes a stopped actor out of every key and every subscription', async () => {
    const w = ref('worker-1', 'w');
    registry.checkIn('a', w, {});
    registry.checkIn('b', w, {});
    registry.checkIn('b', ref('worker-2', 'w'), {});
    registry.subscribe('a', w);
    registry.subscribe('b', ref('manager', 'pool'));
    await nextTurn();
    log.sent.length = 0;
    registry.removeRef(new ActorRef('worker-1', 'w'));
    expect(registry.listing('a').entries).to.deep.equal([]);
    expect(registry.listing('b').entries).to.deep.equal([{ ref: ref('worker-2', 'w'), meta: {} }]);
    await nextTurn();
    expect(log.sent).to.deep.equal(['manager/pool <- b: worker-2/w{}']);
  });

  it('removeNode takes every entry and subscriber of a node that went down, published once per key', async () => {
    registry.checkIn('worker', ref('worker-1', 'a'), {});
    registry.checkIn('worker', ref('worker-1', 'b'), {});
    registry.checkIn('worker', ref('worker-2', 'a'), {});
    registry.checkIn('other', ref('worker-1', 'c'), {});
    registry.subscribe('worker', ref('manager', 'pool'));
    registry.subscribe('worker', ref('worker-1', 'watcher'));
    registry.subscribe('other', ref('manager', 'o'));
    await nextTurn();
    log.sent.length = 0;
    registry.removeNode('worker-1');
    expect(registry.listing('worker').entries).to.deep.equal([{ ref: ref('worker-2', 'a'), meta: {} }]);
    expect(registry.listing('other').entries).to.deep.equal([]);
    await nextTurn();
    expect(log.sent).to.deep.equal(['manager/pool <- worker: worker-2/a{}', 'manager/o <- other: ']);
  });

  it('removeNode after check-outs, removeRef and a rejoin takes exactly what the node has checked in then', async () => {
    registry.checkIn('worker', ref('worker-1', 'a'), {});
    registry.checkIn('worker', ref('worker-1', 'b'), {});
    registry.checkIn('other', ref('worker-1', 'c'), {});
    registry.checkIn('worker', ref('worker-2', 'a'), {});
    registry.checkOut('worker', ref('worker-1', 'a'));
    registry.removeRef(ref('worker-1', 'c'));
    registry.checkIn('other', ref('worker-1', 'a'), { again: true });
    registry.removeNode('worker-1');
    expect(registry.listing('worker').entries).to.deep.equal([{ ref: ref('worker-2', 'a'), meta: {} }]);
    expect(registry.listing('other').entries).to.deep.equal([]);
    // The node back (a new incarnation) checks in again; its next down takes that too.
    registry.checkIn('worker', ref('worker-1', 'a'), {});
    registry.removeNode('worker-2');
    expect(registry.listing('worker').entries).to.deep.equal([{ ref: ref('worker-1', 'a'), meta: {} }]);
    registry.removeNode('worker-1');
    expect(registry.listing('worker').entries).to.deep.equal([]);
  });

  it('a node going down with nothing checked in publishes nothing', async () => {
    registry.checkIn('worker', ref('worker-2', 'a'), {});
    registry.subscribe('worker', ref('manager', 'pool'));
    await nextTurn();
    log.sent.length = 0;
    registry.removeNode('worker-1');
    await nextTurn();
    expect(log.sent).to.deep.equal([]);
  });
});

describe('unit: cluster receptionist (LocalRegistrations)', () => {
  it('id tells key and ref apart', () => {
    expect(LocalRegistrations.id('k', ref('n', 'a'))).to.equal('k\u0000n/a');
    expect(LocalRegistrations.id('k', ref('n', 'a'))).to.not.equal(LocalRegistrations.id('k2', ref('n', 'a')));
  });

  it('takeOf returns and forgets what the stopped actor registered, and nothing of others', () => {
    const local = new LocalRegistrations();
    const a = ref('worker-1', 'a');
    const child = ref('worker-1', 'a/child');
    local.checkIns.set(LocalRegistrations.id('k1', a), { key: 'k1', ref: a, meta: { x: 1 } });
    local.checkIns.set(LocalRegistrations.id('k2', a), { key: 'k2', ref: a, meta: {} });
    local.checkIns.set(LocalRegistrations.id('k1', child), { key: 'k1', ref: child, meta: {} });
    local.subscriptions.set(LocalRegistrations.id('k3', a), { key: 'k3', subscriber: a });
    local.subscriptions.set(LocalRegistrations.id('k3', child), { key: 'k3', subscriber: child });

    const taken = local.takeOf('a');
    expect(taken.checkIns.map((c) => `${c.key}:${c.ref}`)).to.deep.equal(['k1:worker-1/a', 'k2:worker-1/a']);
    expect(taken.subscriptions.map((s) => `${s.key}:${s.subscriber}`)).to.deep.equal(['k3:worker-1/a']);
    expect([...local.checkIns.keys()]).to.deep.equal([LocalRegistrations.id('k1', child)]);
    expect([...local.subscriptions.keys()]).to.deep.equal([LocalRegistrations.id('k3', child)]);
    expect(local.takeOf('a')).to.deep.equal({ checkIns: [], subscriptions: [] });
  });
});

describe('unit: reserved receptionist keys', () => {
  it('worker and russula are for workers only; other keys are open to every role', () => {
    const registry = new Registry(() => {});
    expect(registry.refusal('worker', 'worker')).to.equal(undefined);
    expect(registry.refusal('russula', 'worker')).to.equal(undefined);
    expect(registry.refusal('worker', 'client')).to.equal('the receptionist key "worker" is reserved for workers; a client may not check in under it');
    expect(registry.refusal('russula', 'client')).to.equal('the receptionist key "russula" is reserved for workers; a client may not check in under it');
    expect(registry.refusal('worker', 'manager')).to.match(/reserved for workers; a manager may not/);
    expect(registry.refusal('listing-test', 'client')).to.equal(undefined);
  });

  it('takes its table of reserved keys from its maker', () => {
    const registry = new Registry(() => {}, new Map([['gpu-pool', ['worker', 'manager'] as const]]));
    expect(registry.refusal('gpu-pool', 'manager')).to.equal(undefined);
    expect(registry.refusal('gpu-pool', 'client')).to.equal('the receptionist key "gpu-pool" is reserved for workers and managers; a client may not check in under it');
    expect(registry.refusal('worker', 'client')).to.equal(undefined);
  });
});

