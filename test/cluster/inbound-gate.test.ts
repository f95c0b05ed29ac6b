/**
 * The inbound gate on its own: envelopes as a connection hands them over (already checked against
 * the wire schema), from a peer of a given name and role, into a gate on a manager or on a worker.
 * The host records what the gate lets through; the link records what it refuses. The end-to-end
 * cases (real TLS peers, strikes closing a connection) are in bad-input, forwarding and
 * peer-limits.
 */
import { expect } from 'chai';
import { ActorRef } from '../../protocols/actor-ref.js';
import { CLUSTER_MESSAGES } from '../../protocols/cluster-messages.js';
import { MessageCatalog } from '../../protocols/message-catalog.js';
import { checkInRefusal, WORKER_KEY } from '../../protocols/receptionist-keys.js';
import type { Role } from '../../protocols/roles.js';
import type { Envelope } from '../../protocols/wire.js';
import { ErrorCodes } from '../../src/errors.js';
import { InboundGate, remoteSender, senderNode, type GateHost, type InboundLink } from '../../src/cluster/inbound-gate.js';
import { NO_SENDER } from '../../src/cluster/nact-drain.js';
import { silentLogger } from '../../src/log.js';
import { TEST_MESSAGES } from '../fixtures/test-protocol.js';

type Call = [string, ...unknown[]];

/** A gate on `node` (the manager, or a worker whose manager is `manager`), its host's calls recorded. */
function gateOn(node: string, opts: { isManager: boolean; members?: Record<string, Role> }) {
  const calls: Call[] = [];
  const host: GateHost = {
    node,
    catalog: new MessageCatalog([...CLUSTER_MESSAGES, ...TEST_MESSAGES]),
    log: silentLogger(),
    isManager: opts.isManager,
    manager: opts.isManager ? node : 'manager',
    member: (name) => (opts.members?.[name] ? { node: name, role: opts.members[name] } : undefined),
    checkInRefusal: (key, role) => (opts.isManager ? checkInRefusal(key, role) : undefined),
    deliver: (to, msg, q, origin) => void calls.push(['deliver', to.toString(), msg, q?.toString(), origin]),
    relay: (envelope, to) => void calls.push(['relay', envelope, to]),
    failQuery: (path, code, reason) => void calls.push(['failQuery', path, code, reason]),
    undeliverable: (q, code, reason) => void calls.push(['undeliverable', q.toString(), code, reason]),
    applyMember: (envelope) => void calls.push(['member', envelope.node]),
    applyWatch: (envelope) => void calls.push([envelope.t, envelope.watcher.toString(), envelope.target.toString()]),
    applyRegistry: (envelope) => void calls.push(['registry', envelope.t]),
  };
  return { gate: new InboundGate(host), calls };
}

/** The link from `node` (of `role`): every refusal, in the order made, into the same call log. */
function linkFrom(node: string, role: Role, calls: Call[]): InboundLink {
  return { peer: { node, role }, refuse: (code, reason) => void calls.push(['refuse', code, reason]) };
}

const ref = (node: string, path: string) => new ActorRef(node, path);
const send = (to: ActorRef, msg: unknown, extra: { q?: ActorRef; from?: string } = {}): Envelope => ({ t: 'send', to, msg, ...extra });
const ping = (replyTo: ActorRef) => ({ type: 'ping', n: 1, replyTo });

describe('the inbound gate', function () {
  describe('rule 1: the message a send carries is checked against the catalog, with the sender role', function () {
    it('a valid message for a local actor is delivered with the peer as its origin', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      const msg = ping(ref('worker-1', 'me'));
      gate.receive(send(ref('manager', 'echo'), msg), linkFrom('worker-1', 'worker', calls));
      expect(calls).to.deep.equal([['deliver', 'manager/echo', msg, undefined, 'worker-1']]);
    });

    it('an unknown type for a local actor is refused; its query fails first, then the strike', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      gate.receive(send(ref('manager', 'echo'), { type: 'nope' }, { q: ref('worker-1', '$q/1.ab') }), linkFrom('worker-1', 'worker', calls));
      expect(calls.map((c) => c.slice(0, 3))).to.deep.equal([
        ['undeliverable', 'worker-1/$q/1.ab', ErrorCodes.UNKNOWN_MESSAGE],
        ['refuse', ErrorCodes.UNKNOWN_MESSAGE, 'unknown message type "nope"'],
      ]);
    });

    it('a malformed message is refused with TROUPE_E_INVALID_MESSAGE', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      gate.receive(send(ref('manager', 'echo'), { type: 'ping', n: 'one', replyTo: ref('worker-1', 'me') }), linkFrom('worker-1', 'worker', calls));
      expect(calls).to.have.length(1);
      expect(calls[0].slice(0, 2)).to.deep.equal(['refuse', ErrorCodes.INVALID_MESSAGE]);
    });

    it('a message the sender role may not send is refused with TROUPE_E_FORBIDDEN; a client may send it', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      const msg = { type: 'privileged', replyTo: ref('worker-1', 'me') };
      gate.receive(send(ref('manager', 'echo'), msg), linkFrom('worker-1', 'worker', calls));
      expect(calls).to.deep.equal([['refuse', ErrorCodes.FORBIDDEN, 'a worker may not send "privileged"']]);
      calls.length = 0;
      gate.receive(send(ref('manager', 'echo'), msg), linkFrom('alice~1a2b', 'client', calls));
      expect(calls).to.deep.equal([['deliver', 'manager/echo', msg, undefined, 'alice~1a2b']]);
    });

    it('the manager passes on a type only the receiver knows, stamped with the peer it came from', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      gate.receive(send(ref('worker-2', 'app'), { type: 'app-only' }, { from: 'someone-else' }), linkFrom('worker-1', 'worker', calls));
      expect(calls).to.deep.equal([['relay', { t: 'send', to: ref('worker-2', 'app'), msg: { type: 'app-only' }, from: 'worker-1' }, 'worker-2']]);
    });

    it('the manager does not pass on a malformed message of a type it knows', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      gate.receive(send(ref('worker-2', 'echo'), { type: 'ping' }), linkFrom('worker-1', 'worker', calls));
      expect(calls.map((c) => c.slice(0, 2))).to.deep.equal([['refuse', ErrorCodes.INVALID_MESSAGE]]);
    });
  });

  describe('rule 2: who sent it is what the connection says', function () {
    it('only the manager may send "member"', function () {
      const { gate, calls } = gateOn('worker-2', { isManager: false });
      const member: Envelope = { t: 'member', node: 'worker-3', role: 'worker', incarnation: 'i', status: 'up', meta: {} };
      gate.receive(member, linkFrom('worker-1', 'worker', calls));
      gate.receive(member, linkFrom('manager', 'manager', calls));
      expect(calls).to.deep.equal([
        ['refuse', ErrorCodes.FORBIDDEN, 'only the manager may send "member"'],
        ['member', 'worker-3'],
      ]);
    });

    it('a message the manager forwarded is checked with its origin role, and delivered with that origin', function () {
      const { gate, calls } = gateOn('worker-2', { isManager: false, members: { 'worker-1': 'worker', 'alice~1': 'client' } });
      const privileged = { type: 'privileged', replyTo: ref('alice~1', 'me') };
      const hub = linkFrom('manager', 'manager', calls);
      gate.receive(send(ref('worker-2', 'echo'), privileged, { from: 'alice~1' }), hub);
      gate.receive(send(ref('worker-2', 'echo'), privileged, { from: 'worker-1', q: ref('worker-1', '$q/7.cd') }), hub);
      expect(calls).to.deep.equal([
        ['deliver', 'worker-2/echo', privileged, undefined, 'alice~1'],
        // The original sender's doing, not the manager's: its query fails, no strike on the hub link.
        ['undeliverable', 'worker-1/$q/7.cd', ErrorCodes.FORBIDDEN, 'a worker may not send "privileged"'],
      ]);
    });

    it('a forwarded message from a node this node does not know is dropped, its query failed', function () {
      const { gate, calls } = gateOn('worker-2', { isManager: false });
      gate.receive(send(ref('worker-2', 'echo'), ping(ref('ghost', 'me')), { from: 'ghost', q: ref('ghost', '$q/1.aa') }), linkFrom('manager', 'manager', calls));
      expect(calls).to.deep.equal([['undeliverable', 'ghost/$q/1.aa', ErrorCodes.FORBIDDEN, 'unknown sender ghost']]);
    });
  });

  describe('rule 3: forged cluster messages', function () {
    it('a node may report the termination of its own actors only', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      const link = linkFrom('worker-1', 'worker', calls);
      const own = { type: 'terminated', ref: ref('worker-1', 'task'), reason: 'stopped' };
      const other = { type: 'terminated', ref: ref('worker-2', 'task'), reason: 'stopped' };
      gate.receive(send(ref('manager', 'pool'), other, { q: ref('worker-1', '$q/2.bb') }), link);
      gate.receive(send(ref('manager', 'pool'), own), link);
      expect(calls).to.deep.equal([
        ['undeliverable', 'worker-1/$q/2.bb', ErrorCodes.FORBIDDEN, 'worker-1 may not report the termination of worker-2/task'],
        ['refuse', ErrorCodes.FORBIDDEN, 'worker-1 may not report the termination of worker-2/task'],
        ['deliver', 'manager/pool', own, undefined, 'worker-1'],
      ]);
    });

    it('only the manager states a listing: from a worker it is refused, from the manager delivered', function () {
      const listing = { type: 'listing', key: WORKER_KEY, entries: [] };
      const manager = gateOn('manager', { isManager: true });
      manager.gate.receive(send(ref('manager', 'pool'), listing), linkFrom('worker-1', 'worker', manager.calls));
      expect(manager.calls).to.deep.equal([['refuse', ErrorCodes.FORBIDDEN, 'only the manager may send "listing"']]);
      const worker = gateOn('worker-1', { isManager: false });
      worker.gate.receive(send(ref('worker-1', 'sub'), listing), linkFrom('manager', 'manager', worker.calls));
      expect(worker.calls).to.deep.equal([['deliver', 'worker-1/sub', listing, undefined, 'manager']]);
    });

    it('a forged termination the manager forwarded is dropped without a strike on the hub link', function () {
      const { gate, calls } = gateOn('worker-2', { isManager: false, members: { 'worker-1': 'worker' } });
      gate.receive(send(ref('worker-2', 'x'), { type: 'terminated', ref: ref('worker-3', 'y'), reason: 'stopped' }, { from: 'worker-1' }), linkFrom('manager', 'manager', calls));
      expect(calls).to.deep.equal([]);
    });
  });

  describe('rule 4: who may act for whom', function () {
    it('a node watches for its own actors only; the manager acts for everyone', function () {
      const { gate, calls } = gateOn('worker-2', { isManager: false });
      const watch = (watcher: ActorRef): Envelope => ({ t: 'watch', watcher, target: ref('worker-2', 'task') });
      gate.receive(watch(ref('worker-3', 'w')), linkFrom('worker-1', 'worker', calls));
      gate.receive(watch(ref('worker-3', 'w')), linkFrom('manager', 'manager', calls));
      expect(calls).to.deep.equal([
        ['refuse', ErrorCodes.FORBIDDEN, 'worker-1 may not act for worker-3/w'],
        ['watch', 'worker-3/w', 'worker-2/task'],
      ]);
    });

    it('receptionist envelopes go to the manager; there, only for the sender own actors', function () {
      const worker = gateOn('worker-2', { isManager: false });
      worker.gate.receive({ t: 'lookup', key: 'k', replyTo: ref('manager', 'r') }, linkFrom('manager', 'manager', worker.calls));
      expect(worker.calls).to.deep.equal([['refuse', ErrorCodes.INVALID_MESSAGE, '"lookup" goes to the manager']]);
      const manager = gateOn('manager', { isManager: true });
      const link = linkFrom('worker-1', 'worker', manager.calls);
      manager.gate.receive({ t: 'subscribe', key: 'k', subscriber: ref('worker-2', 's') }, link);
      manager.gate.receive({ t: 'checkOut', key: 'k', ref: ref('worker-2', 's') }, link);
      manager.gate.receive({ t: 'subscribe', key: 'k', subscriber: ref('worker-1', 's') }, link);
      expect(manager.calls).to.deep.equal([
        ['refuse', ErrorCodes.FORBIDDEN, 'worker-1 may not act for worker-2/s'],
        ['refuse', ErrorCodes.FORBIDDEN, 'worker-1 may not act for worker-2/s'],
        ['registry', 'subscribe'],
      ]);
    });

    it('a reserved key is taken only by the roles it is for', function () {
      const { gate, calls } = gateOn('manager', { isManager: true });
      gate.receive({ t: 'checkIn', key: WORKER_KEY, ref: ref('alice~1', 'fake'), meta: {} }, linkFrom('alice~1', 'client', calls));
      gate.receive({ t: 'checkIn', key: WORKER_KEY, ref: ref('worker-1', 'worker'), meta: {} }, linkFrom('worker-1', 'worker', calls));
      gate.receive({ t: 'checkIn', key: 'open', ref: ref('alice~1', 'a'), meta: {} }, linkFrom('alice~1', 'client', calls));
      expect(calls).to.deep.equal([
        ['refuse', ErrorCodes.FORBIDDEN, checkInRefusal(WORKER_KEY, 'client')],
        ['registry', 'checkIn'],
        ['registry', 'checkIn'],
      ]);
    });
  });

  describe('rule 5: only the manager forwards', function () {
    it('a worker refuses what is for another node; the manager relays it, stamped with the peer', function () {
      const msg = ping(ref('worker-1', 'me'));
      const worker = gateOn('worker-2', { isManager: false, members: { 'worker-1': 'worker' } });
      worker.gate.receive(send(ref('worker-3', 'echo'), msg), linkFrom('manager', 'manager', worker.calls));
      expect(worker.calls).to.deep.equal([['refuse', ErrorCodes.INVALID_MESSAGE, 'this node does not forward (to worker-3)']]);
      const manager = gateOn('manager', { isManager: true });
      manager.gate.receive(send(ref('worker-3', 'echo'), msg), linkFrom('worker-1', 'worker', manager.calls));
      manager.gate.receive({ t: 'undeliverable', to: ref('worker-3', '$q/1.aa'), code: ErrorCodes.NO_SUCH_ACTOR, reason: 'r' }, linkFrom('worker-1', 'worker', manager.calls));
      expect(manager.calls).to.deep.equal([
        ['relay', { t: 'send', to: ref('worker-3', 'echo'), msg, from: 'worker-1' }, 'worker-3'],
        ['relay', { t: 'undeliverable', to: ref('worker-3', '$q/1.aa'), code: ErrorCodes.NO_SUCH_ACTOR, reason: 'r' }, 'worker-3'],
      ]);
    });

    it('an undeliverable for a local query fails that query', function () {
      const { gate, calls } = gateOn('worker-1', { isManager: false });
      gate.receive({ t: 'undeliverable', to: ref('worker-1', '$q/3.cc'), code: ErrorCodes.NODE_DOWN, reason: 'node worker-9 is down' }, linkFrom('manager', 'manager', calls));
      expect(calls).to.deep.equal([['failQuery', '$q/3.cc', ErrorCodes.NODE_DOWN, 'node worker-9 is down']]);
    });
  });

  describe('rule 7: ctx.from', function () {
    it('one frozen sender per node; a local message has none', function () {
      const a = remoteSender('worker-1');
      expect(remoteSender('worker-1')).to.equal(a);
      expect(Object.isFrozen(a)).to.equal(true);
      expect(senderNode(a)).to.equal('worker-1');
      expect(senderNode(NO_SENDER)).to.equal(undefined);
      expect(senderNode({ node: 'forged' })).to.equal(undefined);
    });
  });
});
