/**
 * The receptionist: actors check in under a key (`worker`) with metadata, and others follow the
 * listing of a key instead of knowing where anyone is.
 *
 * Consistency: the manager holds the one authoritative registry (hub and spoke: no gossip, no
 * merge). Other nodes send it their check-ins and subscriptions and re-send them after every
 * reconnect, so a worker that rejoins a restarted manager checks in again without help.
 * Delivery: a subscriber first gets the current listing, then the whole listing again after every
 * change. Changes made in one event-loop turn (a node going down takes all its entries) are
 * published once, at the next turn: well under 250 ms, and no burst of half-updated listings.
 * Removal: an entry leaves when its actor stops or its node goes down.
 * Authority: keys the cluster relies on (protocols/receptionist-keys.ts) may be taken only by the
 * roles they are for; the manager asks `refusal` before it applies another node's check-in.
 */
import { ActorRef } from '../../protocols/actor-ref.js';
import type { Listing, ListingEntry } from '../../protocols/cluster-messages.js';
import { checkInRefusal, RESERVED_KEYS } from '../../protocols/receptionist-keys.js';
import type { Role } from '../../protocols/roles.js';
import type { Envelope } from '../../protocols/wire.js';
import { DeliveryError, ErrorCodes } from '../errors.js';

export type ListingSink = (to: ActorRef, listing: Listing) => void;

export class Registry {
  #entries = new Map<string, Map<string, ListingEntry>>();
  #subscribers = new Map<string, Map<string, ActorRef>>();
  /**
   * Each node's entries (key → ids), so that a node going down costs its own entries, not a walk
   * over every entry of every key (at 5,000 workers, 5,000 entries under `worker` per down).
   */
  #ofNode = new Map<string, Map<string, Set<string>>>();
  #dirty = new Set<string>();
  #scheduled = false;

  constructor(
    private readonly sink: ListingSink,
    private readonly reserved: ReadonlyMap<string, readonly Role[]> = RESERVED_KEYS,
  ) {}

  /** Why a node of `role` may not check in under `key` (a reserved key), or undefined. */
  refusal(key: string, role: Role): string | undefined {
    return checkInRefusal(key, role, this.reserved);
  }

  checkIn(key: string, ref: ActorRef, meta: Record<string, unknown>): void {
    let entries = this.#entries.get(key);
    if (!entries) this.#entries.set(key, (entries = new Map()));
    const id = ref.toString();
    entries.set(id, { ref, meta });
    let keys = this.#ofNode.get(ref.node);
    if (!keys) this.#ofNode.set(ref.node, (keys = new Map()));
    let ids = keys.get(key);
    if (!ids) keys.set(key, (ids = new Set()));
    ids.add(id);
    this.#changed(key);
  }

  checkOut(key: string, ref: ActorRef): void {
    const id = ref.toString();
    this.#ofNode.get(ref.node)?.get(key)?.delete(id);
    if (this.#entries.get(key)?.delete(id)) this.#changed(key);
  }

  subscribe(key: string, subscriber: ActorRef): void {
    let subs = this.#subscribers.get(key);
    if (!subs) this.#subscribers.set(key, (subs = new Map()));
    subs.set(subscriber.toString(), subscriber);
    this.sink(subscriber, this.listing(key));
  }

  unsubscribe(key: string, subscriber: ActorRef): void {
    this.#subscribers.get(key)?.delete(subscriber.toString());
  }

  listing(key: string): Listing {
    return { type: 'listing', key, entries: [...(this.#entries.get(key)?.values() ?? [])] };
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Forgets every entry and subscription of an actor that stopped. */
  removeRef(ref: ActorRef): void {
    const id = ref.toString();
    for (const ids of this.#ofNode.get(ref.node)?.values() ?? []) ids.delete(id);
    for (const [key, entries] of this.#entries) if (entries.delete(id)) this.#changed(key);
    for (const subs of this.#subscribers.values()) subs.delete(id);
  }

  /** Forgets every entry and subscription of a node that went down. */
  removeNode(node: string): void {
    for (const [key, ids] of this.#ofNode.get(node) ?? []) {
      const entries = this.#entries.get(key);
      for (const id of ids) if (entries?.delete(id)) this.#changed(key);
    }
    this.#ofNode.delete(node);
    for (const subs of this.#subscribers.values()) {
      for (const [id, sub] of subs) if (sub.node === node) subs.delete(id);
    }
  }

  #changed(key: string): void {
    this.#dirty.add(key);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const keys = [...this.#dirty];
      this.#dirty.clear();
      for (const key of keys) {
        const subs = this.#subscribers.get(key);
        if (!subs || subs.size === 0) continue;
        const listing = this.listing(key);
        for (const sub of subs.values()) this.sink(sub, listing);
      }
    });
  }
}

/**
 * What a node remembers of its own actors' check-ins and subscriptions, to replay them to the
 * manager after a reconnect and to withdraw them when the actor stops.
 */
export class LocalRegistrations {
  readonly checkIns = new Map<string, { key: string; ref: ActorRef; meta: Record<string, unknown> }>();
  readonly subscriptions = new Map<string, { key: string; subscriber: ActorRef }>();

  static id(key: string, ref: ActorRef): string {
    return `${key}\u0000${ref.toString()}`;
  }

  /** Removes and returns what the stopped actor at `path` had registered. */
  takeOf(path: string): { checkIns: { key: string; ref: ActorRef }[]; subscriptions: { key: string; subscriber: ActorRef }[] } {
    const checkIns = [];
    const subscriptions = [];
    for (const [id, c] of this.checkIns) if (c.ref.path === path) (this.checkIns.delete(id), checkIns.push(c));
    for (const [id, s] of this.subscriptions) if (s.subscriber.path === path) (this.subscriptions.delete(id), subscriptions.push(s));
    return { checkIns, subscriptions };
  }
}

/** What the Receptionist needs of its node (built by the ClusterSystem). */
export interface ReceptionistHost {
  readonly node: string;
  readonly queryTimeoutMs: number;
  isAlive(ref: ActorRef): boolean;
  dispatch(to: ActorRef, msg: unknown): void;
  receiver(fn: (msg: unknown) => void): ActorRef;
  dropReceiver(ref: ActorRef): void;
  /** Sends an envelope to the manager; false when there is no link to it now. */
  toHub(envelope: Envelope): boolean;
  /** The manager's node name, once known. */
  readonly manager: string | undefined;
  /** A query: `send` sends it with the reply ref, the promise gets the one answer. */
  request<R>(node: string, timeoutMs: number, what: string, send: (replyTo: ActorRef) => boolean): Promise<R>;
}

type RegistryEnvelope = Extract<Envelope, { t: 'checkIn' | 'checkOut' | 'subscribe' | 'unsubscribe' | 'lookup' }>;

/**
 * The receptionist as a node sees it (`cluster.receptionist`): the guarantees above. Its requests
 * go to the manager's registry (on the manager, to the registry it holds), and what this node's
 * actors registered is remembered to replay after a reconnect and to withdraw when they stop.
 */
export class Receptionist {
  #registrations = new LocalRegistrations();
  #registry: Registry | undefined;

  constructor(private readonly system: ReceptionistHost) {}

  /** On the manager: hold the one authoritative registry. */
  holdRegistry(): void {
    this.#registry = new Registry((to, listing) => this.system.dispatch(to, listing));
  }

  /** Registers `ref` (a local actor) under `key` until it stops or its node goes down. */
  checkIn(key: string, ref: ActorRef, meta: Record<string, unknown> = {}): void {
    if (ref.node !== this.system.node) throw new TypeError(`only local actors check in here; ${ref} is not`);
    this.#registrations.checkIns.set(LocalRegistrations.id(key, ref), { key, ref, meta });
    this.#send({ t: 'checkIn', key, ref, meta });
  }

  checkOut(key: string, ref: ActorRef): void {
    this.#registrations.checkIns.delete(LocalRegistrations.id(key, ref));
    this.#send({ t: 'checkOut', key, ref });
  }

  /** `subscriber` (a local actor) gets a `listing` message now and after every change. */
  subscribe(key: string, subscriber: ActorRef): void {
    if (subscriber.node !== this.system.node) throw new TypeError(`only local actors subscribe here; ${subscriber} is not`);
    this.#registrations.subscriptions.set(LocalRegistrations.id(key, subscriber), { key, subscriber });
    this.#send({ t: 'subscribe', key, subscriber });
  }

  unsubscribe(key: string, subscriber: ActorRef): void {
    this.#registrations.subscriptions.delete(LocalRegistrations.id(key, subscriber));
    this.#send({ t: 'unsubscribe', key, subscriber });
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
  lookup(key: string, timeoutMs = this.system.queryTimeoutMs): Promise<ListingEntry[]> {
    if (this.#registry) return Promise.resolve(this.#registry.listing(key).entries);
    const hub = this.system.manager;
    if (hub === undefined) return Promise.reject(new DeliveryError(ErrorCodes.NODE_UNREACHABLE, 'not connected to a manager yet'));
    return this.system
      .request<{ entries: ListingEntry[] }>(hub, timeoutMs, `lookup of "${key}"`, (replyTo) => this.system.toHub({ t: 'lookup', key, replyTo }))
      .then((listing) => listing.entries);
  }

  /** On the manager: why a node of `role` may not check in under `key` (a reserved key), or undefined. */
  refusal(key: string, role: Role): string | undefined {
    return this.#registry?.refusal(key, role);
  }

  /** On the manager: applies a receptionist envelope (a remote one has passed the inbound gate). */
  apply(envelope: RegistryEnvelope): void {
    const registry = this.#registry!;
    switch (envelope.t) {
      case 'checkIn':
        if (this.system.isAlive(envelope.ref)) registry.checkIn(envelope.key, envelope.ref, envelope.meta);
        return;
      case 'checkOut':
        return registry.checkOut(envelope.key, envelope.ref);
      case 'subscribe':
        return registry.subscribe(envelope.key, envelope.subscriber);
      case 'unsubscribe':
        return registry.unsubscribe(envelope.key, envelope.subscriber);
      case 'lookup':
        return this.system.dispatch(envelope.replyTo, registry.listing(envelope.key));
    }
  }

  /** On a new link to the manager: what it must know of this node's check-ins and subscriptions. */
  replay(hub: { send(envelope: Envelope): boolean }): void {
    for (const c of this.#registrations.checkIns.values()) if (this.system.isAlive(c.ref)) hub.send({ t: 'checkIn', ...c });
    for (const s of this.#registrations.subscriptions.values()) hub.send({ t: 'subscribe', ...s });
  }

  /** A local actor stopped: its check-ins and subscriptions go. */
  actorStopped(ref: ActorRef): void {
    const { checkIns, subscriptions } = this.#registrations.takeOf(ref.path);
    if (this.#registry) this.#registry.removeRef(ref);
    else {
      for (const c of checkIns) this.system.toHub({ t: 'checkOut', key: c.key, ref: c.ref });
      for (const s of subscriptions) this.system.toHub({ t: 'unsubscribe', key: s.key, subscriber: s.subscriber });
    }
  }

  /** A node went down: on the manager, its entries and subscriptions go. */
  nodeDown(node: string): void {
    this.#registry?.removeNode(node);
  }

  #send(envelope: Extract<Envelope, { t: 'checkIn' | 'checkOut' | 'subscribe' | 'unsubscribe' }>): void {
    if (this.#registry) this.apply(envelope);
    else this.system.toHub(envelope);
  }
}
