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
 * A timeout ends a task even when its worker never answers: the Controller keeps its own deadline
 * per running task (its timeout plus `timeoutGraceMs`), after which the task is `timed-out` and its
 * worker is told to cancel.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import {
  FINISHED_STATUSES,
  type Answer,
  type Ask,
  type Cancel,
  type PauseOutput,
  type Subscribe,
  type Submit,
  type TaskRecord,
  type TaskStatus,
  type WorkOutput,
  type WorkResult,
  type WorkResultMsg,
  type WorkSpec,
} from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, TroupeError, settingError, type ErrorCode } from '../../src/errors.js';
import { OutputPauses } from './output-pauses.js';
import { RefusalLog } from './refusal-log.js';
import { parseSelector, type Selector } from './selector.js';
import { DEFAULT_TASK_LIMITS, TaskTable, type TaskEntry, type TaskTableLimits } from './task-table.js';
import { spawnWorkerPool, type Pool, type PoolEvent } from './worker-pool.js';
import type { TaskJournal } from './journal.js';
import { OutputStore } from './output-store.js';
import { AuditTrail } from './audit.js';
import type { Attached, AuditQuery, TaskLogs } from '../../protocols/journal.js';
import { certificateName } from '../../protocols/actor-ref.js';

export const CONTROLLER_NAME = 'controller';

export interface ControllerOptions extends Partial<TaskTableLimits> {
  /** Longest command accepted, in bytes. */
  maxCommandBytes?: number;
  /** Most retries a submission may ask for. */
  maxRetries?: number;
  /**
   * How long past a task's timeout the Controller waits for its worker to report the end before it
   * ends the task itself (`timed-out`), in ms. Longer than the worker's SIGTERM → SIGKILL grace.
   */
  timeoutGraceMs?: number;
  /** About the most bytes of task records in one answer to a `tasks*` query (one page). */
  pageBytes?: number;
  /** The task journal (see journal.ts): the table is restored from it and every change written to it. */
  journal?: TaskJournal;
  /** Per-task and total bounds of the stored output (see output-store.ts). */
  outputTaskBytes?: number;
  outputTotalBytes?: number;
  /** After a restart, how long a task the journal says was running waits for its worker to report it before it counts as lost (ms). */
  restoreGraceMs?: number;
  /** How often retention runs (ms). */
  compactIntervalMs?: number;
}

/** 30 s: a worker's rejoin backoff and its state report, with room to spare. */
export const DEFAULT_RESTORE_GRACE_MS = 30_000;
export const DEFAULT_COMPACT_INTERVAL_MS = 60_000;

export const DEFAULT_MAX_COMMAND_BYTES = 64 * 1024;
export const DEFAULT_MAX_RETRIES = 100;
/** 5 s: the worker's kill grace (2 s) and a slow link besides. */
export const DEFAULT_TIMEOUT_GRACE_MS = 5000;
/** 4 MiB: a page of tasks is a quarter of the default frame limit. */
export const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;
/** Tasks in one page when the asker gives no limit. */
export const DEFAULT_PAGE_TASKS = 1000;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STATUS_SETS: Record<'tasksPending' | 'tasksRunning' | 'tasksFinished', ReadonlySet<TaskStatus>> = {
  tasksPending: new Set(['pending']),
  tasksRunning: new Set(['running']),
  tasksFinished: FINISHED_STATUSES,
};

/** The Controller's deadline for a running task passed (a local message, from its own timer). */
type Deadline = { type: 'controller.deadline'; id: string; attempt: number };

/** Journal housekeeping (local messages, from the Controller's own timers). */
type Housekeeping = { type: 'controller.restoreGrace' } | { type: 'controller.compact' };

type ControllerMessage = Submit | Cancel | Ask | Subscribe | PauseOutput | WorkOutput | WorkResultMsg | PoolEvent | Deadline | TaskLogs | AuditQuery | Attached | Housekeeping;

export interface Controller {
  ref: ActorRef;
  pool: ActorRef;
}

export function spawnController(system: ClusterSystem, options: ControllerOptions = {}): Controller {
  const table = new TaskTable({ maxFinished: options.maxFinished ?? options.journal?.keepTasks ?? DEFAULT_TASK_LIMITS.maxFinished, tailBytes: options.tailBytes ?? DEFAULT_TASK_LIMITS.tailBytes });
  // ── the journal's hooks (journal.ts, output-store.ts, audit.ts) ──
  const journal = options.journal;
  const outputStore = journal ? new OutputStore(journal, options.outputTaskBytes, options.outputTotalBytes) : undefined;
  const audit = journal ? new AuditTrail(journal) : undefined;
  if (journal) table.journal = (entry, from) => journal.write(entry.spec, entry.record, entry.order, from === null);
  const restoreGraceMs = options.restoreGraceMs ?? DEFAULT_RESTORE_GRACE_MS;
  if (!Number.isFinite(restoreGraceMs) || restoreGraceMs < 0) throw settingError('restoreGraceMs', restoreGraceMs, 'milliseconds ≥ 0');
  const maxCommandBytes = options.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const timeoutGraceMs = options.timeoutGraceMs ?? DEFAULT_TIMEOUT_GRACE_MS;
  if (!Number.isFinite(timeoutGraceMs) || timeoutGraceMs < 0) throw settingError('timeoutGraceMs', timeoutGraceMs, 'milliseconds ≥ 0');
  const pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES;
  if (!Number.isInteger(pageBytes) || pageBytes <= 0) throw settingError('pageBytes', pageBytes, 'a positive whole number of bytes');
  const refusals = new RefusalLog(system.log);
  /** The Controller's own deadline of each running task, with the attempt it is for. */
  const deadlines = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();
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
          reply(msg.replyTo, () => {
            audit?.record({ action: 'submit', ...who(sender), task: null, command: msg.command });
            return submit(msg);
          });
          break;
        case 'cancel':
          reply(msg.replyTo, () => {
            audit?.record({ action: 'cancel', ...who(sender), task: msg.id, command: null });
            return cancel(msg.id);
          });
          break;
        case 'taskLogs':
          reply(msg.replyTo, () => logs(msg));
          break;
        case 'auditQuery':
          reply(msg.replyTo, () => {
            if (!audit) throw new TroupeError(ErrorCodes.JOURNAL, 'this manager keeps no journal (no --state-dir), so no audit trail');
            return { type: 'auditPage', entries: audit.query(msg) };
          });
          break;
        case 'attached':
          try {
            audit?.record({ action: 'attach', ...who(sender), task: null, command: null });
          } catch {
            system.log.warn({ code: ErrorCodes.JOURNAL_WRITE, node: sender }, 'could not record an attach in the audit trail');
          }
          break;
        case 'controller.restoreGrace':
          if (ctx.from === undefined) restoreGracePassed();
          break;
        case 'controller.compact':
          if (ctx.from === undefined) compact();
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
        case 'pool.lost':
          for (const id of msg.ids) lost(id, msg.reason, msg.worker);
          break;
        case 'pool.refused': {
          const entry = table.get(msg.id);
          // The pool checked that the refusing worker is the one the task was placed on.
          if (entry && entry.record.status === 'running' && entry.record.worker === msg.worker) {
            system.log.warn({ task: msg.id, worker: msg.worker, code: msg.code }, 'a worker refused a task; placing it again');
            table.retry(entry, `${msg.worker} refused it: ${msg.reason}`);
            entry.record = { ...entry.record, attempts: entry.record.attempts - 1 };
            table.changed(entry);
            notify(entry);
            pool.place(entry.spec, parseSelector(entry.record.selector), entry.subscribers, true, entry.record.attempts + 1);
          }
          break;
        }
        case 'pool.state':
          adoptState(msg.state);
          break;
        case 'controller.deadline':
          // Only from this node: a remote message of this type is not in the catalog.
          if (ctx.from === undefined) deadlinePassed(msg);
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
    nextSeq.delete(id);
    if (!placing.has(id)) notify(entry);
    else keepDeadline(entry);
    // A retry of a task whose subscriber is still backed up starts paused too.
    const w = pauses.isPaused(id) ? pool.workers.get(worker) : undefined;
    if (w) system.dispatch(w.ref, { type: 'throttle', id, paused: true });
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
    try {
      if (msg.broadcast) {
        const group = table.newId();
        for (const worker of matching) {
          made.push(table.add(spec(command, env, timeoutMs), { selector: `name=${worker.name}`, retries: 0, subscribers: [...subscribers], broadcast: group, now }));
        }
      } else {
        made.push(table.add(spec(command, env, timeoutMs), { selector: selector.text, retries, subscribers, broadcast: null, now }));
      }
    } catch (err) {
      // The journal could not take it (a full disk): none of it is kept, the submitter is told.
      for (const entry of made) (table.forget(entry.record.id), journal?.forget(entry.record.id));
      throw err;
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
      cancelRuns(entry);
      table.finish(entry, 'cancelled', Date.now());
      notify(entry);
    } else {
      cancelRuns(entry);
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
        return { type: 'answer', what: msg.what, ...table.page(undefined, msg.after ?? 0, msg.limit ?? DEFAULT_PAGE_TASKS, pageBytes) };
      case 'isFinished': {
        if (msg.id === undefined) throw invalid('isFinished needs the id of a task');
        const entry = entryOf(msg.id);
        return { type: 'answer', what: msg.what, finished: table.isFinished(entry), task: entry.record };
      }
      default:
        return { type: 'answer', what: msg.what, ...table.page(STATUS_SETS[msg.what], msg.after ?? 0, msg.limit ?? DEFAULT_PAGE_TASKS, pageBytes) };
    }
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
    outputStore?.append(msg.id, entry.record.attempts, msg.seq, msg.stream, msg.data, Date.now());
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
    if (entry) pool.release(sender, r.id);
    // Every result is acknowledged, a repeated one too: the worker holds it until then.
    ackTo(sender, r.id);
  }

  function ackTo(worker: string, id: string): void {
    const w = pool.workers.get(worker);
    if (w) system.dispatch(w.ref, { type: 'resultAck', id });
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
    if (outputStore && table.isFinished(entry)) outputStore.finished(entry.record.id);
    const update = { type: 'taskUpdate', task: entry.record };
    for (const s of entry.subscribers) system.dispatch(s, update);
    keepDeadline(entry);
  }

  /** Sets the Controller's own deadline of a running task with a timeout, or clears it once it is not running. */
  function keepDeadline(entry: TaskEntry): void {
    const { id, status, timeoutMs } = { ...entry.record, timeoutMs: entry.spec.timeoutMs };
    const deadline = deadlines.get(id);
    if (status !== 'running' || timeoutMs <= 0) {
      if (deadline) (clearTimeout(deadline.timer), deadlines.delete(id));
      return;
    }
    const attempt = entry.record.attempts;
    if (deadline?.attempt === attempt) return;
    if (deadline) clearTimeout(deadline.timer);
    const startedAt = entry.record.startedAt ?? Date.now();
    const delay = Math.max(0, startedAt + timeoutMs + timeoutGraceMs - Date.now());
    const timer = setTimeout(() => {
      deadlines.delete(id);
      // In a message to the Controller, so that the table changes only in its own turns.
      system.dispatch(ref, { type: 'controller.deadline', id, attempt } satisfies Deadline);
    }, delay);
    timer.unref();
    deadlines.set(id, { attempt, timer });
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

  /** Who sent an action, for the audit trail: the certificate, the node, its address. */
  function who(sender: string): { cert: string; node: string; address: string | null } {
    return { cert: certificateName(sender), node: sender, address: sender === system.node ? null : (system.peerAddress(sender) ?? null) };
  }

  /** A page of a task's stored output (`troupe logs`). */
  function logs(msg: TaskLogs): object {
    const entry = entryOf(msg.id);
    if (!outputStore) {
      // No journal: the tail the table keeps, as one chunk per stream.
      const chunks = msg.after ? [] : (['stdout', 'stderr'] as const).filter((s) => !msg.stream || msg.stream === s).map((s, i) => ({ n: i + 1, stream: s, at: entry.record.startedAt ?? 0, data: new Uint8Array(entry.tail[s].toBuffer()) }));
      const kept = chunks.reduce((n, c) => n + c.data.byteLength, 0);
      return { type: 'taskLogsPage', task: entry.record, chunks: chunks.filter((c) => c.data.byteLength > 0), cut: Math.max(0, entry.record.stdoutBytes + entry.record.stderrBytes - kept), dropped: false, more: false };
    }
    const page = outputStore.read(msg.id, msg.after ?? 0, msg.stream);
    return { type: 'taskLogsPage', task: entry.record, ...page };
  }

  /** Tasks the journal said were running whose workers have not reported them: lost (or retried). */
  function restoreGracePassed(): void {
    for (const entry of table.list(new Set(['running']))) {
      const e = table.get(entry.id)!;
      const worker = e.record.worker;
      if (worker && pool.workers.get(worker)?.running.has(e.record.id)) continue;
      if (!restoredRunning.has(e.record.id)) continue;
      lost(e.record.id, `its worker ${worker ?? '?'} did not report it within ${restoreGraceMs} ms of the manager's restart`, worker ?? '');
    }
    restoredRunning.clear();
  }

  /** Retention: a batch of old finished tasks deleted, then the next batch in a later turn. */
  function compact(): void {
    if (!journal) return;
    let ids: string[];
    try {
      ids = journal.compactStep();
    } catch (err) {
      system.log.warn({ code: ErrorCodes.JOURNAL_WRITE, err: (err as Error).message }, 'journal retention could not run; trying again later');
      return;
    }
    for (const id of ids) table.forget(id);
    if (ids.length > 0) setImmediate(() => system.isAlive(ref) && system.dispatch(ref, { type: 'controller.compact' } satisfies Housekeeping));
  }

  function entryOf(id: string): TaskEntry {
    const entry = table.get(id);
    if (!entry) throw new TroupeError(ErrorCodes.NO_SUCH_TASK, `no task ${JSON.stringify(id)} (finished tasks are remembered up to ${table.limits.maxFinished})`);
    return entry;
  }

  function selectorOf(entry: TaskEntry): Selector {
    return parseSelector(entry.record.selector);
  }

  // ── the table restored from the journal ──
  const restoredRunning = new Set<string>();
  if (journal) {
    let queued = 0;
    for (const t of journal.restore()) {
      const entry = table.restore(t.spec, t.record);
      if (t.record.status === 'pending') {
        queued += 1;
        pool.place(entry.spec, selectorOf(entry), entry.subscribers, false, entry.record.attempts + 1);
      } else if (t.record.status === 'running') {
        restoredRunning.add(t.record.id);
        if (t.nextSeq > 0) nextSeq.set(t.record.id, t.nextSeq);
        outputStore?.resume(t.record.id);
        keepDeadline(entry);
      }
    }
    system.log.info({ file: journal.file, tasks: table.list().length, queued, running: restoredRunning.size }, 'task table restored from the journal');
    // In messages to the Controller, so that the table changes only in its own turns (none once the node stopped).
    const tell = (msg: Housekeeping) => () => {
      if (system.isAlive(ref)) system.dispatch(ref, msg);
    };
    if (restoredRunning.size > 0) setTimeout(tell({ type: 'controller.restoreGrace' }), restoreGraceMs).unref();
    const compactEvery = options.compactIntervalMs ?? DEFAULT_COMPACT_INTERVAL_MS;
    tell({ type: 'controller.compact' })();
    setInterval(tell({ type: 'controller.compact' }), compactEvery).unref();
  }

  return { ref, pool: poolRef };
}

function invalid(reason: string): TroupeError {
  return new TroupeError(ErrorCodes.INVALID_TASK as ErrorCode, reason);
}

export type { Pool, TaskRecord };
