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
