/**
 * The ClusterSystem: a nact actor system that is one node of a troupe cluster.
 *
 * Topology: hub and spoke (links.ts). The manager listens; every other node dials it and holds one
 * connection, over which it reaches every node (the manager forwards). The manager is therefore the
 * one place that authorizes what a node sends onwards (inbound-gate.ts), and the one receptionist.
 *
 * Addressing: an actor is `ActorRef {node, path}`. `dispatch` and `query` take the same path for
 * local and remote refs; only remote ones are encoded. Replies go to explicit reply refs carried in
 * the message (`replyTo`), as in Akka typed; a query's reply ref is a temporary `$q/N` path.
 *
 * Guarantees: per pair of actors, messages arrive in the order sent, at most once. A message that
 * cannot be delivered becomes a dead letter; when it was a query, the query fails at once with the
 * reason (no such actor, node down) instead of waiting for its timeout. Every message that arrives
 * from another node passes the inbound gate (the message catalog, with the sending node's role),
 * before any actor sees it; nothing a peer sends can throw into the event loop. The actor that gets it
 * learns the sending node from the connection (`ctx.from`), never from the message.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import nact from 'nact';
import type { Logger } from 'pino';
import { ActorRef, NODE_NAME, SESSION_SEPARATOR } from '../../protocols/actor-ref.js';
import { CLUSTER_MESSAGES, type MemberEvent } from '../../protocols/cluster-messages.js';
import { MessageCatalog } from '../../protocols/message-catalog.js';
import { typeOf } from '../../protocols/message-type.js';
import type { Role } from '../../protocols/roles.js';
import type { Envelope } from '../../protocols/wire.js';
import { DeliveryError, ErrorCodes, TroupeError, settingError, type ErrorCode } from '../errors.js';
import { silentLogger } from '../log.js';
import type { Connection } from '../transport/connection.js';
import { DeadLetters } from './dead-letters.js';
import { InboundGate, remoteSender, senderNode } from './inbound-gate.js';
import type { ClusterEvents, ClusterOptions } from './cluster-options.js';
import { Links, type LinkStats } from './links.js';
import { Membership, type Member } from './membership.js';
import { installDrainLoop, markInline, NO_SENDER } from './nact-drain.js';
import { isQueryPath, PendingQueries } from './pending-queries.js';
import { Receptionist } from './receptionist.js';
import type { SpawnOptions } from './spawn-options.js';
import { clusterSettings, DEFAULT_MANAGER_DOWN_AFTER_MS, DEFAULT_MEMBER_DOWN_AFTER_MS, type ClusterSettings } from './settings.js';
import { terminated, Watches } from './watches.js';

installDrainLoop();

const require = createRequire(import.meta.url);
const systemMap = require('nact/lib/system-map.js') as { find(systemName: string, ref: unknown): NactActor | undefined };

interface NactActor {
  stopped: boolean;
  dispatch(message: unknown, sender: unknown): void;
}
type NactRef = ReturnType<typeof nact.spawn>;

/** The context an actor behaviour gets: nact's, plus its own ref and the cluster. */
export interface TroupeContext {
  ref: ActorRef;
  cluster: ClusterSystem;
  name: string;
  self: NactRef;
  /**
   * The node a message came from, as the connection it arrived on says (the peer, or for a message
   * the manager forwarded, the node it stamped): never taken from the message itself. Undefined for
   * a message sent on this node.
   */
  from?: string;
}

export type Behavior<S, M> = (state: S, msg: M, ctx: TroupeContext) => S | Promise<S>;

export type { SpawnOptions } from './spawn-options.js';
export type { ClusterIdentity, ClusterOptions, Revocation } from './cluster-options.js';
export { Receptionist } from './receptionist.js';

interface LocalActor {
  nactRef: NactRef;
  actor: NactActor;
  /** Its end is accounted for (watchers told, check-ins gone): once, whoever notices first. */
  ended?: boolean;
}

export class ClusterSystem extends EventEmitter<ClusterEvents> {
  /** This node's name in the cluster: its certificate's, or for a client `<certName>~<session>`. */
  readonly node: string;
  /** The name (CN) of this node's certificate. */
  readonly certName: string;
  readonly role: Role;
  readonly incarnation: string;
  readonly settings: ClusterSettings;
  readonly log: Logger;
  readonly membership = new Membership();
  readonly catalog: MessageCatalog;
  readonly receptionist: Receptionist;

  #downAfterMs: number;
  #root = nact.start();
  #actors = new Map<string, LocalActor>();
  #receivers = new Map<string, (msg: unknown) => void>();
  #queries: PendingQueries;
  #seq = 0;
  #watches: Watches;
  #membershipSubscribers = new Map<string, ActorRef>();
  #deadLetters: DeadLetters;
  #links: Links;
  #gate: InboundGate;
  #shutdown = false;
  #ready: Promise<void>;
  #settleReady!: { resolve: () => void; reject: (err: Error) => void };

  private constructor(options: ClusterOptions) {
    super();
    const { identity } = options;
    if (!NODE_NAME.test(identity.name) || identity.name.includes(SESSION_SEPARATOR)) throw settingError('identity.name', identity.name, 'a node name (letters, digits, . _ -)');
    if (Boolean(options.listen) === Boolean(options.join)) throw new TypeError('give exactly one of listen (a manager) or join (every other node)');
    if (options.listen && identity.role !== 'manager') throw settingError('listen', identity.role, 'a manager certificate to listen with');
    if (options.join && identity.role === 'manager') throw settingError('join', identity.role, 'a worker or client certificate to join with');
    // A client is one member per process (per connection to the manager), under its certificate's
    // name: one person's many commands at once never replace one another (see handshake.ts).
    this.node = identity.role === 'client' ? `${identity.name}${SESSION_SEPARATOR}${randomBytes(6).toString('hex')}` : identity.name;
    this.certName = identity.name;
    this.role = identity.role;
    this.incarnation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    this.settings = clusterSettings(options.settings);
    this.#downAfterMs = this.settings.downAfterMs ?? (options.listen ? DEFAULT_MANAGER_DOWN_AFTER_MS : DEFAULT_MEMBER_DOWN_AFTER_MS);
    const log = options.log ?? silentLogger();
    const bound = log.bindings().node;
    this.log = bound === this.node ? log : bound === this.certName ? log.child({ session: this.node }) : log.child({ node: this.node });
    this.catalog = new MessageCatalog([...CLUSTER_MESSAGES, ...(options.messages ?? [])]);
    this.#deadLetters = new DeadLetters(this.log, this.settings.deadLetterLogIntervalMs, (letter) => this.emit('deadLetter', letter));
    this.receptionist = this.#makeReceptionist();
    this.#ready = new Promise((resolve, reject) => (this.#settleReady = { resolve, reject }));
    this.#ready.catch(() => {});
    this.#queries = new PendingQueries(this.node, this.#receivers);
    this.#watches = new Watches({
      node: this.node,
      isAlive: (ref) => this.isAlive(ref),
      dispatch: (to, msg) => this.dispatch(to, msg),
      send: (node, envelope) => this.#links.linkTo(node)?.send(envelope),
    });
    this.#links = this.#makeLinks(options);
    this.#gate = this.#makeGate();
    this.membership.on('member', (event: MemberEvent) => this.#onMember(event));
    this.membership.up({ node: this.node, role: this.role, incarnation: this.incarnation, meta: options.meta ?? {} });
  }

  /** Starts a node: a manager listens (and is ready when it does); any other node starts dialling. */
  static async start(options: ClusterOptions): Promise<ClusterSystem> {
    const system = new ClusterSystem(options);
    if (options.listen) {
      system.receptionist.holdRegistry();
      await system.#links.listen(options.listen);
    } else {
      system.#links.dial(options.join!);
    }
    return system;
  }

  /** Resolves once this node is part of the cluster (a manager: listening; others: welcomed). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The manager's listening address. */
  get address(): { host: string; port: number } | undefined {
    return this.#links.address;
  }

  get isManager(): boolean {
    return this.#links.isManager;
  }

  /** The manager's node name, once known. */
  get manager(): string | undefined {
    return this.#links.hub;
  }

  members(): Member[] {
    return this.membership.list();
  }

  get deadLetterCount(): number {
    return this.#deadLetters.total;
  }

  // ── actors ─────────────────────────────────────────────────────────────────────────────────────

  /** Spawns a local actor reachable from every node as `{node, path}`. */
  spawn<S, M>(behavior: Behavior<S, M>, name: string, options: SpawnOptions<S> = {}): ActorRef {
    this.#assertRunning();
    const parent = options.parent ? this.#actors.get(options.parent.path) : undefined;
    if (options.parent && (options.parent.node !== this.node || !parent)) {
      throw new DeliveryError(ErrorCodes.NO_SUCH_ACTOR, `cannot spawn under ${options.parent}: not a live local actor`);
    }
    const path = options.parent ? `${options.parent.path}/${name}` : name;
    const ref = new ActorRef(this.node, path);
    const log = this.log;
    const crash = options.onCrash ?? 'stop';
    const wrapped = (state: S, msg: M, ctx: TroupeContext) => {
      ctx.ref = ref;
      ctx.cluster = this;
      const sender = (ctx as unknown as { sender: unknown }).sender;
      ctx.from = senderNode(sender);
      return behavior(state, msg, ctx);
    };
    const nactRef = nact.spawn(parent?.nactRef ?? (this.#root as never), wrapped as never, name, {
      initialState: options.initialState,
      onCrash: (msg: unknown, err: unknown, ctx: { stop: symbol; resume: symbol }) => {
        log.error({ actor: path, type: typeOf(msg), err }, crash === 'stop' ? 'actor crashed; stopping it' : 'actor crashed; resuming');
        return crash === 'stop' ? ctx.stop : ctx.resume;
      },
      afterStop: (state: S) => {
        this.#actorStopped(ref, entry);
        options.afterStop?.(state);
      },
    } as never) as NactRef;
    const actor = systemMap.find((nactRef as unknown as { system: { name: string } }).system.name, nactRef)!;
    if (options.inline) markInline(actor);
    const entry: LocalActor = { nactRef, actor };
    this.#actors.set(path, entry);
    return ref;
  }

  /** Stops a local actor (and its children). Its watchers get `terminated` with reason `stopped`. */
  stop(ref: ActorRef): void {
    if (ref.node !== this.node) throw new TypeError(`${ref} is not a local actor`);
    const local = this.#actors.get(ref.path);
    if (!local) return;
    nact.stop(local.nactRef);
    // nact calls afterStop a turn later; account for the end now, so that an actor spawned under
    // the same name in this turn is neither shadowed nor told of its predecessor's end.
    const prefix = `${ref.path}/`;
    const ended = [...this.#actors].filter(([path]) => path === ref.path || path.startsWith(prefix));
    for (const [path, entry] of ended) this.#actorStopped(new ActorRef(this.node, path), entry);
  }

  /** True when the ref names a live local actor. */
  isAlive(ref: ActorRef): boolean {
    if (ref.node !== this.node) return this.#links.mayReach(ref.node);
    const local = this.#actors.get(ref.path);
    return local !== undefined && !local.actor.stopped;
  }

  /** Sends a message; fire and forget. Undeliverable messages become dead letters. */
  dispatch(to: ActorRef, msg: unknown): void {
    if (to.node === this.node) return this.#deliverLocal(to.path, msg, undefined);
    const link = this.#links.linkTo(to.node);
    if (!link || !link.send({ t: 'send', to, msg })) this.#deadLetters.record(to, msg, ErrorCodes.NODE_UNREACHABLE);
  }

  /**
   * Asks and waits for one answer: `make(replyTo)` builds the message, the target answers by
   * dispatching to `replyTo`. Rejects with TROUPE_E_QUERY_TIMEOUT, TROUPE_E_NODE_DOWN (also when
   * the node goes down while we wait), TROUPE_E_NO_SUCH_ACTOR or TROUPE_E_FORBIDDEN.
   */
  query<R = unknown>(to: ActorRef, make: (replyTo: ActorRef) => unknown, timeoutMs = this.settings.queryTimeoutMs): Promise<R> {
    return this.#request<R>(to.node, timeoutMs, `query to ${to}`, (replyTo) => {
      const msg = make(replyTo);
      if (to.node === this.node) {
        this.#deliverLocal(to.path, msg, replyTo);
        return true;
      }
      const link = this.#links.linkTo(to.node);
      return link !== undefined && link.send({ t: 'send', to, msg, q: replyTo });
    });
  }

  /**
   * What the link that carries messages to `node` has carried since it connected, as the transport
   * counted it (src/transport/connection.ts `stats`, like nats.js `stats()`): every envelope of every
   * kind, its bytes as framed for the wire. On a spoke every node is reached through the hub, so this
   * is the hub link's. Undefined while there is no such link; a new link counts from zero.
   */
  linkStats(node: string): LinkStats | undefined {
    return this.#links.stats(node);
  }

  /** True when messages to `node` are piling up unsent; wait for `whenWritable`. */
  isCongested(node: string): boolean {
    return this.#links.isCongested(node);
  }

  whenWritable(node: string): Promise<void> {
    return this.#links.whenWritable(node);
  }

  // ── watches ────────────────────────────────────────────────────────────────────────────────────

  /** `watcher` (a local actor) gets `{type: 'terminated', ref, reason}` when `target` stops or its node goes down. */
  watch(watcher: ActorRef, target: ActorRef): void {
    this.#watches.watch(watcher, target);
  }

  unwatch(watcher: ActorRef, target: ActorRef): void {
    this.#watches.unwatch(watcher, target);
  }

  // ── membership ─────────────────────────────────────────────────────────────────────────────────

  /** `subscriber` gets a `member` message for every member now, then one for every change. */
  subscribeMembership(subscriber: ActorRef): void {
    this.#membershipSubscribers.set(subscriber.toString(), subscriber);
    for (const m of this.membership.list()) {
      this.dispatch(subscriber, { type: 'member', node: m.node, role: m.role, incarnation: m.incarnation, status: m.status, meta: m.meta } satisfies MemberEvent);
    }
  }

  unsubscribeMembership(subscriber: ActorRef): void {
    this.#membershipSubscribers.delete(subscriber.toString());
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

  /** Leaves the cluster: stops dialling or listening, fails pending queries, stops every actor. */
  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    this.#settleReady.reject(new TroupeError(ErrorCodes.SHUTDOWN, `${this.node} is shutting down`));
    this.#queries.rejectAll(new DeliveryError(ErrorCodes.SHUTDOWN, `${this.node} is shutting down`));
    await this.#links.close();
    this.#deadLetters.close();
    this.membership.clear();
    nact.stop(this.#root);
  }

  // ── internals: routing ─────────────────────────────────────────────────────────────────────────

  #assertRunning(): void {
    if (this.#shutdown) throw new TroupeError(ErrorCodes.SHUTDOWN, `${this.node} is shut down`);
  }

  #deliverLocal(path: string, msg: unknown, q: ActorRef | undefined, from?: string): void {
    const receiver = this.#receivers.get(path);
    if (receiver) return receiver(msg);
    const local = this.#actors.get(path);
    if (local && !local.actor.stopped) return local.actor.dispatch(msg, from === undefined ? NO_SENDER : remoteSender(from));
    const to = new ActorRef(this.node, path);
    this.#deadLetters.record(to, msg, ErrorCodes.NO_SUCH_ACTOR);
    if (q) this.#undeliverable(q, ErrorCodes.NO_SUCH_ACTOR, `no actor at ${to}`);
  }

  #undeliverable(q: ActorRef, code: ErrorCode, reason: string): void {
    if (q.node === this.node) this.#queries.fail(q.path, code, reason);
    else this.#links.linkTo(q.node)?.send({ t: 'undeliverable', to: q, code, reason });
  }

  /** A temporary reply ref that resolves the returned promise with the first message it gets. */
  #request<R>(node: string, timeoutMs: number, what: string, send: (replyTo: ActorRef) => boolean): Promise<R> {
    if (this.#shutdown) return Promise.reject(new DeliveryError(ErrorCodes.SHUTDOWN, `${this.node} is shut down`));
    if (node !== this.node && !this.#links.mayReach(node)) {
      return Promise.reject(new DeliveryError(ErrorCodes.NODE_DOWN, `${what}: node ${node} is down`));
    }
    return this.#queries.ask<R>(node, timeoutMs, what, send);
  }

  /** A receiver function at a temporary path: for listing callbacks. */
  receiver(fn: (msg: unknown) => void): ActorRef {
    const path = `$r/${++this.#seq}`;
    this.#receivers.set(path, fn);
    return new ActorRef(this.node, path);
  }

  dropReceiver(ref: ActorRef): void {
    this.#receivers.delete(ref.path);
  }

  #actorStopped(ref: ActorRef, entry: LocalActor): void {
    if (entry.ended) return;
    entry.ended = true;
    if (this.#actors.get(ref.path) !== entry) return;
    this.#actors.delete(ref.path);
    this.#watches.actorStopped(ref);
    this.#membershipSubscribers.delete(ref.toString());
    this.receptionist.actorStopped(ref);
  }

  // ── internals: links and the inbound gate ──────────────────────────────────────────────────────

  #makeLinks(options: ClusterOptions): Links {
    const system = this;
    return new Links({
      node: this.node,
      role: this.role,
      incarnation: this.incarnation,
      options,
      transport: this.settings.transport,
      downAfterMs: this.#downAfterMs,
      log: this.log,
      membership: this.membership,
      get shuttingDown() {
        return system.#shutdown;
      },
      receive: (envelope, from) => this.#gate.receive(envelope, from),
      unsendable: (envelope, code, reason) => this.#onUnsendable(envelope, code, reason),
      replay: (hub) => this.#replay(hub),
      events: this,
      settled: (error) => (error ? this.#settleReady.reject(error) : this.#settleReady.resolve()),
    });
  }

  #makeReceptionist(): Receptionist {
    const system = this;
    return new Receptionist({
      node: this.node,
      queryTimeoutMs: this.settings.queryTimeoutMs,
      get manager() {
        return system.#links.hub;
      },
      isAlive: (ref) => this.isAlive(ref),
      dispatch: (to, msg) => this.dispatch(to, msg),
      receiver: (fn) => this.receiver(fn),
      dropReceiver: (ref) => this.dropReceiver(ref),
      toHub: (envelope) => this.#links.toHub(envelope),
      request: (node, timeoutMs, what, send) => this.#request(node, timeoutMs, what, send),
    });
  }

  #makeGate(): InboundGate {
    const system = this;
    return new InboundGate({
      node: this.node,
      catalog: this.catalog,
      log: this.log,
      get isManager() {
        return system.#links.isManager;
      },
      get manager() {
        return system.#links.hub;
      },
      member: (node) => this.membership.get(node),
      checkInRefusal: (key, role) => this.receptionist.refusal(key, role),
      deliver: (to, msg, q, origin) => {
        this.#watches.delivered(to, msg);
        this.#deliverLocal(to.path, msg, q, origin);
      },
      relay: (envelope, node) => this.#relay(envelope, node),
      failQuery: (path, code, reason) => this.#queries.fail(path, code, reason),
      undeliverable: (q, code, reason) => this.#undeliverable(q, code, reason),
      applyMember: (envelope) => this.membership.apply(envelope),
      applyWatch: (envelope) => this.#watches.accept(envelope),
      applyRegistry: (envelope) => this.receptionist.apply(envelope),
    });
  }

  /** On a new hub link: what the manager must know of us (check-ins, subscriptions, watches). */
  #replay(hub: Connection): void {
    this.receptionist.replay(hub);
    this.#watches.replay(hub);
  }

  #onMember(event: MemberEvent): void {
    this.log.debug({ member: event.node, status: event.status, incarnation: event.incarnation }, 'membership');
    if (event.status === 'down') this.#nodeDown(event.node);
    this.#links.announce(event);
    for (const sub of this.#membershipSubscribers.values()) this.dispatch(sub, event);
    this.emit('member', event);
  }

  #nodeDown(node: string): void {
    this.#watches.nodeDown(node);
    this.#queries.failNode(node);
    for (const [id, sub] of this.#membershipSubscribers) if (sub.node === node) this.#membershipSubscribers.delete(id);
    this.receptionist.nodeDown(node);
    if (node === this.#links.hub && !this.#links.isManager) {
      // Every other node was reached through the manager.
      for (const m of this.membership.list()) if (m.node !== this.node && m.node !== node) this.membership.down(m.node);
    }
  }

  /**
   * A connection dropped an envelope it could not send (over the frame size limit, or not
   * encodable). It is a dead letter, and whoever waits on it learns now, not at its timeout: the
   * asker of a query it carried, or, when it was the answer to a query (sent to a `$q/` reply
   * ref), the asker of that query.
   */
  #onUnsendable = (envelope: Envelope, code: ErrorCode, reason: string): void => {
    if (envelope.t !== 'send') return;
    this.#deadLetters.record(envelope.to, envelope.msg, code);
    if (envelope.q) this.#undeliverable(envelope.q, code, reason);
    if (isQueryPath(envelope.to.path)) this.#undeliverable(envelope.to, code, `the answer could not be sent: ${reason}`);
  };

  /** The manager passes an envelope on to the node it is for; a lost one is accounted for. */
  #relay(envelope: Envelope, node: string): void {
    if (this.#links.relay(envelope, node)) return;
    if (envelope.t === 'send') {
      this.#deadLetters.record(envelope.to, envelope.msg, ErrorCodes.NODE_DOWN);
      if (envelope.q) this.#undeliverable(envelope.q, ErrorCodes.NODE_DOWN, `node ${node} is down`);
    } else if (envelope.t === 'watch') {
      this.dispatch(envelope.watcher, terminated(envelope.target, 'node-down'));
    }
  }
}
