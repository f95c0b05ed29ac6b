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
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import type { Role } from '../../protocols/roles.js';
import type { Envelope, Hello, Reject, Welcome } from '../../protocols/wire.js';
import { HUB_ONLY } from '../../protocols/wire.js';
import { DeliveryError, ErrorCodes, ForbiddenError, TroupeError, settingError, type ErrorCode } from '../errors.js';
import { silentLogger } from '../log.js';
import { CLOSE_POLICY, Connection, type CloseInfo } from '../transport/connection.js';
import { Dialer } from '../transport/websocket-client.js';
import { TransportServer, type TlsMaterial } from '../transport/websocket-server.js';
import { DeadLetters, type DeadLetter } from './dead-letters.js';
import { Membership, type Member } from './membership.js';
import { installDrainLoop, NO_SENDER } from './nact-drain.js';
import { LocalRegistrations, Registry } from './receptionist.js';
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

export interface ClusterIdentity extends TlsMaterial {
  name: string;
  role: Role;
}

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

/** What the manager needs of a revocation list; a RevocationWatcher is one. */
export interface Revocation {
  isRevoked(serial: string): boolean;
  on(event: 'reloaded', listener: (list: { number: number; entries: readonly unknown[] }) => void): unknown;
  on(event: 'invalid', listener: (err: TroupeError) => void): unknown;
  off(event: 'reloaded' | 'invalid', listener: (...args: never[]) => void): unknown;
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
  #server: TransportServer | undefined;
  #dialer: Dialer | undefined;
  /** On the manager: the connection of every node. Elsewhere: only the manager's. */
  #links = new Map<string, Connection>();
  #hub: string | undefined;
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
    this.membership.on('member', (event: MemberEvent) => this.#onMember(event));
    this.membership.up({ node: this.node, role: this.role, incarnation: this.incarnation, meta: options.meta ?? {} });
  }

  /** Starts a node: a manager listens (and is ready when it does); any other node starts dialling. */
  static async start(options: ClusterOptions): Promise<ClusterSystem> {
    const system = new ClusterSystem(options);
    if (options.listen) {
      system.#hub = system.node;
      system.#registry = new Registry((to, listing) => system.dispatch(to, listing));
      await system.#listen(options.listen);
    } else {
      system.#dial(options.join!);
    }
    return system;
  }

  /** Resolves once this node is part of the cluster (a manager: listening; others: welcomed). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The manager's listening address. */
  get address(): { host: string; port: number } | undefined {
    const a = this.#server?.address;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  get isManager(): boolean {
    return this.#server !== undefined;
  }

  /** The manager's node name, once known. */
  get manager(): string | undefined {
    return this.#hub;
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
      ctx.from = sender instanceof RemoteSender ? sender.node : undefined;
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
  /** host:port of a directly connected peer's socket (for the audit trail); undefined if not connected. */
  peerAddress(node: string): string | undefined {
    return this.#server ? this.#links.get(node)?.peer.address : undefined;
  }

  linkStats(node: string): { bytesIn: number; bytesOut: number; messagesIn: number; messagesOut: number } | undefined {
    const s = this.#linkTo(node)?.stats;
    return s && { bytesIn: s.bytesIn, bytesOut: s.bytesOut, messagesIn: s.envelopesIn, messagesOut: s.envelopesOut };
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
    this.#dialer?.stop();
    this.#options.revocation?.off('reloaded', this.#onRevocationList);
    this.#options.revocation?.off('invalid', this.#onRevocationInvalid);
    for (const link of this.#links.values()) link.flush();
    await this.#server?.close();
    this.#deadLetters.close();
    this.membership.clear();
    nact.stop(this.#root);
  }

  // ── internals: routing ─────────────────────────────────────────────────────────────────────────

  #assertRunning(): void {
    if (this.#shutdown) throw new TroupeError(ErrorCodes.SHUTDOWN, `${this.node} is shut down`);
  }

  #linkTo(node: string): Connection | undefined {
    return this.#server ? this.#links.get(node) : this.#hub !== undefined ? this.#links.get(this.#hub) : undefined;
  }

  #deliverLocal(path: string, msg: unknown, q: ActorRef | undefined, from?: string): void {
    const receiver = this.#receivers.get(path);
    if (receiver) return receiver(msg);
    const local = this.#actors.get(path);
    if (local && !local.actor.stopped) return local.actor.dispatch(msg, from === undefined ? NO_SENDER : this.#senderOf(from));
    const to = new ActorRef(this.node, path);
    this.#deadLetters.record(to, msg, ErrorCodes.NO_SUCH_ACTOR);
    if (q) this.#undeliverable(q, ErrorCodes.NO_SUCH_ACTOR, `no actor at ${to}`);
  }

  /** One frozen sender per node: what a behaviour reads as `ctx.from`. */
  #senders = new Map<string, RemoteSender>();
  #senderOf(node: string): RemoteSender {
    let sender = this.#senders.get(node);
    if (!sender) {
      if (this.#senders.size > 10_000) this.#senders.clear();
      this.#senders.set(node, (sender = Object.freeze(new RemoteSender(node))));
    }
    return sender;
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
    const hub = this.#hub;
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
    else this.#toHub(envelope);
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
    const link = this.#hub !== undefined ? this.#links.get(this.#hub) : undefined;
    return link !== undefined && link.send(envelope);
  }

  /** `from`: the connection a remote envelope came on; its peer's role decides the reserved keys. */
  #applyRegistry(envelope: Extract<Envelope, { t: 'checkIn' | 'checkOut' | 'subscribe' | 'unsubscribe' | 'lookup' }>, from?: Connection): void {
    const registry = this.#registry!;
    switch (envelope.t) {
      case 'checkIn': {
        const refused = from ? registry.refusal(envelope.key, from.peer.role) : undefined;
        // Refused input: logged once per code per connection, a strike against it.
        if (refused) return from!.refuse(ErrorCodes.FORBIDDEN, refused);
        if (this.isAlive(envelope.ref)) registry.checkIn(envelope.key, envelope.ref, envelope.meta);
        return;
      }
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

  // ── internals: connections ─────────────────────────────────────────────────────────────────────

  #hello(): Hello {
    return { t: 'hello', protocol: PROTOCOL_VERSION, node: this.node, role: this.role, incarnation: this.incarnation, meta: this.#options.meta ?? {} };
  }

  async #listen(at: { host: string; port: number }): Promise<void> {
    const { identity } = this.#options;
    const server = new TransportServer({
      tls: identity,
      host: at.host,
      port: at.port,
      settings: this.settings.transport,
      log: this.log,
      welcome: (): Welcome => ({ ...this.#hello(), t: 'welcome' }),
      accept: (hello, certificate) => this.#accept(hello, certificate),
    });
    const revocation = this.#options.revocation;
    if (revocation) {
      revocation.on('reloaded', this.#onRevocationList);
      revocation.on('invalid', this.#onRevocationInvalid);
    }
    server.on('connection', (connection: Connection) => this.#onSpoke(connection));
    server.on('refused', (refusal: { from: string; code: string; reason: string }) => this.emit('refused', refusal));
    this.#server = server;
    const address = await server.listen();
    this.log.info({ host: address.address, port: address.port }, 'manager listening');
    this.#settleReady.resolve();
  }

  #accept(hello: Hello, certificate: { name: string; serial: string }): Reject | undefined {
    if (this.#options.revocation?.isRevoked(certificate.serial)) {
      return { t: 'reject', code: ErrorCodes.REVOKED, reason: `the certificate of "${certificate.name}" (serial ${certificate.serial.toLowerCase()}) is revoked` };
    }
    if (hello.role === 'manager') return { t: 'reject', code: ErrorCodes.FORBIDDEN, reason: 'a manager cannot join another manager' };
    if (hello.node === this.node) return { t: 'reject', code: ErrorCodes.NAME_MISMATCH, reason: `"${hello.node}" is the manager's own name` };
    return undefined;
  }

  /** A new revocation list: every connected peer it names is disconnected now (its redial is refused). */
  #onRevocationList = (list: { number: number; entries: readonly unknown[] }): void => {
    this.log.info({ number: list.number, revoked: list.entries.length }, 'revocation list loaded');
    for (const link of [...this.#links.values()]) {
      const { peer } = link;
      if (link.closed || !this.#options.revocation!.isRevoked(peer.certSerial)) continue;
      this.log.warn({ peer: peer.node, certName: peer.certName, serial: peer.certSerial.toLowerCase() }, 'disconnecting a node whose certificate was revoked');
      // Nothing more from it is read, and it is down now: its redial is refused, it will not be back.
      link.onEnvelope = () => {};
      link.close(CLOSE_POLICY, ErrorCodes.REVOKED);
      this.membership.unreachable(peer.node, peer.incarnation, 0);
    }
  };

  #onRevocationInvalid = (err: TroupeError): void => {
    this.log.error({ code: err.code, reason: err.message }, 'revocation list refused');
  };

  #onSpoke(connection: Connection): void {
    const { peer } = connection;
    const previous = this.#links.get(peer.node);
    this.#links.set(peer.node, connection);
    if (previous && !previous.closed) {
      // The same node name: a worker that redialled, or a client process's own session redialled.
      this.log.warn({ peer: peer.node, certName: peer.certName }, 'a node connected again while its old connection was open; replacing it');
      previous.terminate('replaced');
    }
    connection.onEnvelope = (envelope, from) => this.#onEnvelope(envelope, from);
    connection.on('undeliverable', this.#onUnsendable);
    connection.on('close', (info: CloseInfo) => {
      if (this.#links.get(peer.node) === connection) {
        this.#links.delete(peer.node);
        this.log.info({ peer: peer.node, code: info.code, cause: info.cause }, 'node disconnected');
        this.emit('disconnected', peer.node, info);
        if (!this.#shutdown) this.membership.unreachable(peer.node, peer.incarnation, this.#downAfterMs);
      }
    });
    // The newcomer learns the table first, then everyone (the newcomer too) learns of it. The
    // table has the down members too: a node back after a short loss may still hold them as up.
    for (const m of this.membership.list()) {
      if (m.node !== this.node && m.node !== peer.node) {
        connection.send({ t: 'member', node: m.node, role: m.role, incarnation: m.incarnation, status: m.status, meta: m.meta });
      }
    }
    this.log.info({ peer: peer.node, certName: peer.certName, role: peer.role, address: peer.address }, 'node joined');
    this.membership.up({ node: peer.node, role: peer.role, incarnation: peer.incarnation, meta: peer.meta });
    this.emit('connected', peer.node);
  }

  #dial(at: { host: string; port: number }): void {
    const dialer = new Dialer({
      host: at.host,
      port: at.port,
      tls: this.#options.identity,
      settings: this.settings.transport,
      log: this.log,
      hello: () => this.#hello(),
    });
    this.#dialer = dialer;
    dialer.on('connected', (connection: Connection, welcome: Welcome) => this.#onHub(connection, welcome));
    dialer.on('failure', (error: TroupeError, detail: { fatal: boolean; retryInMs?: number }) => {
      this.emit('failure', error, detail);
      if (detail.fatal) this.#settleReady.reject(error);
    });
    dialer.start();
  }

  #onHub(connection: Connection, welcome: Welcome): void {
    const previous = this.#hub !== undefined ? this.membership.get(this.#hub) : undefined;
    if (previous && (previous.node !== welcome.node || previous.incarnation !== welcome.incarnation) && previous.status !== 'down') {
      // A new manager (or a restarted one): the old incarnation and all we knew through it are gone.
      this.membership.down(previous.node);
    }
    this.#hub = welcome.node;
    this.#links.set(welcome.node, connection);
    connection.onEnvelope = (envelope, from) => this.#onEnvelope(envelope, from);
    connection.on('undeliverable', this.#onUnsendable);
    connection.on('close', (info: CloseInfo) => {
      if (this.#links.get(welcome.node) === connection) this.#links.delete(welcome.node);
      this.emit('disconnected', welcome.node, info);
      // After shutdown a closing link changes nothing: no down timer outlives the node.
      if (this.#shutdown) return;
      this.log.warn({ manager: welcome.node, code: info.code, cause: info.cause }, 'lost the manager; reconnecting');
      this.membership.unreachable(welcome.node, welcome.incarnation, this.#downAfterMs);
    });
    this.log.info({ manager: welcome.node, address: connection.peer.address }, 'joined the manager');
    this.membership.up({ node: welcome.node, role: welcome.role, incarnation: welcome.incarnation, meta: welcome.meta });
    // Replay what the manager must know of us: check-ins, subscriptions, watches.
    for (const c of this.#registrations.checkIns.values()) if (this.isAlive(c.ref)) connection.send({ t: 'checkIn', ...c });
    for (const s of this.#registrations.subscriptions.values()) connection.send({ t: 'subscribe', ...s });
    for (const pair of this.#watches.outgoing()) connection.send({ t: 'watch', ...pair });
    this.emit('connected', welcome.node);
    this.#settleReady.resolve();
  }

  #onMember(event: MemberEvent): void {
    this.log.debug({ member: event.node, status: event.status, incarnation: event.incarnation }, 'membership');
    if (event.status === 'down') this.#nodeDown(event.node);
    if (this.#server && event.node !== this.node) {
      const envelope = { t: 'member', node: event.node, role: event.role, incarnation: event.incarnation, status: event.status, meta: event.meta } as const;
      for (const link of this.#links.values()) link.send(envelope);
    }
    for (const sub of this.#membershipSubscribers.values()) this.dispatch(sub, event);
    this.emit('member', event);
  }

  #nodeDown(node: string): void {
    for (const { watcher, target } of this.#watches.takeOutgoingTo(node)) this.dispatch(watcher, terminated(target, 'node-down'));
    this.#watches.dropWatchersOn(node);
    for (const [path, p] of this.#pending) if (p.node === node) this.#failPending(path, ErrorCodes.NODE_DOWN, `node ${node} went down`);
    for (const [id, sub] of this.#membershipSubscribers) if (sub.node === node) this.#membershipSubscribers.delete(id);
    this.#registry?.removeNode(node);
    if (node === this.#hub && !this.#server) {
      // Every other node was reached through the manager.
      for (const m of this.membership.list()) if (m.node !== this.node && m.node !== node) this.membership.down(m.node);
    }
  }

  #onEnvelope(envelope: Envelope, from: Connection): void {
    const peer = from.peer;
    if (HUB_ONLY.has(envelope.t) && peer.node !== this.#hub) {
      return from.refuse(ErrorCodes.FORBIDDEN, `only the manager may send "${envelope.t}"`);
    }
    switch (envelope.t) {
      case 'send': {
        // Who sent it: the peer, or (forwarded by the manager) the node the manager says it came from.
        const forwarded = this.#server === undefined && envelope.from !== undefined && envelope.from !== peer.node;
        const sender = forwarded ? this.membership.get(envelope.from!) : { node: peer.node, role: peer.role };
        const passing = this.#server !== undefined && envelope.to.node !== this.node;
        const verdict = sender ? this.catalog.check(envelope.msg, sender.role) : { ok: false as const, code: ErrorCodes.FORBIDDEN, reason: `unknown sender ${envelope.from}` };
        // The manager passes on types only the receiver knows; the receiver checks them.
        if (!verdict.ok && !(passing && verdict.code === ErrorCodes.UNKNOWN_MESSAGE)) {
          if (verdict.code === ErrorCodes.FORBIDDEN) this.log.warn({ peer: sender?.node ?? envelope.from, role: sender?.role, type: typeOf(envelope.msg) }, 'forbidden message refused');
          // A forwarded message is the original sender's doing, not the manager's: no strike on that link.
          // The query fails first: a refusal may be the strike that closes this link.
          if (envelope.q) this.#undeliverable(envelope.q, verdict.code, verdict.reason);
          if (forwarded) this.log.debug({ from: envelope.from, code: verdict.code, reason: verdict.reason }, 'refused a forwarded message');
          else from.refuse(verdict.code, verdict.reason);
          return;
        }
        const origin = forwarded ? envelope.from! : peer.node;
        const forged = this.#forgedClusterMessage(envelope.msg, origin);
        if (forged) {
          this.log.warn({ peer: origin, type: typeOf(envelope.msg) }, 'forged cluster message refused');
          if (envelope.q) this.#undeliverable(envelope.q, ErrorCodes.FORBIDDEN, forged);
          if (!forwarded) from.refuse(ErrorCodes.FORBIDDEN, forged);
          return;
        }
        if (envelope.to.node === this.node) {
          // The watch it answers is over: a later watch on the same actor is sent again (and fires at once).
          if ((envelope.msg as { type?: unknown }).type === 'terminated') this.#watches.removeOutgoing(envelope.to, (envelope.msg as Terminated).ref);
          return this.#deliverLocal(envelope.to.path, envelope.msg, envelope.q, origin);
        }
        return this.#forward({ ...envelope, from: peer.node }, envelope.to.node, from);
      }
      case 'undeliverable':
        if (envelope.to.node === this.node) return this.#failPending(envelope.to.path, envelope.code, envelope.reason);
        return this.#forward(envelope, envelope.to.node, from);
      case 'error':
        this.log.debug({ peer: peer.node, code: envelope.code, reason: envelope.reason }, 'peer refused something we sent');
        return;
      case 'member':
        return this.membership.apply(envelope);
      case 'watch':
      case 'unwatch': {
        if (!this.#mayActFor(envelope.watcher, from)) return;
        if (envelope.target.node !== this.node) return this.#forward(envelope, envelope.target.node, from);
        if (envelope.t === 'unwatch') return this.#watches.removeWatcher(envelope.target.path, envelope.watcher);
        if (this.isAlive(envelope.target)) this.#watches.addWatcher(envelope.target.path, envelope.watcher);
        else this.dispatch(envelope.watcher, terminated(envelope.target, 'stopped'));
        return;
      }
      case 'checkIn':
      case 'checkOut':
      case 'subscribe':
      case 'unsubscribe':
      case 'lookup': {
        if (!this.#registry) return from.refuse(ErrorCodes.INVALID_MESSAGE, `"${envelope.t}" goes to the manager`);
        const owner = envelope.t === 'subscribe' || envelope.t === 'unsubscribe' ? envelope.subscriber : envelope.t === 'lookup' ? envelope.replyTo : envelope.ref;
        if (!this.#mayActFor(owner, from)) return;
        return this.#applyRegistry(envelope, from);
      }
    }
  }

  /**
   * The cluster's own messages state facts only some nodes know: that an actor stopped (its own
   * node, or the manager for a node that went down), a receptionist listing and membership (the
   * manager). The catalog checks their shape; this checks who states them. Returns why not, or
   * undefined. (Without it a worker could tell the WorkerPool that another worker died.)
   */
  #forgedClusterMessage(msg: unknown, origin: string): string | undefined {
    const type = (msg as { type?: unknown }).type;
    if (origin === this.#hub) return undefined;
    if (type === 'terminated') {
      const ref = (msg as Terminated).ref;
      return ref.node === origin ? undefined : `${origin} may not report the termination of ${ref}`;
    }
    if (type === 'listing' || type === 'member') return `only the manager may send "${type}"`;
    return undefined;
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

  /** A node may only act for its own actors; the manager forwards for everyone. */
  #mayActFor(ref: ActorRef, from: Connection): boolean {
    if (ref.node === from.peer.node || from.peer.node === this.#hub) return true;
    this.log.warn({ peer: from.peer.node, claimed: ref.toString() }, 'a node tried to act for an actor of another node');
    from.refuse(ErrorCodes.FORBIDDEN, `${from.peer.node} may not act for ${ref}`);
    return false;
  }

  /** The manager passes an envelope on to the node it is for. */
  #forward(envelope: Envelope, node: string, from: Connection): void {
    if (!this.#server) return from.refuse(ErrorCodes.INVALID_MESSAGE, `this node does not forward (to ${node})`);
    const link = this.#links.get(node);
    if (link && link.send(envelope)) return;
    if (envelope.t === 'send') {
      this.#deadLetters.record(envelope.to, envelope.msg, ErrorCodes.NODE_DOWN);
      if (envelope.q) this.#undeliverable(envelope.q, ErrorCodes.NODE_DOWN, `node ${node} is down`);
    } else if (envelope.t === 'watch') {
      this.dispatch(envelope.watcher, terminated(envelope.target, 'node-down'));
    }
  }
}

/**
 * The receptionist as a node sees it; see receptionist.ts for the guarantees.
 */
export class Receptionist {
  constructor(private readonly system: ClusterSystem) {}

  /** Registers `ref` (a local actor) under `key` until it stops or its node goes down. */
  checkIn(key: string, ref: ActorRef, meta: Record<string, unknown> = {}): void {
    if (ref.node !== this.system.node) throw new TypeError(`only local actors check in here; ${ref} is not`);
    this.system.toRegistry({ t: 'checkIn', key, ref, meta });
  }

  checkOut(key: string, ref: ActorRef): void {
    this.system.toRegistry({ t: 'checkOut', key, ref });
  }

  /** `subscriber` (a local actor) gets a `listing` message now and after every change. */
  subscribe(key: string, subscriber: ActorRef): void {
    if (subscriber.node !== this.system.node) throw new TypeError(`only local actors subscribe here; ${subscriber} is not`);
    this.system.toRegistry({ t: 'subscribe', key, subscriber });
  }

  unsubscribe(key: string, subscriber: ActorRef): void {
    this.system.toRegistry({ t: 'unsubscribe', key, subscriber });
  }

  /**
   * Calls `onListing` with the current listing, then after every change, never before this returns
   * (so the callback may call the returned unsubscribe, on the manager too, where the registry is
   * local and answers at once), and never after the unsubscribe has been called.
   */
  listing(key: string, onListing: (entries: ListingEntry[]) => void): () => void {
    let stopped = false;
    // Listings that arrive before we return (on the manager: at once) wait for a microtask, and
    // any after them queue behind them, so the order stays the registry's.
    let early: ListingEntry[][] | undefined = [];
    const ref = this.system.receiver((msg) => {
      const entries = (msg as { entries: ListingEntry[] }).entries;
      if (early) early.push(entries);
      else if (!stopped) onListing(entries);
    });
    this.subscribe(key, ref);
    queueMicrotask(() => {
      for (const entries of early!) if (!stopped) onListing(entries);
      early = undefined;
    });
    return () => {
      if (stopped) return;
      stopped = true;
      this.unsubscribe(key, ref);
      this.system.dropReceiver(ref);
    };
  }

  /** The current entries under `key`, asked of the manager. */
  lookup(key: string, timeoutMs = this.system.settings.queryTimeoutMs): Promise<ListingEntry[]> {
    return this.system.lookupAtManager(key, timeoutMs);
  }
}

/** nact's `sender` of a message from another node: the node its connection says it came from. */
class RemoteSender {
  constructor(readonly node: string) {}
}

function terminated(ref: ActorRef, reason: Terminated['reason']): Terminated {
  return { type: 'terminated', ref, reason };
}

/** A query's temporary reply ref (see #request): someone waits on it. */
function isQueryPath(path: string): boolean {
  return path.startsWith('$q/');
}

function typeOf(msg: unknown): string {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string' ? (msg as { type: string }).type : typeof msg;
}
