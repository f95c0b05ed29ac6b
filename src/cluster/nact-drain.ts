/**
 * nact processes every message in its own setImmediate turn, through `await`, which caps one actor
 * at about 470,000 messages/s on a 2-core machine: below what one connection delivers. This
 * replaces nact's Actor#handleMessage with a drain loop that keeps nact's semantics exactly (one
 * message at a time, in mailbox order, state threaded from each return to the next call, faults to
 * the actor's supervision policy, nothing after stop) but runs consecutive synchronous behaviours
 * in one turn, until the mailbox is empty or the actor has held the event loop for DRAIN_SLICE_MS
 * (the clock is read every DRAIN_CHECK_EVERY messages), then yields to I/O. A behaviour that
 * returns a promise is awaited before the next message, as before.
 *
 * Why a time slice and not a fixed count: one poll phase can hand over a megabyte or more from a
 * single socket (libuv reads a stream up to 32 times before it moves on), tens of thousands of
 * messages. With a fixed 256 a turn, an actor fell ever further behind a busy connection: in the
 * transport benchmark its mailbox grew to the whole run (two million messages, half a gigabyte of
 * heap) and the garbage collector ate the difference. Draining what is there, within a bound on
 * how long I/O and timers wait, keeps a mailbox near one turn's intake (about 24,000 there).
 *
 * Per-message garbage is trimmed as well, without changing what a behaviour sees: `NO_SENDER` is
 * one shared, frozen stand-in for nact's `new Nobody()` (four objects a message), and a context for
 * an actor without children gets a fresh empty Map instead of a copy of an empty one.
 *
 * Installed once, on import, by the ClusterSystem.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Actor as NactActor } from 'nact/lib/actor.js';

/** How long one actor may hold the event loop before it yields to I/O and timers (ms). */
export const DRAIN_SLICE_MS = 5;
/** Messages between two reads of the clock: a slow behaviour can overrun the slice by this many. */
export const DRAIN_CHECK_EVERY = 256;

const require = createRequire(import.meta.url);
const { Actor } = require('nact/lib/actor.js') as { Actor: typeof NactActor };
const { Nobody } = require('nact/lib/references.js') as { Nobody: new () => { system: object; path: { parts: unknown[] } } };

/** The sender of a message that has none (every message troupe delivers): what nact would make, shared. */
export const NO_SENDER: unknown = (() => {
  const nobody = new Nobody();
  Object.freeze(nobody.system);
  Object.freeze(nobody.path.parts);
  Object.freeze(nobody.path);
  return Object.freeze(nobody);
})();

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function drain(actor: NactActor, message: unknown, sender: unknown): void {
  const deadline = performance.now() + DRAIN_SLICE_MS;
  for (let budget = DRAIN_CHECK_EVERY; ; ) {
    let next: unknown;
    try {
      const ctx = actor.createContext(sender);
      next = actor.f.call(ctx, actor.state, message, ctx);
    } catch (err) {
      actor.handleFault(message, sender, err);
      return;
    }
    if (isThenable(next)) {
      const [m, s] = [message, sender];
      next.then(
        (state) => {
          actor.state = state;
          actor.afterMessage();
          actor.processNext();
        },
        (err) => actor.handleFault(m, s, err),
      );
      return;
    }
    actor.state = next;
    actor.afterMessage();
    if (actor.stopped) return;
    const queued = actor.mailbox.shift();
    if (!queued) {
      actor.busy = false;
      actor.setTimeout();
      return;
    }
    if (--budget === 0) {
      if (performance.now() >= deadline) {
        actor.immediate = setImmediate(drain, actor, queued.message, queued.sender);
        return;
      }
      budget = DRAIN_CHECK_EVERY;
    }
    message = queued.message;
    sender = queued.sender;
  }
}

let installed = false;

export function installDrainLoop(): void {
  if (installed) return;
  installed = true;
  Actor.prototype.handleMessage = function handleMessage(this: NactActor, message: unknown, sender: unknown) {
    this.busy = true;
    this.immediate = setImmediate(drain, this, message, sender);
  };
  // nact's own, field for field, but `new Map(empty)` iterates for nothing on every message.
  Actor.prototype.createContext = function createContext(this: NactActor, sender: unknown) {
    return {
      parent: this.parent ? this.parent.reference : undefined,
      path: this.path,
      self: this.reference,
      name: this.name,
      children: this.childReferences.size === 0 ? new Map() : new Map(this.childReferences),
      sender,
      log: this.log,
    };
  };
}
