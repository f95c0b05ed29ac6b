/**
 * The Controller (on the manager): takes submissions and cancellations from managers and clients,
 * keeps the task table, places tasks through the WorkerPool, records what workers report, streams
 * each task's output and status changes to its subscribers, and answers the queries (`executors`,
 * `tasks`, `tasksPending`, `tasksRunning`, `tasksFinished`, `isFinished`, `resourceUsage`).
 *
 * Authorization is the message catalog's: `submit`, `cancel` and `ask` are declared for managers
 * and clients only, so a worker's attempt is refused with TROUPE_E_FORBIDDEN before it gets here.
 * Past the catalog, a worker speaks only for its own tasks: `workOutput` and `workResult` are taken
 * only from a node that was given a run of the task (the sending node as its connection says, never
 * a field of the message); the rest is refused (TROUPE_E_FORBIDDEN, logged at most once per node
 * per interval), never shown to a subscriber.
 *
 * Delivery is at least once (docs/tasks.md): a task whose worker is lost runs again if it has
 * retries left, and the first result that arrives, from any of its runs, ends it; a run still
 * going then is cancelled. A result is never thrown away in favour of a rerun.
 *
 * A submission that no worker matches is answered at once (TROUPE_E_NO_WORKERS with no worker in
 * the cluster, else TROUPE_E_NO_MATCHING_WORKER) unless it says how long it may wait
 * (`waitForWorkerMs`): then it is held, with nothing in the table yet, until a matching worker
 * joins (it is then placed as any submission, and answered `submitted`), its submitter withdraws it
 * (`withdrawSubmit`), or the wait is over (answered with the same codes). This is the one way to
 * wait for a worker: a submitter never guesses from the receptionist what the pool knows.
 *
 * A timeout ends a task even when its worker never answers: the Controller keeps its own deadline
 * per running task (its timeout plus `timeoutGraceMs`), after which the task is `timed-out` and its
 * worker is told to cancel.
 *
 * Turns: the Controller is spawned `inline` (spawn-options.ts). A submission from a submitter on
 * this node (the REPL, a TaskClient in the manager's process), made outside an actor's turn, is
 * handled at once: its `work` is written and it is answered before `submit` returns, not a loop
 * iteration later. What arrives from other nodes waits for the check phase of the loop iteration
 * it was read in, so that the results and submissions read together are answered together, in
 * as few frames as the transport can make of them.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { Answer } from '../../protocols/tasks.js';
import {
  type Ask,
  type Cancel,
  type Cancelled,
  type PauseOutput,
  type Subscribe,
  type Submit,
  type Submitted,
  type TaskErrorReply,
  type TaskRecord,
  type WithdrawSubmit,
  type WorkOutput,
  type WorkResult,
  type WorkResultMsg,
  type WorkSpec,
  type WorkerState,
} from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, TaskError, TroupeError } from '../../src/errors.js';
import { controllerSettings, MAX_WAIT_FOR_WORKER_MS, type ControllerOptions } from './controller-settings.js';
import { answerQuery } from './controller-queries.js';
import { OutputPauses } from './output-pauses.js';
import { RefusalLog } from './refusal-log.js';
import { matches, parseSelector, type Selector } from './selector.js';
import { TaskTable, type TaskEntry } from './task-table.js';
import { spawnWorkerPool, type WorkerPool } from './worker-pool.js';
import { workerInfos, type WorkerInfo } from './worker-info.js';
import { ControllerJournal, type JournalMessage } from './controller-journal.js';
import { ControllerDeadlines, type Deadline } from './controller-deadlines.js';

import { CONTROLLER_NAME } from '../../protocols/tasks.js';

// Re-exported for the Controller's users (the settings are controller-settings.ts').
export { DEFAULT_MAX_COMMAND_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_PAGE_BYTES, DEFAULT_PAGE_TASKS, DEFAULT_TIMEOUT_GRACE_MS, type ControllerOptions, type ControllerSettings } from './controller-settings.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A held submission's wait for a worker is over (a local message, from its own timer). */
type WaitOver = { type: 'controller.waitOver'; replyTo: ActorRef };

type ControllerMessage = Submit | WithdrawSubmit | Cancel | Ask | Subscribe | PauseOutput | WorkOutput | WorkResultMsg | Deadline | WaitOver | JournalMessage;

/** A submission held until a worker matches it (see the module comment). */
interface Held {
  msg: Submit;
  selector: Selector;
  timer: NodeJS.Timeout;
}

/** What the Controller answers a submission, a cancellation or a query with. */
type Reply = Submitted | Cancelled | TaskErrorReply | Answer;


export interface Controller {
  ref: ActorRef;
  pool: ActorRef;
  workers(): Iterable<WorkerInfo>;
}

export function spawnController(system: ClusterSystem, options: ControllerOptions = {}): Controller {
  const settings = controllerSettings(options);
  const table = new TaskTable({ maxFinished: options.maxFinished ?? options.journal?.keepTasks ?? settings.maxFinished, tailBytes: settings.tailBytes }, options.observer);
  const { maxCommandBytes, maxRetries, timeoutGraceMs } = settings;
  // The journal's hooks (journal.ts, output-store.ts, audit.ts): see controller-journal.ts.
  const journal = new ControllerJournal(system, table, options);
  /** Submissions waiting for a matching worker, in arrival order. */
  const held: Held[] = [];
  const refusals = new RefusalLog(system.log);
  /** The Controller's own deadline of each running task (controller-deadlines.ts). */
  const deadlines = new ControllerDeadlines(system, () => ref, timeoutGraceMs);
  const pauses = new OutputPauses((id, paused) => {
    const entry = table.get(id);
    const worker = entry?.record.worker ? pool.workers.get(entry.record.worker) : undefined;
    if (worker) system.dispatch(worker.ref, { type: 'throttle', id, paused });
  });
  system.on('member', (event) => {
    if (event.status === 'down') pauses.dropNode(event.node);
  });
  /** Per running task, the seq of the next chunk of output it has not had (0 for a new attempt). */
  const nextSeq = new Map<string, number>();
  const ref = system.spawn<null, ControllerMessage>(
    (state, msg, ctx) => {
      // The node that sent it, as its connection says; this node for a local message.
      const sender = ctx.from ?? system.node;
      switch (msg.type) {
        case 'submit':
          reply(msg.replyTo, () => (journal.record('submit', sender, null, msg.command), submit(msg)));
          break;
        case 'withdrawSubmit': {
          // Only the node a held submission answers to may withdraw it.
          if (msg.replyTo.node !== sender) break;
          const at = held.findIndex((h) => h.msg.replyTo.equals(msg.replyTo));
          if (at >= 0) giveUp(held.splice(at, 1)[0]!, 'the submitter withdrew it');
          break;
        }
        case 'controller.waitOver': {
          if (ctx.from !== undefined) break;
          const at = held.findIndex((h) => h.msg.replyTo.equals(msg.replyTo));
          if (at >= 0) giveUp(held.splice(at, 1)[0]!);
          break;
        }
        case 'cancel':
          reply(msg.replyTo, () => (journal.record('cancel', sender, msg.id, null), cancel(msg.id)));
          break;
        case 'taskLogs':
        case 'auditQuery':
        case 'attached':
        case 'controller.restoreGrace':
        case 'controller.compact':
          journal.receive(msg, sender, ctx.from === undefined, entryOf, reply);
          break;
        case 'ask':
          reply(msg.replyTo, () => answerQuery(msg, { table, pool, pageBytes: settings.pageBytes, entryOf }));
          break;
        case 'subscribeTasks':
          reply(msg.replyTo, () => {
            // Ids this table does not know are left out of the answer: after a manager restart, a
            // task is known again only once its worker has reported it (and then told to this subscriber).
            const tasks = msg.ids.flatMap((id) => table.get(id) ?? []);
            for (const entry of tasks) if (!entry.subscribers.some((s) => s.equals(msg.subscriber))) entry.subscribers.push(msg.subscriber);
            return { type: 'submitted', ids: tasks.map((e) => e.record.id), tasks: tasks.map((e) => e.record) } satisfies Submitted;
          });
          break;
        case 'pauseOutput': {
          // A submitter pauses (and resumes) only its own subscription, not another's.
          if (msg.subscriber.node !== sender) {
            refusals.refused(sender, { type: msg.type, task: msg.id, code: ErrorCodes.FORBIDDEN }, 'a node paused output for a subscriber of another node; refused');
            break;
          }
          const entry = table.get(msg.id);
          const reason = OutputPauses.subscriberReason(msg.subscriber);
          if (!msg.paused) pauses.remove(msg.id, reason);
          else if (entry && !table.isFinished(entry)) pauses.add(msg.id, reason);
          break;
        }
        case 'workOutput':
          output(msg, sender);
          break;
        case 'workResult':
          result(msg.result, sender);
          break;
        case 'controller.deadline':
          // Only from this node: a remote message of this type is not in the catalog.
          if (ctx.from === undefined) deadlinePassed(msg);
          break;
      }
      return state;
    },
    CONTROLLER_NAME,
    { initialState: null, onCrash: 'resume', inline: true },
  );
  /** Tasks being placed by a submit: their start is told in its reply, not by an update. */
  const placing = new Set<string>();
  const { ref: poolRef, pool } = spawnWorkerPool(system, ref, {
    started(id, worker, at) {
      const entry = table.get(id);
      if (!entry || entry.record.status !== 'pending') return;
      table.running(entry, worker, at);
      nextSeq.delete(id);
      if (!placing.has(id)) notify(entry);
      else deadlines.keep(entry);
      // A retry of a task whose subscriber is still backed up starts paused too.
      const w = pauses.isPaused(id) ? pool.workers.get(worker) : undefined;
      if (w) system.dispatch(w.ref, { type: 'throttle', id, paused: true });
    },
    lost(ids, worker, reason) {
      for (const id of ids) lost(id, reason, worker);
    },
    refused(id, worker, code, reason) {
      const entry = table.get(id);
      // The pool checked that the refusing worker is the one the task was placed on.
      if (entry && entry.record.status === 'running' && entry.record.worker === worker) {
        system.log.warn({ task: id, worker, code }, 'a worker refused a task; placing it again');
        table.retry(entry, `${worker} refused it: ${reason}`);
        entry.record = { ...entry.record, attempts: entry.record.attempts - 1 };
        table.changed(entry);
        notify(entry);
        pool.place(entry.spec, parseSelector(entry.record.selector), entry.subscribers, true, entry.record.attempts + 1);
      }
    },
    state: (state) => adoptState(state),
    joined(worker) {
      // Held submissions this worker matches go now, in the order they came.
      for (const h of held.filter((h) => matches(h.selector, worker))) {
        held.splice(held.indexOf(h), 1);
        clearTimeout(h.timer);
        reply(h.msg.replyTo, () => submit(h.msg));
      }
    },
  }, undefined, settings.resultAckDelayMs);

  /** Runs `answer` and sends what it returns (if anything); a TroupeError becomes a taskError reply. */
  function reply(to: ActorRef, answer: () => Reply | undefined): void {
    try {
      const msg = answer();
      if (msg) system.dispatch(to, msg);
    } catch (err) {
      if (!(err instanceof TroupeError)) throw err;
      system.dispatch(to, { type: 'taskError', code: err.code, reason: err.message } satisfies TaskErrorReply);
    }
  }

  /** Why no worker takes `selector` (TROUPE_E_NO_WORKERS or TROUPE_E_NO_MATCHING_WORKER), `detail` after it. */
  function noWorker(selector: Selector, detail = ''): TaskError {
    const known = [...pool.workers.keys()].sort();
    if (known.length === 0) return new TaskError(ErrorCodes.NO_WORKERS, `no workers are connected: start one with \`troupe worker --join HOST:PORT\`${detail}`);
    return new TaskError(ErrorCodes.NO_MATCHING_WORKER, `no worker matches ${selector.text} (connected: ${known.join(', ')})${detail}`);
  }

  /** A held submission is answered: no worker matched it in time (or it was withdrawn). */
  function giveUp(h: Held, why?: string): void {
    clearTimeout(h.timer);
    const detail = why ? `; ${why}` : ` within ${h.msg.waitForWorkerMs} ms`;
    reply(h.msg.replyTo, () => {
      throw noWorker(h.selector, detail);
    });
  }

  /** Holds a submission that no worker matches yet, for up to its `waitForWorkerMs`. */
  function hold(msg: Submit, selector: Selector, waitMs: number): void {
    const timer = setTimeout(() => system.dispatch(ref, { type: 'controller.waitOver', replyTo: msg.replyTo } satisfies WaitOver), waitMs);
    timer.unref();
    held.push({ msg, selector, timer });
  }

  function submit(msg: Submit): Submitted | undefined {
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
    const waitMs = msg.waitForWorkerMs ?? 0;
    if (!Number.isFinite(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_FOR_WORKER_MS) throw invalid(`waitForWorkerMs: expected milliseconds from 0 to ${MAX_WAIT_FOR_WORKER_MS} (0: answer at once), got ${waitMs}`);
    const selector = parseSelector(msg.selector);
    // The sorted list only for a broadcast: a plain submit needs only to know that some worker matches.
    if (!pool.anyMatching(selector)) {
      if (waitMs === 0) throw noWorker(selector);
      hold(msg, selector, waitMs);
      return undefined;
    }
    const subscribers = msg.subscriber ? [msg.subscriber] : [];
    const now = Date.now();
    const made: TaskEntry[] = [];
    // The journal may not take it (a full disk): then none of it is kept, the submitter is told.
    journal.allOrNone(made, () => {
      if (msg.broadcast) {
        const group = table.newId();
        for (const worker of pool.matching(selector)) {
          made.push(table.add(spec(command, env, timeoutMs), { selector: `name=${worker.name}`, retries: 0, subscribers: [...subscribers], broadcast: group, now }));
        }
      } else {
        made.push(table.add(spec(command, env, timeoutMs), { selector: selector.text, retries, subscribers, broadcast: null, now }));
      }
    });
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

  function cancel(id: string): Cancelled {
    const entry = entryOf(id);
    if (table.isFinished(entry)) throw new TaskError(ErrorCodes.TASK_FINISHED, `task ${id} already ended (${entry.record.status})`);
    if (entry.record.status === 'pending') {
      pool.unqueue(id);
      cancelRuns(entry);
      table.finish(entry, 'cancelled', Date.now());
      notify(entry);
    } else {
      cancelRuns(entry);
    }
    return { type: 'cancelled', task: entry.record };
  }

  /** A node reporting on a task it was never given a run of: refused, and nothing changes. */
  function forbidden(sender: string, type: string, id: string): void {
    refusals.refused(sender, { type, task: id, code: ErrorCodes.FORBIDDEN }, 'a worker reported on a task it was not given; refused');
  }

  function output(msg: WorkOutput, sender: string): void {
    const entry = table.get(msg.id);
    if (!entry) return;
    if (!entry.ranOn.has(sender)) return forbidden(sender, msg.type, msg.id);
    if (table.isFinished(entry)) return;
    // A worker that rejoined sends its last chunks again (they may have been lost with the link): once each.
    if (msg.seq < (nextSeq.get(msg.id) ?? 0)) return;
    nextSeq.set(msg.id, msg.seq + 1);
    table.output(entry, msg.stream, msg.data);
    journal.append(msg.id, entry.record.attempts, msg.seq, msg.stream, msg.data);
    const chunk = { type: 'taskOutput', id: msg.id, worker: sender, stream: msg.stream, seq: msg.seq, data: msg.data };
    for (const s of entry.subscribers) {
      system.dispatch(s, chunk);
      if (system.isCongested(s.node)) throttle(entry, s.node);
    }
  }

  /** A subscriber cannot keep up: the worker stops reading the task's output until it can. */
  function throttle(entry: TaskEntry, node: string): void {
    const id = entry.record.id;
    const reason = OutputPauses.linkReason(node);
    if (!pauses.add(id, reason)) return;
    void system.whenWritable(node).then(() => pauses.remove(id, reason));
  }

  /**
   * A result from `sender`. `from`: it came in a worker's state report (checked by the pool to be
   * the sender's own), with what a table that never saw the task needs to take it in.
   */
  function result(r: WorkResult, sender: string, from?: { task: WorkSpec; subscribers: ActorRef[] }): void {
    let entry = table.get(r.id);
    if (!entry && from) {
      // A result from before a manager restart, for a task this table never saw.
      entry = table.adopt(from.task, sender, r.startedAt);
      entry.subscribers.push(...from.subscribers);
    }
    if (entry && !entry.ranOn.has(sender)) return forbidden(sender, 'workResult', r.id);
    if (entry && !table.isFinished(entry)) {
      // First result wins, whichever run it is from: a rerun still going is cancelled, a rerun
      // still queued is dropped (its earlier run's result arrived after the worker was written off).
      const current = entry.record.status === 'running' ? entry.record.worker : null;
      if (entry.record.status === 'pending') pool.unqueue(r.id);
      table.result(entry, r, Date.now(), sender);
      pauses.forget(r.id);
      nextSeq.delete(r.id);
      // The subscribers first: each send writes to its socket at once, and neither the freed slot
      // (a queued task for that worker) nor the acknowledgement is on the submitter's path.
      notify(entry);
      if (current && current !== sender) {
        system.log.info({ task: r.id, worker: sender, rerun: current }, 'an earlier run of a task ended first; cancelling the rerun');
        pool.cancelRunning(current, r.id);
      }
    }
    // Every result is acknowledged, a repeated one too: the worker holds it until then. Before the
    // release: a queued task started there by it carries the acknowledgement (result-acks.ts).
    pool.ack(sender, r.id);
    if (entry) pool.release(sender, r.id);
  }

  /** `worker` was lost with the task on it; nothing changes if the task's current run is elsewhere. */
  function lost(id: string, reason: string, worker: string): void {
    const entry = table.get(id);
    if (!entry || table.isFinished(entry) || entry.record.worker !== worker) return;
    if (entry.record.attempts <= entry.record.retries) {
      table.retry(entry, reason);
      notify(entry);
      pool.place(entry.spec, selectorOf(entry), entry.subscribers, true, entry.record.attempts + 1);
    } else {
      table.finish(entry, 'lost', Date.now(), { error: reason });
      pauses.forget(id);
      nextSeq.delete(id);
      notify(entry);
    }
  }

  function adoptState(state: WorkerState): void {
    for (const { task, startedAt, subscribers } of state.running) {
      const entry = table.get(task.id);
      if (!entry) {
        const adopted = table.adopt(task, state.worker, startedAt);
        adopted.subscribers.push(...subscribers);
        notify(adopted);
        system.log.info({ task: task.id, worker: state.worker }, 'adopted a task that was running before the manager restarted');
      } else if (entry.record.status === 'pending' && entry.ranOn.has(state.worker)) {
        // Written off and queued to run again, but its run goes on there (the worker is back):
        // that run is the task again, and the queued rerun is dropped.
        pool.unqueue(task.id);
        table.resumed(entry, state.worker, startedAt);
        notify(entry);
      } else if (entry.record.status === 'pending') {
        // Started just before a manager restart, and reported by the worker it was handed to.
        pool.unqueue(task.id);
        table.running(entry, state.worker, startedAt);
        notify(entry);
      }
      // The worker holds a task's output after a pool's hello until told to go on: now that the
      // task is in the table (else its first chunks would arrive before it and be dropped).
      const worker = pool.workers.get(state.worker);
      if (worker && !pauses.isPaused(task.id)) system.dispatch(worker.ref, { type: 'throttle', id: task.id, paused: false });
    }
    for (const f of state.finished) result(f.result, state.worker, { task: f.task, subscribers: f.subscribers });
  }

  /** Tells every worker that still runs the task (a rerun, and an earlier run come back) to stop it. */
  function cancelRuns(entry: TaskEntry): void {
    for (const worker of entry.ranOn.keys()) if (pool.workers.get(worker)?.running.has(entry.record.id)) pool.cancelRunning(worker, entry.record.id);
  }

  function notify(entry: TaskEntry): void {
    journal.changed(entry);
    const update = { type: 'taskUpdate', task: entry.record };
    for (const s of entry.subscribers) system.dispatch(s, update);
    deadlines.keep(entry);
  }

  /** The worker has not reported the end of a run past its timeout and the grace: the task ends here. */
  function deadlinePassed(msg: Deadline): void {
    const entry = table.get(msg.id);
    if (!entry || entry.record.status !== 'running' || entry.record.attempts !== msg.attempt) return;
    const worker = entry.record.worker;
    system.log.warn({ task: msg.id, worker }, 'a task passed its timeout and its worker did not report its end; ending it as timed out');
    cancelRuns(entry);
    table.finish(entry, 'timed-out', Date.now(), {
      error: `timed out after ${entry.spec.timeoutMs} ms, and ${worker ?? 'its worker'} did not report the end within ${timeoutGraceMs} ms more`,
    });
    notify(entry);
  }

  function entryOf(id: string): TaskEntry {
    const entry = table.get(id);
    if (!entry) throw new TaskError(ErrorCodes.NO_SUCH_TASK, `no task ${JSON.stringify(id)} (finished tasks are remembered up to ${table.limits.maxFinished})`);
    return entry;
  }

  function selectorOf(entry: TaskEntry): Selector {
    return parseSelector(entry.record.selector);
  }

  // ── the table restored from the journal ──
  journal.restore({ ref, pool, lost, resumeRunning: (e, seq) => (seq > 0 && nextSeq.set(e.record.id, seq), deadlines.keep(e)) });

  return { ref, pool: poolRef, workers: () => workerInfos(pool) };
}

function invalid(reason: string): TaskError {
  return new TaskError(ErrorCodes.INVALID_TASK, reason);
}

export type { WorkerPool, TaskRecord };
