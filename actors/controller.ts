/**
 * The Controller (on the manager): takes submissions and cancellations from managers and clients,
 * keeps the task table, places tasks through the WorkerPool, records what workers report, streams
 * each task's output and status changes to its subscribers, and answers the queries (`executors`,
 * `tasks`, `tasksPending`, `tasksRunning`, `tasksFinished`, `isFinished`, `resourceUsage`).
 *
 * Authorization is the message catalog's: `submit`, `cancel` and `ask` are declared for managers
 * and clients only, so a worker's attempt is refused with TROUPE_E_FORBIDDEN before it gets here.
 */
import type { ActorRef } from '../protocols/actor-ref.js';
import {
  FINISHED_STATUSES,
  type Answer,
  type Ask,
  type Cancel,
  type Subscribe,
  type Submit,
  type TaskRecord,
  type TaskStatus,
  type WorkOutput,
  type WorkResult,
  type WorkResultMsg,
  type WorkSpec,
} from '../protocols/tasks.js';
import type { ClusterSystem } from '../src/cluster/cluster-system.js';
import { ErrorCodes, TroupeError, type ErrorCode } from '../src/errors.js';
import { parseSelector, type Selector } from './selector.js';
import { DEFAULT_TASK_LIMITS, TaskTable, type TaskEntry, type TaskObserver, type TaskTableLimits } from './task-table.js';
import { spawnWorkerPool, type Pool, type PoolEvent } from './worker-pool.js';

export const CONTROLLER_NAME = 'controller';

export interface ControllerOptions extends Partial<TaskTableLimits> {
  /** Longest command accepted, in bytes. */
  maxCommandBytes?: number;
  /** Most retries a submission may ask for. */
  maxRetries?: number;
  /** Told of every task lifecycle change (metrics, the live view): see TaskObserver. */
  observer?: TaskObserver;
}

export const DEFAULT_MAX_COMMAND_BYTES = 64 * 1024;
export const DEFAULT_MAX_RETRIES = 100;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STATUS_SETS: Record<'tasksPending' | 'tasksRunning' | 'tasksFinished', ReadonlySet<TaskStatus>> = {
  tasksPending: new Set(['pending']),
  tasksRunning: new Set(['running']),
  tasksFinished: FINISHED_STATUSES,
};

type ControllerMessage = Submit | Cancel | Ask | Subscribe | WorkOutput | WorkResultMsg | PoolEvent;

export interface Controller {
  ref: ActorRef;
  pool: ActorRef;
}

export function spawnController(system: ClusterSystem, options: ControllerOptions = {}): Controller {
  const table = new TaskTable({ maxFinished: options.maxFinished ?? DEFAULT_TASK_LIMITS.maxFinished, tailBytes: options.tailBytes ?? DEFAULT_TASK_LIMITS.tailBytes }, options.observer);
  const maxCommandBytes = options.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const throttled = new Set<string>();
  const ref = system.spawn<null, ControllerMessage>(
    (state, msg) => {
      switch (msg.type) {
        case 'submit':
          reply(msg.replyTo, () => submit(msg));
          break;
        case 'cancel':
          reply(msg.replyTo, () => cancel(msg.id));
          break;
        case 'ask':
          reply(msg.replyTo, () => ask(msg));
          break;
        case 'subscribeTasks':
          reply(msg.replyTo, () => {
            // Ids this table does not know are left out of the answer: after a manager restart, a
            // task is known again only once its worker has reported it (and then told to this subscriber).
            const tasks = msg.ids.flatMap((id) => table.get(id) ?? []);
            for (const entry of tasks) if (!entry.subscribers.some((s) => s.equals(msg.subscriber))) entry.subscribers.push(msg.subscriber);
            return { type: 'submitted', ids: tasks.map((e) => e.record.id), tasks: tasks.map((e) => e.record) };
          });
          break;
        case 'workOutput':
          output(msg);
          break;
        case 'workResult':
          result(msg.result);
          break;
        case 'pool.lost':
          for (const id of msg.ids) lost(id, msg.reason);
          break;
        case 'pool.refused': {
          const entry = table.get(msg.id);
          if (entry && entry.record.status === 'running') {
            system.log.warn({ task: msg.id, worker: msg.worker, code: msg.code }, 'a worker refused a task; placing it again');
            table.retry(entry, `${msg.worker} refused it: ${msg.reason}`);
            entry.record = { ...entry.record, attempts: entry.record.attempts - 1 };
            notify(entry);
            pool.place(entry.spec, parseSelector(entry.record.selector), entry.subscribers, true);
          }
          break;
        }
        case 'pool.state':
          adoptState(msg.state);
          break;
      }
      return state;
    },
    CONTROLLER_NAME,
    { initialState: null, onCrash: 'resume' },
  );
  const { ref: poolRef, pool } = spawnWorkerPool(system, ref);
  /** Tasks being placed by a submit: their start is told in its reply, not by an update. */
  const placing = new Set<string>();
  pool.onStarted = (id, worker, at) => {
    const entry = table.get(id);
    if (!entry || entry.record.status !== 'pending') return;
    table.running(entry, worker, at);
    if (!placing.has(id)) notify(entry);
  };

  /** Runs `answer` and sends what it returns (if anything); a TroupeError becomes a taskError reply. */
  function reply(to: ActorRef, answer: () => object | undefined): void {
    try {
      const msg = answer();
      if (msg) system.dispatch(to, msg);
    } catch (err) {
      if (!(err instanceof TroupeError)) throw err;
      system.dispatch(to, { type: 'taskError', code: err.code, reason: err.message });
    }
  }

  function submit(msg: Submit): object {
    const command = msg.command;
    if (command.trim() === '') throw invalid('command: empty; give a shell command to run, e.g. "uname -a"');
    const bytes = Buffer.byteLength(command);
    if (bytes > maxCommandBytes) throw invalid(`command: ${bytes} bytes, over the limit of ${maxCommandBytes}`);
    const timeoutMs = msg.timeoutMs ?? 0;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw invalid(`timeoutMs: expected milliseconds ≥ 0 (0: no timeout), got ${timeoutMs}`);
    const retries = msg.retries ?? 0;
    if (!Number.isInteger(retries) || retries < 0 || retries > maxRetries) throw invalid(`retries: expected a whole number from 0 to ${maxRetries}, got ${retries}`);
    const env = msg.env ?? {};
    for (const name of Object.keys(env)) if (!ENV_NAME.test(name)) throw invalid(`env: ${JSON.stringify(name)} is not a variable name`);
    const selector = parseSelector(msg.selector);
    const matching = pool.matching(selector);
    if (matching.length === 0) {
      const known = [...pool.workers.keys()].sort();
      if (known.length === 0) throw new TroupeError(ErrorCodes.NO_WORKERS, 'no workers are connected: start one with `troupe worker --join HOST:PORT`');
      throw new TroupeError(ErrorCodes.NO_MATCHING_WORKER, `no worker matches ${selector.text} (connected: ${known.join(', ')})`);
    }
    const subscribers = msg.subscriber ? [msg.subscriber] : [];
    const now = Date.now();
    const made: TaskEntry[] = [];
    if (msg.broadcast) {
      const group = table.newId();
      for (const worker of matching) {
        made.push(table.add(spec(command, env, timeoutMs), { selector: `name=${worker.name}`, retries: 0, subscribers: [...subscribers], broadcast: group, now }));
      }
    } else {
      made.push(table.add(spec(command, env, timeoutMs), { selector: selector.text, retries, subscribers, broadcast: null, now }));
    }
    // Placed first, so the reply says which started where; every later update follows the reply
    // (one link, in order), so the submitter learns the ids before any update about them.
    for (const entry of made) placing.add(entry.record.id);
    try {
      for (const entry of made) pool.place(entry.spec, selectorOf(entry), entry.subscribers);
    } finally {
      placing.clear();
    }
    return { type: 'submitted', ids: made.map((e) => e.record.id), tasks: made.map((e) => e.record) };
  }

  function spec(command: string, env: Record<string, string>, timeoutMs: number): WorkSpec {
    return { id: table.newId(), command, env, timeoutMs };
  }

  function cancel(id: string): object {
    const entry = entryOf(id);
    if (table.isFinished(entry)) throw new TroupeError(ErrorCodes.TASK_FINISHED, `task ${id} already ended (${entry.record.status})`);
    if (entry.record.status === 'pending') {
      pool.unqueue(id);
      table.finish(entry, 'cancelled', Date.now());
      notify(entry);
    } else if (entry.record.worker) {
      pool.cancelRunning(entry.record.worker, id);
    }
    return { type: 'cancelled', task: entry.record };
  }

  function ask(msg: Ask): Answer {
    switch (msg.what) {
      case 'executors':
        return {
          type: 'answer',
          what: msg.what,
          executors: pool.matching(parseSelector('')).map((w) => ({
            worker: w.name,
            slots: w.slots,
            busy: w.running.size,
            idle: Math.max(0, w.slots - w.running.size),
            tags: [...w.tags],
            platform: w.platform,
            arch: w.arch,
            running: [...w.running],
          })),
        };
      case 'resourceUsage':
        return { type: 'answer', what: msg.what, usage: pool.matching(parseSelector('')).flatMap((w) => (w.usage ? [w.usage] : [])) };
      case 'tasks':
        return { type: 'answer', what: msg.what, tasks: table.list() };
      case 'isFinished': {
        if (msg.id === undefined) throw invalid('isFinished needs the id of a task');
        const entry = entryOf(msg.id);
        return { type: 'answer', what: msg.what, finished: table.isFinished(entry), task: entry.record };
      }
      default:
        return { type: 'answer', what: msg.what, tasks: table.list(STATUS_SETS[msg.what]) };
    }
  }

  function output(msg: WorkOutput): void {
    const entry = table.get(msg.id);
    if (!entry || table.isFinished(entry)) return;
    table.output(entry, msg.stream, msg.data);
    const chunk = { type: 'taskOutput', id: msg.id, worker: entry.record.worker ?? '', stream: msg.stream, seq: msg.seq, data: msg.data };
    for (const s of entry.subscribers) {
      system.dispatch(s, chunk);
      if (system.isCongested(s.node)) throttle(entry, s.node);
    }
  }

  /** A subscriber cannot keep up: the worker stops reading the task's output until it can. */
  function throttle(entry: TaskEntry, node: string): void {
    const worker = entry.record.worker ? pool.workers.get(entry.record.worker) : undefined;
    if (!worker || throttled.has(entry.record.id)) return;
    const id = entry.record.id;
    throttled.add(id);
    system.dispatch(worker.ref, { type: 'throttle', id, paused: true });
    void system.whenWritable(node).then(() => {
      throttled.delete(id);
      if (pool.workers.get(worker.name)?.ref.equals(worker.ref)) system.dispatch(worker.ref, { type: 'throttle', id, paused: false });
    });
  }

  function result(r: WorkResult, from?: { worker: string; task: WorkSpec; subscribers: ActorRef[] }): void {
    let entry = table.get(r.id);
    const at = entry?.record.worker ?? from?.worker;
    if (!entry && from) {
      // A result from before a manager restart, for a task this table never saw.
      entry = table.adopt(from.task, from.worker, r.startedAt);
      entry.subscribers.push(...from.subscribers);
    }
    if (entry && !table.isFinished(entry)) {
      table.result(entry, r, Date.now());
      // The subscribers first: each send writes to its socket at once, and neither the freed slot
      // (a queued task for that worker) nor the acknowledgement is on the submitter's path.
      notify(entry);
      if (at) pool.release(at, r.id);
    }
    // Every result is acknowledged, a repeated one too: the worker holds it until then.
    if (at) ackTo(at, r.id);
  }

  function ackTo(worker: string, id: string): void {
    const w = pool.workers.get(worker);
    if (w) system.dispatch(w.ref, { type: 'resultAck', id });
  }

  function lost(id: string, reason: string): void {
    const entry = table.get(id);
    if (!entry || table.isFinished(entry)) return;
    if (entry.record.attempts <= entry.record.retries) {
      table.retry(entry, reason);
      notify(entry);
      pool.place(entry.spec, selectorOf(entry), entry.subscribers, true);
    } else {
      table.finish(entry, 'lost', Date.now(), { error: reason });
      notify(entry);
    }
  }

  function adoptState(state: {
    worker: string;
    running: { task: WorkSpec; startedAt: number; subscribers: ActorRef[] }[];
    finished: { result: WorkResult; task: WorkSpec; subscribers: ActorRef[] }[];
  }): void {
    for (const { task, startedAt, subscribers } of state.running) {
      const entry = table.get(task.id);
      if (!entry) {
        const adopted = table.adopt(task, state.worker, startedAt);
        adopted.subscribers.push(...subscribers);
        notify(adopted);
        system.log.info({ task: task.id, worker: state.worker }, 'adopted a task that was running before the manager restarted');
      } else if (entry.record.status === 'pending') {
        table.running(entry, state.worker, startedAt);
        notify(entry);
      }
    }
    for (const f of state.finished) result(f.result, { worker: state.worker, task: f.task, subscribers: f.subscribers });
  }

  function notify(entry: TaskEntry): void {
    const update = { type: 'taskUpdate', task: entry.record };
    for (const s of entry.subscribers) system.dispatch(s, update);
  }

  function entryOf(id: string): TaskEntry {
    const entry = table.get(id);
    if (!entry) throw new TroupeError(ErrorCodes.NO_SUCH_TASK, `no task ${JSON.stringify(id)} (finished tasks are remembered up to ${table.limits.maxFinished})`);
    return entry;
  }

  function selectorOf(entry: TaskEntry): Selector {
    return parseSelector(entry.record.selector);
  }

  return { ref, pool: poolRef };
}

function invalid(reason: string): TroupeError {
  return new TroupeError(ErrorCodes.INVALID_TASK as ErrorCode, reason);
}

export type { Pool, TaskRecord };
