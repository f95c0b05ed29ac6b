/**
 * The membership state machine. Timers are never waited on with a sleep: a test with a delay
 * awaits the `member` event the timer emits.
 */
import { once } from 'node:events';
import { expect } from 'chai';
import { Membership, type Member, type MemberIdentity } from '../../src/cluster/membership.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';

const A1: MemberIdentity = { node: 'worker-1', role: 'worker', incarnation: 'inc-1', meta: { zone: 'a' } };
const A2: MemberIdentity = { ...A1, incarnation: 'inc-2' };
const B1: MemberIdentity = { node: 'worker-2', role: 'worker', incarnation: 'b-1', meta: {} };

/** Each event as "node:incarnation:status", in the order emitted. */
function record(m: Membership): string[] {
  const seen: string[] = [];
  m.on('member', (e: MemberEvent) => seen.push(`${e.node}:${e.incarnation}:${e.status}`));
  return seen;
}

/** Resolves with the next event that matches. */
async function nextEvent(m: Membership, match: (e: MemberEvent) => boolean): Promise<MemberEvent> {
  for (;;) {
    const [e] = (await once(m, 'member')) as [MemberEvent];
    if (match(e)) return e;
  }
}

describe('unit: cluster membership', () => {
  let m: Membership;
  let events: string[];

  beforeEach(() => {
    m = new Membership();
    events = record(m);
  });

  afterEach(() => m.clear());

  it('up: a new node is up, with one event carrying its identity, and the member with its time', () => {
    const got: [MemberEvent, Member][] = [];
    m.on('member', (e: MemberEvent, member: Member) => got.push([e, member]));
    const before = Date.now();
    m.up(A1);
    expect(got).to.have.length(1);
    const [event, member] = got[0]!;
    expect(event).to.deep.equal({ type: 'member', node: 'worker-1', role: 'worker', incarnation: 'inc-1', status: 'up', meta: { zone: 'a' } });
    expect(member).to.include({ node: 'worker-1', status: 'up', incarnation: 'inc-1' });
    expect(member.since).to.be.within(before, Date.now());
    expect(m.get('worker-1')).to.deep.equal(member);
    expect(m.isUp('worker-1')).to.equal(true);
    expect(m.isAlive('worker-1')).to.equal(true);
  });

  it('up again with the same incarnation changes nothing and emits nothing', () => {
    m.up(A1);
    m.up(A1);
    expect(events).to.deep.equal(['worker-1:inc-1:up']);
    expect(m.list()).to.have.length(1);
  });

  it('an unknown node is neither up nor alive', () => {
    expect(m.get('nobody')).to.equal(undefined);
    expect(m.isUp('nobody')).to.equal(false);
    expect(m.isAlive('nobody')).to.equal(false);
  });

  it('unreachable with downAfterMs 0: unreachable then down, at once, in that order', () => {
    m.up(A1);
    m.unreachable('worker-1', 'inc-1', 0);
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:unreachable', 'worker-1:inc-1:down']);
    expect(m.get('worker-1')!.status).to.equal('down');
    expect(m.isAlive('worker-1')).to.equal(false);
  });

  it('unreachable with a delay: alive but not up, then down when the delay has passed', async () => {
    m.up(A1);
    const down = nextEvent(m, (e) => e.status === 'down');
    const started = Date.now();
    m.unreachable('worker-1', 'inc-1', 15);
    expect(m.get('worker-1')!.status).to.equal('unreachable');
    expect(m.isUp('worker-1')).to.equal(false);
    expect(m.isAlive('worker-1')).to.equal(true);
    const event = await down;
    expect(Date.now() - started).to.be.at.least(13);
    expect(event).to.include({ node: 'worker-1', incarnation: 'inc-1', status: 'down' });
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:unreachable', 'worker-1:inc-1:down']);
  });

  it('the same incarnation back before the delay: up again, and the pending down never fires', async () => {
    m.up(A1);
    m.up(B1);
    m.unreachable('worker-1', 'inc-1', 10);
    m.up(A1);
    // A later timer, on another node: when it has fired, worker-1's would have fired before it.
    const laterDown = nextEvent(m, (e) => e.node === 'worker-2' && e.status === 'down');
    m.unreachable('worker-2', 'b-1', 30);
    await laterDown;
    expect(events).to.deep.equal([
      'worker-1:inc-1:up',
      'worker-2:b-1:up',
      'worker-1:inc-1:unreachable',
      'worker-1:inc-1:up',
      'worker-2:b-1:unreachable',
      'worker-2:b-1:down',
    ]);
    expect(m.isUp('worker-1')).to.equal(true);
  });

  it('unreachable is ignored for an unknown node, another incarnation, or a node not up', () => {
    m.unreachable('nobody', 'x', 0);
    m.up(A1);
    m.unreachable('worker-1', 'inc-other', 0);
    expect(m.isUp('worker-1')).to.equal(true);
    m.unreachable('worker-1', 'inc-1', 60_000);
    m.unreachable('worker-1', 'inc-1', 0);
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:unreachable']);
    m.down('worker-1');
    m.unreachable('worker-1', 'inc-1', 0);
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:unreachable', 'worker-1:inc-1:down']);
  });

  it('a new incarnation downs the old one first, then is up', () => {
    m.up(A1);
    m.up(A2);
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:down', 'worker-1:inc-2:up']);
    expect(m.get('worker-1')).to.include({ incarnation: 'inc-2', status: 'up' });
  });

  it('a new incarnation while the old is unreachable: the old is downed once, and its timer cancelled', async () => {
    m.up(A1);
    m.up(B1);
    m.unreachable('worker-1', 'inc-1', 10);
    m.up(A2);
    const laterDown = nextEvent(m, (e) => e.node === 'worker-2' && e.status === 'down');
    m.unreachable('worker-2', 'b-1', 30);
    await laterDown;
    expect(events).to.deep.equal([
      'worker-1:inc-1:up',
      'worker-2:b-1:up',
      'worker-1:inc-1:unreachable',
      'worker-1:inc-1:down',
      'worker-1:inc-2:up',
      'worker-2:b-1:unreachable',
      'worker-2:b-1:down',
    ]);
    expect(m.get('worker-1')).to.include({ incarnation: 'inc-2', status: 'up' });
  });

  it('a new incarnation after the old is down: no second down, just up', () => {
    m.up(A1);
    m.down('worker-1');
    m.up(A2);
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:down', 'worker-1:inc-2:up']);
  });

  it('the same incarnation back after down simply joins again (no tombstone)', () => {
    m.up(A1);
    m.down('worker-1', 'inc-1');
    m.up(A1);
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:down', 'worker-1:inc-1:up']);
    expect(m.isUp('worker-1')).to.equal(true);
  });

  it('down: once only, and not for another incarnation or an unknown node', () => {
    m.up(A1);
    m.down('worker-1', 'inc-other');
    m.down('nobody');
    expect(m.isUp('worker-1')).to.equal(true);
    m.down('worker-1');
    m.down('worker-1');
    m.down('worker-1', 'inc-1');
    expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:down']);
  });

  it('down cancels a pending down timer, so it is not emitted twice', async () => {
    m.up(A1);
    m.up(B1);
    m.unreachable('worker-1', 'inc-1', 10);
    m.down('worker-1');
    const laterDown = nextEvent(m, (e) => e.node === 'worker-2' && e.status === 'down');
    m.unreachable('worker-2', 'b-1', 30);
    await laterDown;
    expect(events.filter((e) => e === 'worker-1:inc-1:down')).to.have.length(1);
  });

  it('list holds every node known, including the down ones', () => {
    m.up(A1);
    m.up(B1);
    m.down('worker-2');
    expect(m.list().map((x) => `${x.node}:${x.status}`)).to.deep.equal(['worker-1:up', 'worker-2:down']);
  });

  describe('apply (statuses learned from the manager)', () => {
    it('up, unreachable, down for a known incarnation', () => {
      m.apply({ ...A1, status: 'up' });
      m.apply({ ...A1, status: 'unreachable' });
      expect(m.get('worker-1')!.status).to.equal('unreachable');
      m.apply({ ...A1, status: 'up' });
      m.apply({ ...A1, status: 'down' });
      expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:unreachable', 'worker-1:inc-1:up', 'worker-1:inc-1:down']);
    });

    it('an up with a new incarnation downs the old', () => {
      m.apply({ ...A1, status: 'up' });
      m.apply({ ...A2, status: 'up' });
      expect(events).to.deep.equal(['worker-1:inc-1:up', 'worker-1:inc-1:down', 'worker-1:inc-2:up']);
    });

    it('unreachable or down for another incarnation is ignored', () => {
      m.apply({ ...A2, status: 'up' });
      m.apply({ ...A1, status: 'unreachable' });
      m.apply({ ...A1, status: 'down' });
      expect(events).to.deep.equal(['worker-1:inc-2:up']);
      expect(m.isUp('worker-1')).to.equal(true);
    });

    it('unreachable for a node not known is ignored; down for one is recorded without an event', () => {
      m.apply({ ...A1, status: 'unreachable' });
      expect(m.get('worker-1')).to.equal(undefined);
      m.apply({ ...B1, status: 'down' });
      expect(events).to.deep.equal([]);
      expect(m.get('worker-2')).to.include({ node: 'worker-2', incarnation: 'b-1', status: 'down' });
      expect(m.isAlive('worker-2')).to.equal(false);
      m.apply({ ...B1, status: 'up' });
      expect(events).to.deep.equal(['worker-2:b-1:up']);
    });
  });
  describe('clients: one member per session, forgotten once down', () => {
    const C1: MemberIdentity = { node: 'client-1~0a1b2c3d4e5f', role: 'client', incarnation: 'c-1', meta: {} };

    it('a down client is told once, then gone from the table; a worker stays as down', () => {
      m.up(C1);
      m.up(B1);
      m.down(C1.node);
      m.down(B1.node);
      expect(events).to.deep.equal(['client-1~0a1b2c3d4e5f:c-1:up', 'worker-2:b-1:up', 'client-1~0a1b2c3d4e5f:c-1:down', 'worker-2:b-1:down']);
      expect(m.get(C1.node)).to.equal(undefined);
      expect(m.list().map((x) => `${x.node}:${x.status}`)).to.deep.equal(['worker-2:down']);
      expect(m.isAlive(C1.node)).to.equal(false);
    });

    it('down for an unknown client learned from the manager is not recorded; the same session back is up again', () => {
      m.apply({ ...C1, status: 'down' });
      expect(m.get(C1.node)).to.equal(undefined);
      m.up(C1);
      m.unreachable(C1.node, C1.incarnation, 0);
      expect(m.get(C1.node)).to.equal(undefined);
      m.up(C1);
      expect(m.isUp(C1.node)).to.equal(true);
      expect(events.slice(-1)).to.deep.equal(['client-1~0a1b2c3d4e5f:c-1:up']);
    });
  });
});
