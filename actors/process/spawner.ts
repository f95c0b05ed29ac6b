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
 * Both give runCommand (run-command.ts) the same events, in the same order guarantees: `started`
 * (or `failed`, and then nothing), `data` in the order read, `closed` once per stream, `exit` once.
 * `pause()` stops reading soon (direct: at once; spawner: within SPAWNER_WINDOW chunks, which are
 * delivered as usual and held by runCommand), `resume()` reads on, `abandon()` closes the pipes.
 *
 * When the spawner process dies (killed, out of memory), every command it had started has its
 * process group SIGKILLed here; each gets `lost`, then its `exit` and `closed` events; a later
 * command starts a new spawner.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PipeReader } from './pipe-reader.js';
import { isFromSpawnerOrBatch, type FromSpawner, type ToSpawner } from '../../protocols/spawner.js';
import { messageOf } from '../../src/errors.js';

export type OutputStream = 'stdout' | 'stderr';

/** Closes a descriptor that came with a message we do not take (a pipe not wanted, or a bad message). */
function closeHandle(handle: unknown): void {
  (handle as { close?: () => void } | undefined)?.close?.();
}

export interface ChildEvents {
  started(pid: number): void;
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
}

export interface LaunchOptions {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

const SHELL = '/bin/bash';
/** The handle of a command that did not start: nothing to pause, resume or abandon. */
const NOT_STARTED: ChildHandle = Object.freeze({ pause() {}, resume() {}, abandon() {} });
const STREAMS: readonly OutputStream[] = ['stdout', 'stderr'];

/** Starts bash from this process. `started` or `failed` may be called before this returns. */
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
  events.started(pid);
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
  };
}

const SPAWNER_SCRIPT = fileURLToPath(new URL('./spawner-process.js', import.meta.url));
/**
 * The spawner's heap stays small, and with it the cost of each fork: a 1 MiB young generation
 * (Node's default grows to 16 MiB, all of it touched), GC on the main thread only, and `gc()`
 * exposed so that it collects the old generation while idle (spawner-process.ts). Measured over
 * 3000 spawns: 11 MiB of anonymous memory at the end instead of 29–41 MiB.
 */
const SPAWNER_ARGV: readonly string[] = ['--expose-gc', '--max-semi-space-size=1', '--single-threaded-gc'];

/** One command started through the spawner, as the parent sees it. */
class Relayed implements ChildHandle {
  pid: number | undefined;
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
}

/**
 * Starts commands through a spawner process, started at construction (so that it is ready by the
 * first task) and again after it dies. `close()` ends it; what it still runs is killed.
 */
export class Spawner {
  #proc: ChildProcess | undefined;
  #next = 1;
  readonly #children = new Map<number, Relayed>();
  readonly #acks = new Map<number, number>();
  #ackQueued = false;
  #closed = false;
  #startError = '';

  constructor() {
    this.#start();
  }

  /** The spawner's pid (undefined while none runs). */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  launch({ command, cwd, env }: LaunchOptions, events: ChildEvents): ChildHandle {
    if (this.#closed) {
      events.failed('the worker is stopping');
      return NOT_STARTED;
    }
    if (!this.#proc) this.#start();
    if (!this.#proc) {
      events.failed(`cannot start the spawner process: ${this.#startError}`);
      return NOT_STARTED;
    }
    const child = new Relayed(this.#next++, events, this);
    this.#children.set(child.id, child);
    this.#ref();
    this.send({ t: 'spawn', id: child.id, command, cwd, env });
    return child;
  }

  /** Ends the spawner: it kills what it still runs (their commands get `lost`) and exits. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#proc?.connected) this.#proc.disconnect();
  }

  send(msg: ToSpawner): void {
    if (this.#proc?.connected) this.#proc.send(msg);
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

  #start(): void {
    let proc: ChildProcess;
    try {
      proc = fork(SPAWNER_SCRIPT, [], {
        // Not the worker's --inspect, --cpu-prof or loaders, nor its NODE_OPTIONS (each command
        // gets its own env). A small heap, since every fork copies its page tables (SPAWNER_ARGV).
        execArgv: [...SPAWNER_ARGV],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MALLOC_ARENA_MAX: '1' },
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
    } catch (err) {
      this.#startError = messageOf(err); // E2BIG and the like; the launch that asked fails with it
      return;
    }
    this.#proc = proc;
    proc.on('message', (m: unknown, handle: unknown) => {
      if (!isFromSpawnerOrBatch(m)) return closeHandle(handle);
      if (m.t !== 'batch') return this.#onMessage(m, handle);
      for (const one of m.m) this.#onMessage(one, undefined);
    });
    const gone = (why: string) => {
      if (this.#proc !== proc) return;
      this.#proc = undefined;
      this.#lostAll(this.#closed ? 'the worker stopped' : why);
    };
    // A fork that fails (EAGAIN, ENOMEM) says so with 'error' and never emits 'exit'; after a
    // start, 'error' is a failed send, and 'exit' follows if the process is gone.
    proc.on('error', (err) => {
      if (proc.pid === undefined) gone(`cannot start the spawner process: ${messageOf(err)}`);
    });
    proc.once('exit', (code, signal) => gone(`the spawner process ended (${signal ?? `exit code ${code}`})`));
    this.#unref();
  }

  #onMessage(m: FromSpawner, handle: unknown): void {
    const child = this.#children.get(m.id);
    if (!child || m.t !== 'pipe') closeHandle(handle);
    if (!child) return;
    switch (m.t) {
      case 'started':
        child.pid = m.pid;
        child.events.started(m.pid);
        break;
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
      if (child.pid === undefined) {
        child.events.failed(`cannot start ${SHELL}: ${error}`);
        continue;
      }
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
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
    this.#proc?.channel?.ref();
  }

  #unref(): void {
    this.#proc?.unref();
    this.#proc?.channel?.unref();
  }
}
