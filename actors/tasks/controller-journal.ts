/**
 * The Controller's journal glue (on the manager): what the Controller does with a task journal
 * (journal.ts), its stored output (output-store.ts) and its audit trail (audit.ts), kept beside the
 * Controller so that controller.ts stays about the table and the pool.
 *
 * Guarantees:
 * - Every table change goes to the journal before anyone is told (the table's `journal` hook is set
 *   here); a submit the journal cannot take is refused (TROUPE_E_JOURNAL_WRITE) and nothing of it kept.
 * - At start the table is rebuilt from the journal: finished tasks listed, queued ones placed again
 *   in their order, running ones wait `restoreGraceMs` for their workers to report them, then count
 *   as lost (retried if they had retries left).
 * - Housekeeping (the restore grace, retention) runs in the Controller's own turns, as local
 *   messages, and never once the node stopped.
 * - Without a journal: `troupe logs` answers from the tail the table keeps; the audit trail is refused
 *   (TROUPE_E_JOURNAL).
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import { certificateName } from '../../protocols/actor-ref.js';
import type { Attached, AuditQuery, TaskLogs } from '../../protocols/journal.js';
import type { OutputStream } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, TroupeError } from '../../src/errors.js';
import { AuditTrail, type AuditAction } from './audit.js';
import { journalOptions, type ControllerOptions } from './controller-settings.js';
import type { TaskJournal } from './journal.js';
import { OutputStore } from './output-store.js';
import { parseSelector } from './selector.js';
import type { TaskEntry, TaskTable } from './task-table.js';
import type { WorkerPool } from './worker-pool.js';

/** Journal housekeeping (local messages, from the Controller's own timers). */
export type Housekeeping = { type: 'controller.restoreGrace' } | { type: 'controller.compact' };

/** The Controller's messages the glue handles. */
export type JournalMessage = TaskLogs | AuditQuery | Attached | Housekeeping;

/** What the glue needs of the Controller once its pool exists. */
export interface ControllerHooks {
  ref: ActorRef;
  /** Where a task read back as pending is placed again (at the back of its queue). */
  pool: WorkerPool;
  /** A task read back as running: its next output seq, its deadline kept. */
  resumeRunning(entry: TaskEntry, nextSeq: number): void;
  lost(id: string, reason: string, worker: string): void;
}

export class ControllerJournal {
  readonly journal: TaskJournal | undefined;
  readonly #outputStore: OutputStore | undefined;
  readonly #audit: AuditTrail | undefined;
  readonly #restoreGraceMs: number;
  readonly #compactIntervalMs: number;
  readonly #restoredRunning = new Set<string>();
  #hooks: ControllerHooks | undefined;

  constructor(
    private readonly system: ClusterSystem,
    private readonly table: TaskTable,
    options: ControllerOptions,
  ) {
    const o = journalOptions(options);
    this.#restoreGraceMs = o.restoreGraceMs;
    this.#compactIntervalMs = o.compactIntervalMs;
    const journal = (this.journal = options.journal);
    this.#outputStore = journal ? new OutputStore(journal, o.outputTaskBytes, o.outputTotalBytes) : undefined;
    this.#audit = journal ? new AuditTrail(journal) : undefined;
    if (journal) table.journal = (entry, from) => journal.write(entry.spec, entry.record, entry.order, from === null);
  }

  /**
   * One of the journal's messages: `local` when it came from this node (housekeeping is taken only
   * so), answered through `reply` (errors as the Controller answers them); `entryOf` throws
   * TROUPE_E_NO_SUCH_TASK.
   */
  receive(msg: JournalMessage, sender: string, local: boolean, entryOf: (id: string) => TaskEntry, reply: (to: ActorRef, answer: () => never) => void): void {
    if (msg.type === 'taskLogs') reply(msg.replyTo, () => this.logs(msg, entryOf(msg.id)) as never);
    else if (msg.type === 'auditQuery') reply(msg.replyTo, () => this.auditPage(msg) as never);
    else if (msg.type === 'attached') this.attached(sender);
    else if (local) this.housekeeping(msg);
  }

  /** Records an action in the audit trail (throws when the journal cannot write). */
  record(action: AuditAction, sender: string, task: string | null, command: string | null): void {
    this.#audit?.record({ action, ...this.#who(sender), task, command });
  }

  /** An attach: recorded if it can be, a failure logged (nothing waits for an answer). */
  attached(sender: string): void {
    try {
      this.record('attach', sender, null, null);
    } catch {
      this.system.log.warn({ code: ErrorCodes.JOURNAL_WRITE, node: sender }, 'could not record an attach in the audit trail');
    }
  }

  auditPage(msg: AuditQuery): object {
    if (!this.#audit) throw new TroupeError(ErrorCodes.JOURNAL, 'this manager keeps no journal (no --state-dir), so no audit trail');
    return { type: 'auditPage', entries: this.#audit.query(msg) };
  }

  /** A chunk of output, stored (a no-op without a journal). */
  append(id: string, attempt: number, seq: number, stream: OutputStream, data: Uint8Array): void {
    this.#outputStore?.append(id, attempt, seq, stream, data, Date.now());
  }

  /** A task's status changed: its stored output is closed once it finished. */
  changed(entry: TaskEntry): void {
    if (this.#outputStore && this.table.isFinished(entry)) this.#outputStore.finished(entry.record.id);
  }

  /** Adds the tasks of one submit, `made` as they are added: if the journal refuses one, none of them is kept. */
  allOrNone(made: readonly TaskEntry[], add: () => void): void {
    try {
      add();
    } catch (err) {
      for (const entry of made) (this.table.forget(entry.record.id), this.journal?.forget(entry.record.id));
      throw err;
    }
  }

  /** A page of a task's stored output (`troupe logs`). */
  logs(msg: TaskLogs, entry: TaskEntry): object {
    if (!this.#outputStore) {
      // No journal: the tail the table keeps, as one chunk per stream.
      const chunks = msg.after ? [] : (['stdout', 'stderr'] as const).filter((s) => !msg.stream || msg.stream === s).map((s, i) => ({ n: i + 1, stream: s, at: entry.record.startedAt ?? 0, data: new Uint8Array(entry.tail[s].toBuffer()) }));
      const kept = chunks.reduce((n, c) => n + c.data.byteLength, 0);
      return { type: 'taskLogsPage', task: entry.record, chunks: chunks.filter((c) => c.data.byteLength > 0), cut: Math.max(0, entry.record.stdoutBytes + entry.record.stderrBytes - kept), dropped: false, more: false };
    }
    const page = this.#outputStore.read(msg.id, msg.after ?? 0, msg.stream);
    return { type: 'taskLogsPage', task: entry.record, ...page };
  }

  /** The table rebuilt from the journal, and the housekeeping timers started. */
  restore(hooks: ControllerHooks): void {
    this.#hooks = hooks;
    const journal = this.journal;
    if (!journal) return;
    let queued = 0;
    for (const t of journal.restore()) {
      const entry = this.table.restore(t.spec, t.record);
      if (t.record.status === 'pending') {
        queued += 1;
        hooks.pool.place(entry.spec, parseSelector(entry.record.selector), entry.subscribers, false, entry.record.attempts + 1);
      } else if (t.record.status === 'running') {
        this.#restoredRunning.add(t.record.id);
        this.#outputStore?.resume(t.record.id);
        hooks.resumeRunning(entry, t.nextSeq);
      }
    }
    this.system.log.info({ file: journal.file, tasks: this.table.list().length, queued, running: this.#restoredRunning.size }, 'task table restored from the journal');
    if (this.#restoredRunning.size > 0) setTimeout(this.#tell({ type: 'controller.restoreGrace' }), this.#restoreGraceMs).unref();
    this.#tell({ type: 'controller.compact' })();
    setInterval(this.#tell({ type: 'controller.compact' }), this.#compactIntervalMs).unref();
  }

  /** A housekeeping message (from this node only). */
  housekeeping(msg: Housekeeping): void {
    if (msg.type === 'controller.restoreGrace') this.#restoreGracePassed();
    else this.#compact();
  }

  /** Tasks the journal said were running whose workers have not reported them: lost (or retried). */
  #restoreGracePassed(): void {
    const hooks = this.#hooks!;
    for (const record of this.table.list(new Set(['running']))) {
      const e = this.table.get(record.id)!;
      const worker = e.record.worker;
      if (!this.#restoredRunning.has(e.record.id) || (worker && hooks.pool.workers.get(worker)?.running.has(e.record.id))) continue;
      hooks.lost(e.record.id, `its worker ${worker ?? '?'} did not report it within ${this.#restoreGraceMs} ms of the manager's restart`, worker ?? '');
    }
    this.#restoredRunning.clear();
  }

  /** Retention: a batch of old finished tasks deleted, then the next batch in a later turn. */
  #compact(): void {
    if (!this.journal) return;
    let ids: string[];
    try {
      ids = this.journal.compactStep();
    } catch (err) {
      this.system.log.warn({ code: ErrorCodes.JOURNAL_WRITE, err: (err as Error).message }, 'journal retention could not run; trying again later');
      return;
    }
    for (const id of ids) this.table.forget(id);
    if (ids.length > 0) setImmediate(this.#tell({ type: 'controller.compact' }));
  }

  /** In messages to the Controller, so that the table changes only in its own turns (none once the node stopped). */
  #tell(msg: Housekeeping): () => void {
    return () => {
      const ref = this.#hooks?.ref;
      if (ref && this.system.isAlive(ref)) this.system.dispatch(ref, msg);
    };
  }

  /** Who sent an action, for the audit trail: the certificate, the node, its address. */
  #who(sender: string): { cert: string; node: string; address: string | null } {
    return { cert: certificateName(sender), node: sender, address: sender === this.system.node ? null : (this.system.linkStats(sender)?.address ?? null) };
  }
}
