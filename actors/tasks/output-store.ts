/**
 * Each task's full output on the manager's disk, in the journal's database (table `output`): every
 * chunk with its stream, its time and the seq of its run, so `troupe logs` can print a task's
 * output, finished or running, after any restart.
 *
 * Bounds: per task `perTaskBytes` (default 16 MiB): the first half (the head) is kept whole, then
 * the latest chunks up to the other half (the tail), the chunks between dropped and their bytes
 * counted (`cut`), said by `troupe logs`. For all tasks `totalBytes` (default 1 GiB): past it, the
 * output of the oldest tasks is dropped first (marked `dropped`). A write that fails (a full disk)
 * loses that chunk of the stored copy only: it is still delivered to subscribers, and counted cut.
 *
 * The head is written as it comes. The tail is written at most every TAIL_FLUSH_MS (and when the
 * task ends, when it is read, when the journal closes, and when more than MAX_PENDING_TAIL_BYTES
 * wait across tasks): chunks that would be deleted again before then (pushed out of the tail by
 * newer ones) are never written, only counted cut. So a task that streams a gigabyte costs the disk
 * its bound per TAIL_FLUSH_MS, not the gigabyte; a manager killed with SIGKILL loses from the stored
 * copy at most the last TAIL_FLUSH_MS of a tail (delivery to subscribers is not affected).
 *
 * While a task pours (at the last write, more than its tail's half had arrived since the one
 * before, so chunks were dropped unwritten and its whole stored tail was replaced), tails are
 * written every POURING_TAIL_FLUSH_MS instead: at a few hundred MB/s, rewriting 8 MiB of tail every
 * second was a tenth of the manager's CPU (bench:output, `perf`). Meanwhile a SIGKILL loses at most
 * the last POURING_TAIL_FLUSH_MS of a tail; heads, and the tail of a task that ends (written then),
 * are as before; the first write after a quiet spell still comes within TAIL_FLUSH_MS.
 */
import type { OutputStream } from '../../protocols/tasks.js';
import { settingError } from '../../src/errors.js';
import type { TaskJournal } from './journal.js';

export const DEFAULT_OUTPUT_TASK_BYTES = 16 * 1024 * 1024;
export const DEFAULT_OUTPUT_TOTAL_BYTES = 1024 * 1024 * 1024;
/** Most bytes of output in one answer to a `taskLogs` query. */
export const LOGS_PAGE_BYTES = 1024 * 1024;
/** The longest a chunk of a task's tail waits to be written: 1 second. */
export const TAIL_FLUSH_MS = 1000;
/** The longest a chunk of a pouring task's tail waits to be written (see above): 5 seconds. */
export const POURING_TAIL_FLUSH_MS = 5000;
/** Tail bytes waiting across all tasks above which they are all written at once: 32 MiB. */
export const MAX_PENDING_TAIL_BYTES = 32 * 1024 * 1024;

export interface StoredChunk {
  /** The cursor: ask for chunks after it. */
  n: number;
  stream: OutputStream;
  at: number;
  data: Uint8Array;
}

interface TaskBytes {
  head: number;
  tail: number;
  /** Tail chunks not written yet, oldest first; their bytes; bytes dropped from them unwritten. */
  pending: PendingChunk[];
  pendingBytes: number;
  pendingCut: number;
}

interface PendingChunk {
  attempt: number;
  seq: number;
  stream: OutputStream;
  at: number;
  data: Buffer;
}

export class OutputStore {
  readonly #journal: TaskJournal;
  readonly #insert;
  readonly #oldestTail;
  readonly #deleteRow;
  readonly #addCut;
  readonly #bytes = new Map<string, TaskBytes>();
  #total: number;
  /** Tasks with pending tail chunks, and their bytes. */
  readonly #pendingTasks = new Set<string>();
  #pendingTotal = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  /** The last write of a tail found chunks dropped unwritten: the next waits POURING_TAIL_FLUSH_MS. */
  #pouring = false;
  readonly #writeTail;

  constructor(
    journal: TaskJournal,
    readonly perTaskBytes = DEFAULT_OUTPUT_TASK_BYTES,
    readonly totalBytes = DEFAULT_OUTPUT_TOTAL_BYTES,
  ) {
    if (!Number.isInteger(perTaskBytes) || perTaskBytes < 2) throw settingError('outputTaskBytes', perTaskBytes, 'a whole number of bytes ≥ 2');
    if (!Number.isInteger(totalBytes) || totalBytes < perTaskBytes) throw settingError('outputTotalBytes', totalBytes, `a whole number of bytes ≥ the per-task bound (${perTaskBytes})`);
    this.#journal = journal;
    const db = journal.db;
    this.#insert = db.prepare('INSERT INTO output (id, attempt, seq, stream, at, part, data) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#oldestTail = db.prepare("SELECT n, LENGTH(data) AS len FROM output WHERE id = ? AND part = 'tail' ORDER BY n LIMIT 1");
    this.#deleteRow = db.prepare('DELETE FROM output WHERE n = ?');
    this.#addCut = db.prepare('INSERT INTO output_cut (id, bytes) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET bytes = bytes + excluded.bytes');
    this.#total = (db.prepare('SELECT COALESCE(SUM(LENGTH(data)), 0) FROM output').pluck().get() as number) ?? 0;
    this.#writeTail = db.transaction((id: string, b: TaskBytes) => this.#writeTailNow(id, b));
    journal.beforeClose(() => this.flush());
  }

  /** Keeps a chunk of a task's output (the run `attempt`, chunk `seq`). */
  append(id: string, attempt: number, seq: number, stream: OutputStream, data: Uint8Array, at: number): void {
    try {
      const b = this.#bytesOf(id);
      const half = Math.floor(this.perTaskBytes / 2);
      let chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (b.head < half) {
        const take = Math.min(chunk.length, half - b.head);
        this.#insert.run(id, attempt, seq, stream, at, 'head', chunk.subarray(0, take));
        b.head += take;
        this.#total += take;
        chunk = chunk.subarray(take);
        if (chunk.length === 0) return this.#keepBudget(id);
      }
      if (chunk.length > half) {
        b.pendingCut += chunk.length - half;
        chunk = chunk.subarray(chunk.length - half);
      }
      b.pending.push({ attempt, seq, stream, at, data: chunk });
      b.pendingBytes += chunk.length;
      this.#pendingTotal += chunk.length;
      // The oldest waiting chunks go unwritten while the waiting ones alone overfill the tail.
      while (b.pendingBytes > half) {
        const dropped = b.pending.shift()!.data.length;
        b.pendingBytes -= dropped;
        this.#pendingTotal -= dropped;
        b.pendingCut += dropped;
      }
      this.#pendingTasks.add(id);
      if (this.#pendingTotal > MAX_PENDING_TAIL_BYTES) this.flush();
      else this.#flushTimer ??= setTimeout(() => this.flush(), this.flushDelayMs).unref();
    } catch {
      // The stored copy misses this chunk (a full disk): said as cut; delivery goes on.
      try {
        this.#cut(id, data.byteLength);
      } catch {
        // Nothing more can be written.
      }
    }
  }

  /** How long the next tail chunk waits to be written: TAIL_FLUSH_MS, or POURING_TAIL_FLUSH_MS while a task pours. */
  get flushDelayMs(): number {
    return this.#pouring ? POURING_TAIL_FLUSH_MS : TAIL_FLUSH_MS;
  }

  /** Writes every task's waiting tail chunks now. */
  flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    let pouring = false;
    for (const id of [...this.#pendingTasks]) pouring = this.#flushTask(id) || pouring;
    this.#pouring = pouring;
  }

  /** Writes a task's waiting tail chunks; true if chunks were dropped unwritten (it pours). */
  #flushTask(id: string): boolean {
    this.#pendingTasks.delete(id);
    const b = this.#bytes.get(id);
    if (!b || (b.pending.length === 0 && b.pendingCut === 0)) return false;
    const bytes = b.pendingBytes;
    const pouring = b.pendingCut > 0;
    try {
      this.#writeTail(id, b);
    } catch {
      // The stored copy misses these chunks (a full disk): said as cut; delivery went on.
      try {
        this.#cut(id, bytes + b.pendingCut);
      } catch {
        // Nothing more can be written.
      }
    }
    this.#pendingTotal -= bytes;
    b.pending = [];
    b.pendingBytes = 0;
    b.pendingCut = 0;
    return pouring;
  }

  /** In one transaction: the waiting chunks, then the oldest rows out while the tail is over its half. */
  #writeTailNow(id: string, b: TaskBytes): void {
    const half = Math.floor(this.perTaskBytes / 2);
    let tail = b.tail;
    let total = this.#total;
    for (const c of b.pending) {
      this.#insert.run(id, c.attempt, c.seq, c.stream, c.at, 'tail', c.data);
      tail += c.data.length;
      total += c.data.length;
    }
    let cut = b.pendingCut;
    while (tail > half) {
      const oldest = this.#oldestTail.get(id) as { n: number; len: number };
      this.#deleteRow.run(oldest.n);
      tail -= oldest.len;
      total -= oldest.len;
      cut += oldest.len;
    }
    if (cut > 0) this.#cut(id, cut);
    // Counted once the transaction holds (a failed one rolls back and changes nothing here).
    b.tail = tail;
    this.#total = total;
    this.#keepBudget(id);
  }

  /** Chunks of a task after the cursor `after`, up to about LOGS_PAGE_BYTES; `cut` the bytes left out. */
  read(id: string, after: number, stream?: OutputStream): { chunks: StoredChunk[]; cut: number; dropped: boolean; more: boolean } {
    this.flush(); // what waits of every task: what it writes may push older output out of the budget
    const db = this.#journal.db;
    const rows = db
      .prepare(`SELECT n, stream, at, data FROM output WHERE id = ? AND n > ? ${stream ? 'AND stream = ?' : ''} ORDER BY n LIMIT 4096`)
      .all(...(stream ? [id, after, stream] : [id, after])) as StoredChunk[];
    const chunks: StoredChunk[] = [];
    let bytes = 0;
    let more = rows.length === 4096;
    for (const r of rows) {
      if (chunks.length > 0 && bytes + r.data.byteLength > LOGS_PAGE_BYTES) {
        more = true;
        break;
      }
      chunks.push({ n: r.n, stream: r.stream, at: r.at, data: new Uint8Array(r.data) });
      bytes += r.data.byteLength;
    }
    const cut = db.prepare('SELECT bytes, dropped FROM output_cut WHERE id = ?').get(id) as { bytes: number; dropped: number } | undefined;
    return { chunks, cut: cut?.bytes ?? 0, dropped: (cut?.dropped ?? 0) === 1, more };
  }

  /** A task that ran before a restart and goes on: its stored bytes are counted again. */
  resume(id: string): void {
    const rows = this.#journal.db.prepare('SELECT part, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM output WHERE id = ? GROUP BY part').all(id) as { part: string; bytes: number }[];
    this.#bytes.set(id, { head: rows.find((r) => r.part === 'head')?.bytes ?? 0, tail: rows.find((r) => r.part === 'tail')?.bytes ?? 0, pending: [], pendingBytes: 0, pendingCut: 0 });
  }

  /** A task's stored bytes: known for every task since this start (or resumed), 0 for a new one. */
  #bytesOf(id: string): TaskBytes {
    let b = this.#bytes.get(id);
    if (!b) {
      b = { head: 0, tail: 0, pending: [], pendingBytes: 0, pendingCut: 0 };
      this.#bytes.set(id, b);
    }
    return b;
  }

  /** The task ended: its counts are no longer needed in memory. */
  finished(id: string): void {
    this.#flushTask(id);
    this.#bytes.delete(id);
  }

  #cut(id: string, bytes: number): void {
    this.#addCut.run(id, bytes);
  }

  /** Over the total budget: the output of the oldest tasks (other than `current`) goes first. */
  #keepBudget(current: string): void {
    const db = this.#journal.db;
    while (this.#total > this.totalBytes) {
      const oldest = db.prepare('SELECT id FROM output WHERE id != ? ORDER BY n LIMIT 1').pluck().get(current) as string | undefined;
      if (oldest === undefined) return;
      const bytes = db.prepare('SELECT COALESCE(SUM(LENGTH(data)), 0) FROM output WHERE id = ?').pluck().get(oldest) as number;
      db.prepare('DELETE FROM output WHERE id = ?').run(oldest);
      db.prepare('INSERT INTO output_cut (id, bytes, dropped) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET bytes = bytes + excluded.bytes, dropped = 1').run(oldest, bytes);
      const gone = this.#bytes.get(oldest);
      if (gone) this.#pendingTotal -= gone.pendingBytes;
      this.#pendingTasks.delete(oldest);
      this.#bytes.delete(oldest);
      this.#total -= bytes;
    }
  }
}
