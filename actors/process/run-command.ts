/**
 * Runs one task's shell command: the process-running heart of the Executor actor.
 *
 * What it guarantees:
 * - The command runs as `/bin/bash -c COMMAND`, stdin `/dev/null`, in a fresh directory taken from
 *   `dirs` (a TaskDirs, task-dirs.ts: made ahead under its root, prefix `troupe-task-`), in its own
 *   session and process group, with a minimal environment: INHERITED_ENV_KEYS copied from ours, then
 *   the task's `env` on top. The options are checked in run-options.ts.
 * - Output: every chunk read from stdout or stderr reaches `onOutput` exactly once, in the order it
 *   was read, numbered `seq` 0, 1, 2… across both streams. Within a stream the bytes are in order;
 *   between the two streams the order is the order Node read them (two pipes carry no finer order).
 * - Backpressure: `pause()` stops delivery at once and reading soon after (at most one Node buffer
 *   per stream is read ahead); the child then blocks on its full pipe. Nothing is buffered without
 *   bound. `resume()` delivers what was held, in order, then reads on.
 * - The end: the command is over when bash exits. Whatever is left of its process group is then
 *   killed (SIGKILL): a background job that was not waited for does not outlive its command. `result`
 *   resolves once both pipes have reached end-of-file and everything read has been delivered (so a
 *   paused consumer holds `result` back until it resumes), and after the directory is removed.
 * - The directory: when the command is over it is renamed out of its path (into the TaskDirs' trash)
 *   before `result` resolves, its contents deleted in the background, so neither making nor deleting
 *   it is on the task's way. A directory that cannot be taken (the root is gone) fails the start.
 * - With `spawner` (see spawner.ts), bash is started by that small process instead of this one, and
 *   its output relayed: the same guarantees, with `pid` known only once the spawner's record of it
 *   has been read here (when asked for, at the latest at bash's exit). A cancel or timeout before
 *   then asks the spawner to signal the group (it does as soon as the command has started); the
 *   SIGKILL after the grace goes by pid, if known by then. If the spawner dies under the command, the
 *   command's group is killed and the result says so in `error`.
 * - Timeout and cancel: SIGTERM to the group, SIGKILL to the group `killGraceMs` later unless the
 *   command is over before that. A process that left the group (setsid) and still holds the pipes
 *   cannot be killed by us; after `drainTimeoutMs` of unpaused waiting its pipes are abandoned
 *   (`outputAbandoned` in the result) so that it cannot hold the task forever.
 * - `result` never rejects, and no event handler here throws: a command that cannot start resolves
 *   with outcome `failed-to-start`; an `onOutput` that throws cancels the command (its message in
 *   `error`).
 *
 * - The process exits: a process that exits while commands run (process.exit, a signal handled by
 *   exiting) first SIGKILLs their groups and removes their directories, synchronously. Only a
 *   SIGKILL of this process skips that (a spawner still kills the commands then; spawner.ts).
 *
 * When `result` resolves, the group has been sent SIGKILL and every process that held the output
 * pipes has exited (it may still be a zombie until its parent or init reaps it).
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { messageOf } from '../../src/errors.js';
import { runSettings, type RunCommandOptions, type RunSettings } from './run-options.js';
import { signalGroup } from './group-signal.js';
import { spawnDirect, type ChildEvents, type ChildHandle, type OutputStream } from './spawner.js';

export {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_KILL_GRACE_MS,
  INHERITED_ENV_KEYS,
  TASK_DIR_PREFIX,
  removeTaskDir,
  type RunCommandOptions,
} from './run-options.js';
export type { OutputStream };

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  outcome: 'exited' | 'timed-out' | 'cancelled' | 'failed-to-start';
  /** Why the command could not start; or what `onOutput` threw (the command, if still running, was then cancelled). */
  error?: string;
  /** Date.now() when the command was started. */
  startedAt: number;
  /** From the start until bash exited (until the failure, for failed-to-start). */
  durationMs: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** The task directory ('' if it could not be made); it no longer exists. */
  cwd: string;
  /** Set when the pipes were abandoned after drainTimeoutMs (held by a process outside the group). */
  outputAbandoned?: true;
  /** Set when the task directory could not be removed (it may be left behind). */
  cleanupError?: string;
}

export interface RunningCommand {
  /** bash's pid, which is also the process group id; undefined if it did not start (or not yet, through a spawner). */
  readonly pid: number | undefined;
  readonly cwd: string;
  /** Never rejects. */
  readonly result: Promise<CommandResult>;
  /** SIGTERM the process group, SIGKILL after the grace. No effect once bash has exited. */
  cancel(): void;
  /** Stop delivering and reading the child's output; the child blocks on a full pipe. */
  pause(): void;
  /** Deliver what was held back, in order, and read on. */
  resume(): void;
}

/** Starts the command. Throws a SettingError (TROUPE_E_SETTING) for bad options; nothing else. */
export function runCommand(options: RunCommandOptions): RunningCommand {
  return new CommandRun(runSettings(options));
}

/** Every command whose result has not resolved: what a process that exits must end (see above). */
const unfinished = new Set<CommandRun>();
let exitHookInstalled = false;

class CommandRun implements RunningCommand {
  readonly result: Promise<CommandResult>;
  #cwd = '';

  readonly #s: RunSettings;
  #resolve!: (result: CommandResult) => void;
  readonly #startedAt = Date.now();
  readonly #t0 = performance.now();
  #child: ChildHandle | undefined;
  #open = 0;
  #seq = 0;
  readonly #bytes = { stdout: 0, stderr: 0 };
  #paused = false;
  /** Chunks read but not yet delivered (while paused), in the order read. */
  readonly #held: { stream: OutputStream; data: Buffer }[] = [];
  #flushQueued = false;
  #exit: { exitCode: number | null; signal: NodeJS.Signals | null; durationMs: number } | undefined;
  #stopping: 'timed-out' | 'cancelled' | undefined;
  #groupKilled = false;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #drainLeftMs: number | undefined;
  #drainArmedAt = 0;
  #abandoned = false;
  #error: string | undefined;
  #done = false;

  constructor(settings: RunSettings) {
    this.#s = settings;
    this.result = new Promise((resolve) => (this.#resolve = resolve));
    unfinished.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const run of unfinished) run.endAtExit();
      });
    }
    this.#start();
  }

  /** The process is exiting: end the command's group and remove its directory, now. */
  endAtExit(): void {
    this.#killGroup();
    try {
      if (this.#cwd !== '') fs.rmSync(this.#cwd, { recursive: true, force: true });
    } catch {
      // entries the command made unwritable: left behind, as after a SIGKILL
    }
  }

  get pid(): number | undefined {
    return this.#child?.pid();
  }

  get cwd(): string {
    return this.#cwd;
  }

  cancel(): void {
    this.#stop('cancelled');
  }

  pause(): void {
    if (this.#done || this.#paused) return;
    this.#paused = true;
    this.#child?.pause();
    this.#suspendDrainTimer();
  }

  resume(): void {
    if (this.#done || !this.#paused) return;
    this.#paused = false;
    // Deliver on the next tick, not inside the caller's resume(): a consumer resuming from its own
    // onOutput must not be re-entered.
    this.#queueFlush();
  }

  #start(): void {
    const { dirs } = this.#s;
    try {
      this.#cwd = dirs.take(); // a real path: what `pwd` will print
    } catch (err) {
      this.#failToStart(`cannot make the task directory under ${dirs.root}: ${messageOf(err)}`);
      return;
    }
    const events: ChildEvents = {
      failed: (error) => this.#failToStart(error),
      data: (stream, data) => this.#onData(stream, data),
      closed: () => {
        this.#open--;
        this.#maybeFinish();
      },
      exit: (code, signal) => this.#onExit(code, signal),
      lost: (error) => (this.#error ??= error),
    };
    this.#open = 2; // both pipes: each ends with one `closed`, unless it fails to start
    const launch = { command: this.#s.command, cwd: this.#cwd, env: this.#s.env };
    this.#child = this.#s.spawner ? this.#s.spawner.launch(launch, events) : spawnDirect(launch, events);
    if (this.#s.timeoutMs > 0 && !this.#done) this.#timeoutTimer = setTimeout(() => this.#stop('timed-out'), this.#s.timeoutMs);
  }

  #onData(stream: OutputStream, data: Buffer): void {
    if (this.#paused || this.#held.length > 0) {
      this.#held.push({ stream, data });
      return;
    }
    this.#deliver(stream, data);
  }

  #deliver(stream: OutputStream, data: Buffer): void {
    const seq = this.#seq++;
    this.#bytes[stream] += data.length;
    try {
      this.#s.onOutput(stream, data, seq);
    } catch (err) {
      this.#error ??= `onOutput threw: ${messageOf(err)}`;
      this.#stop('cancelled');
    }
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    process.nextTick(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (!this.#paused && this.#held.length > 0) {
      const { stream, data } = this.#held.shift()!;
      this.#deliver(stream, data);
    }
    if (this.#paused || this.#done) return;
    this.#child?.resume();
    this.#resumeDrainTimer();
    this.#maybeFinish();
  }

  #onExit(exitCode: number | null, signal: NodeJS.Signals | null): void {
    this.#exit = { exitCode, signal, durationMs: performance.now() - this.#t0 };
    clearTimeout(this.#timeoutTimer);
    // Not stopping: the command is over, end what is left of its group now. Stopping: the grace
    // runs on for whatever still holds the pipes (its timer sends the SIGKILL).
    if (!this.#stopping) this.#killGroup();
    if (this.#groupKilled) this.#startDrainTimer();
    this.#maybeFinish();
  }

  #stop(outcome: 'timed-out' | 'cancelled'): void {
    if (this.#done || this.#exit || this.#stopping) return;
    this.#stopping = outcome;
    clearTimeout(this.#timeoutTimer);
    this.#signalGroup('SIGTERM');
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      this.#killGroup();
      if (this.#exit) this.#startDrainTimer(); // else bash dies of it and #onExit starts it
    }, this.#s.killGraceMs);
  }

  #killGroup(): void {
    this.#groupKilled = true;
    this.#signalGroup('SIGKILL');
  }

  #signalGroup(signal: 'SIGTERM' | 'SIGKILL'): void {
    const pid = this.#child?.pid();
    if (pid === undefined) {
      // Through a spawner, before its record of the pid was read (or not started: then nothing).
      this.#child?.signal(signal);
      return;
    }
    // The group id is bash's pid. Once bash is reaped that number cannot be reused while any member
    // of the group lives; when none does, the kill fails with ESRCH, which is what we want (the
    // usual end of a task). EPERM: what is left changed its credentials (setuid); we cannot signal
    // it, and the drain timeout keeps it from holding the task.
    signalGroup(pid, signal);
  }

  #startDrainTimer(): void {
    if (this.#drainLeftMs !== undefined || this.#done) return;
    this.#drainLeftMs = this.#s.drainTimeoutMs;
    this.#resumeDrainTimer();
  }

  #resumeDrainTimer(): void {
    if (this.#drainLeftMs === undefined || this.#drainTimer || this.#paused || this.#abandoned || this.#open === 0) return;
    this.#drainArmedAt = performance.now();
    this.#drainTimer = setTimeout(() => this.#abandonPipes(), this.#drainLeftMs);
  }

  #suspendDrainTimer(): void {
    if (!this.#drainTimer) return;
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#drainLeftMs = Math.max(0, this.#drainLeftMs! - (performance.now() - this.#drainArmedAt));
  }

  #abandonPipes(): void {
    this.#drainTimer = undefined;
    if (this.#open === 0) return;
    this.#abandoned = true;
    this.#child?.abandon(); // each pipe's `closed` follows
  }

  #maybeFinish(): void {
    if (this.#done || !this.#exit || this.#open > 0 || this.#held.length > 0) return;
    this.#done = true;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#drainTimer);
    // Stopping, and bash and every holder of the pipes are gone before the grace ran out: whatever
    // is left of the group writes nowhere we read; end it now rather than after the grace.
    if (!this.#groupKilled) this.#killGroup();
    const exit = this.#exit;
    void this.#finish({
      exitCode: exit.exitCode,
      signal: exit.signal,
      outcome: this.#stopping ?? 'exited',
      ...(this.#error !== undefined && { error: this.#error }),
      durationMs: exit.durationMs,
      ...(this.#abandoned && { outputAbandoned: true as const }),
    });
  }

  #failToStart(error: string): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#graceTimer);
    void this.#finish({ exitCode: null, signal: null, outcome: 'failed-to-start', error, durationMs: performance.now() - this.#t0 });
  }

  async #finish(end: Pick<CommandResult, 'exitCode' | 'signal' | 'outcome' | 'error' | 'durationMs' | 'outputAbandoned'>): Promise<void> {
    const cleanupError = this.#cwd === '' ? undefined : await this.#s.dirs.discard(this.#cwd);
    unfinished.delete(this);
    this.#resolve({
      ...end,
      startedAt: this.#startedAt,
      stdoutBytes: this.#bytes.stdout,
      stderrBytes: this.#bytes.stderr,
      cwd: this.#cwd,
      ...(cleanupError !== undefined && { cleanupError }),
    });
  }
}
