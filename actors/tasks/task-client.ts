/**
 * Submitting and following tasks from any node that may (a manager, or a client joined to it): a
 * thin layer over `query` to the Controller and a subscriber actor that turns the Controller's
 * `taskUpdate` / `taskOutput` messages into events.
 *
 *   const tasks = TaskClient.start(system);
 *   const [task] = await tasks.submit({ command: 'uname -a', selector: 'tag=gpu' });
 *   tasks.on('output', (chunk) => process.stdout.write(chunk.data));
 *   const done = await tasks.finished(task.id);
 *
 * After a reconnect, `reconcile` follows the unfinished tasks again. A restarted manager (a new
 * incarnation) remembers no pending task and knows a running one only once its worker has
 * rejoined and reported it: a task it still does not know after `rejoinGraceMs` is gone, and ends
 * here as `lost` with TROUPE_E_TASK_LOST in its error, so nobody waits for it for ever.
 */
import { EventEmitter } from 'node:events';
import { ActorRef } from '../../protocols/actor-ref.js';
import { FINISHED_STATUSES, type Answer, type AskWhat, type Submit, type TaskOutput, type TaskRecord, type TaskUpdate } from '../../protocols/tasks.js';
import { CONTROLLER_NAME } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, TroupeError, settingError, type ErrorCode } from '../../src/errors.js';
import { OutputLedger } from './output-ledger.js';
import { DEFAULT_MAX_FINISHED, MAX_WAIT_FOR_WORKER_MS } from './controller-settings.js';

export type SubmitOptions = Omit<Submit, 'type' | 'replyTo' | 'subscriber'>;

interface TaskClientEvents {
  update: [TaskRecord];
  output: [TaskOutput];
}

/** Finished tasks a client remembers, as the Controller does by default. */
export const MAX_FINISHED = DEFAULT_MAX_FINISHED;
/**
 * How long a restarted manager has to learn of a task from its worker before the task counts as
 * lost: the workers' reconnect backoff cap (5 s) and a handshake besides.
 */
export const DEFAULT_REJOIN_GRACE_MS = 10_000;

export interface TaskClientOptions {
  /** See DEFAULT_REJOIN_GRACE_MS. */
  rejoinGraceMs?: number;
}

/** What `reconcile` found: tasks the manager knows (and that go on), and those that are gone. */
export interface Reconciled {
  known: TaskRecord[];
  lost: TaskRecord[];
}

export class TaskClient extends EventEmitter<TaskClientEvents> {
  readonly controller: ActorRef;
  readonly subscriber: ActorRef;
  /** The latest record of every task this client has heard of (finished ones: the last MAX_FINISHED). */
  readonly tasks = new Map<string, TaskRecord>();
  #finishedOrder: string[] = [];
  #waiters = new Map<string, ((task: TaskRecord) => void)[]>();
  readonly #rejoinGraceMs: number;
  /** The manager's incarnation our unfinished tasks were submitted to (or last confirmed by). */
  #incarnation: string | undefined;
  /** Repeats dropped, losses counted (output-ledger.ts). */
  readonly #ledger = new OutputLedger();
  /** Tasks whose output this client asked to pause (pauseOutput), asked again of a new Controller. */
  readonly #paused = new Set<string>();

  private constructor(
    private readonly system: ClusterSystem,
    manager: string,
    options: TaskClientOptions,
  ) {
    super();
    this.controller = new ActorRef(manager, CONTROLLER_NAME);
    this.#rejoinGraceMs = options.rejoinGraceMs ?? DEFAULT_REJOIN_GRACE_MS;
    if (!Number.isFinite(this.#rejoinGraceMs) || this.#rejoinGraceMs < 0) throw settingError('rejoinGraceMs', this.#rejoinGraceMs, 'milliseconds ≥ 0');
    this.#incarnation = system.membership.get(manager)?.incarnation;
    // Rejoined a (perhaps restarted) manager: follow our unfinished tasks again, and end those it lost.
    system.on('connected', (node: string) => {
      if (node === manager) this.reconcile().catch((err) => system.log.debug({ err }, 'reconciling tasks after a rejoin failed'));
    });
    // A receiver, not an actor: an update from another node is handled as its frame is read, not
    // one event-loop turn later. It must not run inside the sender's turn, though: the Controller
    // on this node (a client in the manager's process) is answered on the next microtask, in order.
    this.subscriber = system.receiver((msg) => {
      if (system.isManager) this.#local(msg as TaskUpdate | TaskOutput);
      else this.#receive(msg as TaskUpdate | TaskOutput);
    });
  }

  /** A client for the Controller on `manager` (default: this node if it is the manager, else "manager"). */
  static start(system: ClusterSystem, manager = system.isManager ? system.node : 'manager', options: TaskClientOptions = {}): TaskClient {
    return new TaskClient(system, manager, options);
  }

  /**
   * Follows this client's unfinished tasks at the manager after a (re)connect. The same manager
   * incarnation: each goes on. A new one (the manager restarted): those it knows go on; the rest
   * are asked for again once `rejoinGraceMs` has passed (time for their workers to rejoin and
   * report them), and those it still does not know end as `lost`, their error saying
   * TROUPE_E_TASK_LOST. Safe to call more than once; a task that ended meanwhile is left alone.
   */
  async reconcile(): Promise<Reconciled> {
    const incarnation = this.system.membership.get(this.controller.node)?.incarnation;
    const restarted = this.#incarnation !== undefined && incarnation !== undefined && incarnation !== this.#incarnation;
    const unfinished = () => [...this.tasks.values()].filter((t) => !FINISHED_STATUSES.has(t.status)).map((t) => t.id);
    const ids = unfinished();
    if (ids.length === 0) {
      this.#incarnation = incarnation;
      return { known: [], lost: [] };
    }
    let known = await this.follow(ids);
    if (!restarted) return { known, lost: [] };
    const knownIds = new Set(known.map((t) => t.id));
    const unknown = ids.filter((id) => !knownIds.has(id));
    if (unknown.length === 0) {
      this.#incarnation = incarnation;
      return { known, lost: [] };
    }
    await new Promise((resolve) => setTimeout(resolve, this.#rejoinGraceMs));
    // Still ours to judge only if the manager has not restarted once more meanwhile.
    if (this.system.membership.get(this.controller.node)?.incarnation !== incarnation) return { known, lost: [] };
    const stillOpen = new Set(unfinished());
    const again = unknown.filter((id) => stillOpen.has(id));
    const found = again.length > 0 ? await this.follow(again) : [];
    known = [...known, ...found];
    const foundIds = new Set(found.map((t) => t.id));
    const lost: TaskRecord[] = [];
    for (const id of again) {
      const task = this.tasks.get(id);
      if (foundIds.has(id) || !task || FINISHED_STATUSES.has(task.status)) continue;
      const record: TaskRecord = {
        ...task,
        status: 'lost',
        finishedAt: Date.now(),
        error: `${ErrorCodes.TASK_LOST}: the manager "${this.controller.node}" restarted and does not know task ${id} (it was still ${task.status}; tasks waiting for a worker do not survive a manager restart, and no worker reported it within ${this.#rejoinGraceMs / 1000} s)`,
      };
      this.#update(record);
      lost.push(record);
    }
    this.#incarnation = incarnation;
    return { known, lost };
  }

  /**
   * Submits a command; resolves with the tasks made (one, or one per worker for a broadcast). With
   * `waitForWorkerMs`, the Controller holds it until a matching worker joins (rejects with
   * TROUPE_E_NO_WORKERS / TROUPE_E_NO_MATCHING_WORKER once that has passed); `signal` withdraws it
   * while it is held (it then rejects with TROUPE_E_NO_WORKERS, saying it was withdrawn).
   */
  async submit(options: SubmitOptions, signal?: AbortSignal): Promise<TaskRecord[]> {
    if (this.#incarnation === undefined) this.#incarnation = this.system.membership.get(this.controller.node)?.incarnation;
    const wait = options.waitForWorkerMs ?? 0;
    let replyTo: ActorRef | undefined;
    const withdraw = () => {
      if (replyTo) this.system.dispatch(this.controller, { type: 'withdrawSubmit', replyTo });
    };
    // The answer may take the whole wait: the query's own timeout comes on top of it.
    const timeoutMs = wait > 0 && Number.isFinite(wait) ? Math.min(MAX_WAIT_FOR_WORKER_MS, wait + this.system.settings.queryTimeoutMs) : undefined;
    if (wait > 0) signal?.addEventListener('abort', withdraw, { once: true });
    let reply: { type: 'submitted'; tasks: TaskRecord[] };
    try {
      reply = await this.#ask({ type: 'submit', ...options, subscriber: this.subscriber }, timeoutMs, (ref) => {
        replyTo = ref;
        if (wait > 0 && signal?.aborted) queueMicrotask(withdraw);
      });
    } finally {
      signal?.removeEventListener('abort', withdraw);
    }
    for (const task of reply.tasks) if (!this.tasks.has(task.id)) this.#update(task);
    return reply.tasks;
  }

  async cancel(id: string): Promise<TaskRecord> {
    const reply = await this.#ask<{ type: 'cancelled'; task: TaskRecord }>({ type: 'cancel', id });
    return reply.task;
  }

  ask(what: AskWhat, id?: string): Promise<Answer> {
    return this.#ask<Answer>({ type: 'ask', what, ...(id === undefined ? {} : { id }) });
  }

  /**
   * Every task of a `tasks*` query, page by page (each answer fits in a frame, however long the
   * commands in the history). Pages are asked one after another; a task that ends between two
   * pages may be listed in neither of the `tasksPending` / `tasksFinished` splits, never twice.
   */
  async list(what: 'tasks' | 'tasksPending' | 'tasksRunning' | 'tasksFinished'): Promise<TaskRecord[]> {
    const all: TaskRecord[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await this.#ask<Answer>({ type: 'ask', what, ...(after === undefined ? {} : { after }) });
      all.push(...(page.tasks ?? []));
      if (page.next === undefined) return all;
      after = page.next;
    }
  }

  /** Follows tasks submitted elsewhere (or before this client restarted). */
  async follow(ids: string[]): Promise<TaskRecord[]> {
    const reply = await this.#ask<{ type: 'submitted'; tasks: TaskRecord[] }>({ type: 'subscribeTasks', ids, subscriber: this.subscriber });
    for (const task of reply.tasks) this.#update(task);
    return reply.tasks;
  }

  /**
   * Asks the Controller to pause (or go on with) the task's command: what this client writes the
   * output to is backed up. Asked again when the task is heard of anew (after a manager restart).
   */
  pauseOutput(id: string, paused: boolean): void {
    if (paused) this.#paused.add(id);
    else if (!this.#paused.delete(id)) return;
    this.system.dispatch(this.controller, { type: 'pauseOutput', id, subscriber: this.subscriber, paused });
  }

  /** Why the output received here of a finished task is not whole (a gap, or fewer bytes than it wrote); or undefined. */
  outputLoss(task: TaskRecord): string | undefined {
    return this.#ledger.loss(task);
  }

  /** Resolves with the task's final record once it has finished. */
  finished(id: string): Promise<TaskRecord> {
    const known = this.tasks.get(id);
    if (known && FINISHED_STATUSES.has(known.status)) return Promise.resolve(known);
    return new Promise((resolve) => {
      const list = this.#waiters.get(id) ?? [];
      list.push(resolve);
      this.#waiters.set(id, list);
    });
  }

  stop(): void {
    this.system.dropReceiver(this.subscriber);
  }

  #localQueue: (TaskUpdate | TaskOutput)[] = [];

  #local(msg: TaskUpdate | TaskOutput): void {
    this.#localQueue.push(msg);
    if (this.#localQueue.length === 1) queueMicrotask(() => this.#drainLocal());
  }

  #drainLocal(): void {
    // A listener may cause more messages (a submit answered at once): they join the queue behind.
    for (let i = 0; i < this.#localQueue.length; i++) this.#receive(this.#localQueue[i]!);
    this.#localQueue = [];
  }

  /** A listener that throws is logged, as a crashing actor would be; the next message is handled. */
  #receive(msg: TaskUpdate | TaskOutput): void {
    try {
      if (msg.type === 'taskUpdate') this.#update(msg.task);
      else if (msg.type === 'taskOutput' && this.#ledger.take(msg)) this.emit('output', msg);
    } catch (err) {
      this.system.log.error({ type: msg.type, err }, 'a task client listener threw');
    }
  }

  async #ask<R extends { type: string }>(msg: Record<string, unknown>, timeoutMs?: number, onReplyTo?: (replyTo: ActorRef) => void): Promise<R> {
    const reply = await this.system.query<R | { type: 'taskError'; code: string; reason: string }>(
      this.controller,
      (replyTo) => {
        onReplyTo?.(replyTo);
        // Each caller's message is a fresh object of its own: completed in place, not copied.
        msg.replyTo = replyTo;
        return msg;
      },
      timeoutMs,
    );
    if (reply.type === 'taskError') {
      const err = reply as { code: string; reason: string };
      throw new TroupeError((err.code.startsWith('TROUPE_E_') ? err.code : ErrorCodes.INVALID_TASK) as ErrorCode, err.reason);
    }
    return reply as R;
  }

  #update(task: TaskRecord): void {
    const wasFinished = this.tasks.has(task.id) && FINISHED_STATUSES.has(this.tasks.get(task.id)!.status);
    // A reply's snapshot may be handled after a later update: an end is never undone.
    if (wasFinished && !FINISHED_STATUSES.has(task.status)) return;
    this.tasks.set(task.id, task);
    this.#ledger.update(task);
    if (this.#paused.has(task.id)) {
      if (FINISHED_STATUSES.has(task.status)) this.#paused.delete(task.id);
      else this.system.dispatch(this.controller, { type: 'pauseOutput', id: task.id, subscriber: this.subscriber, paused: true });
    }
    this.emit('update', task);
    if (FINISHED_STATUSES.has(task.status)) {
      if (!wasFinished) {
        this.#finishedOrder.push(task.id);
        // A long-lived client must not grow without bound: forget the oldest finished tasks.
        while (this.#finishedOrder.length > MAX_FINISHED) {
          const old = this.#finishedOrder.shift()!;
          this.tasks.delete(old);
          this.#ledger.forget(old);
        }
      }
      const waiting = this.#waiters.get(task.id);
      this.#waiters.delete(task.id);
      for (const resolve of waiting ?? []) resolve(task);
    }
  }
}
