/**
 * The WorkerPool (on the manager): follows the receptionist listing of `worker`, watches each
 * worker, knows each one's slots, tags and running tasks, and places tasks: on the least-loaded
 * worker that matches the task's selector, or in a FIFO queue while none is free.
 *
 * The pool is a plain object owned by the Controller (`WorkerPool`), not an actor of its own: the
 * Controller is its only caller and needs synchronous answers (which workers match, place this
 * now, so that a submit's reply already says where its task started). What the pool learns it
 * tells the Controller through callbacks (`PoolEvents`), called once the pool's own state is
 * updated. It keeps a tiny receiver actor (`pool`) whose only job is to forward to the object what
 * arrives by message: the receptionist's listing of `worker`, `terminated` for the workers it
 * watches, and what workers send it (`workerState`, `workerUsage`, `workRefused`). The receiver
 * stays a separate actor rather than the Controller itself so that workers keep one address for
 * the pool (given in `poolHello`) and the Controller's mailbox takes only task traffic; both run
 * on the manager's one event loop, so a callback never races a Controller turn.
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
import { before, FreeWorkers } from './free-workers.js';
import { RefusalLog } from './refusal-log.js';
import { ResultAcks } from './result-acks.js';
import { DEFAULT_RESULT_ACK_DELAY_MS } from './controller-settings.js';
import { workerTraits } from '../../protocols/worker-meta.js';
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

interface QueuedEntry extends Queued {
  /** Its place in the one queue order (see WorkerPool.#queues). */
  order: number;
  /** Unqueued: skipped (and dropped) when it reaches the head. */
  removed: boolean;
}

/** A FIFO that also takes entries in front, O(1) each way; removed entries are skipped at the head. */
class TaskQueue {
  #items: QueuedEntry[] = [];
  #head = 0;
  /** Entries put in front, the latest last. */
  #front: QueuedEntry[] = [];

  push(e: QueuedEntry): void {
    this.#items.push(e);
  }

  unshift(e: QueuedEntry): void {
    this.#front.push(e);
  }

  /** The first entry not removed (dropping removed ones on the way); undefined when empty. */
  peek(): QueuedEntry | undefined {
    for (;;) {
      const f = this.#front[this.#front.length - 1];
      if (f) {
        if (!f.removed) return f;
        this.#front.pop();
        continue;
      }
      const e = this.#items[this.#head];
      if (!e) return undefined;
      if (!e.removed) return e;
      this.#advance();
    }
  }

  shift(): void {
    if (this.#front.length > 0) this.#front.pop();
    else this.#advance();
  }

  #advance(): void {
    this.#head += 1;
    if (this.#head === this.#items.length) (this.#items = []), (this.#head = 0);
    else if (this.#head > 1024 && this.#head * 2 > this.#items.length) (this.#items = this.#items.slice(this.#head)), (this.#head = 0);
  }
}

/** What the pool tells the Controller, as calls (each once the pool's own state is updated). */
export interface PoolEvents {
  /**
   * A task is handed to a worker. Placing happens in the Controller's turn (submit) as often as in
   * the pool's (a slot freed), and the table must say "running" before the submitter hears anything.
   */
  started(id: string, worker: string, at: number): void;
  /** `worker` is gone (left, went down, stopped, replaced) with these tasks on it. */
  lost(ids: string[], worker: string, reason: string): void;
  /** `worker` (the one the task was placed on) gave the task back. */
  refused(id: string, worker: string, code: string, reason: string): void;
  /** A worker reported what it runs and holds (after the pool's hello). */
  state(state: WorkerState): void;
  /** A worker joined (or came back as a new incarnation): a submission waiting for one may match now. */
  joined(worker: PoolWorker): void;
}

type PoolMessage = { type: 'listing'; key: string; entries: ListingEntry[] } | Terminated | WorkerState | WorkerUsage | WorkRefused;

/** The pool's knowledge; its receiver actor feeds it, the Controller reads it and places tasks with it. */
export class WorkerPool {
  readonly workers = new Map<string, PoolWorker>();
  /**
   * Queued tasks, one FIFO per selector (most tasks share one), each entry numbered in queue order
   * (a retry put in front gets a number below every other): placing takes the earliest head among
   * the selectors a free worker matches, so the order is that of one queue, and a placement never
   * walks over the tasks that wait for busy workers.
   */
  readonly #queues = new Map<string, { selector: Selector; items: TaskQueue }>();
  /** Each queued task's entry, by id: for unqueue. */
  readonly #queued = new Map<string, QueuedEntry>();
  #front = 0;
  #back = 0;
  /** Workers with a free slot, least loaded first: a placement looks only at these. */
  readonly #free = new FreeWorkers<PoolWorker>();
  /** Acknowledgements of results on their way, to ride in the next work (result-acks.ts). */
  readonly #acks: ResultAcks;

  constructor(
    private readonly system: ClusterSystem,
    private readonly self: () => ActorRef,
    private readonly controller: ActorRef,
    private readonly events: PoolEvents,
    resultAckDelayMs = DEFAULT_RESULT_ACK_DELAY_MS,
  ) {
    this.#acks = new ResultAcks(system, resultAckDelayMs);
  }

  /** Tasks queued, waiting for a free matching worker. */
  get queued(): number {
    return this.#queued.size;
  }

  matching(selector: Selector): PoolWorker[] {
    return [...this.workers.values()].filter((w) => matches(selector, w)).sort(byName);
  }

  /** Whether any worker (busy or not) matches the selector; cheaper than matching() for the empty one. */
  anyMatching(selector: Selector): boolean {
    if (selector.terms.length === 0) return this.workers.size > 0;
    for (const w of this.workers.values()) if (matches(selector, w)) return true;
    return false;
  }

  /**
   * Runs the task on the least-loaded free matching worker, or queues it. Queued tasks start in
   * order (a retry goes first); a task waits only behind tasks that want the same busy workers.
   */
  place(spec: WorkSpec, selector: Selector, subscribers: readonly ActorRef[], front = false, attempt = 1): void {
    let q = this.#queues.get(selector.text);
    if (!q) this.#queues.set(selector.text, (q = { selector, items: new TaskQueue() }));
    const entry: QueuedEntry = { spec, selector, subscribers, attempt, order: front ? --this.#front : ++this.#back, removed: false };
    this.#drop(spec.id);
    this.#queued.set(spec.id, entry);
    if (front) q.items.unshift(entry);
    else q.items.push(entry);
    this.drain();
  }

  /** A task ended (or was lost) on a worker: its slot is free. */
  release(worker: string, id: string): void {
    const w = this.workers.get(worker);
    if (w) {
      w.running.delete(id);
      this.#keepFree(w);
    }
    this.drain();
  }

  /** Removes a queued task; false when it was not queued. */
  unqueue(id: string): boolean {
    return this.#drop(id);
  }

  /** The Controller has recorded task `id`'s result from `worker`: acknowledged soon, or with the next work there. */
  ack(worker: string, id: string): void {
    const w = this.workers.get(worker);
    if (w) this.#acks.hold(w.ref, id);
  }

  cancelRunning(worker: string, id: string): void {
    const w = this.workers.get(worker);
    if (w) this.system.dispatch(w.ref, { type: 'cancelWork', id });
  }

  /** Starts queued tasks, in order, while workers are free for them. */
  drain(): void {
    if (this.#queued.size === 0) return;
    while (this.#free.size > 0) {
      // The earliest queued task that some free worker matches: a start only takes free workers
      // away, so a selector passed over here stays so until the next drain.
      let best: { selector: Selector; items: TaskQueue } | undefined;
      let bestHead: QueuedEntry | undefined;
      for (const [text, q] of this.#queues) {
        const head = q.items.peek();
        if (!head) {
          this.#queues.delete(text);
          continue;
        }
        if (bestHead && head.order > bestHead.order) continue;
        if (!this.#anyFree(q.selector)) continue;
        best = q;
        bestHead = head;
      }
      if (!best || !bestHead) return;
      best.items.shift();
      this.#queued.delete(bestHead.spec.id);
      this.#start(this.#pick(best.selector)!, bestHead);
    }
  }

  // ── fed by the receiver actor ───────────────────────────────────────────────────────────────────────────

  onListing(entries: readonly ListingEntry[]): void {
    const seen = new Set<string>();
    const joined = new Set<PoolWorker>();
    for (const { ref, meta } of entries) {
      seen.add(ref.node);
      const known = this.workers.get(ref.node);
      if (known && known.ref.equals(ref)) continue;
      if (known) this.#gone(known, 'replaced by a new incarnation');
      // `name: ref.node`: the pool matches `name=` against the node's name.
      const worker: PoolWorker = { ref, ...workerTraits(ref.node, meta), name: ref.node, running: new Set() };
      this.workers.set(ref.node, worker);
      this.#keepFree(worker);
      joined.add(worker);
      this.system.watch(this.self(), ref);
      // Introduce ourselves: the worker answers with the tasks it still runs (after a manager restart).
      this.system.dispatch(ref, { type: 'poolHello', pool: this.self(), reportTo: this.controller });
    }
    for (const worker of [...this.workers.values()]) if (!seen.has(worker.name)) this.#gone(worker, 'left the cluster');
    this.drain();
    for (const { ref } of entries) {
      const worker = this.workers.get(ref.node);
      if (worker && joined.has(worker)) this.events.joined(worker);
    }
  }

  onTerminated(msg: Terminated): void {
    const worker = this.workers.get(msg.ref.node);
    if (worker && worker.ref.equals(msg.ref)) this.#gone(worker, msg.reason === 'node-down' ? 'its node went down' : 'its Worker actor stopped');
  }

  onState(state: WorkerState): void {
    const worker = this.workers.get(state.worker);
    if (!worker) return;
    for (const { task } of state.running) worker.running.add(task.id);
    this.#keepFree(worker);
    this.events.state(state);
  }

  onUsage(usage: Usage): void {
    const worker = this.workers.get(usage.worker);
    if (worker) worker.usage = usage;
  }

  onRefused(worker: string, msg: WorkRefused): void {
    const w = this.workers.get(worker);
    if (w) {
      w.running.delete(msg.id);
      this.#keepFree(w);
    }
    this.events.refused(msg.id, worker, msg.code, msg.reason);
  }

  #gone(worker: PoolWorker, reason: string): void {
    this.workers.delete(worker.name);
    this.#free.delete(worker);
    this.#acks.forget(worker.name);
    this.system.unwatch(this.self(), worker.ref);
    const ids = [...worker.running];
    if (ids.length > 0) this.events.lost(ids, worker.name, `worker ${worker.name} ${reason}`);
  }

  /** A queued task is no longer queued (unqueued, or queued anew); false when it was not queued. */
  #drop(id: string): boolean {
    const entry = this.#queued.get(id);
    if (!entry) return false;
    entry.removed = true;
    this.#queued.delete(id);
    return true;
  }

  /** Keeps #free in step with a worker's running tasks (call after every change of them). */
  #keepFree(w: PoolWorker): void {
    if (w.running.size < w.slots && this.workers.get(w.name) === w) this.#free.update(w);
    else this.#free.delete(w);
  }

  /** Whether a free worker matches: at once for the empty selector and for `name=` alone. */
  #anyFree(selector: Selector): boolean {
    if (selector.terms.length === 0) return this.#free.size > 0;
    const named = this.#freeByName(selector);
    if (named !== null) return named !== undefined;
    for (const w of this.#free) if (matches(selector, w)) return true;
    return false;
  }

  /** For a selector that is `name=X` alone, a lookup: that worker if it is free. null: not such a selector. */
  #freeByName(selector: Selector): PoolWorker | undefined | null {
    const only = selector.terms.length === 1 ? selector.terms[0]! : undefined;
    if (only?.key !== 'name') return null;
    const w = this.workers.get(only.value);
    return w !== undefined && this.#free.has(w) ? w : undefined;
  }

  /** Least loaded by running/slots, then fewest running, then name: deterministic. */
  #pick(selector: Selector): PoolWorker | undefined {
    if (selector.terms.length === 0) return this.#free.first();
    const named = this.#freeByName(selector);
    if (named !== null) return named;
    let best: PoolWorker | undefined;
    for (const w of this.#free) {
      if (w.running.size >= w.slots || !matches(selector, w)) continue;
      if (!best || before(w, best)) best = w;
    }
    return best;
  }

  #start(worker: PoolWorker, { spec, subscribers, attempt }: Queued): void {
    worker.running.add(spec.id);
    this.#keepFree(worker);
    const acks = this.#acks.take(worker.ref);
    this.system.dispatch(worker.ref, { type: 'work', task: spec, reportTo: this.controller, subscribers, attempt, ...(acks && { acks }) });
    this.events.started(spec.id, worker.name, Date.now());
  }
}

/** Makes the WorkerPool for `controller` and spawns its receiver actor; returns both. */
export function spawnWorkerPool(system: ClusterSystem, controller: ActorRef, events: PoolEvents, name = 'pool', resultAckDelayMs?: number): { ref: ActorRef; pool: WorkerPool } {
  let ref!: ActorRef;
  const pool = new WorkerPool(system, () => ref, controller, events, resultAckDelayMs);
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

function byName(a: PoolWorker, b: PoolWorker): number {
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}
