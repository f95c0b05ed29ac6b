/**
 * The links of a node: the connections it holds to the rest of the cluster.
 *
 * Topology: hub and spoke. The manager (the hub) listens and holds one link per node; every other
 * node (a spoke) dials the manager and holds that one link, over which it reaches every node. So a
 * spoke's link to any node is its hub link (`linkTo`).
 *
 * Who is told of whom (so that a join costs the manager and its peers O(1), not O(W)): a client
 * (`troupe status`, top, the REPL) is told of every member; a worker is told of every member that
 * is not a worker (the clients: its tasks' subscribers), and of a worker only once the manager
 * relays between the two (a message, a watch): from then on each follows the other's changes, so
 * a watch still fires `node-down` and a query still fails at once. A worker it was not told of may
 * be up (`mayReach`): the manager answers for it (it relays, or says node-down at once).
 * Joining: the manager tells a newcomer what it is to know (see above; the down members too: a node
 * back after a short loss may still hold them as up), then those told of the newcomer's role learn
 * of it. A node that connects again under a name whose old link is still open replaces it.
 * Losing a link makes its peer unreachable, and down after `downAfterMs` unless it returns.
 * Reconnecting: a spoke redials (the Dialer's backoff); when it is welcomed again the host replays
 * what the manager must know of it (check-ins, subscriptions, watches). A welcome from another
 * manager, or another incarnation of it, ends the old one at once.
 * Revocation: the manager refuses a revoked certificate at the handshake, and disconnects a linked
 * peer as soon as a reloaded list names it (down at once: its redial is refused).
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { SESSION_SEPARATOR } from '../../protocols/actor-ref.js';
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import type { Role } from '../../protocols/roles.js';
import type { Envelope, Hello, MemberStatus, Reject, Welcome } from '../../protocols/wire.js';
import { ErrorCodes, TroupeError, type ErrorCode } from '../errors.js';
import { CLOSE_POLICY, Connection, type CloseInfo } from '../transport/connection.js';
import type { TransportSettings } from '../transport/settings.js';
import { Dialer } from '../transport/websocket-client.js';
import { TransportServer } from '../transport/websocket-server.js';
import type { ClusterEvents, ClusterOptions } from './cluster-options.js';
import type { Membership } from './membership.js';
import { EncodedEnvelope } from './encoded-envelope.js';

export interface LinkStats {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** host:port of the link's peer socket, as the transport saw it (the audit trail's "from where"). */
  address: string;
}

/** What the links need of the node that holds them. */
export interface LinkHost {
  readonly node: string;
  readonly role: Role;
  readonly incarnation: string;
  readonly options: Pick<ClusterOptions, 'identity' | 'meta' | 'revocation'>;
  readonly transport: TransportSettings;
  readonly downAfterMs: number;
  readonly log: Logger;
  readonly membership: Membership;
  /** True once the node is shutting down: a closing link then changes nothing. */
  readonly shuttingDown: boolean;
  /** Every envelope that arrives on a link (the inbound gate). */
  receive(envelope: Envelope, from: Connection): void;
  /** A link dropped an envelope it could not send. */
  unsendable(envelope: Envelope, code: ErrorCode, reason: string): void;
  /** Re-sends what the manager must know of this node, on a new hub link. */
  replay(hub: Connection): void;
  /** The node's events: `link`, `connected`, `disconnected`, `failure`, `refused`. */
  readonly events: Pick<EventEmitter<ClusterEvents>, 'emit'>;
  /** The node is part of the cluster (listening, or welcomed), or never will be (`error`). */
  settled(error?: Error): void;
}

/** How late at most the manager tells the nodes that one left (see Links.announce). */
export const ANNOUNCE_BATCH_MS = 20;

export class Links {
  #server: TransportServer | undefined;
  #dialer: Dialer | undefined;
  /** On the manager: the connection of every node. Elsewhere: only the manager's. */
  #links = new Map<string, Connection>();
  #hub: string | undefined;
  /** On the manager: each member's envelope, encoded once (see #encodedMember). */
  #encoded = new Map<string, { incarnation: string; status: MemberStatus; meta: Record<string, unknown>; envelope: Envelope }>();
  #pruneAt = 64;
  /** On the manager: the peers told of every member (every role but worker). */
  #toldAll = new Set<string>();
  /** On the manager: the members every peer is told of (every role but worker), up or unreachable. */
  #public = new Set<string>();
  /**
   * On the manager: worker → the workers that follow its changes (see introduce), and back. Kept
   * when either goes down: a worker downed here may still be alive and come back with what it knew
   * (it learns the changes on rejoining); bounded by the pairs of workers that ever talked.
   */
  #followers = new Map<string, Set<string>>();
  #follows = new Map<string, Set<string>>();
  /** Leaving members not yet told (see announce). */
  #held: MemberEvent[] = [];
  #heldTimer: NodeJS.Timeout | undefined;

  constructor(private readonly host: LinkHost) {}

  /** The manager's node name, once known (on the manager, its own). */
  get hub(): string | undefined {
    return this.#hub;
  }

  get isManager(): boolean {
    return this.#server !== undefined;
  }

  /** The manager's listening address. */
  get address(): { host: string; port: number } | undefined {
    const a = this.#server?.address;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  /** The link that carries messages to `node`: its own on the manager, the hub link elsewhere. */
  linkTo(node: string): Connection | undefined {
    return this.#server ? this.#links.get(node) : this.#hub !== undefined ? this.#links.get(this.#hub) : undefined;
  }

  /** The manager's own link to `node` (undefined elsewhere, or when it has none). */
  spoke(node: string): Connection | undefined {
    return this.#server ? this.#links.get(node) : undefined;
  }

  toHub(envelope: Envelope): boolean {
    const link = this.#hub !== undefined ? this.#links.get(this.#hub) : undefined;
    return link !== undefined && link.send(envelope);
  }

  /**
   * What the link to `node` has carried since it connected, as the transport counted it
   * (connection.ts `stats`): every envelope of every kind, its bytes as framed for the wire.
   */
  stats(node: string): LinkStats | undefined {
    const link = this.linkTo(node);
    const s = link?.stats;
    return s && { bytesIn: s.bytesIn, bytesOut: s.bytesOut, messagesIn: s.envelopesIn, messagesOut: s.envelopesOut, address: link!.peer.address };
  }

  /** True when messages to `node` are piling up unsent; wait for `whenWritable`. */
  isCongested(node: string): boolean {
    return this.linkTo(node)?.congested ?? false;
  }

  whenWritable(node: string): Promise<void> {
    const link = this.linkTo(node);
    if (!link || !link.congested) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => (link.off('drain', done), link.off('close', done), resolve());
      link.on('drain', done);
      link.on('close', done);
    });
  }

  /**
   * On the manager: tells the linked nodes of a change of membership (not of the manager's own):
   * of a worker, the peers told of every member and its followers; of any other member, everyone.
   * A node leaving (unreachable, down) is told up to ANNOUNCE_BATCH_MS late, with the others that
   * leave meanwhile: a process holding a hundred workers killed is then a few frames on each link,
   * not a hundred. A node joining is told at once, after what was held (the order of one node's
   * changes is kept), since a message from it may follow straight away.
   */
  announce(event: MemberEvent): void {
    if (!this.#server || event.node === this.host.node) return;
    if (event.role !== 'worker') {
      if (event.status === 'down') this.#public.delete(event.node);
      else this.#public.add(event.node);
    }
    if (event.status !== 'up') {
      this.#held.push(event);
      this.#heldTimer ??= setTimeout(this.#announceHeld, ANNOUNCE_BATCH_MS);
      return;
    }
    this.#announceHeld();
    this.#tell(event);
  }

  #announceHeld = (): void => {
    clearTimeout(this.#heldTimer);
    this.#heldTimer = undefined;
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    for (const event of held) this.#tell(event);
  };

  /** Sends one change to every link that is to learn it (encoded once for all: encoded-envelope.ts). */
  #tell(event: MemberEvent): void {
    // Encoded once for every link (encoded-envelope.ts), not once per link.
    const envelope = this.#encodedMember(event);
    if (event.role !== 'worker') {
      for (const link of this.#links.values()) link.send(envelope);
      return;
    }
    for (const node of this.#toldAll) this.#links.get(node)?.send(envelope);
    for (const node of this.#followers.get(event.node) ?? []) this.#links.get(node)?.send(envelope);
  }

  /**
   * On the manager, before it relays an envelope between two nodes: two workers not yet told of
   * each other are now (each follows the other's changes from then on), so that the receiver
   * knows the sender's role, and either learns when the other goes down. O(1) once they know.
   */
  introduce(a: string, b: string): void {
    if (a === b || this.host.membership.get(a)?.role !== 'worker' || this.host.membership.get(b)?.role !== 'worker') return;
    this.#follow(a, b);
    this.#follow(b, a);
  }

  #follow(follower: string, followed: string): void {
    let followers = this.#followers.get(followed);
    if (followers?.has(follower)) return;
    if (!followers) this.#followers.set(followed, (followers = new Set()));
    followers.add(follower);
    let follows = this.#follows.get(follower);
    if (!follows) this.#follows.set(follower, (follows = new Set()));
    follows.add(followed);
    const member = this.host.membership.get(followed);
    if (member) this.#links.get(follower)?.send(this.#encodedMember(member));
  }

  /** On the manager: relays an envelope to the node it is for (introducing the two first). */
  relay(envelope: Envelope, node: string): boolean {
    const link = this.spoke(node);
    if (!link) return false;
    const origin = envelope.t === 'send' ? envelope.from : envelope.t === 'watch' || envelope.t === 'unwatch' ? envelope.watcher.node : undefined;
    if (origin !== undefined) this.introduce(origin, node);
    return link.send(envelope);
  }

  /**
   * True when messages to `node` may still arrive: it is alive in this node's membership, or, on a
   * worker (not told of the other workers), it is a worker this node was not told of while the
   * manager is up: the manager relays to it, or answers at once that it is down.
   */
  mayReach(node: string): boolean {
    const { membership } = this.host;
    if (membership.isAlive(node)) return true;
    return this.host.role === 'worker' && this.#hub !== undefined && membership.get(node) === undefined && !node.includes(SESSION_SEPARATOR) && membership.isUp(this.#hub);
  }

  /**
   * The member envelope of a member's current status, encoded once: a client newcomer is sent the
   * whole table, and a change goes to many links. One per node, replaced when its status or
   * incarnation changes; dropped when the membership forgets the node.
   */
  #encodedMember(m: { node: string; role: Role; incarnation: string; status: MemberStatus; meta: Record<string, unknown> }): Envelope {
    const cached = this.#encoded.get(m.node);
    if (cached && cached.incarnation === m.incarnation && cached.status === m.status && cached.meta === m.meta) return cached.envelope;
    const envelope = new EncodedEnvelope({ t: 'member', node: m.node, role: m.role, incarnation: m.incarnation, status: m.status, meta: m.meta }).asEnvelope();
    this.#encoded.set(m.node, { incarnation: m.incarnation, status: m.status, meta: m.meta, envelope });
    // Bounded by the table: nodes it forgot (down clients) are dropped whenever the cache has doubled.
    if (this.#encoded.size > this.#pruneAt) {
      for (const node of this.#encoded.keys()) if (!this.host.membership.get(node)) this.#encoded.delete(node);
      this.#pruneAt = Math.max(64, 2 * this.#encoded.size);
    }
    return envelope;
  }

  /** Stops dialling or listening; what is queued on the links is flushed first. */
  async close(): Promise<void> {
    this.#dialer?.stop();
    this.host.options.revocation?.off('reloaded', this.#onRevocationList);
    this.host.options.revocation?.off('invalid', this.#onRevocationInvalid);
    this.#announceHeld();
    for (const link of this.#links.values()) link.flush();
    await this.#server?.close();
  }

  #hello(): Hello {
    const { host } = this;
    return { t: 'hello', protocol: PROTOCOL_VERSION, node: host.node, role: host.role, incarnation: host.incarnation, meta: host.options.meta ?? {} };
  }

  async listen(at: { host: string; port: number }): Promise<void> {
    const { host } = this;
    this.#hub = host.node;
    const server = new TransportServer({
      tls: host.options.identity,
      host: at.host,
      port: at.port,
      settings: host.transport,
      log: host.log,
      welcome: (): Welcome => ({ ...this.#hello(), t: 'welcome' }),
      accept: (hello, certificate) => this.#accept(hello, certificate),
    });
    const revocation = host.options.revocation;
    if (revocation) {
      revocation.on('reloaded', this.#onRevocationList);
      revocation.on('invalid', this.#onRevocationInvalid);
    }
    server.on('connection', (connection: Connection) => this.#onSpoke(connection));
    server.on('refused', (refusal: { from: string; code: string; reason: string }) => host.events.emit('refused', refusal));
    this.#server = server;
    const address = await server.listen();
    host.log.info({ host: address.address, port: address.port }, 'manager listening');
    host.settled();
  }

  #accept(hello: Hello, certificate: { name: string; serial: string }): Reject | undefined {
    if (this.host.options.revocation?.isRevoked(certificate.serial)) {
      return { t: 'reject', code: ErrorCodes.REVOKED, reason: `the certificate of "${certificate.name}" (serial ${certificate.serial.toLowerCase()}) is revoked` };
    }
    if (hello.role === 'manager') return { t: 'reject', code: ErrorCodes.FORBIDDEN, reason: 'a manager cannot join another manager' };
    if (hello.node === this.host.node) return { t: 'reject', code: ErrorCodes.NAME_MISMATCH, reason: `"${hello.node}" is the manager's own name` };
    return undefined;
  }

  /** A new revocation list: every connected peer it names is disconnected now (its redial is refused). */
  #onRevocationList = (list: { number: number; entries: readonly unknown[] }): void => {
    const { log, membership } = this.host;
    const revocation = this.host.options.revocation;
    log.info({ number: list.number, revoked: list.entries.length }, 'revocation list loaded');
    for (const link of [...this.#links.values()]) {
      const { peer } = link;
      if (link.closed || !revocation!.isRevoked(peer.certSerial)) continue;
      log.warn({ peer: peer.node, certName: peer.certName, serial: peer.certSerial.toLowerCase() }, 'disconnecting a node whose certificate was revoked');
      // Nothing more from it is read, and it is down now: its redial is refused, it will not be back.
      link.onEnvelope = () => {};
      link.close(CLOSE_POLICY, ErrorCodes.REVOKED);
      membership.unreachable(peer.node, peer.incarnation, 0);
    }
  };

  #onRevocationInvalid = (err: TroupeError): void => {
    this.host.log.error({ code: err.code, reason: err.message }, 'revocation list refused');
  };

  #onSpoke(connection: Connection): void {
    const { host } = this;
    const { peer } = connection;
    const previous = this.#links.get(peer.node);
    this.#links.set(peer.node, connection);
    if (previous && !previous.closed) {
      // The same node name: a worker that redialled, or a client process's own session redialled.
      host.log.warn({ peer: peer.node, certName: peer.certName }, 'a node connected again while its old connection was open; replacing it');
      previous.terminate('replaced');
    }
    connection.onEnvelope = (envelope, from) => host.receive(envelope, from);
    connection.on('undeliverable', this.#onUnsendable);
    host.events.emit('link', connection);
    if (peer.role !== 'worker') this.#toldAll.add(peer.node);
    connection.on('close', (info: CloseInfo) => {
      if (this.#links.get(peer.node) === connection) {
        this.#links.delete(peer.node);
        this.#toldAll.delete(peer.node);
        host.log.info({ peer: peer.node, code: info.code, cause: info.cause }, 'node disconnected');
        host.events.emit('disconnected', peer.node, info);
        if (!host.shuttingDown) host.membership.unreachable(peer.node, peer.incarnation, host.downAfterMs);
      }
    });
    // The newcomer learns what it is to know first, then those told of its role learn of it. That
    // has the down members too: a node back after a short loss may still hold them as up. A worker
    // is told of the other roles' members and of the workers it follows: O(1) in the workers.
    const told = peer.role === 'worker' ? [...this.#public, ...(this.#follows.get(peer.node) ?? [])] : host.membership.list().map((m) => m.node);
    for (const node of told) {
      const m = host.membership.get(node);
      if (m && node !== host.node && node !== peer.node) connection.send(this.#encodedMember(m));
    }
    host.log.info({ peer: peer.node, certName: peer.certName, role: peer.role, address: peer.address }, 'node joined');
    host.membership.up({ node: peer.node, role: peer.role, incarnation: peer.incarnation, meta: peer.meta });
    host.events.emit('connected', peer.node);
  }

  dial(at: { host: string; port: number }): void {
    const { host } = this;
    const dialer = new Dialer({
      host: at.host,
      port: at.port,
      tls: host.options.identity,
      settings: host.transport,
      log: host.log,
      hello: () => this.#hello(),
    });
    this.#dialer = dialer;
    dialer.on('connected', (connection: Connection, welcome: Welcome) => this.#onHub(connection, welcome));
    dialer.on('failure', (error: TroupeError, detail: { fatal: boolean; retryInMs?: number }) => {
      host.events.emit('failure', error, detail);
      if (detail.fatal) host.settled(error);
    });
    dialer.start();
  }

  #onHub(connection: Connection, welcome: Welcome): void {
    const { host } = this;
    const previous = this.#hub !== undefined ? host.membership.get(this.#hub) : undefined;
    if (previous && (previous.node !== welcome.node || previous.incarnation !== welcome.incarnation) && previous.status !== 'down') {
      // A new manager (or a restarted one): the old incarnation and all we knew through it are gone.
      host.membership.down(previous.node);
    }
    this.#hub = welcome.node;
    this.#links.set(welcome.node, connection);
    connection.onEnvelope = (envelope, from) => host.receive(envelope, from);
    connection.on('undeliverable', this.#onUnsendable);
    host.events.emit('link', connection);
    connection.on('close', (info: CloseInfo) => {
      if (this.#links.get(welcome.node) === connection) this.#links.delete(welcome.node);
      host.events.emit('disconnected', welcome.node, info);
      // After shutdown a closing link changes nothing: no down timer outlives the node.
      if (host.shuttingDown) return;
      host.log.warn({ manager: welcome.node, code: info.code, cause: info.cause }, 'lost the manager; reconnecting');
      host.membership.unreachable(welcome.node, welcome.incarnation, host.downAfterMs);
    });
    host.log.info({ manager: welcome.node, address: connection.peer.address }, 'joined the manager');
    host.membership.up({ node: welcome.node, role: welcome.role, incarnation: welcome.incarnation, meta: welcome.meta });
    // Replay what the manager must know of us: check-ins, subscriptions, watches.
    host.replay(connection);
    host.events.emit('connected', welcome.node);
    host.settled();
  }

  #onUnsendable = (envelope: Envelope, code: ErrorCode, reason: string): void => this.host.unsendable(envelope, code, reason);
}
