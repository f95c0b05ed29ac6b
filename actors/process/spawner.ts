/**
 * How a task's `/bin/bash -c COMMAND` is started: directly by this process (`spawnDirect`), or by a
 * Spawner, a small long-lived child process that forks on our behalf and relays the output.
 *
 * Why a Spawner: fork() copies the parent's page tables, so its cost grows with the parent's
 * resident anonymous memory. A worker node holds ~40 MiB of it (TLS, the cluster, pino, typebox…);
 * measured here, a `bash -c true` spawned from such a process took 3.8 ms (p50, 1.9 ms of the
 * parent's CPU), and 2.2 ms through a spawner (0.15 ms of the worker's CPU), about the same as from
 * a bare Node process. Relaying costs a copy of the output through the IPC channel, so output that
 * comes fast is not relayed for long: the spawner hands the command's pipes over to this process,
 * which then reads them itself, in large chunks (pipe-reader.ts; protocols/spawner.ts).
 *
 * Both give runCommand (run-command.ts) the same events, in the same order guarantees: `failed`
 * (and then nothing), or `data` in the order read, `closed` once per stream, `exit` once.
 * `pause()` stops reading soon (direct: at once; spawner: within SPAWNER_WINDOW chunks, which are
 * delivered as usual and held by runCommand), `resume()` reads on, `abandon()` closes the pipes.
 *
 * `pid()` is bash's pid, the id of its process group, for runCommand to signal the group: started
 * here, known at once. Through a spawner, nothing is sent to say that a command started (it would
 * wake this process once more per task): the spawner writes each pid to a second socket, which is
 * read here when a pid is wanted (by `pid()`, at the command's exit, every PID_READ_EVERY launches,
 * and when the spawner dies), always before anything else of the task reaches us. A stop asked before
 * that record was written (`signal()`, pid still unknown) goes to the spawner, which signals the
 * group as soon as it has started it.
 *
 * When the spawner process dies (killed, out of memory), every command it had started has its
 * process group SIGKILLed here (every pid it wrote is read first); each gets `lost`, then its `exit`
 * and `closed` events; a later command starts a new spawner.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs, { readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { signalGroup } from './group-signal.js';
import { startNativeSpawner } from './native-channel.js';
import { PipeReader } from './pipe-reader.js';
import { SPAWN_HELPER_BINARY } from './spawn-helper-build.js';
import { closeHandle, forkNodeSpawner, type SpawnerChannel } from './spawner-channel.js';
import { PID_RECORD_BYTES, type FromSpawner, type ToSpawner } from '../../protocols/spawner.js';
import { messageOf, settingError } from '../../src/errors.js';

export type OutputStream = 'stdout' | 'stderr';

export interface ChildEvents {
  /** It could not start; no other event follows. */
  failed(error: string): void;
  data(stream: OutputStream, data: Buffer): void;
  closed(stream: OutputStream): void;
  exit(code: number | null, signal: NodeJS.Signals | null): void;
  /**
   * The spawner died under a running command (whose group was then killed; exit and closed follow),
   * or a pipe it handed over did not arrive (that stream's output is lost; its closed follows).
   */
  lost(error: string): void;
}

export interface ChildHandle {
  pause(): void;
  resume(): void;
  abandon(): void;
  /** bash's pid (its group's id) once known here; undefined before (through a spawner) or if it did not start. */
  pid(): number | undefined;
  /** For a stop while `pid()` is undefined: the spawner signals the group once it has started it. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void;
}

export interface LaunchOptions {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

const SHELL = '/bin/bash';
/** The handle of a command that did not start: nothing to pause, resume or abandon. */
const NOT_STARTED: ChildHandle = Object.freeze({ pause() {}, resume() {}, abandon() {}, pid: () => undefined, signal() {} });
const STREAMS: readonly OutputStream[] = ['stdout', 'stderr'];

/** Starts bash from this process. `failed` may be called before this returns. */
export function spawnDirect({ command, cwd, env }: LaunchOptions, events: ChildEvents): ChildHandle {
  let child: ChildProcess;
  try {
    child = spawn(SHELL, ['-c', command], {
      cwd,
      env,
      detached: true, // setsid(): its own session and process group, whose id is its pid
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    // E2BIG, EINVAL and the like are thrown; ENOENT, EACCES, EAGAIN come as an 'error' event.
    events.failed(`cannot start ${SHELL}: ${messageOf(err)}`);
    return NOT_STARTED;
  }
  const pid = child.pid;
  child.on('error', (err) => {
    if (pid === undefined) events.failed(`cannot start ${SHELL}: ${messageOf(err)}`);
    // Otherwise a failed kill or send, which we do not use: nothing to do.
  });
  if (pid === undefined) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    return NOT_STARTED; // the 'error' event follows
  }
  const pipes: Readable[] = [child.stdout!, child.stderr!];
  let paused = false;
  pipes.forEach((pipe, i) => {
    const stream = STREAMS[i]!;
    pipe.on('data', (data: Buffer) => {
      events.data(stream, data);
      // Node resumes a child's pipes by itself when the child exits (flushStdio in
      // child_process.js), undoing a pause: pause again, so at most one chunk slips in.
      if (paused) pipe.pause();
    });
    pipe.on('error', () => {}); // a read error ends the pipe; 'close' follows
    pipe.on('close', () => events.closed(stream));
  });
  child.on('exit', (code, signal) => events.exit(code, signal));
  return {
    pause() {
      paused = true;
      for (const p of pipes) p.pause();
    },
    resume() {
      paused = false;
      for (const p of pipes) if (!p.destroyed) p.resume();
    },
    abandon() {
      for (const p of pipes) p.destroy(); // 'close' follows
    },
    pid: () => pid,
    signal() {}, // the pid is known from the start
  };
}

/**
 * The pid records are read at least every this many launches: what waits in their socket stays far
 * below its buffer (the spawner's write would block on a full one): 256 (2 KiB of records).
 */
const PID_READ_EVERY = 256;
/** Read in one go: 512 records. */
const PID_READ_BYTES = 512 * PID_RECORD_BYTES;
const NO_BYTES = Buffer.alloc(0);
/** A pid we signal the group of: never 0 or 1 (-0 would be our own group, -1 every process we may signal). */
const isPid = (pid: number) => pid > 1 && pid <= 0x7fffffff;

/** One command started through the spawner, as the parent sees it. */
class Relayed implements ChildHandle {
  /** From its pid record. */
  knownPid: number | undefined;
  paused = false;
  /** Chunks delivered while paused, acknowledged on resume. */
  withheld = 0;
  readonly open = new Set<OutputStream>(STREAMS);
  exited = false;
  /** The pipes handed over to us, read here (per stream). */
  readonly readers: (PipeReader | undefined)[] = [undefined, undefined];

  constructor(
    readonly id: number,
    readonly events: ChildEvents,
    private readonly spawner: Spawner,
  ) {}

  pause(): void {
    this.paused = true;
    for (const r of this.readers) r?.pause();
  }

  resume(): void {
    this.paused = false;
    for (const r of this.readers) r?.resume();
    if (this.withheld > 0) this.spawner.ack(this.id, this.withheld);
    this.withheld = 0;
  }

  abandon(): void {
    this.spawner.send({ t: 'abandon', id: this.id });
    for (const r of this.readers) r?.destroy(); // its onClose follows
  }

  pid(): number | undefined {
    if (this.knownPid === undefined) this.spawner.readPids();
    return this.knownPid;
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    this.spawner.send({ t: 'signal', id: this.id, signal });
  }
}

/** Which spawner process: the native helper (spawn-helper.c) or the Node one (spawner-process.ts). */
export type SpawnerKind = 'native' | 'node';
/** The environment variable that forces a kind for every Spawner made without one: TROUPE_SPAWNER=native|node. */
export const SPAWNER_ENV = 'TROUPE_SPAWNER';

export interface SpawnerOptions {
  /** Default: TROUPE_SPAWNER if set, else 'native' when dist/native/troupe-spawn is there, else 'node'. */
  kind?: SpawnerKind;
  /** The native helper's path (tests); default SPAWN_HELPER_BINARY. */
  binary?: string;
}

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The kind to use and why, from the options, the environment and the build (see SpawnerOptions). Throws a SettingError. */
export function chooseSpawner(options: SpawnerOptions = {}): { kind: SpawnerKind; binary: string; why: string } {
  const binary = options.binary ?? SPAWN_HELPER_BINARY;
  const forced = options.kind ?? process.env[SPAWNER_ENV];
  if (forced !== undefined && forced !== '' && forced !== 'native' && forced !== 'node') {
    throw settingError(options.kind === undefined ? SPAWNER_ENV : 'kind', forced, '"native" or "node"');
  }
  const built = isExecutable(binary);
  if (forced === 'native') {
    if (!built) throw settingError(options.kind === undefined ? SPAWNER_ENV : 'kind', forced, `a built native spawner: ${binary} is missing (npm run build with a C compiler)`);
    return { kind: 'native', binary, why: options.kind === undefined ? `${SPAWNER_ENV}=native` : 'asked for' };
  }
  if (forced === 'node') return { kind: 'node', binary, why: options.kind === undefined ? `${SPAWNER_ENV}=node` : 'asked for' };
  if (!built) return { kind: 'node', binary, why: `${binary} is not built (no C compiler at build time)` };
  const fault = helperFault(binary);
  return fault === undefined ? { kind: 'native', binary, why: `${binary} is built` } : { kind: 'node', binary, why: `${binary} does not run here (${fault})` };
}

/** Each binary's trial run, once a process: undefined when it ran, else what went wrong. */
const trials = new Map<string, string | undefined>();

/**
 * Runs the helper once with its channel closed at once (it then exits 0): a binary built elsewhere
 * (an npm package packed on another machine: another architecture, a newer glibc) is there but
 * cannot run, and must not be chosen over the Node spawner. A few milliseconds, once per process.
 */
function helperFault(binary: string): string | undefined {
  if (trials.has(binary)) return trials.get(binary);
  const run = spawnSync(binary, [], { input: '', stdio: ['pipe', 'ignore', 'pipe'], env: {}, timeout: 5000 });
  const fault = run.error ? messageOf(run.error) : run.status === 0 ? undefined : `${run.signal ?? `exit code ${run.status}`}: ${run.stderr.toString().trim().split('\n')[0] ?? ''}`;
  trials.set(binary, fault);
  return fault;
}

/**
 * Starts commands through a spawner process, started at construction (so that it is ready by the
 * first task) and again after it dies: the native helper or the Node one (`kind`, see
 * chooseSpawner), behind the same channel (spawner-channel.ts), with the same guarantees.
 * `close()` ends it; what it still runs is killed.
 */
export class Spawner {
  readonly kind: SpawnerKind;
  /** Why this kind, in a few words (for the worker's log). */
  readonly why: string;
  readonly #binary: string;
  #channel: SpawnerChannel | undefined;
  #next = 1;
  readonly #children = new Map<number, Relayed>();
  readonly #acks = new Map<number, number>();
  #ackQueued = false;
  #closed = false;
  #startError = '';
  /** The current spawner's pid socket's descriptor, never watched. */
  #pidFd: number | undefined;
  /** Part of a record read (a socket may split one). */
  #pidRest = NO_BYTES;
  readonly #pidBuffer = Buffer.alloc(PID_READ_BYTES);
  #launchesSinceRead = 0;

  /** Throws a SettingError for a bad kind (or TROUPE_SPAWNER), or native asked for and not built. */
  constructor(options: SpawnerOptions = {}) {
    const { kind, binary, why } = chooseSpawner(options);
    this.kind = kind;
    this.why = why;
    this.#binary = binary;
    this.#start();
  }

  /** The spawner's pid (undefined while none runs). */
  get pid(): number | undefined {
    return this.#channel?.pid;
  }

  launch({ command, cwd, env }: LaunchOptions, events: ChildEvents): ChildHandle {
    if (this.#closed) {
      events.failed('the worker is stopping');
      return NOT_STARTED;
    }
    if (!this.#channel) this.#start();
    if (!this.#channel) {
      events.failed(`cannot start the spawner process: ${this.#startError}`);
      return NOT_STARTED;
    }
    const child = new Relayed(this.#next++, events, this);
    this.#children.set(child.id, child);
    if (++this.#launchesSinceRead >= PID_READ_EVERY) this.readPids();
    this.#ref();
    this.send({ t: 'spawn', id: child.id, command, cwd, env });
    return child;
  }

  /** Ends the spawner: it kills what it still runs (their commands get `lost`) and exits. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel?.close();
  }

  send(msg: ToSpawner): void {
    this.#channel?.send(msg);
  }

  ack(id: number, n: number): void {
    this.#acks.set(id, (this.#acks.get(id) ?? 0) + n);
    if (this.#ackQueued) return;
    this.#ackQueued = true;
    // One message for all the chunks delivered in this turn of the event loop.
    setImmediate(() => {
      this.#ackQueued = false;
      const acks = [...this.#acks];
      this.#acks.clear();
      this.send({ t: 'ack', acks });
    });
  }

  /**
   * Reads what pid records wait (without blocking: the socket is non-blocking here) and gives each
   * its command. A record whose command is forgotten here is dropped.
   */
  readPids(): void {
    this.#launchesSinceRead = 0;
    const fd = this.#pidFd;
    if (fd === undefined) return;
    const buffer = this.#pidBuffer;
    for (;;) {
      let n: number;
      // An empty socket throws EAGAIN, the usual end of a read at launch: without a stack trace.
      const stackTraceLimit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        n = readSync(fd, buffer, 0, buffer.length, null);
      } catch {
        n = 0; // EAGAIN: nothing waits. Anything else: the socket is unusable; the spawner's death reads it last.
      } finally {
        Error.stackTraceLimit = stackTraceLimit;
      }
      if (n === 0) return;
      let bytes = buffer.subarray(0, n);
      if (this.#pidRest.length > 0) bytes = Buffer.concat([this.#pidRest, bytes]);
      const whole = bytes.length - (bytes.length % PID_RECORD_BYTES);
      for (let at = 0; at < whole; at += PID_RECORD_BYTES) {
        const child = this.#children.get(bytes.readUInt32LE(at));
        const pid = bytes.readUInt32LE(at + 4);
        if (child && child.knownPid === undefined && isPid(pid)) child.knownPid = pid;
      }
      this.#pidRest = whole === bytes.length ? NO_BYTES : Buffer.from(bytes.subarray(whole));
      if (n < buffer.length) return; // what waited was read
    }
  }

  #start(): void {
    let channel: SpawnerChannel | undefined;
    const events = {
      message: (m: FromSpawner, handle: unknown) => this.#onMessage(m, handle),
      gone: (why: string) => {
        if (this.#channel !== channel || channel === undefined) return;
        this.#channel = undefined;
        this.readPids(); // each one it wrote before it died: their groups are killed below
        channel.dispose();
        this.#pidFd = undefined;
        this.#pidRest = NO_BYTES;
        this.#lostAll(this.#closed ? 'the worker stopped' : why);
      },
    };
    try {
      channel = this.kind === 'native' ? startNativeSpawner(this.#binary, events) : forkNodeSpawner(events);
    } catch (err) {
      this.#startError = messageOf(err); // E2BIG and the like; the launch that asked fails with it
      return;
    }
    this.#channel = channel;
    this.#pidFd = channel.pidFd;
    this.#unref();
  }

  #onMessage(m: FromSpawner, handle: unknown): void {
    const child = this.#children.get(m.id);
    if (!child || m.t !== 'pipe') closeHandle(handle);
    if (!child) return;
    switch (m.t) {
      case 'failed':
        this.#forget(child);
        child.events.failed(m.error);
        break;
      case 'out': {
        const data = Buffer.from(m.d.buffer, m.d.byteOffset, m.d.byteLength);
        child.events.data(STREAMS[m.s]!, data);
        // Acknowledged once delivered: now, or when a paused consumer resumes.
        if (child.paused) child.withheld++;
        else this.ack(child.id, 1);
        break;
      }
      case 'eof':
        this.#streamClosed(child, STREAMS[m.s]!);
        break;
      case 'pipe': {
        const stream = STREAMS[m.s]!;
        if (!child.open.has(stream) || child.readers[m.s]) {
          closeHandle(handle);
          break;
        }
        if (handle === undefined || handle === null) {
          child.events.lost(`the ${stream} pipe the spawner handed over did not arrive; the rest of that output is lost`);
          this.#streamClosed(child, stream);
          break;
        }
        const reader = new PipeReader(handle, (data) => child.events.data(stream, data), () => this.#streamClosed(child, stream));
        child.readers[m.s] = reader;
        if (child.paused) reader.pause();
        break;
      }
      case 'exit':
        // Its record came before this: read now, while the command is still ours to give it to.
        if (child.knownPid === undefined) this.readPids();
        child.exited = true;
        child.events.exit(m.code, m.signal as NodeJS.Signals | null);
        if (child.open.size === 0) this.#forget(child);
        break;
    }
  }

  /** A stream of `child` is over (its eof, or its handed-over pipe closed): `closed`, once. */
  #streamClosed(child: Relayed, stream: OutputStream): void {
    if (child.open.delete(stream)) child.events.closed(stream);
    if (child.exited && child.open.size === 0) this.#forget(child);
  }

  #forget(child: Relayed): void {
    this.#children.delete(child.id);
    if (this.#children.size === 0) this.#unref();
  }

  #lostAll(error: string): void {
    const children = [...this.#children.values()];
    this.#children.clear();
    this.#unref();
    for (const child of children) {
      if (child.knownPid === undefined) {
        child.events.failed(`cannot start ${SHELL}: ${error}`);
        continue;
      }
      signalGroup(child.knownPid, 'SIGKILL'); // false: the group is already gone
      child.events.lost(error);
      if (!child.exited) child.events.exit(null, 'SIGKILL');
      // Pipes read here end with the group: what they read is delivered and they are closed now,
      // their `closed` said once, here (not again when their sockets close).
      const open = [...child.open];
      child.open.clear();
      for (const r of child.readers) r?.destroy();
      for (const stream of open) child.events.closed(stream);
    }
  }

  // The channel keeps our event loop alive only while a command runs through it.
  #ref(): void {
    this.#channel?.ref();
  }

  #unref(): void {
    this.#channel?.unref();
  }
}
