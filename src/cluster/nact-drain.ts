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
 * An actor spawned `inline` (spawn-options.ts) is not made to wait for a turn at all when nothing
 * else runs: a message sent on its own node (a timer, a promise callback: a submitter in this
 * process) while it is idle, while no actor's turn is under way and no actor of its node waits for
 * its setImmediate, is handled before `dispatch` returns, by the same drain loop. A message from
 * another node still waits for a turn: what one poll phase reads from many links is then handled
 * in one drain, and what that sends to one peer goes in one frame (inline, each result from another
 * worker was a frame of its own to the submitter: the manager's CPU per task grew at 1,000
 * workers). Otherwise, too, it is queued as before:
 * inside any actor's turn (its own included), so no behaviour ever runs inside another's; behind
 * the turns other actors wait for, so it never overtakes what was sent to them before it (the
 * Controller would otherwise place a task on a worker whose end the pool has not yet been told);
 * and one that finds it busy waits in its mailbox, in order, as for every actor.
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

/** Actors spawned `inline` (see above). */
const inlineActors = new WeakSet<object>();
/** Drains under way (in this call stack): an inline actor's message waits while one is. */
let draining = 0;
/**
 * Per actor system (one a node), its actors whose drain waits for its setImmediate: an inline
 * actor's message waits behind them. Two nodes in one process order nothing between them.
 */
const scheduled = new WeakMap<object, Set<NactActor>>();

/** How many actors, on every node of this process, wait for their drain's setImmediate. */
let waiting = 0;

/** Actors (all nodes of this process) whose drain waits for its setImmediate: an inline actor's message sent now is handled inline only at 0 on its node. */
export function turnsWaiting(): number {
  return waiting;
}

function scheduledOf(actor: NactActor): Set<NactActor> {
  let set = scheduled.get(actor.system);
  if (!set) scheduled.set(actor.system, (set = new Set()));
  return set;
}

/** A drain in its own turn, as every actor's is: `scheduled` knows of it until it begins or is cleared. */
function schedule(actor: NactActor, message: unknown, sender: unknown): void {
  const set = scheduledOf(actor);
  if (!set.has(actor)) (set.add(actor), (waiting += 1));
  actor.immediate = setImmediate(scheduledDrain, actor, message, sender);
}

function scheduledDrain(actor: NactActor, message: unknown, sender: unknown): void {
  if (scheduledOf(actor).delete(actor)) waiting -= 1;
  drain(actor, message, sender);
}

/** Marks a (just spawned) nact actor inline: see the module comment. */
export function markInline(actor: object): void {
  inlineActors.add(actor);
}

function drain(actor: NactActor, message: unknown, sender: unknown): void {
  draining += 1;
  try {
    drainLoop(actor, message, sender);
  } finally {
    draining -= 1;
  }
}

function drainLoop(actor: NactActor, message: unknown, sender: unknown): void {
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
        schedule(actor, queued.message, queued.sender);
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
    if (sender === NO_SENDER && draining === 0 && inlineActors.has(this) && scheduledOf(this).size === 0) drain(this, message, sender);
    else schedule(this, message, sender);
  };
  // nact's own (stop clears a drain that has not begun), and that drain no longer waits.
  Actor.prototype.clearImmediate = function clearDrain(this: NactActor) {
    if (scheduledOf(this).delete(this)) waiting -= 1;
    clearImmediate(this.immediate);
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
