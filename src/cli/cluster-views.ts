/**
 * The cluster as tables: workers, their resource usage, tasks. Used by the REPL's `:` commands and
 * by `troupe status`; everything here is pure, from the Controller's answers to lines of text.
 */
import type { ExecutorInfo, TaskRecord, Usage } from '../../protocols/tasks.js';
import { duration, memory, NO_COLORS, oneLine, outcomeText, table, type Colors } from './format.js';

/** A worker as `troupe status --json` reports it: what the Controller knows, with its last usage report. */
export interface WorkerView extends ExecutorInfo {
  usage: Usage | null;
}

export function workerViews(executors: readonly ExecutorInfo[], usage: readonly Usage[]): WorkerView[] {
  const byWorker = new Map(usage.map((u) => [u.worker, u]));
  return executors.map((e) => ({ ...e, usage: byWorker.get(e.worker) ?? null }));
}

export function workersTable(workers: readonly WorkerView[], colors: Colors = NO_COLORS): string[] {
  if (workers.length === 0) return ['no workers (start one with `troupe worker --join HOST:PORT`)'];
  const rows = workers.map((w) => [
    w.worker,
    w.tags.length > 0 ? w.tags.join(',') : '-',
    String(w.slots),
    w.running.length > 0 ? `${w.running.length}: ${oneLine(w.running.join(','), 40)}` : '0',
    w.usage ? w.usage.load1.toFixed(2) : '-',
    w.usage ? `${Math.round(w.usage.cpuPercent)}%` : '-',
    w.usage ? memory(w.usage.memoryUsedBytes, w.usage.memoryTotalBytes) : '-',
    `${w.platform}/${w.arch}`,
  ]);
  return table(['WORKER', 'TAGS', 'SLOTS', 'RUNNING', 'LOAD', 'CPU', 'MEMORY', 'PLATFORM'], rows, colors);
}

export function usageTable(usage: readonly Usage[], colors: Colors = NO_COLORS, now = Date.now()): string[] {
  if (usage.length === 0) return ['no usage reports yet (workers report every second)'];
  const rows = [...usage]
    .sort((a, b) => a.worker.localeCompare(b.worker, 'en', { numeric: true }))
    .map((u) => [
      u.worker,
      `${u.cpuPercent.toFixed(1)}%`,
      u.load1.toFixed(2),
      memory(u.memoryUsedBytes, u.memoryTotalBytes),
      `${Math.round((100 * u.memoryUsedBytes) / Math.max(1, u.memoryTotalBytes))}%`,
      `${u.running}/${u.slots}`,
      `${duration(Math.max(0, now - u.at))} ago`,
    ]);
  return table(['WORKER', 'CPU', 'LOAD', 'MEMORY', 'MEM%', 'TASKS', 'REPORTED'], rows, colors);
}

export function tasksTable(tasks: readonly TaskRecord[], colors: Colors = NO_COLORS, now = Date.now()): string[] {
  if (tasks.length === 0) return ['no tasks'];
  const rows = tasks.map((t) => [
    t.id,
    t.status,
    t.worker ?? '-',
    t.status === 'pending' || t.status === 'running' ? '-' : outcomeText(t).replace(/^exit /, ''),
    t.durationMs !== null ? duration(t.durationMs) : t.startedAt !== null && t.finishedAt === null ? `${duration(Math.max(0, now - t.startedAt))}…` : '-',
    oneLine(t.command),
  ]);
  return table(['ID', 'STATUS', 'WORKER', 'EXIT', 'TIME', 'COMMAND'], rows, colors);
}

/** `2 workers (3 slots, 1 busy); 5 tasks: 1 running, 0 pending, 4 finished` */
export function summaryLine(workers: readonly WorkerView[], tasks: readonly TaskRecord[]): string {
  const slots = workers.reduce((n, w) => n + w.slots, 0);
  const busy = workers.reduce((n, w) => n + w.busy, 0);
  const count = (s: TaskRecord['status'][]) => tasks.filter((t) => s.includes(t.status)).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(workers.length, 'worker')} (${plural(slots, 'slot')}, ${busy} busy); ${plural(tasks.length, 'task')}: ${count(['running'])} running, ${count(['pending'])} pending, ${count(['succeeded', 'failed', 'timed-out', 'cancelled', 'lost'])} finished`;
}

/** `troupe status`: live tasks and the last `recent` finished ones; `--json` has them all. */
export function statusReport(manager: string, workers: readonly WorkerView[], tasks: readonly TaskRecord[], colors: Colors = NO_COLORS, recent = 10): string[] {
  const live = tasks.filter((t) => t.status === 'pending' || t.status === 'running');
  const finished = tasks.filter((t) => t.status !== 'pending' && t.status !== 'running');
  const shown = [...live, ...finished.slice(-recent)].sort((a, b) => a.submittedAt - b.submittedAt);
  const hidden = tasks.length - shown.length;
  return [
    `manager "${manager}": ${summaryLine(workers, tasks)}`,
    '',
    ...workersTable(workers, colors),
    '',
    ...tasksTable(shown, colors),
    ...(hidden > 0 ? [`… and ${hidden} earlier finished task${hidden === 1 ? '' : 's'} (--json lists all)`] : []),
  ];
}
