/**
 * Submitting and following tasks from any node that may (a manager, or a client joined to it): a
 * thin layer over `query` to the Controller and a subscriber actor that turns the Controller's
 * `taskUpdate` / `taskOutput` messages into events.
 *
 *   const tasks = TaskClient.start(system);
 *   const [task] = await tasks.submit({ command: 'uname -a', selector: 'tag=gpu' });
 *   tasks.on('output', (chunk) => process.stdout.write(chunk.data));
 *   const done = await tasks.finished(task.id);
 */
import { EventEmitter } from 'node:events';
import { ActorRef } from '../../protocols/actor-ref.js';
import { FINISHED_STATUSES, type Answer, type AskWhat, type Submit, type TaskOutput, type TaskRecord, type TaskUpdate } from '../../protocols/tasks.js';
import { CONTROLLER_NAME } from '../../actors/controller.js';
import type { ClusterSystem } from '../cluster/cluster-system.js';
import { ErrorCodes, TroupeError, type ErrorCode } from '../errors.js';
import { OutputLedger } from './output-ledger.js';

export type SubmitOptions = Omit<Submit, 'type' | 'replyTo' | 'subscriber'>;

interface TaskClientEvents {
  update: [TaskRecord];
  output: [TaskOutput];
}

/** Finished tasks a client remembers, as the Controller does by default. */
export const MAX_FINISHED = 1000;

export class TaskClient extends EventEmitter<TaskClientEvents> {
  readonly controller: ActorRef;
  readonly subscriber: ActorRef;
  /** The latest record of every task this client has heard of (finished ones: the last MAX_FINISHED). */
  readonly tasks = new Map<string, TaskRecord>();
  #finishedOrder: string[] = [];
  #waiters = new Map<string, ((task: TaskRecord) => void)[]>();
  /** Repeats dropped, losses counted (output-ledger.ts). */
  readonly #ledger = new OutputLedger();
  /** Tasks whose output this client asked to pause (pauseOutput), asked again of a new Controller. */
  readonly #paused = new Set<string>();

  private constructor(
    private readonly system: ClusterSystem,
    manager: string,
  ) {
    super();
    this.controller = new ActorRef(manager, CONTROLLER_NAME);
    // Rejoined a (perhaps restarted) manager: follow our unfinished tasks again. A task its new
    // Controller does not know yet is told to us when its worker reports it.
    system.on('connected', (node: string) => {
      if (node !== manager) return;
      const unfinished = [...this.tasks.values()].filter((t) => !FINISHED_STATUSES.has(t.status)).map((t) => t.id);
      if (unfinished.length > 0) this.follow(unfinished).catch(() => {});
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
  static start(system: ClusterSystem, manager = system.isManager ? system.node : 'manager'): TaskClient {
    return new TaskClient(system, manager);
  }

  /** Submits a command; resolves with the tasks made (one, or one per worker for a broadcast). */
  async submit(options: SubmitOptions): Promise<TaskRecord[]> {
    const reply = await this.#ask<{ type: 'submitted'; tasks: TaskRecord[] }>({ type: 'submit', ...options, subscriber: this.subscriber });
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

  async #ask<R extends { type: string }>(msg: Record<string, unknown>): Promise<R> {
    const reply = await this.system.query<R | { type: 'taskError'; code: string; reason: string }>(this.controller, (replyTo) => ({ ...msg, replyTo }));
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
