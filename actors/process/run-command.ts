/**
 * Runs one task's shell command: the process-running heart of the Executor actor.
 *
 * What it guarantees:
 * - The command runs as `/bin/bash -c COMMAND`, stdin `/dev/null`, in a fresh directory made with
 *   mkdtemp under `tmpRoot` (prefix `troupe-task-`), in its own session and process group, with a
 *   minimal environment: INHERITED_ENV_KEYS copied from ours, then the task's `env` on top.
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
 * - With `dirs` (a TaskDirs, see task-dirs.ts), the directory is one made ahead of time, and when the
 *   command is over it is renamed out of its path before `result` resolves, its contents deleted in
 *   the background: the same guarantees at the task's path, with neither step on the task's way.
 * - With `spawner` (see spawner.ts), bash is started by that small process instead of this one, and
 *   its output relayed: the same guarantees, with `pid` known only once it has started (a cancel or
 *   timeout before then takes effect when it starts). If the spawner dies under the command, the
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
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { messageOf, settingError } from '../../src/errors.js';
import { spawnDirect, type ChildEvents, type ChildHandle, type OutputStream, type Spawner } from './spawner.js';
import type { TaskDirs } from './task-dirs.js';

/** SIGTERM → SIGKILL grace on timeout or cancel: 2 seconds. */
export const DEFAULT_KILL_GRACE_MS = 2000;
/**
 * After the group is SIGKILLed, how long (counted only while not paused) we wait for the pipes to
 * reach end-of-file before abandoning them: 1 second. Only a process that escaped the group (setsid)
 * can hold them that long; a short wait costs nothing in the normal case.
 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 1000;
/** The variables a command inherits from the worker's own environment (when set there). */
export const INHERITED_ENV_KEYS: readonly string[] = Object.freeze(['PATH', 'HOME', 'LANG', 'USER', 'SHELL', 'TMPDIR']);
/** The per-task directory's name prefix under tmpRoot. */
export const TASK_DIR_PREFIX = 'troupe-task-';
/** setTimeout's largest delay; a larger one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type { OutputStream };

export interface RunCommandOptions {
  /** Run as `/bin/bash -c COMMAND`. */
  command: string;
  /** Added to (and overriding) the inherited INHERITED_ENV_KEYS. Default: none. */
  env?: Record<string, string>;
  /** Milliseconds until the command is timed out. Default: 0, no timeout. */
  timeoutMs?: number;
  /** Milliseconds between SIGTERM and SIGKILL on timeout or cancel. Default: DEFAULT_KILL_GRACE_MS. */
  killGraceMs?: number;
  /** See DEFAULT_DRAIN_TIMEOUT_MS. Default: DEFAULT_DRAIN_TIMEOUT_MS. */
  drainTimeoutMs?: number;
  /** Where the per-task directory is made. Default: os.tmpdir(). Not used with `dirs`. */
  tmpRoot?: string;
  /** Where the per-task directory comes from and goes to instead (made ahead, deleted behind). Default: none. */
  dirs?: TaskDirs;
  /** Start bash through this spawner process rather than from this one. Default: none (directly). */
  spawner?: Spawner;
  /** Each chunk read, in order; `seq` counts 0, 1, 2… across both streams. */
  onOutput(stream: OutputStream, data: Buffer, seq: number): void;
}

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

interface Settings {
  command: string;
  env: Record<string, string>;
  timeoutMs: number;
  killGraceMs: number;
  drainTimeoutMs: number;
  tmpRoot: string;
  dirs: TaskDirs | undefined;
  spawner: Spawner | undefined;
  onOutput: RunCommandOptions['onOutput'];
}

/** Starts the command. Throws a SettingError (TROUPE_E_SETTING) for bad options; nothing else. */
export function runCommand(options: RunCommandOptions): RunningCommand {
  return new CommandRun(validate(options));
}

/** Every command whose result has not resolved: what a process that exits must end (see above). */
const unfinished = new Set<CommandRun>();
let exitHookInstalled = false;

class CommandRun implements RunningCommand {
  readonly result: Promise<CommandResult>;
  #pid: number | undefined;
  #cwd = '';

  readonly #s: Settings;
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

  constructor(settings: Settings) {
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
    return this.#pid;
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
    const tmpRoot = dirs?.root ?? this.#s.tmpRoot;
    try {
      // A TaskDirs root is a real path already.
      this.#cwd = dirs ? dirs.take() : fs.mkdtempSync(path.join(tmpRoot, TASK_DIR_PREFIX));
    } catch (err) {
      this.#failToStart(`cannot make the task directory under ${tmpRoot}: ${messageOf(err)}`);
      return;
    }
    if (!dirs) {
      try {
        this.#cwd = fs.realpathSync(this.#cwd); // what `pwd` will print
      } catch {
        // keep the path as made
      }
    }
    const events: ChildEvents = {
      started: (pid) => this.#onStarted(pid),
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

  #onStarted(pid: number): void {
    this.#pid = pid;
    // Stopped before it started (through a spawner): the stop takes effect now.
    if (this.#stopping) this.#signalGroup(this.#groupKilled ? 'SIGKILL' : 'SIGTERM');
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

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.#pid === undefined) return; // not started yet: #onStarted signals it
    // The group id is bash's pid. Once bash is reaped that number cannot be reused while any member
    // of the group lives; when none does, the kill fails with ESRCH, which is what we want.
    try {
      process.kill(-this.#pid!, signal);
    } catch {
      // ESRCH: the group is empty. EPERM: what is left changed its credentials (setuid); we cannot
      // signal it, and the drain timeout keeps it from holding the task.
    }
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
    const cleanupError = this.#cwd === '' ? undefined : this.#s.dirs ? await this.#s.dirs.discard(this.#cwd) : await removeTaskDir(this.#cwd);
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

/**
 * Removes a task directory; returns why it could not, or undefined. Never throws. `sync: false`:
 * without blocking the event loop even for the first rmdir (for removals off a task's path).
 */
export async function removeTaskDir(dir: string, { sync = true } = {}): Promise<string | undefined> {
  // Most commands leave their directory empty: one rmdir (on a task's path: without a thread-pool round trip).
  try {
    if (sync) fs.rmdirSync(dir);
    else await fs.promises.rmdir(dir);
    return undefined;
  } catch {
    // not empty (or gone): the full removal below
  }
  try {
    await fs.promises.rm(dir, { recursive: true, force: true });
    return undefined;
  } catch {
    // A task may leave directories we may not enter or write (chmod 000): open them up, try again.
    try {
      await makeOwnerWritable(dir);
      await fs.promises.rm(dir, { recursive: true, force: true });
      return undefined;
    } catch (err) {
      return messageOf(err);
    }
  }
}

async function makeOwnerWritable(dir: string): Promise<void> {
  await fs.promises.chmod(dir, 0o700);
  for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await makeOwnerWritable(path.join(dir, entry.name));
  }
}

function validate(options: RunCommandOptions): Settings {
  if (options === null || typeof options !== 'object') throw settingError('options', options, 'an object');
  const { command, env, onOutput, tmpRoot } = options;
  if (typeof command !== 'string' || command.trim() === '') throw settingError('command', command, 'a non-empty string');
  if (command.includes('\0')) throw settingError('command', '(a string with a NUL byte)', 'a string without NUL bytes');
  if (typeof onOutput !== 'function') throw settingError('onOutput', onOutput, 'a function (stream, data, seq)');
  if (tmpRoot !== undefined && (typeof tmpRoot !== 'string' || tmpRoot === '' || tmpRoot.includes('\0'))) {
    throw settingError('tmpRoot', tmpRoot, 'a directory path');
  }
  if (options.dirs !== undefined && (options.dirs === null || typeof options.dirs !== 'object' || typeof options.dirs.take !== 'function')) {
    throw settingError('dirs', options.dirs, 'a TaskDirs');
  }
  if (options.spawner !== undefined && (options.spawner === null || typeof options.spawner !== 'object' || typeof options.spawner.launch !== 'function')) {
    throw settingError('spawner', options.spawner, 'a Spawner');
  }
  return {
    command,
    env: taskEnv(env),
    timeoutMs: milliseconds('timeoutMs', options.timeoutMs, 0),
    killGraceMs: milliseconds('killGraceMs', options.killGraceMs, DEFAULT_KILL_GRACE_MS),
    drainTimeoutMs: milliseconds('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
    tmpRoot: tmpRoot ?? os.tmpdir(),
    dirs: options.dirs,
    spawner: options.spawner,
    onOutput,
  };
}

function milliseconds(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw settingError(option, value, `an integer number of milliseconds from 0 to ${MAX_TIMER_MS}`);
  }
  return value;
}

/** INHERITED_ENV_KEYS from our environment, then the task's variables over them. */
function taskEnv(given: unknown): Record<string, string> {
  if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given))) {
    throw settingError('env', given, 'an object of string values');
  }
  // No prototype: a variable named __proto__ is just a variable.
  const env = Object.create(null) as Record<string, string>;
  for (const key of INHERITED_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  for (const [key, value] of Object.entries((given ?? {}) as Record<string, unknown>)) {
    if (key === '' || key.includes('=') || key.includes('\0')) throw settingError('env', key, 'variable names that are non-empty, without "=" or NUL');
    if (typeof value !== 'string') throw settingError(`env.${key}`, value, 'a string');
    if (value.includes('\0')) throw settingError(`env.${key}`, '(a string with a NUL byte)', 'a string without NUL bytes');
    env[key] = value;
  }
  return env;
}
