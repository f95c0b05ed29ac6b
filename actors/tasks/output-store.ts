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
 */
import type { OutputStream } from '../../protocols/tasks.js';
import { settingError } from '../../src/errors.js';
import type { TaskJournal } from './journal.js';

export const DEFAULT_OUTPUT_TASK_BYTES = 16 * 1024 * 1024;
export const DEFAULT_OUTPUT_TOTAL_BYTES = 1024 * 1024 * 1024;
/** Most bytes of output in one answer to a `taskLogs` query. */
export const LOGS_PAGE_BYTES = 1024 * 1024;

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
}

export class OutputStore {
  readonly #journal: TaskJournal;
  readonly #insert;
  readonly #oldestTail;
  readonly #deleteRow;
  readonly #addCut;
  readonly #bytes = new Map<string, TaskBytes>();
  #total: number;

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
        this.#cut(id, chunk.length - half);
        chunk = chunk.subarray(chunk.length - half);
      }
      this.#insert.run(id, attempt, seq, stream, at, 'tail', chunk);
      b.tail += chunk.length;
      this.#total += chunk.length;
      // The oldest tail chunks go while the tail is over its half.
      while (b.tail > half) {
        const oldest = this.#oldestTail.get(id) as { n: number; len: number };
        this.#deleteRow.run(oldest.n);
        b.tail -= oldest.len;
        this.#total -= oldest.len;
        this.#cut(id, oldest.len);
      }
      this.#keepBudget(id);
    } catch {
      // The stored copy misses this chunk (a full disk): said as cut; delivery goes on.
      try {
        this.#cut(id, data.byteLength);
      } catch {
        // Nothing more can be written.
      }
    }
  }

  /** Chunks of a task after the cursor `after`, up to about LOGS_PAGE_BYTES; `cut` the bytes left out. */
  read(id: string, after: number, stream?: OutputStream): { chunks: StoredChunk[]; cut: number; dropped: boolean; more: boolean } {
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
    this.#bytes.set(id, { head: rows.find((r) => r.part === 'head')?.bytes ?? 0, tail: rows.find((r) => r.part === 'tail')?.bytes ?? 0 });
  }

  /** A task's stored bytes: known for every task since this start (or resumed), 0 for a new one. */
  #bytesOf(id: string): TaskBytes {
    let b = this.#bytes.get(id);
    if (!b) {
      b = { head: 0, tail: 0 };
      this.#bytes.set(id, b);
    }
    return b;
  }

  /** The task ended: its counts are no longer needed in memory. */
  finished(id: string): void {
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
      this.#bytes.delete(oldest);
      this.#total -= bytes;
    }
  }
}
