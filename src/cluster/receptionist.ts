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

export type ListingSink = (to: ActorRef, listing: Listing) => void;

export class Registry {
  #entries = new Map<string, Map<string, ListingEntry>>();
  #subscribers = new Map<string, Map<string, ActorRef>>();
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
    entries.set(ref.toString(), { ref, meta });
    this.#changed(key);
  }

  checkOut(key: string, ref: ActorRef): void {
    if (this.#entries.get(key)?.delete(ref.toString())) this.#changed(key);
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
    for (const [key, entries] of this.#entries) if (entries.delete(id)) this.#changed(key);
    for (const subs of this.#subscribers.values()) subs.delete(id);
  }

  /** Forgets every entry and subscription of a node that went down. */
  removeNode(node: string): void {
    for (const [key, entries] of this.#entries) {
      for (const [id, entry] of entries) {
        if (entry.ref.node === node) {
          entries.delete(id);
          this.#changed(key);
        }
      }
    }
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
