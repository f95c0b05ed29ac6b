/**
 * The ClusterSystem: a nact actor system that is one node of a troupe cluster.
 *
 * Topology: hub and spoke. The manager listens; every other node dials it and holds one
 * connection, over which it reaches every node (the manager forwards). The manager is therefore
 * the one place that authorizes what a node sends onwards, and the one authoritative receptionist.
 *
 * Addressing: an actor is `ActorRef {node, path}`. `dispatch` and `query` take the same path for
 * local and remote refs; only remote ones are encoded. Replies go to explicit reply refs carried in
 * the message (`replyTo`), as in Akka typed; a query's reply ref is a temporary `$q/N` path.
 *
 * Guarantees: per pair of actors, messages arrive in the order sent, at most once. A message that
 * cannot be delivered becomes a dead letter; when it was a query, the query fails at once with the
 * reason (no such actor, node down) instead of waiting for its timeout. Every message that arrives
 * from another node is checked against the message catalog, with the sending node's role, before
 * any actor sees it; nothing a peer sends can throw into the event loop. The actor that gets it
 * learns the sending node from the connection (`ctx.from`), never from the message.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import nact from 'nact';
import type { Logger } from 'pino';
import { ActorRef, NODE_NAME, SESSION_SEPARATOR } from '../../protocols/actor-ref.js';
import { CLUSTER_MESSAGES, type ListingEntry, type MemberEvent, type Terminated } from '../../protocols/cluster-messages.js';
import { MessageCatalog, type MessageSpec } from '../../protocols/message-catalog.js';
import { typeOf } from '../../protocols/message-type.js';
import type { Role } from '../../protocols/roles.js';
import type { Envelope } from '../../protocols/wire.js';
import { DeliveryError, ErrorCodes, ForbiddenError, TroupeError, settingError, type ErrorCode } from '../errors.js';
import { silentLogger } from '../log.js';
import type { CloseInfo, Connection } from '../transport/connection.js';
import { DeadLetters, type DeadLetter } from './dead-letters.js';
import { InboundGate, remoteSender, senderNode, type RegistryEnvelope, type WatchEnvelope } from './inbound-gate.js';
import { Links, type ClusterIdentity, type LinkStats, type Revocation } from './links.js';
import { Membership, type Member } from './membership.js';
import { installDrainLoop, NO_SENDER } from './nact-drain.js';
import { LocalRegistrations, Receptionist, Registry, type ReceptionistHost } from './receptionist.js';
import { clusterSettings, DEFAULT_MANAGER_DOWN_AFTER_MS, DEFAULT_MEMBER_DOWN_AFTER_MS, type ClusterSettings } from './settings.js';
import { WatchBook } from './watches.js';

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

export interface SpawnOptions<S> {
  parent?: ActorRef;
  initialState?: S;
  /** Called after the actor stopped, with its last state. */
  afterStop?: (state: S) => void;
  /** What to do when the behaviour throws; default: log the message type and stop the actor. */
  onCrash?: 'stop' | 'resume';
}

export type { ClusterIdentity, Revocation } from './links.js';
export { Receptionist } from './receptionist.js';

export interface ClusterOptions {
  identity: ClusterIdentity;
  /** The manager listens here. Port 0 picks a free port. */
  listen?: { host: string; port: number };
  /** Every other node joins the manager here. */
  join?: { host: string; port: number };
  /** Published in this node's membership record (tags, platform, slots…). */
  meta?: Record<string, unknown>;
  /** The application messages this node accepts from other nodes. */
  messages?: readonly MessageSpec[];
  settings?: Parameters<typeof clusterSettings>[0];
  log?: Logger;
  /**
   * On the manager: the certificates shut out (certs/revocation-watcher.ts). A peer whose
   * certificate it names is refused at the handshake with TROUPE_E_REVOKED, and one already
   * connected is disconnected as soon as the list that names it is `reloaded`.
   */
  revocation?: Revocation;
}

interface LocalActor {
  nactRef: NactRef;
  actor: NactActor;
  /** Its end is accounted for (watchers told, check-ins gone): once, whoever notices first. */
  ended?: boolean;
}

interface Pending {
  node: string;
  resolve: (msg: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type ClusterEvents = {
  member: [MemberEvent];
  deadLetter: [DeadLetter];
  connected: [string];
  disconnected: [string, CloseInfo];
  failure: [TroupeError, { fatal: boolean; retryInMs?: number }];
  /** The manager refused a would-be peer, at TLS or at the handshake. */
  refused: [{ from: string; code: string; reason: string }];
};

export class ClusterSystem extends EventEmitter<ClusterEvents> implements ReceptionistHost {
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

  #options: ClusterOptions;
  #downAfterMs: number;
  #root = nact.start();
  #actors = new Map<string, LocalActor>();
  #receivers = new Map<string, (msg: unknown) => void>();
  #pending = new Map<string, Pending>();
  #seq = 0;
  #watches = new WatchBook();
  #registry: Registry | undefined;
  #registrations = new LocalRegistrations();
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
    this.#options = options;
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
    this.receptionist = new Receptionist(this);
    this.#ready = new Promise((resolve, reject) => (this.#settleReady = { resolve, reject }));
    this.#ready.catch(() => {});
    this.#links = this.#makeLinks(options);
    this.#gate = this.#makeGate();
    this.membership.on('member', (event: MemberEvent) => this.#onMember(event));
    this.membership.up({ node: this.node, role: this.role, incarnation: this.incarnation, meta: options.meta ?? {} });
  }

  /** Starts a node: a manager listens (and is ready when it does); any other node starts dialling. */
  static async start(options: ClusterOptions): Promise<ClusterSystem> {
    const system = new ClusterSystem(options);
    if (options.listen) {
      system.#registry = new Registry((to, listing) => system.dispatch(to, listing));
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
    if (ref.node !== this.node) return this.membership.isAlive(ref.node);
    const local = this.#actors.get(ref.path);
    return local !== undefined && !local.actor.stopped;
  }

  /** Sends a message; fire and forget. Undeliverable messages become dead letters. */
  dispatch(to: ActorRef, msg: unknown): void {
    if (to.node === this.node) {
      this.#deliverLocal(to.path, msg, undefined);
      return;
    }
    const link = this.#linkTo(to.node);
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
      const link = this.#linkTo(to.node);
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
    return this.#linkTo(node)?.congested ?? false;
  }

  whenWritable(node: string): Promise<void> {
    const link = this.#linkTo(node);
    if (!link || !link.congested) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => (link.off('drain', done), link.off('close', done), resolve());
      link.on('drain', done);
      link.on('close', done);
    });
  }

  // ── watches ────────────────────────────────────────────────────────────────────────────────────

  /** `watcher` (a local actor) gets `{type: 'terminated', ref, reason}` when `target` stops or its node goes down. */
  watch(watcher: ActorRef, target: ActorRef): void {
    if (watcher.node !== this.node) throw new TypeError(`the watcher ${watcher} must be a local actor`);
    if (target.node === this.node) {
      if (this.isAlive(target)) this.#watches.addWatcher(target.path, watcher);
      else this.dispatch(watcher, terminated(target, 'stopped'));
      return;
    }
    if (!this.membership.isAlive(target.node)) {
      this.dispatch(watcher, terminated(target, 'node-down'));
      return;
    }
    if (this.#watches.addOutgoing(watcher, target)) this.#linkTo(target.node)?.send({ t: 'watch', watcher, target });
  }

  unwatch(watcher: ActorRef, target: ActorRef): void {
    if (target.node === this.node) this.#watches.removeWatcher(target.path, watcher);
    else if (this.#watches.removeOutgoing(watcher, target)) this.#linkTo(target.node)?.send({ t: 'unwatch', watcher, target });
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
    for (const [path, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(path);
      p.reject(new DeliveryError(ErrorCodes.SHUTDOWN, `${this.node} is shutting down`));
    }
    await this.#links.close();
    this.#deadLetters.close();
    this.membership.clear();
    nact.stop(this.#root);
  }

  // ── internals: routing ─────────────────────────────────────────────────────────────────────────

  #assertRunning(): void {
    if (this.#shutdown) throw new TroupeError(ErrorCodes.SHUTDOWN, `${this.node} is shut down`);
  }

  #linkTo(node: string): Connection | undefined {
    return this.#links.linkTo(node);
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
    if (q.node === this.node) this.#failPending(q.path, code, reason);
    else this.#linkTo(q.node)?.send({ t: 'undeliverable', to: q, code, reason });
  }

  #failPending(path: string, code: string, reason: string): void {
    const p = this.#pending.get(path);
    if (!p) return;
    clearTimeout(p.timer);
    this.#pending.delete(path);
    this.#receivers.delete(path);
    const Kind = code === ErrorCodes.FORBIDDEN ? ForbiddenError : DeliveryError;
    p.reject(new Kind(code as ErrorCode, reason));
  }

  /** A temporary reply ref that resolves the returned promise with the first message it gets. */
  #request<R>(node: string, timeoutMs: number, what: string, send: (replyTo: ActorRef) => boolean): Promise<R> {
    if (this.#shutdown) return Promise.reject(new DeliveryError(ErrorCodes.SHUTDOWN, `${this.node} is shut down`));
    if (node !== this.node && !this.membership.isAlive(node)) {
      return Promise.reject(new DeliveryError(ErrorCodes.NODE_DOWN, `${what}: node ${node} is down`));
    }
    // Unguessable: another node must not be able to fail our query by naming its reply ref.
    const path = `$q/${++this.#seq}.${randomBytes(6).toString('hex')}`;
    const replyTo = new ActorRef(this.node, path);
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(path);
        this.#receivers.delete(path);
        reject(new DeliveryError(ErrorCodes.QUERY_TIMEOUT, `${what} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(path, { node, resolve: resolve as (m: unknown) => void, reject, timer });
      this.#receivers.set(path, (msg) => {
        clearTimeout(timer);
        this.#pending.delete(path);
        this.#receivers.delete(path);
        resolve(msg as R);
      });
      if (!send(replyTo)) this.#failPending(path, ErrorCodes.NODE_UNREACHABLE, `${what}: node ${node} is unreachable`);
    });
  }

  /** Lookup of a receptionist key at the manager (used by Receptionist). */
  lookupAtManager(key: string, timeoutMs: number): Promise<ListingEntry[]> {
    if (this.#registry) return Promise.resolve(this.#registry.listing(key).entries);
    const hub = this.#links.hub;
    if (hub === undefined) return Promise.reject(new DeliveryError(ErrorCodes.NODE_UNREACHABLE, 'not connected to a manager yet'));
    return this.#request<{ entries: ListingEntry[] }>(hub, timeoutMs, `lookup of "${key}"`, (replyTo) =>
      this.#toHub({ t: 'lookup', key, replyTo }),
    ).then((listing) => listing.entries);
  }

  /** Sends a receptionist envelope to the manager, or applies it when we are the manager. */
  toRegistry(envelope: Extract<Envelope, { t: 'checkIn' | 'checkOut' | 'subscribe' | 'unsubscribe' }>): void {
    if (envelope.t === 'checkIn') this.#registrations.checkIns.set(LocalRegistrations.id(envelope.key, envelope.ref), envelope);
    if (envelope.t === 'checkOut') this.#registrations.checkIns.delete(LocalRegistrations.id(envelope.key, envelope.ref));
    if (envelope.t === 'subscribe') this.#registrations.subscriptions.set(LocalRegistrations.id(envelope.key, envelope.subscriber), envelope);
    if (envelope.t === 'unsubscribe') this.#registrations.subscriptions.delete(LocalRegistrations.id(envelope.key, envelope.subscriber));
    if (this.#registry) this.#applyRegistry(envelope);
    else this.#links.toHub(envelope);
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

  #toHub(envelope: Envelope): boolean {
    return this.#links.toHub(envelope);
  }

  /** Applies a receptionist envelope to the registry (a remote one has passed the inbound gate). */
  #applyRegistry(envelope: RegistryEnvelope): void {
    const registry = this.#registry!;
    switch (envelope.t) {
      case 'checkIn':
        if (this.isAlive(envelope.ref)) registry.checkIn(envelope.key, envelope.ref, envelope.meta);
        return;
      case 'checkOut':
        return registry.checkOut(envelope.key, envelope.ref);
      case 'subscribe':
        return registry.subscribe(envelope.key, envelope.subscriber);
      case 'unsubscribe':
        return registry.unsubscribe(envelope.key, envelope.subscriber);
      case 'lookup':
        return this.dispatch(envelope.replyTo, registry.listing(envelope.key));
    }
  }

  #actorStopped(ref: ActorRef, entry: LocalActor): void {
    if (entry.ended) return;
    entry.ended = true;
    if (this.#actors.get(ref.path) !== entry) return;
    this.#actors.delete(ref.path);
    for (const watcher of this.#watches.takeWatchers(ref.path)) this.dispatch(watcher, terminated(ref, 'stopped'));
    for (const pair of this.#watches.takeOutgoingOf(ref.path)) this.#linkTo(pair.target.node)?.send({ t: 'unwatch', ...pair });
    this.#membershipSubscribers.delete(ref.toString());
    const { checkIns, subscriptions } = this.#registrations.takeOf(ref.path);
    if (this.#registry) this.#registry.removeRef(ref);
    else {
      for (const c of checkIns) this.#toHub({ t: 'checkOut', key: c.key, ref: c.ref });
      for (const s of subscriptions) this.#toHub({ t: 'unsubscribe', key: s.key, subscriber: s.subscriber });
    }
  }

  // ── internals: links and the inbound gate ──────────────────────────────────────────────────────

  #makeLinks(options: ClusterOptions): Links {
    const system = this;
    return new Links({
      node: this.node,
      role: this.role,
      incarnation: this.incarnation,
      identity: options.identity,
      meta: options.meta ?? {},
      revocation: options.revocation,
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
      connected: (node) => this.emit('connected', node),
      disconnected: (node, info) => this.emit('disconnected', node, info),
      failure: (error, detail) => this.emit('failure', error, detail),
      refused: (refusal) => this.emit('refused', refusal),
      settled: (error) => (error ? this.#settleReady.reject(error) : this.#settleReady.resolve()),
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
      checkInRefusal: (key, role) => this.#registry?.refusal(key, role),
      deliver: (to, msg, q, origin) => {
        // The watch it answers is over: a later watch on the same actor is sent again (and fires at once).
        if ((msg as { type?: unknown }).type === 'terminated') this.#watches.removeOutgoing(to, (msg as Terminated).ref);
        this.#deliverLocal(to.path, msg, q, origin);
      },
      relay: (envelope, node) => this.#relay(envelope, node),
      failQuery: (path, code, reason) => this.#failPending(path, code, reason),
      undeliverable: (q, code, reason) => this.#undeliverable(q, code, reason),
      applyMember: (envelope) => this.membership.apply(envelope),
      applyWatch: (envelope) => this.#applyWatch(envelope),
      applyRegistry: (envelope) => this.#applyRegistry(envelope),
    });
  }

  /** On a new hub link: what the manager must know of us (check-ins, subscriptions, watches). */
  #replay(hub: Connection): void {
    for (const c of this.#registrations.checkIns.values()) if (this.isAlive(c.ref)) hub.send({ t: 'checkIn', ...c });
    for (const s of this.#registrations.subscriptions.values()) hub.send({ t: 'subscribe', ...s });
    for (const pair of this.#watches.outgoing()) hub.send({ t: 'watch', ...pair });
  }

  #applyWatch(envelope: WatchEnvelope): void {
    if (envelope.t === 'unwatch') return this.#watches.removeWatcher(envelope.target.path, envelope.watcher);
    if (this.isAlive(envelope.target)) this.#watches.addWatcher(envelope.target.path, envelope.watcher);
    else this.dispatch(envelope.watcher, terminated(envelope.target, 'stopped'));
  }

  #onMember(event: MemberEvent): void {
    this.log.debug({ member: event.node, status: event.status, incarnation: event.incarnation }, 'membership');
    if (event.status === 'down') this.#nodeDown(event.node);
    this.#links.announce(event);
    for (const sub of this.#membershipSubscribers.values()) this.dispatch(sub, event);
    this.emit('member', event);
  }

  #nodeDown(node: string): void {
    for (const { watcher, target } of this.#watches.takeOutgoingTo(node)) this.dispatch(watcher, terminated(target, 'node-down'));
    this.#watches.dropWatchersOn(node);
    for (const [path, p] of this.#pending) if (p.node === node) this.#failPending(path, ErrorCodes.NODE_DOWN, `node ${node} went down`);
    for (const [id, sub] of this.#membershipSubscribers) if (sub.node === node) this.#membershipSubscribers.delete(id);
    this.#registry?.removeNode(node);
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
    const link = this.#links.spoke(node);
    if (link && link.send(envelope)) return;
    if (envelope.t === 'send') {
      this.#deadLetters.record(envelope.to, envelope.msg, ErrorCodes.NODE_DOWN);
      if (envelope.q) this.#undeliverable(envelope.q, ErrorCodes.NODE_DOWN, `node ${node} is down`);
    } else if (envelope.t === 'watch') {
      this.dispatch(envelope.watcher, terminated(envelope.target, 'node-down'));
    }
  }
}

function terminated(ref: ActorRef, reason: Terminated['reason']): Terminated {
  return { type: 'terminated', ref, reason };
}

/** A query's temporary reply ref (see #request): someone waits on it. */
function isQueryPath(path: string): boolean {
  return path.startsWith('$q/');
}
