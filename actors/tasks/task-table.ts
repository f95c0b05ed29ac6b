/**
 * The Controller's table of tasks: every task from submission to its end, as the events that moved
 * it (`pending → running → succeeded | failed | timed-out | cancelled | lost`). Live tasks are kept
 * whole; finished ones are kept up to a bound, oldest dropped first, each with only a bounded tail of
 * its output.
 */
import { randomBytes } from 'node:crypto';
import type { ActorRef } from '../../protocols/actor-ref.js';
import { FINISHED_STATUSES, type OutputStream, type TaskRecord, type TaskStatus, type WorkResult, type WorkSpec } from '../../protocols/tasks.js';
import { OutputTail as Tail } from '../process/output-tail.js';

/** A task's output tail: the shared OutputTail (one class for the Controller's table and Russula's results). */
export { OutputTail as Tail } from '../process/output-tail.js';

export interface TaskTableLimits {
  /** Finished tasks remembered. */
  maxFinished: number;
  /** Bytes of each stream's output kept per task. */
  tailBytes: number;
}

export const DEFAULT_TASK_LIMITS: TaskTableLimits = { maxFinished: 1000, tailBytes: 64 * 1024 };

/**
 * Told of every lifecycle change, after the record changed: `from` is the status before (null for a
 * new task). Metrics and the live view (`troupe top`) follow the table through it.
 */
export type TaskObserver = (record: TaskRecord, from: TaskStatus | null) => void;

/**
 * The journal's hook (actors/tasks/journal.ts): told of every lifecycle change, synchronously, after
 * the record changed and before anyone is told (the observer too); it may throw (the journal cannot
 * write), and a new task it throws for is not kept.
 */
export type TaskJournalHook = (entry: TaskEntry, from: TaskStatus | null) => void;

export interface TaskEntry {
  record: TaskRecord;
  spec: WorkSpec;
  subscribers: ActorRef[];
  tail: Record<OutputStream, Tail>;
  /**
   * Each worker given a run of this task, with the number of its latest run there: the only nodes
   * that may report on the task (a result from an earlier run is still taken).
   */
  ranOn: Map<string, number>;
  /** Its place in the table, in submission order: the cursor of a page of tasks. */
  order: number;
}

export class TaskTable {
  readonly #tasks = new Map<string, TaskEntry>();
  /** Finished ids, oldest first. */
  readonly #finished: string[] = [];
  #seq = 0;
  /**
   * Ids are `<prefix>-<n>`: short to type, and the prefix, new for each Controller, keeps a restarted
   * manager's ids apart from those of tasks its predecessor started that workers still run.
   */
  readonly #prefix = randomBytes(2).readUInt16BE(0).toString(36).padStart(3, '0').slice(-3);

  #order = 0;

  constructor(
    readonly limits: TaskTableLimits = DEFAULT_TASK_LIMITS,
    private readonly observer: TaskObserver = () => {},
  ) {}

  /** Set by the Controller when the manager has a journal. */
  journal: TaskJournalHook = () => {};

  newId(): string {
    // Never the id of a task restored from the journal (a restarted manager's prefix may repeat).
    do this.#seq += 1;
    while (this.#tasks.has(`${this.#prefix}-${this.#seq}`));
    return `${this.#prefix}-${this.#seq}`;
  }

  /** A task read back from the journal at start, as it was: no journal write. */
  restore(spec: WorkSpec, record: TaskRecord): TaskEntry {
    const entry: TaskEntry = {
      spec,
      subscribers: [],
      tail: { stdout: new Tail(this.limits.tailBytes), stderr: new Tail(this.limits.tailBytes) },
      ranOn: new Map(),
      order: ++this.#order,
      record,
    };
    if (record.worker !== null && record.attempts > 0) entry.ranOn.set(record.worker, record.attempts);
    this.#tasks.set(spec.id, entry);
    if (this.isFinished(entry)) {
      this.#finished.push(record.id);
      while (this.#finished.length > this.limits.maxFinished) this.#tasks.delete(this.#finished.shift()!);
    }
    return entry;
  }

  /** Drops a task: one whose submit was refused, or a finished one retention removed. */
  forget(id: string): void {
    if (!this.#tasks.delete(id)) return;
    const at = this.#finished.indexOf(id);
    if (at >= 0) this.#finished.splice(at, 1);
  }

  /** The record was changed in place by the Controller: the journal is told. */
  changed(entry: TaskEntry): void {
    this.journal(entry, entry.record.status);
  }

  get(id: string): TaskEntry | undefined {
    return this.#tasks.get(id);
  }

  add(spec: WorkSpec, fields: { selector: string; retries: number; subscribers: ActorRef[]; broadcast: string | null; now: number }): TaskEntry {
    const entry: TaskEntry = {
      spec,
      subscribers: fields.subscribers,
      tail: { stdout: new Tail(this.limits.tailBytes), stderr: new Tail(this.limits.tailBytes) },
      ranOn: new Map(),
      order: ++this.#order,
      record: {
        id: spec.id,
        command: spec.command,
        selector: fields.selector,
        status: 'pending',
        worker: null,
        attempts: 0,
        retries: fields.retries,
        submittedAt: fields.now,
        startedAt: null,
        finishedAt: null,
        exitCode: null,
        signal: null,
        durationMs: null,
        stdoutBytes: 0,
        stderrBytes: 0,
        error: null,
        broadcast: fields.broadcast,
      },
    };
    this.#tasks.set(spec.id, entry);
    try {
      this.journal(entry, null);
    } catch (err) {
      this.#tasks.delete(spec.id);
      throw err;
    }
    this.observer(entry.record, null);
    return entry;
  }

  /**
   * A task a worker reports that this table never saw (the manager restarted while it ran): it is
   * taken in as running there, so its output and result are kept.
   */
  adopt(spec: WorkSpec, worker: string, startedAt: number): TaskEntry {
    const entry = this.add(spec, { selector: `name=${worker}`, retries: 0, subscribers: [], broadcast: null, now: startedAt });
    this.running(entry, worker, startedAt);
    return entry;
  }

  running(entry: TaskEntry, worker: string, now: number): void {
    const from = entry.record.status;
    entry.record = { ...entry.record, status: 'running', worker, attempts: entry.record.attempts + 1, startedAt: now, error: null };
    entry.ranOn.set(worker, entry.record.attempts);
    this.journal(entry, from);
    this.observer(entry.record, from);
  }

  /** Running again where an earlier attempt still runs (its worker is back): no new attempt. */
  resumed(entry: TaskEntry, worker: string, startedAt: number): void {
    const from = entry.record.status;
    entry.record = { ...entry.record, status: 'running', worker, startedAt, error: null };
    this.journal(entry, from);
    this.observer(entry.record, from);
  }

  /** Back to pending after a lost attempt, to run again elsewhere. */
  retry(entry: TaskEntry, reason: string): void {
    const from = entry.record.status;
    entry.record = { ...entry.record, status: 'pending', worker: null, startedAt: null, error: reason };
    this.journal(entry, from);
    this.observer(entry.record, from);
  }

  output(entry: TaskEntry, stream: OutputStream, data: Uint8Array): void {
    entry.tail[stream].push(data);
    if (stream === 'stdout') entry.record = { ...entry.record, stdoutBytes: entry.record.stdoutBytes + data.byteLength };
    else entry.record = { ...entry.record, stderrBytes: entry.record.stderrBytes + data.byteLength };
  }

  /** The worker's result ends the task (the result of `worker`'s run, which may be an earlier attempt). */
  result(entry: TaskEntry, result: WorkResult, now: number, worker = entry.record.worker): void {
    const status: TaskStatus =
      result.outcome === 'timed-out' ? 'timed-out'
      : result.outcome === 'cancelled' ? 'cancelled'
      : result.outcome === 'exited' && result.exitCode === 0 ? 'succeeded'
      : 'failed';
    this.finish(entry, status, now, {
      exitCode: result.exitCode,
      signal: result.signal,
      durationMs: result.durationMs,
      startedAt: result.startedAt,
      stdoutBytes: Math.max(entry.record.stdoutBytes, result.stdoutBytes),
      stderrBytes: Math.max(entry.record.stderrBytes, result.stderrBytes),
      error: result.error,
      worker,
    });
  }

  finish(entry: TaskEntry, status: TaskStatus, now: number, fields: Partial<TaskRecord> = {}): void {
    const from = entry.record.status;
    entry.record = { ...entry.record, ...fields, status, finishedAt: now };
    this.journal(entry, from);
    this.observer(entry.record, from);
    this.#finished.push(entry.record.id);
    while (this.#finished.length > this.limits.maxFinished) this.#tasks.delete(this.#finished.shift()!);
  }

  isFinished(entry: TaskEntry): boolean {
    return FINISHED_STATUSES.has(entry.record.status);
  }

  /**
   * A page of the tasks (or of those with one of the statuses), in submission order: those after
   * the cursor `after`, at most `limit`, and no more than about `maxBytes` encoded (at least one).
   * `next` is the cursor of the next page, absent on the last.
   */
  page(statuses: ReadonlySet<TaskStatus> | undefined, after: number, limit: number, maxBytes: number): { tasks: TaskRecord[]; next?: number } {
    const tasks: TaskRecord[] = [];
    let bytes = 0;
    let last = after;
    for (const entry of this.#tasks.values()) {
      if (entry.order <= after || (statuses && !statuses.has(entry.record.status))) continue;
      const size = recordBytes(entry.record);
      if (tasks.length >= limit || (tasks.length > 0 && bytes + size > maxBytes)) return { tasks, next: last };
      tasks.push(entry.record);
      bytes += size;
      last = entry.order;
    }
    return { tasks };
  }

  /** All tasks, or those with one of the statuses, in submission order. */
  list(statuses?: ReadonlySet<TaskStatus>): TaskRecord[] {
    const out: TaskRecord[] = [];
    for (const entry of this.#tasks.values()) if (!statuses || statuses.has(entry.record.status)) out.push(entry.record);
    return out;
  }
}

/** About what a record takes encoded: its strings, and a bound for the rest of its fields. */
function recordBytes(r: TaskRecord): number {
  return 512 + Buffer.byteLength(r.command) + Buffer.byteLength(r.selector) + (r.error ? Buffer.byteLength(r.error) : 0);
}
