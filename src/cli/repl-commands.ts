/**
 * What a REPL line means. A line is a shell command, unless it starts with `:` and a word (a REPL
 * command; `:` alone or followed by a space is the shell's own no-op, so it goes to a worker). A
 * trailing `&` runs a command in the background. A line starting with `#` is a comment.
 */
import type { RunRequest } from './task-runner.js';

export type TableName = 'workers' | 'usage' | 'tasks' | 'pending' | 'running' | 'finished';

export type ReplCommand =
  | { kind: 'nothing' }
  | { kind: 'run'; request: RunRequest; background: boolean }
  | { kind: 'table'; what: TableName }
  | { kind: 'cancel'; id: string }
  | { kind: 'logs'; id: string }
  | { kind: 'wait'; id?: string }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'usage'; message: string };

interface Spec {
  name: string;
  args: string;
  help: string;
}

/** Every REPL command, as `:help` lists it and tab completes it. */
export const REPL_COMMANDS: readonly Spec[] = [
  { name: ':on', args: 'SELECTOR COMMAND', help: 'run on a worker that matches SELECTOR (tag=gpu, name=worker-2, platform=linux, arch=x64; "," for and)' },
  { name: ':all', args: 'COMMAND', help: 'run on every worker at once; each line of output prefixed with its worker' },
  { name: ':workers', args: '', help: 'the workers: tags, slots, running tasks, platform' },
  { name: ':usage', args: '', help: 'cpu, load and memory of each worker' },
  { name: ':tasks', args: '', help: 'every task the manager remembers' },
  { name: ':pending', args: '', help: 'tasks waiting for a free worker' },
  { name: ':running', args: '', help: 'tasks running now' },
  { name: ':finished', args: '', help: 'tasks that ended' },
  { name: ':cancel', args: 'ID', help: 'cancel a task (pending or running)' },
  { name: ':logs', args: 'ID', help: "a task's output as the manager stored it (finished or running)" },
  { name: ':wait', args: '[ID]', help: 'wait for the background tasks of this session (or task ID) to end' },
  { name: ':help', args: '', help: 'this help' },
  { name: ':quit', args: '', help: 'leave (also Ctrl-D); the manager stops its local workers' },
];

const TABLES: ReadonlySet<string> = new Set(['workers', 'usage', 'tasks', 'pending', 'running', 'finished']);
const ALIASES: Record<string, string> = { q: 'quit', exit: 'quit', h: 'help', '?': 'help', jobs: 'running' };

export function helpText(): string[] {
  const rows = REPL_COMMANDS.map((c) => [`${c.name}${c.args ? ` ${c.args}` : ''}`, c.help]);
  const width = Math.max(...rows.map((r) => r[0]!.length), 'COMMAND &'.length);
  return [
    'A line is a shell command: it runs with /bin/bash on a free worker, its output streams here, then',
    'one status line says where it ran and how it ended. Ctrl-C cancels it.',
    '',
    `  ${'COMMAND &'.padEnd(width)}  run in the background (its lines prefixed with its task id); :wait waits`,
    ...rows.map(([name, help]) => `  ${name!.padEnd(width)}  ${help}`),
  ];
}

/** Tab completion: `:` commands only (a shell command's completion would be the worker's). */
export function complete(line: string): [string[], string] {
  if (!line.startsWith(':') || /\s/.test(line)) return [[], line];
  const hits = REPL_COMMANDS.map((c) => c.name).filter((name) => name.startsWith(line));
  return [hits.map((h) => (REPL_COMMANDS.find((c) => c.name === h)!.args ? `${h} ` : h)), line];
}

export function parseLine(input: string): ReplCommand {
  let line = input.trim();
  if (line === '' || line.startsWith('#')) return { kind: 'nothing' };
  const background = /(^|[^&\\])&$/.test(line);
  if (background) line = line.slice(0, -1).trimEnd();
  if (background && line === '') return { kind: 'usage', message: 'nothing to run before "&"' };

  const command = /^:([A-Za-z?]\S*)(?:\s+([\s\S]*))?$/.exec(line);
  if (!command) return { kind: 'run', request: { command: line }, background };
  const word = command[1]!.toLowerCase();
  const name = ALIASES[word] ?? word;
  const rest = (command[2] ?? '').trim();
  const runner = name === 'on' || name === 'all';
  if (background && !runner) return { kind: 'usage', message: `:${name} cannot run in the background` };

  switch (name) {
    case 'on': {
      const on = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      if (!on) return { kind: 'usage', message: 'usage: :on SELECTOR COMMAND (e.g. :on tag=gpu nvidia-smi)' };
      return { kind: 'run', request: { command: on[2]!, selector: on[1]! }, background };
    }
    case 'all':
      if (rest === '') return { kind: 'usage', message: 'usage: :all COMMAND (e.g. :all uptime)' };
      return { kind: 'run', request: { command: rest, broadcast: true }, background };
    case 'cancel':
      if (!/^\S+$/.test(rest)) return { kind: 'usage', message: 'usage: :cancel ID (the id in a status line or in :running)' };
      return { kind: 'cancel', id: rest };
    case 'logs':
      if (!/^\S+$/.test(rest)) return { kind: 'usage', message: 'usage: :logs ID (the id in a status line or in :tasks)' };
      return { kind: 'logs', id: rest };
    case 'wait':
      if (rest !== '' && !/^\S+$/.test(rest)) return { kind: 'usage', message: 'usage: :wait [ID]' };
      return rest === '' ? { kind: 'wait' } : { kind: 'wait', id: rest };
    case 'help':
      return { kind: 'help' };
    case 'quit':
      return { kind: 'quit' };
    default:
      if (TABLES.has(name)) {
        if (rest !== '') return { kind: 'usage', message: `:${name} takes no arguments` };
        return { kind: 'table', what: name as TableName };
      }
      return { kind: 'usage', message: `unknown command :${command[1]}; :help lists them` };
  }
}
