/**
 * The REPL of `troupe manager`, `troupe demo` and `troupe attach`: a line is a shell command run on
 * a worker, or a `:` command about the cluster (see repl-commands.ts).
 *
 * Lines run one after the other, in the order typed; a line typed while a command runs waits its
 * turn (as a shell's type-ahead). On a terminal: line editing, history in `.troupe/history`, tab
 * completion of `:` commands; Ctrl-C cancels the foreground command (or clears the line; twice on
 * an empty line leaves); Ctrl-D or `:quit` leaves. With stdin not a terminal (a script, a pipe):
 * the same lines, no prompt, notes on stderr, and SIGINT cancels the running command. Either way the
 * exit status is the last command's, as a shell's.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { ClusterSystem } from '../cluster/cluster-system.js';
import { printLogs } from './journal-commands.js';
import type { TaskClient } from '../../actors/tasks/task-client.js';
import { messageOf, TroupeError } from '../errors.js';
import { workersTable, workerViews, usageTable, tasksTable } from './cluster-views.js';
import { exitStatusOf, statusLine } from './format.js';
import { complete, helpText, parseLine, type TableName } from './repl-commands.js';
import { MutableOutput, type Screen } from './screen.js';
import { Interrupted, TaskRunner, type Started } from './task-runner.js';

export const DEFAULT_PROMPT = 'troupe> ';
/** Lines of history kept. */
export const DEFAULT_HISTORY_SIZE = 1000;

export interface ReplOptions {
  system: ClusterSystem;
  tasks: TaskClient;
  screen: Screen;
  /** Default: process.stdin. */
  input?: Readable & { isTTY?: boolean };
  /** Line editing and a prompt; default: whether the input is a terminal. */
  interactive?: boolean;
  /** Where history is kept (interactive only); none when undefined. */
  historyFile?: string;
  /** Rejects when the session loses its manager (a client's). */
  lost?: () => Promise<never>;
  prompt?: string;
}

type Outcome = number | 'quit' | undefined;

/** What runs in the foreground (a command, a wait), and how often Ctrl-C was pressed at it. */
interface Foreground {
  abort: AbortController;
  started?: Started;
  interrupts: number;
}

/** Ctrl-C pressed this often at one foreground command leaves at once, without waiting for its cancel. */
const INTERRUPTS_TO_LEAVE = 3;

export class Repl {
  readonly runner: TaskRunner;
  readonly interactive: boolean;
  #options: ReplOptions;
  #rl: readline.Interface | undefined;
  #output: MutableOutput | undefined;
  #lastStatus = 0;
  #foreground: Foreground | undefined;
  #background = new Map<string, Promise<number>>();
  #stopWith: number | undefined;
  #wake: (() => void) | undefined;
  #lines: string[] = [];
  #closed = false;
  #promptShown = false;
  #ctrlCOnEmpty = false;

  constructor(options: ReplOptions) {
    this.#options = options;
    const input = options.input ?? process.stdin;
    this.interactive = options.interactive ?? input.isTTY === true;
    this.runner = new TaskRunner(options.tasks, options.screen, { statusLines: 'all', lost: options.lost });
  }

  get screen(): Screen {
    return this.#options.screen;
  }

  /** Reads and runs lines until the input ends, `:quit`, or stop(); resolves with the exit status. */
  async run(): Promise<number> {
    const input = this.#options.input ?? process.stdin;
    const onSigint = () => this.#interrupt();
    process.on('SIGINT', onSigint);
    this.screen.onBrokenPipe = () => this.stop(141);
    const rl = this.#open(input);
    rl.on('line', (line) => {
      this.#lines.push(line);
      this.#wake?.();
    });
    rl.on('close', () => {
      this.#closed = true;
      if (this.interactive && this.#promptShown) this.screen.stdout.write('\n');
      this.#wake?.();
    });
    rl.on('SIGINT', onSigint);
    try {
      for (;;) {
        if (this.#stopWith !== undefined) break;
        if (this.#lines.length === 0) {
          if (this.#closed) break;
          this.#showPrompt();
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = undefined;
          continue;
        }
        this.#hidePrompt();
        const outcome = await this.#execute(this.#lines.shift()!);
        if (outcome === 'quit') break;
        if (outcome !== undefined) this.#lastStatus = outcome;
      }
      if (this.#background.size > 0) {
        const ids = [...this.#background.keys()].join(', ');
        this.screen.note(this.screen.noteColors.yellow(`leaving while background task${this.#background.size === 1 ? '' : 's'} ${ids} still run${this.#background.size === 1 ? 's' : ''} (:wait before leaving waits for them)`));
      }
    } finally {
      process.off('SIGINT', onSigint);
      this.#hidePrompt();
      this.#closed = true;
      rl.close();
      this.#output?.detach();
    }
    return this.#stopWith ?? this.#lastStatus;
  }

  /** Ends the REPL from outside (SIGTERM): cancels the foreground command, and run() resolves with `status`. */
  stop(status: number): void {
    this.#stopWith = status;
    this.#interruptForeground();
    this.#rl?.close();
    this.#wake?.();
  }

  #open(input: Readable): readline.Interface {
    if (!this.interactive) {
      this.#rl = readline.createInterface({ input, terminal: false, crlfDelay: Infinity });
      return this.#rl;
    }
    this.#output = new MutableOutput(this.screen.stdout);
    const history = this.#loadHistory();
    const rl = readline.createInterface({
      input,
      output: this.#output as unknown as NodeJS.WritableStream,
      terminal: true,
      prompt: this.#options.prompt ?? DEFAULT_PROMPT,
      completer: (line: string) => complete(line),
      history,
      historySize: DEFAULT_HISTORY_SIZE,
      removeHistoryDuplicates: true,
    });
    rl.on('history', (lines: string[]) => this.#saveHistory(lines));
    this.#rl = rl;
    return rl;
  }

  #showPrompt(): void {
    if (!this.interactive || this.#promptShown || this.#closed) return;
    this.#promptShown = true;
    this.#output!.muted = false;
    this.screen.setPrompt({ redraw: () => this.#rl?.prompt(true) });
    this.#rl!.prompt(true);
  }

  #hidePrompt(): void {
    if (!this.interactive || !this.#promptShown) return;
    this.#promptShown = false;
    this.screen.setPrompt(undefined);
    this.#output!.muted = true;
  }

  /** Ctrl-C: cancel the foreground command; at the prompt clear the line, or leave when pressed twice on an empty one. */
  #interrupt(): void {
    if (this.#foreground) {
      this.#ctrlCOnEmpty = false;
      this.#interruptForeground();
      return;
    }
    if (!this.interactive || this.#closed) {
      // Waiting for a script's next line: Ctrl-C ends the REPL, as it would a shell script.
      this.stop(130);
      return;
    }
    const rl = this.#rl!;
    if (rl.line !== '') {
      this.#ctrlCOnEmpty = false;
      rl.write('', { ctrl: true, name: 'e' });
      rl.write('', { ctrl: true, name: 'u' });
      return;
    }
    if (this.#ctrlCOnEmpty) {
      this.stop(this.#lastStatus);
      return;
    }
    this.#ctrlCOnEmpty = true;
    this.screen.note(this.screen.noteColors.dim('(to leave, press Ctrl-C again or Ctrl-D, or type :quit)'));
  }

  #interruptForeground(): void {
    const fg = this.#foreground;
    if (!fg) return;
    fg.interrupts += 1;
    if (fg.interrupts >= INTERRUPTS_TO_LEAVE) {
      this.screen.note(this.screen.noteColors.red('^C: leaving at once'));
      this.#rl?.close();
      process.exit(130);
    }
    if (!fg.started) {
      fg.abort.abort();
      return;
    }
    const again = fg.interrupts === INTERRUPTS_TO_LEAVE - 1 ? ` (Ctrl-C ${INTERRUPTS_TO_LEAVE - fg.interrupts} more time leaves at once)` : '';
    this.screen.note(this.screen.noteColors.yellow(`^C: cancelling ${fg.started.tasks.map((t) => t.id).join(', ')}${again}`));
    fg.started.cancel().catch((err: unknown) => this.#report(err));
  }

  async #execute(line: string): Promise<Outcome> {
    this.#ctrlCOnEmpty = false;
    const command = parseLine(line);
    try {
      switch (command.kind) {
        case 'nothing':
          return undefined;
        case 'usage':
          this.screen.error(`troupe: ${command.message}`);
          return 2;
        case 'help':
          this.screen.lines(helpText());
          return 0;
        case 'quit':
          return 'quit';
        case 'table':
          await this.#table(command.what);
          return 0;
        case 'cancel': {
          const task = await this.#options.tasks.cancel(command.id);
          this.screen.note(task.status === 'cancelled' ? `${task.id} cancelled` : `cancelling ${task.id} (running on ${task.worker ?? 'a worker'})`);
          return 0;
        }
        case 'logs': {
          const system = this.#options.system;
          await printLogs(system, system.manager ?? system.node, {
            id: command.id,
            follow: false,
            write: (stream, data) => this.screen.write(stream, data),
            note: (line) => this.screen.note(line),
          });
          return 0;
        }
        case 'wait':
          return await this.#wait(command.id);
        case 'run':
          return command.background ? await this.#runInBackground(command.request) : await this.#runInForeground(command.request);
      }
    } catch (err) {
      if (err instanceof Interrupted) {
        this.screen.note(this.screen.noteColors.yellow('^C: stopped waiting'));
        return 130;
      }
      this.#report(err);
      return 1;
    }
  }

  async #runInForeground(request: Parameters<TaskRunner['start']>[0]): Promise<number> {
    const fg: Foreground = { abort: new AbortController(), interrupts: 0 };
    this.#foreground = fg;
    try {
      fg.started = await this.runner.start(request, request.broadcast ? 'by-worker' : 'raw', fg.abort.signal);
      return (await fg.started.done).status;
    } finally {
      this.#foreground = undefined;
    }
  }

  async #runInBackground(request: Parameters<TaskRunner['start']>[0]): Promise<number> {
    const fg: Foreground = { abort: new AbortController(), interrupts: 0 };
    this.#foreground = fg;
    let started: Started;
    try {
      started = await this.runner.start(request, 'by-task', fg.abort.signal);
    } finally {
      this.#foreground = undefined;
    }
    for (const task of started.tasks) {
      const status = started.done.then(
        ({ tasks }) => exitStatusOf(tasks.find((t) => t.id === task.id)!),
        (err: unknown) => (this.#report(err), 1),
      );
      this.#background.set(task.id, status);
      void status.then(() => this.#background.delete(task.id));
    }
    this.screen.note(`[${started.tasks.map((t) => t.id).join(', ')}] in the background; :wait waits for it`);
    return 0;
  }

  /** `:wait`: this session's background tasks (status: the highest), or one task by id. */
  async #wait(id: string | undefined): Promise<number> {
    const fg: Foreground = { abort: new AbortController(), interrupts: 0 };
    this.#foreground = fg;
    const interrupted = new Promise<never>((_, reject) => fg.abort.signal.addEventListener('abort', () => reject(new Interrupted()), { once: true }));
    interrupted.catch(() => {});
    try {
      if (id === undefined) {
        const statuses = await Promise.race([Promise.all(this.#background.values()), interrupted]);
        return Math.max(0, ...statuses);
      }
      const ours = this.#background.get(id);
      if (ours) return await Promise.race([ours, interrupted]);
      const { tasks } = this.#options;
      await tasks.follow([id]);
      const end = await Promise.race([tasks.finished(id), interrupted, ...(this.#options.lost ? [this.#options.lost()] : [])]);
      this.screen.note(statusLine(end, this.screen.noteColors));
      return exitStatusOf(end);
    } finally {
      this.#foreground = undefined;
    }
  }

  async #table(what: TableName): Promise<void> {
    const { tasks } = this.#options;
    const colors = this.screen.colors.stdout;
    switch (what) {
      case 'workers': {
        const [executors, usage] = await Promise.all([tasks.ask('executors'), tasks.ask('resourceUsage')]);
        this.screen.lines(workersTable(workerViews(executors.executors ?? [], usage.usage ?? []), colors));
        return;
      }
      case 'usage':
        this.screen.lines(usageTable((await tasks.ask('resourceUsage')).usage ?? [], colors));
        return;
      default: {
        const asked = what === 'tasks' ? 'tasks' : what === 'pending' ? 'tasksPending' : what === 'running' ? 'tasksRunning' : 'tasksFinished';
        this.screen.lines(tasksTable(await tasks.list(asked), colors));
      }
    }
  }

  #report(err: unknown): void {
    if (err instanceof TroupeError) this.screen.error(`troupe: ${err.code}: ${err.message}`);
    else {
      this.#options.system.log.error({ err }, 'unexpected error in the REPL');
      this.screen.error(`troupe: unexpected error: ${messageOf(err)}`);
    }
  }

  #loadHistory(): string[] {
    const file = this.#options.historyFile;
    if (!file) return [];
    try {
      return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').slice(-DEFAULT_HISTORY_SIZE).reverse();
    } catch {
      return [];
    }
  }

  #saveHistory(lines: readonly string[]): void {
    const file = this.#options.historyFile;
    if (!file) return;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `${[...lines].reverse().join('\n')}\n`, { mode: 0o600 });
    } catch (err) {
      this.#options.system.log.warn({ file, code: (err as NodeJS.ErrnoException).code }, 'cannot save the REPL history');
    }
  }
}
