/**
 * The task journal (on the manager): every lifecycle change of every task, written to SQLite
 * (better-sqlite3, WAL mode) in `<stateDir>/journal.db` before anyone is told of it, and read back
 * at start so that the Controller's table survives a restart (clean or `kill -9`).
 *
 * Guarantees:
 * - Write before acknowledge: the TaskTable calls `write` synchronously inside the Controller's
 *   turn, as the record changes, before the Controller replies or notifies; a write that fails
 *   (a full disk) throws TROUPE_E_JOURNAL_WRITE, and a submit it was for is refused with that code.
 * - Crash safety: WAL with `synchronous = NORMAL`: a committed write survives the process being
 *   killed at any point (SIGKILL); a power loss may lose the last writes (never corrupts the file).
 * - A journal that cannot be opened or read (not a database, corrupt, unreadable) stops the manager
 *   with TROUPE_E_JOURNAL naming the file; it is never replaced by an empty one.
 * - One row per task (the latest record and the spec): a restart reads one row per task, in
 *   submission order.
 * - Retention (`compact`): finished tasks past `keepTasks` (oldest first) or older than `keepDays`
 *   are deleted with their output, in small batches, each its own short transaction, so the
 *   manager never stalls on it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FINISHED_STATUSES, type TaskRecord, type WorkSpec } from '../../protocols/tasks.js';
import { ErrorCodes, TroupeError, settingError } from '../../src/errors.js';

export const JOURNAL_FILE = 'journal.db';
export const DEFAULT_STATE_DIR = '.troupe';
/** Finished tasks kept (in the journal and the table). */
export const DEFAULT_KEEP_TASKS = 10_000;
/** Days a finished task is kept. */
export const DEFAULT_KEEP_DAYS = 7;
/** Rows deleted per compaction step (one short transaction each). */
const COMPACT_BATCH = 500;
const SCHEMA_VERSION = 1;

export interface RestoredTask {
  spec: WorkSpec;
  record: TaskRecord;
  /** The next output seq expected of its current run (for a running task: after the stored chunks). */
  nextSeq: number;
}

export interface JournalOptions {
  stateDir: string;
  keepTasks?: number;
  keepDays?: number;
}

export class TaskJournal {
  readonly file: string;
  readonly keepTasks: number;
  readonly keepDays: number;
  readonly db: Database.Database;
  readonly #upsert: Database.Statement;
  readonly #update: Database.Statement;
  readonly #delete: Database.Statement;
  #closed = false;
  readonly #beforeClose: (() => void)[] = [];

  private constructor(file: string, db: Database.Database, keepTasks: number, keepDays: number) {
    this.file = file;
    this.db = db;
    this.keepTasks = keepTasks;
    this.keepDays = keepDays;
    this.#upsert = db.prepare(
      'INSERT INTO tasks (id, ord, status, finished_at, spec, record) VALUES (@id, @ord, @status, @finishedAt, @spec, @record) ' +
        'ON CONFLICT(id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, record = excluded.record',
    );
    this.#update = db.prepare('UPDATE tasks SET status = @status, finished_at = @finishedAt, record = @record WHERE id = @id');
    this.#delete = db.prepare('DELETE FROM tasks WHERE id = ?');
  }

  /** Opens (or creates) `<stateDir>/journal.db`; TROUPE_E_JOURNAL naming the file if it cannot be used. */
  static open(options: JournalOptions): TaskJournal {
    const keepTasks = options.keepTasks ?? DEFAULT_KEEP_TASKS;
    if (!Number.isInteger(keepTasks) || keepTasks < 0) throw settingError('keepTasks', keepTasks, 'a whole number of tasks ≥ 0');
    const keepDays = options.keepDays ?? DEFAULT_KEEP_DAYS;
    if (!Number.isFinite(keepDays) || keepDays < 0) throw settingError('keepDays', keepDays, 'days ≥ 0');
    const file = path.resolve(options.stateDir, JOURNAL_FILE);
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new Error(`schema version ${version} is newer than this troupe's (${SCHEMA_VERSION})`);
      db.exec(`
        CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, ord INTEGER NOT NULL, status TEXT NOT NULL, finished_at INTEGER, spec TEXT NOT NULL, record TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS tasks_ord ON tasks (ord);
        CREATE TABLE IF NOT EXISTS output (n INTEGER PRIMARY KEY, id TEXT NOT NULL, attempt INTEGER NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL, at INTEGER NOT NULL, part TEXT NOT NULL, data BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS output_id ON output (id, n);
        CREATE TABLE IF NOT EXISTS output_cut (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, dropped INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS audit (n INTEGER PRIMARY KEY, at INTEGER NOT NULL, action TEXT NOT NULL, cert TEXT NOT NULL, node TEXT NOT NULL, address TEXT, task TEXT, command TEXT);
        CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
      `);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return new TaskJournal(file, db, keepTasks, keepDays);
    } catch (err) {
      db?.close();
      throw journalError(file, err);
    }
  }

  /** Every task in the journal, in submission order. TROUPE_E_JOURNAL if a row cannot be read. */
  restore(): RestoredTask[] {
    try {
      const rows = this.db.prepare('SELECT spec, record FROM tasks ORDER BY ord').all() as { spec: string; record: string }[];
      const seqs = new Map<string, number>();
      for (const r of this.db.prepare('SELECT t.id AS id, MAX(o.seq) AS seq FROM tasks t JOIN output o ON o.id = t.id AND o.attempt = json_extract(t.record, \'$.attempts\') WHERE t.status = \'running\' GROUP BY t.id').all() as { id: string; seq: number }[]) {
        seqs.set(r.id, r.seq + 1);
      }
      return rows.map((r) => {
        const spec = JSON.parse(r.spec) as WorkSpec;
        const record = JSON.parse(r.record) as TaskRecord;
        return { spec, record, nextSeq: seqs.get(record.id) ?? 0 };
      });
    } catch (err) {
      throw journalError(this.file, err);
    }
  }

  /**
   * Writes a task's current record: with its spec and order when `isNew`, else only the record (the
   * spec never changes). Throws TROUPE_E_JOURNAL_WRITE.
   */
  write(spec: WorkSpec, record: TaskRecord, order: number, isNew = true): void {
    try {
      const row = { id: record.id, status: record.status, finishedAt: record.finishedAt, record: JSON.stringify(record) };
      if (!isNew) this.#update.run(row);
      else this.#upsert.run({ ...row, ord: order, spec: JSON.stringify(spec) });
    } catch (err) {
      throw writeError(this.file, err);
    }
  }

  /** Removes a task that was never acknowledged (its submit failed). */
  forget(id: string): void {
    try {
      this.#delete.run(id);
    } catch {
      // Best effort: the row of a refused submit, on a disk that refuses writes.
    }
  }

  /**
   * One step of retention: deletes up to COMPACT_BATCH finished tasks past the bounds (with their
   * output), oldest first. Returns the ids deleted (the table forgets them too); call again while
   * it returns a full batch.
   */
  compactStep(now = Date.now()): string[] {
    const cutoff = now - this.keepDays * 86_400_000;
    const finished = [...FINISHED_STATUSES].map((s) => `'${s}'`).join(',');
    const ids = this.db
      .prepare(
        `SELECT id FROM tasks WHERE status IN (${finished}) AND (finished_at < @cutoff OR ord <= (SELECT ord FROM tasks WHERE status IN (${finished}) ORDER BY ord DESC LIMIT 1 OFFSET @keep)) ORDER BY ord LIMIT @batch`,
      )
      .pluck()
      .all({ cutoff, keep: this.keepTasks, batch: COMPACT_BATCH }) as string[];
    if (ids.length === 0) return ids;
    const del = this.db.transaction((list: string[]) => {
      const t = this.db.prepare('DELETE FROM tasks WHERE id = ?');
      const o = this.db.prepare('DELETE FROM output WHERE id = ?');
      const c = this.db.prepare('DELETE FROM output_cut WHERE id = ?');
      for (const id of list) (t.run(id), o.run(id), c.run(id));
    });
    del(ids);
    return ids;
  }

  /** Runs `fn` just before the database closes (a writer that holds rows back flushes them). */
  beforeClose(fn: () => void): void {
    this.#beforeClose.push(fn);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fn of this.#beforeClose) fn();
    this.db.close();
  }
}

/** The journal could not be opened or read: the manager stops, the file named. */
export function journalError(file: string, err: unknown): TroupeError {
  const reason = err instanceof Error ? err.message : String(err);
  return new TroupeError(ErrorCodes.JOURNAL, `the task journal ${file} cannot be used: ${reason}; the manager will not start with an empty one (move the file away to start afresh)`, { cause: err });
}

/** A write to the journal failed (e.g. a full disk): what it was for is refused, not acknowledged. */
export function writeError(file: string, err: unknown): TroupeError {
  const reason = err instanceof Error ? err.message : String(err);
  return new TroupeError(ErrorCodes.JOURNAL_WRITE, `cannot write the task journal ${file}: ${reason}`, { cause: err });
}
