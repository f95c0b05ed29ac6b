/**
 * What `troupe top` shows, as lines of text for a terminal of a given size: pure, from the last
 * cluster view the manager pushed and the screen's own state (sort, filter, selection, mode). Every
 * line is cut or padded to the terminal's width before it is coloured, so colours never change what
 * fits; text from the cluster (commands, output, tags) has its control characters made visible, so
 * nothing a task prints can move the cursor or change the terminal.
 */
import { matches, type Selector } from '../../actors/tasks/selector.js';
import type { ClusterView, ViewTask, ViewWorker } from '../../protocols/live-view.js';
import { duration, type Colors } from './format.js';

export const SORT_KEYS = ['name', 'cpu', 'load', 'memory', 'busy'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type TopMode = 'main' | 'filter' | 'confirm' | 'output';

export interface TopState {
  manager: string;
  target: string;
  connected: boolean;
  view: ClusterView | undefined;
  /** Membership changes, newest last. */
  events: { at: number; text: string }[];
  sort: SortKey;
  filter: Selector;
  /** The selected task's id. */
  selected: string | undefined;
  mode: TopMode;
  /** What is being typed after `/`. */
  input: string;
  /** One line for the footer (an error, a confirmation), until the next key. */
  message: string | undefined;
  output: { id: string; worker: string; lines: string[]; partial: string } | undefined;
}

const SPARKS = '▁▂▃▄▅▆▇█';
const BAR = 10;
const KEYS = 'q quit  s sort  / filter  ↑↓ select  Enter output  c cancel';

/** Control characters (but tab) as `?`, tabs as spaces: safe to put on a screen. */
export function visible(text: string): string {
  return text.replace(/\t/g, '    ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Exactly `width` columns: cut with … or padded. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length > width) return `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
  return text + ' '.repeat(width - chars.length);
}

export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values.map((v) => (max === 0 || v === 0 ? ' ' : SPARKS[Math.min(SPARKS.length - 1, Math.floor((v / max) * (SPARKS.length - 1) + 0.5))])).join('');
}

/** The workers the filter lets through, sorted. */
export function shownWorkers(state: TopState): ViewWorker[] {
  const workers = (state.view?.workers ?? []).filter((w) => matches(state.filter, { name: w.worker, tags: w.tags, platform: w.platform, arch: w.arch }));
  const by: Record<SortKey, (w: ViewWorker) => number> = {
    name: () => 0,
    cpu: (w) => -(w.usage?.cpuPercent ?? -1),
    load: (w) => -(w.usage?.load1 ?? -1),
    memory: (w) => -(w.usage ? w.usage.memoryUsedBytes / Math.max(1, w.usage.memoryTotalBytes) : -1),
    busy: (w) => -(w.slots === 0 ? 0 : w.busy / w.slots),
  };
  return workers.sort((a, b) => by[state.sort](a) - by[state.sort](b) || a.worker.localeCompare(b.worker, 'en', { numeric: true }));
}

/** The tasks that can be selected: running ones on shown workers, then the queue (when no filter). */
export function shownTasks(state: TopState): ViewTask[] {
  const names = new Set(shownWorkers(state).map((w) => w.worker));
  const tasks = state.view?.tasks ?? [];
  return [...tasks.filter((t) => t.status === 'running' && t.worker !== null && names.has(t.worker)), ...tasks.filter((t) => t.status === 'pending')];
}

export function renderTop(state: TopState, size: { columns: number; rows: number }, colors: Colors, now = Date.now()): string[] {
  const width = Math.max(20, size.columns);
  const rows = Math.max(8, size.rows);
  const lines: string[] = [];
  const put = (text: string, paint: (s: string) => string = (s) => s) => lines.push(paint(fit(text, width)));
  const clock = new Date(now).toTimeString().slice(0, 8);
  const where = `troupe top: manager "${state.manager}" at ${state.target}`;
  const status = state.connected ? clock : `reconnecting… ${clock}`;
  lines.push(colors.bold(fit(where, width - status.length - 1)) + ' ' + (state.connected ? status : colors.red(status)));

  if (state.mode === 'output' && state.output) {
    const o = state.output;
    put(`output of ${o.id} on ${o.worker} (live from when it was opened; Esc or q: back)`, colors.dim);
    const body = rows - 3;
    const all = o.partial === '' ? o.lines : [...o.lines, o.partial];
    const shown = all.slice(-body);
    for (const line of shown) put(visible(line));
    while (lines.length < rows - 1) put('');
    put(footer(state), colors.dim);
    return lines;
  }

  const view = state.view;
  const workers = shownWorkers(state);
  const tasks = shownTasks(state);
  const running = tasks.filter((t) => t.status === 'running');
  const queued = tasks.filter((t) => t.status === 'pending');
  const slots = workers.reduce((n, w) => n + w.slots, 0);
  const busy = workers.reduce((n, w) => n + w.busy, 0);
  const perSecond = view?.finishedPerSecond ?? [];
  const rate = perSecond.length > 1 ? perSecond[perSecond.length - 2]! : 0;
  const filter = state.filter.text === '' ? '' : `  filter ${state.filter.text}`;
  put(`${workers.length} workers  ${busy}/${slots} slots busy  running ${view?.running ?? 0}  pending ${view?.pending ?? 0}  sort ${state.sort}${filter}`);
  const spark = sparkline(perSecond);
  const sparkText = `tasks/s ${rate} (last 60 s, max ${Math.max(0, ...perSecond)}/s) `;
  lines.push(fit(sparkText, Math.min(width, sparkText.length)) + colors.green(fit(spark, Math.max(0, width - sparkText.length))));

  // Rows for each part: the fixed lines, then what is left shared out.
  const fixed = lines.length + 1 /* workers header */ + 1 /* running title */ + 1 /* queue title */ + 1 /* events title */ + 1; /* footer */
  let rest = Math.max(0, rows - fixed);
  const eventsN = Math.min(state.events.length, 5, Math.floor(rest / 5));
  rest -= eventsN;
  let workersN = Math.min(workers.length, Math.max(1, Math.ceil(rest * 0.45)));
  rest -= workersN;
  let queueN = Math.min(queued.length, Math.floor(rest / 3));
  rest -= queueN;
  const runningN = Math.min(running.length, rest);
  rest -= runningN;
  const moreWorkers = Math.min(rest, workers.length - workersN);
  workersN += moreWorkers;
  rest -= moreWorkers;
  queueN += Math.min(rest, queued.length - queueN);

  put(`${'WORKER'.padEnd(12)} ${'CPU'.padEnd(BAR + 7)} ${'LOAD'.padEnd(BAR + 8)} ${'MEMORY'.padEnd(BAR + 7)} ${'SLOTS'.padEnd(7)} ${'UP'.padEnd(8)} TAGS`, colors.bold);
  if (workers.length === 0) {
    put(view ? (state.filter.text ? `no worker matches ${state.filter.text}` : 'no workers (start one with `troupe worker --join HOST:PORT`)') : 'waiting for the manager…', colors.dim);
    if (workersN === 0) workersN = 0;
  }
  for (const w of workers.slice(0, workersN)) lines.push(workerLine(w, width, colors, now));

  const selectedAt = tasks.findIndex((t) => t.id === state.selected);
  const title = (text: string) => put(text, colors.bold);
  title(`RUNNING ${view?.running ?? 0}${running.length < (view?.running ?? 0) ? ` (${running.length} on shown workers)` : ''}`);
  const runOffset = selectedAt >= 0 && selectedAt < running.length ? Math.max(0, selectedAt - runningN + 1) : 0;
  for (const t of running.slice(runOffset, runOffset + runningN)) lines.push(taskLine(t, t.id === state.selected, width, colors, now));
  title(`QUEUE ${view?.pending ?? 0}`);
  const queueAt = selectedAt - running.length;
  const queueOffset = queueAt >= 0 ? Math.max(0, queueAt - queueN + 1) : 0;
  for (const t of queued.slice(queueOffset, queueOffset + queueN)) lines.push(taskLine(t, t.id === state.selected, width, colors, now));
  title('EVENTS');
  for (const e of state.events.slice(-eventsN)) put(`${new Date(e.at).toTimeString().slice(0, 8)} ${visible(e.text)}`);
  while (lines.length < rows - 1) put('');
  lines.length = rows - 1;
  const foot = footer(state);
  lines.push(state.message !== undefined || state.mode === 'confirm' ? colors.yellow(fit(foot, width)) : colors.dim(fit(foot, width)));
  return lines;
}

function footer(state: TopState): string {
  if (state.mode === 'filter') return `filter (a selector: tag=gpu,name=worker-2; empty: every worker; Esc: back): ${state.input}█`;
  if (state.mode === 'confirm') return `cancel ${state.selected}? y: yes, anything else: no`;
  if (state.message !== undefined) return state.message;
  if (state.mode === 'output') return 'Esc or q: back to the cluster';
  return KEYS;
}

function bar(ratio: number, colors: Colors): string {
  const r = Math.max(0, Math.min(1, Number.isFinite(ratio) ? ratio : 0));
  const filled = Math.round(r * BAR);
  const paint = r < 0.6 ? colors.green : r < 0.85 ? colors.yellow : colors.red;
  return `[${paint('|'.repeat(filled))}${' '.repeat(BAR - filled)}]`;
}

function workerLine(w: ViewWorker, width: number, colors: Colors, now: number): string {
  const u = w.usage;
  const name = fit(w.worker, 12);
  const cpu = u ? `${bar(u.cpuPercent / 100, colors)} ${fit(`${Math.round(u.cpuPercent)}%`, 4)}` : fit('-', BAR + 7);
  const load = u ? `${bar(w.cpus > 0 ? u.load1 / w.cpus : 0, colors)} ${fit(u.load1.toFixed(2), 5)}` : fit('-', BAR + 8);
  const memRatio = u ? u.memoryUsedBytes / Math.max(1, u.memoryTotalBytes) : 0;
  const mem = u ? `${bar(memRatio, colors)} ${fit(`${Math.round(memRatio * 100)}%`, 4)}` : fit('-', BAR + 7);
  const slots = fit(`${w.busy}/${w.slots}`, 7);
  const up = fit(w.upSince === null ? '-' : duration(Math.max(0, now - w.upSince)), 8);
  const fixed = 12 + 1 + BAR + 7 + 1 + BAR + 8 + 1 + BAR + 7 + 1 + 7 + 1 + 8 + 1;
  const tags = fit(visible(w.tags.join(',') || '-'), Math.max(0, width - fixed));
  if (width < fixed) return fit(`${w.worker} ${w.busy}/${w.slots}`, width);
  return `${name} ${cpu} ${load} ${mem} ${slots} ${up} ${tags}`;
}

function taskLine(t: ViewTask, selected: boolean, width: number, colors: Colors, now: number): string {
  const since = t.status === 'running' ? (t.startedAt ?? now) : t.submittedAt;
  const text = `${selected ? '>' : ' '} ${fit(t.id, 10)} ${fit(t.worker ?? '(queued)', 12)} ${fit(duration(Math.max(0, now - since)), 9)} ${visible(t.command).replace(/\s+/g, ' ')}`;
  const line = fit(text, width);
  return selected ? (colors.enabled ? `\u001b[7m${line}\u001b[27m` : line) : line;
}
