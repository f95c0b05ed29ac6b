/**
 * The inbound gate: every envelope that arrives from another node passes here before anything on
 * this node acts on it. It is the authorization boundary of the cluster. Its rules:
 *
 * 1. Shape first. The connection has already checked the envelope against its schema
 *    (protocols/wire.ts); the gate checks the message a `send` carries against the message catalog
 *    with the sender's role (protocols/message-catalog.ts): unknown, malformed or forbidden for that
 *    role is refused (TROUPE_E_UNKNOWN_MESSAGE, TROUPE_E_INVALID_MESSAGE, TROUPE_E_FORBIDDEN).
 *    The manager passes on a type only the receiver knows (it is for the receiver to check).
 * 2. Who sent it is what the connection says: the peer, or, for a message the manager forwarded,
 *    the node the manager stamped on it (`from`). A forwarded message from a node this node does not
 *    know is refused. Only the manager may send the envelopes it alone states (`member`:
 *    protocols/wire.ts HUB_ONLY).
 * 3. Forged cluster messages: the cluster's own messages state facts only some nodes know. Only an
 *    actor's own node (or the manager) may report its `terminated`; only the manager sends a
 *    `listing` or a `member`. (Without this a worker could tell the WorkerPool another worker died.)
 * 4. Who may act for whom: a node watches, unwatches, checks in, checks out, subscribes and looks up
 *    only for its own actors; the manager acts for everyone. Receptionist envelopes go to the
 *    manager only, and a reserved key (protocols/receptionist-keys.ts) only for the roles it is for.
 * 5. Forwarding: only the manager forwards, and it stamps the sending peer on what it forwards, so
 *    the receiver learns the origin from the manager, never from the message.
 * 6. Refusals: a refusal by the peer's own doing is a strike against its connection (logged once per
 *    code, the connection closed after too many); a query it carried fails at once with the reason,
 *    before the strike that may close the link. A forwarded message is the original sender's doing,
 *    not the manager's: it is dropped (and its query failed) without a strike on the manager's link.
 * 7. What passes is delivered with its origin as the actor's `ctx.from` (see `remoteSender`).
 */
import type { Logger } from 'pino';
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { Terminated } from '../../protocols/cluster-messages.js';
import type { MessageCatalog } from '../../protocols/message-catalog.js';
import { typeOf } from '../../protocols/message-type.js';
import type { Role } from '../../protocols/roles.js';
import { HUB_ONLY, type Envelope } from '../../protocols/wire.js';
import { ErrorCodes, type ErrorCode } from '../errors.js';

/** The link an envelope came on, as the gate needs it: who the peer is, and how to refuse it. */
export interface InboundLink {
  readonly peer: { readonly node: string; readonly role: Role };
  refuse(code: ErrorCode, reason: string): void;
}

export type RegistryEnvelope = Extract<Envelope, { t: 'checkIn' | 'checkOut' | 'subscribe' | 'unsubscribe' | 'lookup' }>;
export type WatchEnvelope = Extract<Envelope, { t: 'watch' | 'unwatch' }>;

/** What the gate lets through goes to the node that holds it, through these. */
export interface GateHost {
  readonly node: string;
  readonly catalog: MessageCatalog;
  readonly log: Logger;
  /** True on the manager: it forwards, and it holds the registry. */
  readonly isManager: boolean;
  /** The manager's node name, once known (on the manager, its own). */
  readonly manager: string | undefined;
  /** A member's role as the membership says, for a forwarded message's origin. */
  member(node: string): { node: string; role: Role } | undefined;
  /** On the manager: why a node of `role` may not check in under `key`, or undefined. */
  checkInRefusal(key: string, role: Role): string | undefined;
  /** Delivers a message to a local actor; `origin` becomes its `ctx.from`. */
  deliver(to: ActorRef, msg: unknown, q: ActorRef | undefined, origin: string): void;
  /** On the manager: passes an envelope on to the node it is for (or accounts for its loss). */
  relay(envelope: Envelope, node: string): void;
  /** Fails the local query waiting at `path`. */
  failQuery(path: string, code: string, reason: string): void;
  /** Tells the asker of query `q` (anywhere) that it failed. */
  undeliverable(q: ActorRef, code: ErrorCode, reason: string): void;
  applyMember(envelope: Extract<Envelope, { t: 'member' }>): void;
  applyWatch(envelope: WatchEnvelope): void;
  applyRegistry(envelope: RegistryEnvelope): void;
}

export class InboundGate {
  constructor(private readonly host: GateHost) {}

  receive(envelope: Envelope, from: InboundLink): void {
    const { host } = this;
    const peer = from.peer;
    if (HUB_ONLY.has(envelope.t) && peer.node !== host.manager) {
      return from.refuse(ErrorCodes.FORBIDDEN, `only the manager may send "${envelope.t}"`);
    }
    switch (envelope.t) {
      case 'send': {
        // Who sent it: the peer, or (forwarded by the manager) the node the manager says it came from.
        const forwarded = !host.isManager && envelope.from !== undefined && envelope.from !== peer.node;
        const sender = forwarded ? host.member(envelope.from!) : { node: peer.node, role: peer.role };
        const passing = host.isManager && envelope.to.node !== host.node;
        const verdict = sender ? host.catalog.check(envelope.msg, sender.role) : { ok: false as const, code: ErrorCodes.FORBIDDEN, reason: `unknown sender ${envelope.from}` };
        // The manager passes on types only the receiver knows; the receiver checks them.
        if (!verdict.ok && !(passing && verdict.code === ErrorCodes.UNKNOWN_MESSAGE)) {
          if (verdict.code === ErrorCodes.FORBIDDEN) host.log.warn({ peer: sender?.node ?? envelope.from, role: sender?.role, type: typeOf(envelope.msg) }, 'forbidden message refused');
          // A forwarded message is the original sender's doing, not the manager's: no strike on that link.
          // The query fails first: a refusal may be the strike that closes this link.
          if (envelope.q) host.undeliverable(envelope.q, verdict.code, verdict.reason);
          if (forwarded) host.log.debug({ from: envelope.from, code: verdict.code, reason: verdict.reason }, 'refused a forwarded message');
          else from.refuse(verdict.code, verdict.reason);
          return;
        }
        const origin = forwarded ? envelope.from! : peer.node;
        const forged = this.forgedClusterMessage(envelope.msg, origin);
        if (forged) {
          host.log.warn({ peer: origin, type: typeOf(envelope.msg) }, 'forged cluster message refused');
          if (envelope.q) host.undeliverable(envelope.q, ErrorCodes.FORBIDDEN, forged);
          if (!forwarded) from.refuse(ErrorCodes.FORBIDDEN, forged);
          return;
        }
        if (envelope.to.node === host.node) return host.deliver(envelope.to, envelope.msg, envelope.q, origin);
        return this.#forward({ ...envelope, from: peer.node }, envelope.to.node, from);
      }
      case 'undeliverable':
        if (envelope.to.node === host.node) return host.failQuery(envelope.to.path, envelope.code, envelope.reason);
        return this.#forward(envelope, envelope.to.node, from);
      case 'error':
        host.log.debug({ peer: peer.node, code: envelope.code, reason: envelope.reason }, 'peer refused something we sent');
        return;
      case 'member':
        return host.applyMember(envelope);
      case 'watch':
      case 'unwatch': {
        if (!this.#mayActFor(envelope.watcher, from)) return;
        if (envelope.target.node !== host.node) return this.#forward(envelope, envelope.target.node, from);
        return host.applyWatch(envelope);
      }
      case 'checkIn':
      case 'checkOut':
      case 'subscribe':
      case 'unsubscribe':
      case 'lookup': {
        if (!host.isManager) return from.refuse(ErrorCodes.INVALID_MESSAGE, `"${envelope.t}" goes to the manager`);
        const owner = envelope.t === 'subscribe' || envelope.t === 'unsubscribe' ? envelope.subscriber : envelope.t === 'lookup' ? envelope.replyTo : envelope.ref;
        if (!this.#mayActFor(owner, from)) return;
        if (envelope.t === 'checkIn') {
          const refused = host.checkInRefusal(envelope.key, peer.role);
          // Refused input: logged once per code per connection, a strike against it.
          if (refused) return from.refuse(ErrorCodes.FORBIDDEN, refused);
        }
        return host.applyRegistry(envelope);
      }
    }
  }

  /**
   * The cluster's own messages state facts only some nodes know: that an actor stopped (its own
   * node, or the manager for a node that went down), a receptionist listing and membership (the
   * manager). The catalog checks their shape; this checks who states them. Returns why not, or
   * undefined.
   */
  forgedClusterMessage(msg: unknown, origin: string): string | undefined {
    const type = (msg as { type?: unknown }).type;
    if (origin === this.host.manager) return undefined;
    if (type === 'terminated') {
      const ref = (msg as Terminated).ref;
      return ref.node === origin ? undefined : `${origin} may not report the termination of ${ref}`;
    }
    if (type === 'listing' || type === 'member') return `only the manager may send "${type}"`;
    return undefined;
  }

  /** A node may only act for its own actors; the manager forwards for everyone. */
  #mayActFor(ref: ActorRef, from: InboundLink): boolean {
    if (ref.node === from.peer.node || from.peer.node === this.host.manager) return true;
    this.host.log.warn({ peer: from.peer.node, claimed: ref.toString() }, 'a node tried to act for an actor of another node');
    from.refuse(ErrorCodes.FORBIDDEN, `${from.peer.node} may not act for ${ref}`);
    return false;
  }

  /** Only the manager passes an envelope on to the node it is for. */
  #forward(envelope: Envelope, node: string, from: InboundLink): void {
    if (!this.host.isManager) return from.refuse(ErrorCodes.INVALID_MESSAGE, `this node does not forward (to ${node})`);
    this.host.relay(envelope, node);
  }
}

/** nact's `sender` of a message from another node: the node its connection says it came from. */
class RemoteSender {
  constructor(readonly node: string) {}
}

/** One frozen sender per node: what a behaviour reads as `ctx.from`. */
const senders = new Map<string, RemoteSender>();

/** The nact sender to deliver a message from `node` with (one frozen object per node). */
export function remoteSender(node: string): RemoteSender {
  let sender = senders.get(node);
  if (!sender) {
    if (senders.size > 10_000) senders.clear();
    senders.set(node, (sender = Object.freeze(new RemoteSender(node))));
  }
  return sender;
}

/** `ctx.from` of a delivered message: the node of a remote sender, undefined for a local one. */
export function senderNode(sender: unknown): string | undefined {
  return sender instanceof RemoteSender ? sender.node : undefined;
}
