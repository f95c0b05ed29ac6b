/**
 * The WorkerPool (on the manager): follows the receptionist listing of `worker`, watches each
 * worker, knows each one's slots, tags and running tasks, and places tasks: on the least-loaded
 * worker that matches the task's selector, or in a FIFO queue while none is free.
 *
 * The Controller owns the task table and talks to the pool through `PoolCommands` (local calls,
 * one process); the pool tells the Controller what happened with local messages (`PoolEvent`).
 *
 * Authority: a worker speaks only for itself. `workerState`, `workerUsage` and `workRefused` are
 * taken only from the node they are about (the sending node as its connection says, never a field
 * of the message), and a refusal only for a task placed on that worker; the rest is refused
 * (TROUPE_E_FORBIDDEN, logged at most once per node per interval) and changes nothing.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { ListingEntry, Terminated } from '../../protocols/cluster-messages.js';
import type { Usage, WorkerState, WorkerUsage, WorkRefused, WorkSpec } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes } from '../../src/errors.js';
import { RefusalLog } from './refusal-log.js';
import { matches, type Selector, type WorkerTraits } from './selector.js';

import { WORKER_KEY } from '../../protocols/receptionist-keys.js';


export interface PoolWorker extends WorkerTraits {
  ref: ActorRef;
  slots: number;
  running: Set<string>;
  usage?: Usage;
}

interface Queued {
  spec: WorkSpec;
  selector: Selector;
  subscribers: readonly ActorRef[];
  /** Which run of the task this is, from 1. */
  attempt: number;
}

/** What the pool tells the Controller (local messages). */
export type PoolEvent =
  | { type: 'pool.lost'; ids: string[]; worker: string; reason: string }
  | { type: 'pool.refused'; id: string; worker: string; code: string; reason: string }
  | { type: 'pool.state'; state: WorkerState };

type PoolMessage = { type: 'listing'; key: string; entries: ListingEntry[] } | Terminated | WorkerState | WorkerUsage | WorkRefused;

/** The pool's knowledge; the actor below feeds it, the Controller reads it and places tasks with it. */
export class Pool {
  readonly workers = new Map<string, PoolWorker>();
  readonly queue: Queued[] = [];
  /**
   * Called as a task is handed to a worker. A call, not a message: placing happens in the
   * Controller's turn (submit) as often as in the pool's (a slot freed), and the table must say
   * "running" before the submitter hears anything, with no extra turn on the way.
   */
  onStarted: (id: string, worker: string, at: number) => void = () => {};

  constructor(
    private readonly system: ClusterSystem,
    private readonly self: () => ActorRef,
    private readonly controller: ActorRef,
  ) {}

  /** True when some worker in the cluster matches, free or not. */
  anyMatch(selector: Selector): boolean {
    for (const w of this.workers.values()) if (matches(selector, w)) return true;
    return false;
  }

  matching(selector: Selector): PoolWorker[] {
    return [...this.workers.values()].filter((w) => matches(selector, w)).sort(byName);
  }

  /**
   * Runs the task on the least-loaded free matching worker, or queues it. Queued tasks start in
   * order (a retry goes first); a task waits only behind tasks that want the same busy workers.
   */
  place(spec: WorkSpec, selector: Selector, subscribers: readonly ActorRef[], front = false, attempt = 1): void {
    if (front) this.queue.unshift({ spec, selector, subscribers, attempt });
    else this.queue.push({ spec, selector, subscribers, attempt });
    this.drain();
  }

  /** A task ended (or was lost) on a worker: its slot is free. */
  release(worker: string, id: string): void {
    this.workers.get(worker)?.running.delete(id);
    this.drain();
  }

  /** Removes a queued task; false when it was not queued. */
  unqueue(id: string): boolean {
    const at = this.queue.findIndex((q) => q.spec.id === id);
    if (at < 0) return false;
    this.queue.splice(at, 1);
    return true;
  }

  cancelRunning(worker: string, id: string): void {
    const w = this.workers.get(worker);
    if (w) this.system.dispatch(w.ref, { type: 'cancelWork', id });
  }

  /** Starts queued tasks, in order, while workers are free for them. */
  drain(): void {
    for (let i = 0; i < this.queue.length; ) {
      const q = this.queue[i]!;
      const worker = this.#pick(q.selector);
      if (worker) {
        this.queue.splice(i, 1);
        this.#start(worker, q);
      } else {
        i += 1;
      }
    }
  }

  // ── fed by the actor ───────────────────────────────────────────────────────────────────────────

  onListing(entries: readonly ListingEntry[]): void {
    const seen = new Set<string>();
    for (const { ref, meta } of entries) {
      seen.add(ref.node);
      const known = this.workers.get(ref.node);
      if (known && known.ref.equals(ref)) continue;
      if (known) this.#gone(known, 'replaced by a new incarnation');
      const worker: PoolWorker = { ref, ...traits(ref.node, meta), running: new Set() };
      this.workers.set(ref.node, worker);
      this.system.watch(this.self(), ref);
      // Introduce ourselves: the worker answers with the tasks it still runs (after a manager restart).
      this.system.dispatch(ref, { type: 'poolHello', pool: this.self(), reportTo: this.controller });
    }
    for (const worker of [...this.workers.values()]) if (!seen.has(worker.name)) this.#gone(worker, 'left the cluster');
    this.drain();
  }

  onTerminated(msg: Terminated): void {
    const worker = this.workers.get(msg.ref.node);
    if (worker && worker.ref.equals(msg.ref)) this.#gone(worker, msg.reason === 'node-down' ? 'its node went down' : 'its Worker actor stopped');
  }

  onState(state: WorkerState): void {
    const worker = this.workers.get(state.worker);
    if (!worker) return;
    for (const { task } of state.running) worker.running.add(task.id);
    this.system.dispatch(this.controller, { type: 'pool.state', state } satisfies PoolEvent);
  }

  onUsage(usage: Usage): void {
    const worker = this.workers.get(usage.worker);
    if (worker) worker.usage = usage;
  }

  onRefused(worker: string, msg: WorkRefused): void {
    this.workers.get(worker)?.running.delete(msg.id);
    this.system.dispatch(this.controller, { type: 'pool.refused', id: msg.id, worker, code: msg.code, reason: msg.reason } satisfies PoolEvent);
  }

  #gone(worker: PoolWorker, reason: string): void {
    this.workers.delete(worker.name);
    this.system.unwatch(this.self(), worker.ref);
    const ids = [...worker.running];
    if (ids.length > 0) this.system.dispatch(this.controller, { type: 'pool.lost', ids, worker: worker.name, reason: `worker ${worker.name} ${reason}` } satisfies PoolEvent);
  }

  /** Least loaded by running/slots, then fewest running, then name: deterministic. */
  #pick(selector: Selector): PoolWorker | undefined {
    let best: PoolWorker | undefined;
    for (const w of this.workers.values()) {
      if (w.running.size >= w.slots || !matches(selector, w)) continue;
      if (!best || load(w) < load(best) || (load(w) === load(best) && (w.running.size < best.running.size || (w.running.size === best.running.size && w.name < best.name)))) best = w;
    }
    return best;
  }

  #start(worker: PoolWorker, { spec, subscribers, attempt }: Queued): void {
    worker.running.add(spec.id);
    this.system.dispatch(worker.ref, { type: 'work', task: spec, reportTo: this.controller, subscribers, attempt });
    this.onStarted(spec.id, worker.name, Date.now());
  }
}

/** Spawns the WorkerPool actor; returns its ref and the Pool it feeds. */
export function spawnWorkerPool(system: ClusterSystem, controller: ActorRef, name = 'pool'): { ref: ActorRef; pool: Pool } {
  let ref!: ActorRef;
  const pool = new Pool(system, () => ref, controller);
  const refusals = new RefusalLog(system.log);
  const forbidden = (sender: string, type: string, reason: string) =>
    refusals.refused(sender, { type, code: ErrorCodes.FORBIDDEN, reason }, 'a worker spoke for what is not its own; refused');
  ref = system.spawn<null, PoolMessage>(
    (state, msg, ctx) => {
      // The node that sent it, as its connection says; this node for a local message.
      const sender = ctx.from ?? system.node;
      switch (msg.type) {
        case 'listing':
          pool.onListing(msg.entries);
          break;
        case 'terminated':
          pool.onTerminated(msg);
          break;
        case 'workerState':
          if (msg.worker !== sender) forbidden(sender, msg.type, `state of ${msg.worker}`);
          else pool.onState(msg);
          break;
        case 'workerUsage':
          if (msg.usage.worker !== sender) forbidden(sender, msg.type, `usage of ${msg.usage.worker}`);
          else pool.onUsage(msg.usage);
          break;
        case 'workRefused':
          // Only the worker the task was placed on may give it back.
          if (pool.workers.get(sender)?.running.has(msg.id)) pool.onRefused(sender, msg);
          else forbidden(sender, msg.type, `task ${msg.id} is not running there`);
          break;
      }
      return state;
    },
    name,
    { initialState: null, onCrash: 'resume' },
  );
  system.receptionist.subscribe(WORKER_KEY, ref);
  return { ref, pool };
}

function traits(node: string, meta: Record<string, unknown>): Omit<PoolWorker, 'ref' | 'running'> {
  const tags = Array.isArray(meta.tags) ? meta.tags.filter((t): t is string => typeof t === 'string') : [];
  const slots = typeof meta.slots === 'number' && Number.isInteger(meta.slots) && meta.slots >= 0 ? meta.slots : 1;
  return { name: node, tags, slots, platform: typeof meta.platform === 'string' ? meta.platform : '', arch: typeof meta.arch === 'string' ? meta.arch : '' };
}

function load(w: PoolWorker): number {
  return w.slots === 0 ? Infinity : w.running.size / w.slots;
}

function byName(a: PoolWorker, b: PoolWorker): number {
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}
