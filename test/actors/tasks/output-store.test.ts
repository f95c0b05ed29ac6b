/**
 * The journal's stored output and retention, on a real SQLite file: a task's head and tail kept
 * past its bound and the cut counted; the oldest task's output dropped past the total budget; and
 * retention deleting by count and age only finished tasks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { TaskJournal } from '../../../actors/tasks/journal.js';
import { OutputStore, POURING_TAIL_FLUSH_MS, TAIL_FLUSH_MS } from '../../../actors/tasks/output-store.js';
import type { TaskRecord, TaskStatus } from '../../../protocols/tasks.js';

function record(id: string, status: TaskStatus, finishedAt: number | null): TaskRecord {
  return {
    id, command: 'true', selector: '', status, worker: null, attempts: 0, retries: 0, submittedAt: 0, startedAt: null, finishedAt,
    exitCode: null, signal: null, durationMs: null, stdoutBytes: 0, stderrBytes: 0, error: null, broadcast: null,
  };
}

describe('the journal: stored output and retention (real SQLite)', () => {
  let dir: string;
  let journal: TaskJournal;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-store-'))));
  afterEach(() => {
    journal?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const text = (store: OutputStore, id: string) => Buffer.concat(store.read(id, 0).chunks.map((c) => Buffer.from(c.data))).toString();

  it("past a task's bound, the head and the tail are kept and the bytes between counted as cut", () => {
    journal = TaskJournal.open({ stateDir: dir });
    const store = new OutputStore(journal, 100, 1000);
    const chunks = Array.from({ length: 30 }, (_, i) => `${String(i).padStart(2, '0')}:abcdef\n`); // 10 bytes each
    chunks.forEach((c, i) => store.append('t-1', 1, i, 'stdout', Buffer.from(c), 1000 + i));
    const page = store.read('t-1', 0);
    expect(text(store, 't-1')).to.equal(chunks.slice(0, 5).join('') + chunks.slice(25).join(''));
    expect(page.cut).to.equal(200);
    expect(page.dropped).to.equal(false);
    expect(page.chunks.map((c) => c.at)).to.deep.equal([1000, 1001, 1002, 1003, 1004, 1025, 1026, 1027, 1028, 1029]);
  });

  it('a streaming tail is written in batches: only what stays is written, and what waits is written when the journal closes', () => {
    journal = TaskJournal.open({ stateDir: dir });
    const store = new OutputStore(journal, 100, 1000);
    const chunks = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(3, '0')}:abcde\n`); // 10 bytes each
    chunks.forEach((c, i) => store.append('t-1', 1, i, 'stdout', Buffer.from(c), 1000 + i));
    const rows = () => journal.db.prepare('SELECT part, COUNT(*) AS n, SUM(LENGTH(data)) AS bytes FROM output GROUP BY part ORDER BY part').all();
    // The head is written as it comes; the tail waits (TAIL_FLUSH_MS), only its last 50 bytes kept.
    expect(rows()).to.deep.equal([{ part: 'head', n: 5, bytes: 50 }]);
    store.append('t-2', 1, 0, 'stdout', Buffer.from('other'), 2000);
    journal.close();
    journal = TaskJournal.open({ stateDir: dir });
    const reopened = new OutputStore(journal, 100, 1000);
    reopened.resume('t-1');
    expect(text(reopened, 't-1')).to.equal(chunks.slice(0, 5).join('') + chunks.slice(295).join(''));
    expect(reopened.read('t-1', 0).cut).to.equal(2900);
    expect(text(reopened, 't-2')).to.equal('other');
    // The 290 chunks pushed out of the tail before it was written were never written.
    expect(journal.db.prepare("SELECT COUNT(*) FROM output WHERE id = 't-1' AND part = 'tail'").pluck().get()).to.equal(5);
  });

  it('while a task pours (chunks dropped unwritten at the last tail write), tails wait POURING_TAIL_FLUSH_MS; after a quiet write, TAIL_FLUSH_MS', () => {
    journal = TaskJournal.open({ stateDir: dir });
    const store = new OutputStore(journal, 100, 1000);
    const tenBytes = (i: number) => Buffer.from(`${String(i).padStart(3, '0')}:abcde\n`);
    for (let i = 0; i < 5; i++) store.append('t-1', 1, i, 'stdout', tenBytes(i), i); // the head
    expect(store.flushDelayMs).to.equal(TAIL_FLUSH_MS);
    for (let i = 5; i < 20; i++) store.append('t-1', 1, i, 'stdout', tenBytes(i), i); // 150 bytes for a 50-byte tail
    store.flush();
    expect(store.flushDelayMs).to.equal(POURING_TAIL_FLUSH_MS);
    expect(POURING_TAIL_FLUSH_MS).to.be.greaterThan(TAIL_FLUSH_MS);
    store.append('t-1', 1, 20, 'stdout', tenBytes(20), 20); // 10 bytes: it no longer pours
    store.flush();
    expect(store.flushDelayMs).to.equal(TAIL_FLUSH_MS);
    // What is stored is unchanged by the pace: the head, then the last 50 bytes.
    expect(text(store, 't-1')).to.equal([0, 1, 2, 3, 4, 16, 17, 18, 19, 20].map((i) => tenBytes(i).toString()).join(''));
  });

  it('past the total budget, the output of the oldest task goes first, said as dropped', () => {
    journal = TaskJournal.open({ stateDir: dir });
    const store = new OutputStore(journal, 100, 250);
    for (const id of ['a', 'b', 'c']) store.append(id, 1, 0, 'stdout', Buffer.alloc(100, id), 1);
    expect(store.read('a', 0)).to.deep.include({ chunks: [], cut: 100, dropped: true });
    expect(text(store, 'b')).to.equal('b'.repeat(100));
    expect(text(store, 'c')).to.equal('c'.repeat(100));
  });

  it('retention deletes finished tasks past the count and the age, oldest first, never a live one, and their output', () => {
    const now = Date.now();
    journal = TaskJournal.open({ stateDir: dir, keepTasks: 2, keepDays: 1 });
    const store = new OutputStore(journal);
    const rows: [string, TaskStatus, number | null][] = [
      ['old-pending', 'pending', null],
      ['f1', 'succeeded', now - 10],
      ['f2', 'failed', now - 9],
      ['running', 'running', null],
      ['f3', 'succeeded', now - 8],
      ['f4', 'cancelled', now - 7],
    ];
    rows.forEach(([id, status, at], i) => journal.write({ id, command: 'true', env: {}, timeoutMs: 0 }, record(id, status, at), i + 1));
    store.append('f1', 1, 0, 'stdout', Buffer.from('x'), now);
    expect(journal.compactStep(now).sort()).to.deep.equal(['f1', 'f2']);
    expect(journal.compactStep(now)).to.deep.equal([]);
    expect(journal.restore().map((t) => t.record.id)).to.deep.equal(['old-pending', 'running', 'f3', 'f4']);
    expect(store.read('f1', 0).chunks).to.deep.equal([]);
    // Two days on, both remaining finished tasks are past the age; the live ones stay.
    expect(journal.compactStep(now + 2 * 86_400_000).sort()).to.deep.equal(['f3', 'f4']);
    expect(journal.restore().map((t) => t.record.id)).to.deep.equal(['old-pending', 'running']);
  });
});
