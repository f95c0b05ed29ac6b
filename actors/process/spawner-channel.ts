/**
 * The channel between a Spawner (spawner.ts) and the process that starts its commands: the Node
 * spawner (spawner-process.ts, over Node's IPC channel: `forkNodeSpawner`) or the native one
 * (spawn-helper.c, over our binary frames: native-channel.ts). Either gives the Spawner the
 * protocol's messages (protocols/spawner.ts), checked, in the order sent, a `pipe` with its
 * descriptor (a libuv handle from the IPC channel, or a descriptor number of our own; undefined when
 * it did not arrive), and `gone` once when the process has ended (or never started), after its
 * last message. `pidFd` is the pid records' socket, read by the Spawner, never watched.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isFromSpawnerOrBatch, PID_FD, type FromSpawner, type ToSpawner } from '../../protocols/spawner.js';
import { messageOf } from '../../src/errors.js';

export interface ChannelEvents {
  message(m: FromSpawner, handle: unknown): void;
  gone(why: string): void;
}

export interface SpawnerChannel {
  readonly pid: number | undefined;
  /** The pid records' descriptor, read without blocking; undefined when there is none. */
  readonly pidFd: number | undefined;
  send(msg: ToSpawner): void;
  /** Ends the channel: the process kills what it still runs and exits (`gone` follows). */
  close(): void;
  /** Keep our event loop alive (while a command runs through it), or not. */
  ref(): void;
  unref(): void;
  /** After `gone`: the pid socket released. */
  dispose(): void;
}

/** Closes a descriptor that came with a message we do not take (a pipe not wanted, or a bad message). */
export function closeHandle(handle: unknown): void {
  if (typeof handle === 'number') {
    try {
      fs.closeSync(handle);
    } catch {
      // already closed: nothing to do
    }
    return;
  }
  (handle as { close?: () => void } | undefined)?.close?.();
}

/** The libuv stream under the pid socket (Node's own fields; there are no public ones). */
interface PidHandle {
  readStop(): number;
  readonly fd: number;
}

/**
 * Takes the pid socket's descriptor, to read it when we want (Spawner.readPids). Node's stream for
 * it is started reading at its creation, in this same turn, so nothing has been read yet: stopped
 * now, it is never watched, and wakes nothing when a record comes.
 */
export function openPids(proc: ChildProcess, index: number): { stream: Readable; fd: number } | undefined {
  const stream = proc.stdio[index] as (Readable & { _handle?: PidHandle | null; unref?: () => void }) | null | undefined;
  const handle = stream?._handle;
  if (!stream || !handle || !(handle.fd >= 0)) return undefined; // then no pid is known: a stop goes through the spawner
  handle.readStop();
  stream.unref?.();
  stream.on('error', () => {}); // never read or written through Node; destroyed when the spawner is gone
  return { stream, fd: handle.fd };
}

const SPAWNER_SCRIPT = fileURLToPath(new URL('./spawner-process.js', import.meta.url));
/**
 * The spawner's heap stays small, and with it the cost of each fork: a 1 MiB young generation
 * (Node's default grows to 16 MiB, all of it touched), GC on the main thread only, and `gc()`
 * exposed so that it collects the old generation while idle, every few thousand commands
 * (spawner-process.ts, GC_EVERY). Measured over 3000 spawns: 11 MiB of anonymous memory at the end
 * instead of 29–41 MiB (most of that the young generation's bound).
 */
const SPAWNER_ARGV: readonly string[] = ['--expose-gc', '--max-semi-space-size=1', '--single-threaded-gc'];

/** Forks the Node spawner process. Throws as fork does (E2BIG and the like). */
export function forkNodeSpawner(events: ChannelEvents): SpawnerChannel {
  const proc = fork(SPAWNER_SCRIPT, [], {
    // Not the worker's --inspect, --cpu-prof or loaders, nor its NODE_OPTIONS (each command
    // gets its own env). A small heap, since every fork copies its page tables (SPAWNER_ARGV).
    execArgv: [...SPAWNER_ARGV],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MALLOC_ARENA_MAX: '1' },
    serialization: 'advanced',
    // PID_FD (4): the pid records, a socket (protocols/spawner.ts).
    stdio: ['ignore', 'ignore', 'inherit', 'ipc', 'pipe'],
  });
  const pids = openPids(proc, PID_FD);
  proc.on('message', (m: unknown, handle: unknown) => {
    if (!isFromSpawnerOrBatch(m)) return closeHandle(handle);
    if (m.t !== 'batch') return events.message(m, handle);
    for (const one of m.m) events.message(one, undefined);
  });
  let ended = false;
  const gone = (why: string) => {
    if (ended) return;
    ended = true;
    events.gone(why);
  };
  // A fork that fails (EAGAIN, ENOMEM) says so with 'error' and never emits 'exit'; after a
  // start, 'error' is a failed send, and 'exit' follows if the process is gone.
  proc.on('error', (err) => {
    if (proc.pid === undefined) gone(`cannot start the spawner process: ${messageOf(err)}`);
  });
  proc.once('exit', (code, signal) => gone(`the spawner process ended (${signal ?? `exit code ${code}`})`));
  return {
    get pid() {
      return proc.pid;
    },
    pidFd: pids?.fd,
    send(msg) {
      if (proc.connected) proc.send(msg);
    },
    close() {
      if (proc.connected) proc.disconnect();
    },
    ref() {
      proc.channel?.ref();
    },
    unref() {
      proc.unref();
      proc.channel?.unref();
    },
    dispose() {
      pids?.stream.destroy();
    },
  };
}
