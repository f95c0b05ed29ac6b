/**
 * The Controller's own deadline of each running task (on the manager): its timeout plus
 * `timeoutGraceMs` from its start, after which the Controller ends it as `timed-out` even when its
 * worker never answers (see controller.ts).
 *
 * Guarantees:
 * - One deadline per task, for the attempt it was set for: a new attempt replaces it, a task that
 *   is no longer running (or has no timeout) has none.
 * - A deadline that passes is told to the Controller as a local message (`controller.deadline`),
 *   so that the table changes only in the Controller's own turns; the Controller checks that the
 *   attempt is still the one running before it acts on it.
 * - The timers are unref'd: a deadline never keeps the process alive.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import type { TaskEntry } from './task-table.js';

/** The Controller's deadline for a running task passed (a local message, from its own timer). */
export type Deadline = { type: 'controller.deadline'; id: string; attempt: number };

export class ControllerDeadlines {
  readonly #timers = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly system: ClusterSystem,
    /** The Controller, told of each deadline that passes. */
    private readonly controller: () => ActorRef,
    readonly timeoutGraceMs: number,
  ) {}

  /** Sets the deadline of a running task with a timeout, or clears it once it is not running. */
  keep(entry: TaskEntry): void {
    // Read field by field: a copy of the record on every update cost more than the rest of this.
    const { id, status } = entry.record;
    const timeoutMs = entry.spec.timeoutMs;
    const deadline = this.#timers.get(id);
    if (status !== 'running' || timeoutMs <= 0) {
      if (deadline) (clearTimeout(deadline.timer), this.#timers.delete(id));
      return;
    }
    const attempt = entry.record.attempts;
    if (deadline?.attempt === attempt) return;
    if (deadline) clearTimeout(deadline.timer);
    const startedAt = entry.record.startedAt ?? Date.now();
    const delay = Math.max(0, startedAt + timeoutMs + this.timeoutGraceMs - Date.now());
    const timer = setTimeout(() => {
      this.#timers.delete(id);
      this.system.dispatch(this.controller(), { type: 'controller.deadline', id, attempt } satisfies Deadline);
    }, delay);
    timer.unref();
    this.#timers.set(id, { attempt, timer });
  }
}
