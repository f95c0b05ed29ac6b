/**
 * Journal benchmark: `npm run bench:journal`, or `node dist/bench/journal.js`.
 *
 * The manager's restart time with BENCH_JOURNAL_TASKS (default 100,000) finished tasks in its
 * journal, beside an empty journal: runManager (as `troupe manager` starts it, in this process,
 * --keep-tasks at least that many) from the call until it listens with its table restored, three
 * times each, alternated. Also the journal's size on disk and the restore alone (open + read).
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runManager } from '../actors/nodes.js';
import { TaskJournal } from '../actors/tasks/journal.js';
import { AuditTrail } from '../actors/tasks/audit.js';
import { OutputStore } from '../actors/tasks/output-store.js';
import { generateCertificates } from '../certs/index.js';
import type { TaskRecord, WorkSpec } from '../protocols/tasks.js';
import { createLogger } from '../src/log.js';

const TASKS = Number(process.env.BENCH_JOURNAL_TASKS ?? 100_000);
const ROUNDS = 3;
const progress = (...args: unknown[]) => console.error(...args);

function fill(stateDir: string, n: number): void {
  const journal = TaskJournal.open({ stateDir, keepTasks: n });
  const now = Date.now();
  const insert = journal.db.transaction(() => {
    for (let i = 1; i <= n; i++) {
      const id = `bch-${i}`;
      const spec: WorkSpec = { id, command: `echo task ${i}`, env: {}, timeoutMs: 0 };
      const record: TaskRecord = {
        id, command: spec.command, selector: '', status: 'succeeded', worker: 'worker-1', attempts: 1, retries: 0,
        submittedAt: now - 1000, startedAt: now - 900, finishedAt: now - 800, exitCode: 0, signal: null, durationMs: 100,
        stdoutBytes: 12, stderrBytes: 0, error: null, broadcast: null,
      };
      journal.write(spec, record, i);
      journal.db.prepare('INSERT INTO output (id, attempt, seq, stream, at, part, data) VALUES (?, 1, 0, ?, ?, ?, ?)').run(id, 'stdout', now, 'head', Buffer.from(`task ${i}\n`));
    }
  });
  insert();
  journal.close();
}

function writeCost(stateDir: string, n: number): number {
  const journal = TaskJournal.open({ stateDir, keepTasks: n });
  const audit = new AuditTrail(journal);
  const output = new OutputStore(journal);
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= n; i++) {
    const id = `cst-${i}`;
    const spec: WorkSpec = { id, command: 'true', env: {}, timeoutMs: 0 };
    const now = Date.now();
    const base: TaskRecord = {
      id, command: 'true', selector: '', status: 'pending', worker: null, attempts: 0, retries: 0, submittedAt: now, startedAt: null, finishedAt: null,
      exitCode: null, signal: null, durationMs: null, stdoutBytes: 0, stderrBytes: 0, error: null, broadcast: null,
    };
    audit.record({ action: 'submit', cert: 'client-1', node: 'client-1~abc', address: '127.0.0.1:5000', task: null, command: 'true' });
    journal.write(spec, base, i);
    journal.write(spec, { ...base, status: 'running', worker: 'worker-1', attempts: 1, startedAt: now }, i, false);
    output.append(id, 1, 0, 'stdout', Buffer.from('hello\n'), now);
    journal.write(spec, { ...base, status: 'succeeded', worker: 'worker-1', attempts: 1, startedAt: now, finishedAt: now, exitCode: 0, durationMs: 1 }, i, false);
    output.finished(id);
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  journal.close();
  return Math.round(us * 10) / 10;
}

async function startTime(certs: string, stateDir: string, keepTasks: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const manager = await runManager({ certs, listen: { host: '127.0.0.1', port: 0 }, localWorkers: 0, print: () => {}, log: (node) => createLogger({ node, level: 'warn' }), signals: [], stateDir, keepTasks });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await manager.stop();
  return ms;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-journal-'));
  try {
    generateCertificates({ out: dir, workers: 1, clients: 1 });
    const full = path.join(dir, 'full');
    const empty = path.join(dir, 'empty');
    progress(`writing ${TASKS} finished tasks…`);
    const f0 = Date.now();
    fill(full, TASKS);
    fill(empty, 0);
    const fillMs = Date.now() - f0;
    const r0 = process.hrtime.bigint();
    const j = TaskJournal.open({ stateDir: full, keepTasks: TASKS });
    const restored = j.restore().length;
    j.close();
    const restoreMs = Number(process.hrtime.bigint() - r0) / 1e6;
    // The journal's own cost per task on the manager: what a `true` task writes (submit audit,
    // submitted, running, one output chunk, finished), in the Controller's way (one write each).
    const perTask = writeCost(path.join(dir, 'cost'), 5000);
    const fullMs: number[] = [];
    const emptyMs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      emptyMs.push(await startTime(dir, empty, TASKS));
      fullMs.push(await startTime(dir, full, TASKS));
      progress(`round ${r + 1}: empty ${emptyMs[r]!.toFixed(0)} ms, ${TASKS} tasks ${fullMs[r]!.toFixed(0)} ms`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const size = fs.readdirSync(full).reduce((n, f) => n + fs.statSync(path.join(full, f)).size, 0);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'journal',
        node: process.version,
        tasks: TASKS,
        restored,
        fill_ms: fillMs,
        journal_bytes: size,
        restore_only_ms: Math.round(restoreMs),
        journal_us_per_task: perTask,
        manager_start_ms_empty: Math.round(median(emptyMs)),
        manager_start_ms_full: Math.round(median(fullMs)),
        manager_start_ms_runs: { empty: emptyMs.map(Math.round), full: fullMs.map(Math.round) },
      })}\n`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    progress('failed:', err.stack ?? err);
    process.exit(1);
  },
);
