/**
 * Termination watches, the bookkeeping on both ends.
 *
 * A watch is registered where the target lives (so its node can say `stopped` when the actor stops)
 * and remembered where the watcher lives (so that node can say `node-down` itself when the
 * target's node goes down: the target's node cannot). A watch on an actor that does not exist, or
 * whose node is already down, fires at once. After a reconnect the watcher's node re-sends its
 * watches, so a manager that lost them with a connection learns them again.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { Terminated } from '../../protocols/cluster-messages.js';
import type { Envelope } from '../../protocols/wire.js';

export interface WatchPair {
  watcher: ActorRef;
  target: ActorRef;
}

function pairId(watcher: ActorRef, target: ActorRef): string {
  return `${watcher.toString()}\u0000${target.toString()}`;
}

export class WatchBook {
  /** Local target path → its watchers (local or remote). */
  #watchersOf = new Map<string, Map<string, ActorRef>>();
  /** Remote target node → the watches our actors hold on its actors. */
  #outgoing = new Map<string, Map<string, WatchPair>>();

  addWatcher(targetPath: string, watcher: ActorRef): void {
    let watchers = this.#watchersOf.get(targetPath);
    if (!watchers) this.#watchersOf.set(targetPath, (watchers = new Map()));
    watchers.set(watcher.toString(), watcher);
  }

  removeWatcher(targetPath: string, watcher: ActorRef): void {
    const watchers = this.#watchersOf.get(targetPath);
    if (!watchers) return;
    watchers.delete(watcher.toString());
    if (watchers.size === 0) this.#watchersOf.delete(targetPath);
  }

  /** Removes and returns the watchers of a local actor that stopped. */
  takeWatchers(targetPath: string): ActorRef[] {
    const watchers = this.#watchersOf.get(targetPath);
    this.#watchersOf.delete(targetPath);
    return watchers ? [...watchers.values()] : [];
  }

  /** Forgets the watchers that lived on a node that went down. */
  dropWatchersOn(node: string): void {
    for (const [path, watchers] of this.#watchersOf) {
      for (const [id, w] of watchers) if (w.node === node) watchers.delete(id);
      if (watchers.size === 0) this.#watchersOf.delete(path);
    }
  }

  addOutgoing(watcher: ActorRef, target: ActorRef): boolean {
    let pairs = this.#outgoing.get(target.node);
    if (!pairs) this.#outgoing.set(target.node, (pairs = new Map()));
    const id = pairId(watcher, target);
    if (pairs.has(id)) return false;
    pairs.set(id, { watcher, target });
    return true;
  }

  removeOutgoing(watcher: ActorRef, target: ActorRef): boolean {
    return this.#outgoing.get(target.node)?.delete(pairId(watcher, target)) ?? false;
  }

  /** Removes and returns the watches on actors of a node that went down. */
  takeOutgoingTo(node: string): WatchPair[] {
    const pairs = this.#outgoing.get(node);
    this.#outgoing.delete(node);
    return pairs ? [...pairs.values()] : [];
  }

  /** Removes and returns the outgoing watches held by a local actor that stopped. */
  takeOutgoingOf(watcherPath: string): WatchPair[] {
    const taken: WatchPair[] = [];
    for (const pairs of this.#outgoing.values()) {
      for (const [id, pair] of pairs) if (pair.watcher.path === watcherPath) (pairs.delete(id), taken.push(pair));
    }
    return taken;
  }

  outgoing(): WatchPair[] {
    return [...this.#outgoing.values()].flatMap((pairs) => [...pairs.values()]);
  }
}

export function terminated(ref: ActorRef, reason: Terminated['reason']): Terminated {
  return { type: 'terminated', ref, reason };
}

/** What a node's watches need of it. */
export interface WatchHost {
  readonly node: string;
  /** A live local actor, or an actor on a node that is up. */
  isAlive(ref: ActorRef): boolean;
  dispatch(to: ActorRef, msg: unknown): void;
  /** Sends an envelope on the link that carries messages to `node`, if there is one. */
  send(node: string, envelope: Envelope): void;
}

/** The watches of one node, both ends: the book above and the messages that keep it. */
export class Watches {
  readonly #book = new WatchBook();

  constructor(private readonly host: WatchHost) {}

  /** `watcher` (a local actor) is told `terminated` when `target` stops or its node goes down. */
  watch(watcher: ActorRef, target: ActorRef): void {
    const { host } = this;
    if (watcher.node !== host.node) throw new TypeError(`the watcher ${watcher} must be a local actor`);
    if (target.node === host.node) return this.accept({ t: 'watch', watcher, target });
    if (!host.isAlive(target)) return host.dispatch(watcher, terminated(target, 'node-down'));
    if (this.#book.addOutgoing(watcher, target)) host.send(target.node, { t: 'watch', watcher, target });
  }

  unwatch(watcher: ActorRef, target: ActorRef): void {
    if (target.node === this.host.node) this.#book.removeWatcher(target.path, watcher);
    else if (this.#book.removeOutgoing(watcher, target)) this.host.send(target.node, { t: 'unwatch', watcher, target });
  }

  /** A watch (or unwatch) of a local target, from here or from another node. */
  accept(envelope: Extract<Envelope, { t: 'watch' | 'unwatch' }>): void {
    if (envelope.t === 'unwatch') return this.#book.removeWatcher(envelope.target.path, envelope.watcher);
    if (this.host.isAlive(envelope.target)) this.#book.addWatcher(envelope.target.path, envelope.watcher);
    else this.host.dispatch(envelope.watcher, terminated(envelope.target, 'stopped'));
  }

  /** A message for a local actor arrived: when it is a `terminated`, the watch it answers is over. */
  delivered(to: ActorRef, msg: unknown): void {
    // A later watch on the same actor is sent again (and fires at once).
    if ((msg as { type?: unknown }).type === 'terminated') this.#book.removeOutgoing(to, (msg as Terminated).ref);
  }

  /** A local actor stopped: its watchers are told, and the watches it held are withdrawn. */
  actorStopped(ref: ActorRef): void {
    for (const watcher of this.#book.takeWatchers(ref.path)) this.host.dispatch(watcher, terminated(ref, 'stopped'));
    for (const pair of this.#book.takeOutgoingOf(ref.path)) this.host.send(pair.target.node, { t: 'unwatch', ...pair });
  }

  /** A node went down: our watches on its actors fire, and its watchers here are forgotten. */
  nodeDown(node: string): void {
    for (const { watcher, target } of this.#book.takeOutgoingTo(node)) this.host.dispatch(watcher, terminated(target, 'node-down'));
    this.#book.dropWatchersOn(node);
  }

  /** On a new link to the manager: every watch our actors hold on other nodes' actors. */
  replay(hub: { send(envelope: Envelope): boolean }): void {
    for (const pair of this.#book.outgoing()) hub.send({ t: 'watch', ...pair });
  }
}
