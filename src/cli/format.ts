/**
 * How the `troupe` command writes things for a person: colours (only on a terminal, never with
 * NO_COLOR), aligned tables, durations and sizes, and the one status line that ends every command.
 */
import os from 'node:os';
import type { TaskRecord } from '../../protocols/tasks.js';

export interface Colors {
  readonly enabled: boolean;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const ESC = '\u001b[';
const paint = (open: number, close: number) => (text: string) => `${ESC}${open}m${text}${ESC}${close}m`;

const ON: Colors = { enabled: true, green: paint(32, 39), red: paint(31, 39), yellow: paint(33, 39), dim: paint(2, 22), bold: paint(1, 22) };
const same = (text: string) => text;
export const NO_COLORS: Colors = { enabled: false, green: same, red: same, yellow: same, dim: same, bold: same };

/** Colours for a stream: on when it is a terminal and NO_COLOR is unset or empty (no-color.org). */
export function colorsFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Colors {
  return stream.isTTY === true && !env.NO_COLOR ? ON : NO_COLORS;
}

/** Rows aligned in columns two spaces apart, the header first (bold on a terminal). */
export function table(header: readonly string[], rows: readonly (readonly string[])[], colors: Colors = NO_COLORS): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [colors.bold(line(header)), ...rows.map(line)];
}

/** `850 ms`, `1.2 s`, `2m 05s`, `3h 07m`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `512 B`, `1.5 KiB`, `7.8 GiB`. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `1.2/7.8 GiB` */
export function memory(used: number, total: number): string {
  const [u, t] = [bytes(used), bytes(total)];
  const unit = t.split(' ')[1];
  return u.split(' ')[1] === unit ? `${u.split(' ')[0]}/${t}` : `${u}/${t}`;
}

/** One line of a command for a table: newlines shown as ⏎, cut at `max` characters. */
export function oneLine(text: string, max = 60): string {
  const flat = text.replace(/\r?\n/g, ' ⏎ ');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/**
 * The exit status a shell would report for a finished task: the command's exit code; 128 + n for
 * signal n; 124 for a timeout (as timeout(1)); 130 for a cancel (as Ctrl-C); 126 when it could not
 * start; 255 when its worker was lost (as ssh for its own failures).
 */
export function exitStatusOf(task: TaskRecord): number {
  switch (task.status) {
    case 'succeeded':
      return 0;
    case 'failed':
      if (task.exitCode !== null) return task.exitCode;
      if (task.signal !== null) return 128 + signalNumber(task.signal);
      return 126;
    case 'timed-out':
      return 124;
    case 'cancelled':
      return 130;
    case 'lost':
      return 255;
    default:
      return 1;
  }
}

export function signalNumber(signal: string): number {
  return (os.constants.signals as Record<string, number>)[signal] ?? 0;
}

/** How a task ended, in a few words: `exit 0`, `killed by SIGTERM`, `timed out`, `lost: …`. */
export function outcomeText(task: TaskRecord): string {
  switch (task.status) {
    case 'succeeded':
      return 'exit 0';
    case 'failed':
      if (task.exitCode !== null) return `exit ${task.exitCode}`;
      if (task.signal !== null) return `killed by ${task.signal}`;
      return `failed to start: ${task.error ?? 'unknown error'}`;
    case 'timed-out':
      return 'timed out';
    case 'cancelled':
      return 'cancelled';
    case 'lost':
      return `lost: ${task.error ?? 'its worker left'}`;
    default:
      return task.status;
  }
}

/**
 * The status line after a command: `[k3f-1 on worker-1: exit 0, 12 ms]`. Green for success, red
 * otherwise (on a terminal).
 */
export function statusLine(task: TaskRecord, colors: Colors = NO_COLORS): string {
  const where = task.worker ? `${task.id} on ${task.worker}` : task.id;
  const took = task.durationMs !== null && task.status !== 'lost' ? `, ${duration(task.durationMs)}` : '';
  const text = `[${where}: ${outcomeText(task)}${took}]`;
  return task.status === 'succeeded' ? colors.green(text) : colors.red(text);
}
