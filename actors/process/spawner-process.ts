/**
 * The spawner process: started once by a Worker (actors/process/spawner.ts), it starts each task's
 * `/bin/bash -c COMMAND` and relays its output, so that the fork happens in this small process
 * rather than in the worker. Protocol and flow control: protocols/spawner.ts.
 *
 * Output that comes faster than the worker takes it (a task's window of unacknowledged chunks
 * fills) is not relayed any longer: the spawner stops reading that task's pipes and sends them to the
 * worker (`pipe`, the descriptor itself over the IPC channel), which reads them from then on, so
 * bulk output crosses no extra process. What the spawner had read goes first, in order.
 *
 * It lives as long as its IPC channel: when the worker disconnects or dies, it SIGKILLs the process
 * group of every command it started that is still running, and exits. It ignores SIGINT, SIGTERM and
 * SIGHUP (a Ctrl-C at the terminal reaches the worker's whole process group): the worker decides
 * when it ends. Keep its imports to node:child_process, node:fs, the protocol and src/errors.ts
 * (which import nothing): every module loaded here makes each fork dearer.
 *
 * Each command's pid goes to the worker as a record on PID_FD, written right after the fork, before
 * anything else of the task is sent (protocols/spawner.ts): the worker reads them when it needs one,
 * so a start wakes nothing there. The write blocks only on a full socket, which the worker's reads
 * (at every exit, and every few hundred starts) keep from happening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { isToSpawner, PID_FD, PID_RECORD_BYTES, SPAWNER_WINDOW, type Batch, type FromSpawner, type SpawnRequest } from '../../protocols/spawner.js';
import { messageOf } from '../../src/errors.js';

const SHELL = '/bin/bash';
/**
 * A full GC, while nothing runs, after this many commands (see SPAWNER_ARGV in spawner.ts): 4096.
 * Not more often: each full GC clears the weak objects that optimized code depends on, so V8 throws
 * away about thirty functions' optimized code (Readable.read, Socket, nextTick…; `--trace-deopt`:
 * "weak objects") and compiles them again on its helper threads. Measured, a loop of `true`
 * commands through a spawner, alternated on a loaded machine: our CPU per command 911–973 µs at
 * 4096 against 962–1160 µs at 256 (5000–6000 commands), for 16–20 MiB of anonymous memory at the
 * end against 12–13 MiB; 833–938 against 1011–1099 µs over 3000 commands (none collected at 4096).
 */
const GC_EVERY = 4096;
const collect = (globalThis as { gc?: () => void }).gc;
let sinceGc = 0;

interface Task {
  child: ChildProcess;
  pipes: Readable[];
  unacked: number;
  /** Pipes still read here: neither closed nor handed to the worker. */
  open: number;
  exited: boolean;
  /** Ends of file before the exit: they wait for it (nothing the worker does turns on them before). */
  eofs: FromSpawner[];
  /** Set once its pipes went to the worker (handOver); per pipe, whether it went. */
  handedOver: boolean;
  handed: [boolean, boolean];
}

/** The libuv stream under a child's pipe (Node's own field; there is no public one). */
interface PipeHandle {
  readStop(): number;
  close(): void;
}

const tasks = new Map<number, Task>();
const pidRecord = Buffer.alloc(PID_RECORD_BYTES);
/** Cleared when PID_FD cannot be written (not given to us: the worker then learns no pid). */
let pidsOpen = true;

/** Tells the worker `id`'s pid (see PID_FD), before anything else of the task. */
function writePid(id: number, pid: number): void {
  if (!pidsOpen) return;
  pidRecord.writeUInt32LE(id, 0);
  pidRecord.writeUInt32LE(pid, 4);
  try {
    // One record is far below a socket's atomic write: it goes whole or not at all.
    writeSync(PID_FD, pidRecord);
  } catch {
    // EBADF: started without it; EPIPE: the worker is gone, its 'disconnect' follows.
    pidsOpen = false;
  }
}

function send(msg: FromSpawner | Batch): void {
  if (process.connected) process.send!(msg);
}

/**
 * `eof`, `exit` and `failed` wait for the end of this turn of the event loop and go as
 * one message (a `batch` when there are several): with the ends of file held until the exit (see
 * `eofs`), a command's end reaches the worker as one message, so it wakes once for it rather than
 * three times. An `out` sends what waits first, so the worker sees everything in the order it
 * happened here.
 */
const waiting: FromSpawner[] = [];
let flushQueued = false;

function queue(msg: FromSpawner): void {
  waiting.push(msg);
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(flush);
}

function flush(): void {
  flushQueued = false;
  if (waiting.length === 0) return;
  send(waiting.length === 1 ? waiting[0]! : { t: 'batch', m: [...waiting] });
  waiting.length = 0;
}

function start(m: SpawnRequest): void {
  if (tasks.has(m.id)) return;
  let child: ChildProcess;
  try {
    child = spawn(SHELL, ['-c', m.command], { cwd: m.cwd, env: m.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    queue({ t: 'failed', id: m.id, error: `cannot start ${SHELL}: ${messageOf(err)}` });
    return;
  }
  if (child.pid === undefined) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.once('error', (err) => queue({ t: 'failed', id: m.id, error: `cannot start ${SHELL}: ${messageOf(err)}` }));
    return;
  }
  child.on('error', () => {}); // a failed kill: we send none
  const task: Task = { child, pipes: [child.stdout!, child.stderr!], unacked: 0, open: 2, exited: false, eofs: [], handedOver: false, handed: [false, false] };
  tasks.set(m.id, task);
  writePid(m.id, child.pid);
  task.pipes.forEach((pipe, s) => {
    pipe.on('data', (d: Buffer) => {
      flush();
      send({ t: 'out', id: m.id, s: s as 0 | 1, d });
      // Again on every chunk: Node resumes a child's pipes by itself when the child exits.
      if (++task.unacked >= SPAWNER_WINDOW) {
        for (const p of task.pipes) p.pause();
        // Not inside a 'data' handler: the hand-over drains what the streams hold.
        if (!task.handedOver) queueMicrotask(() => handOver(m.id, task));
      }
    });
    pipe.on('error', () => {}); // a read error ends the pipe; 'close' follows
    // The end of the stream: its end of file read, every chunk before it sent ('end', in the turn
    // that read it), or the pipe closed without it (abandoned, a read error).
    let ended = false;
    const eof = () => {
      if (ended || task.handed[s]) return;
      ended = true;
      // bash closes its pipes before its parent hears of its exit, often a turn apart: held until
      // the exit, a command's ends of file and exit go as one message.
      if (task.exited) queue({ t: 'eof', id: m.id, s: s as 0 | 1 });
      else task.eofs.push({ t: 'eof', id: m.id, s: s as 0 | 1 });
      task.open--;
      forgetIfDone(m.id, task);
    };
    pipe.on('end', eof);
    pipe.on('close', eof);
  });
  child.on('exit', (code, signal) => {
    task.exited = true;
    for (const eof of task.eofs.splice(0)) queue(eof);
    queue({ t: 'exit', id: m.id, code, signal });
    forgetIfDone(m.id, task);
  });
}

/**
 * Sends the task's open pipes to the worker: what waits and what the streams still hold go first
 * (as `out`), then the descriptor (`pipe`), which we close once it is written. Reading here stops
 * before: a byte is either relayed or left in the pipe for the worker, never both, never neither.
 * A `pipe` never goes in a batch: it carries its handle.
 */
function handOver(id: number, task: Task): void {
  if (task.handedOver || !process.connected) return;
  task.handedOver = true;
  flush();
  task.pipes.forEach((pipe, s) => {
    const socket = pipe as Readable & { _handle: PipeHandle | null };
    const handle = socket._handle;
    if (handle === null || pipe.destroyed || pipe.readableEnded) return; // closed: its eof goes as usual
    handle.readStop();
    // Detached first, so that draining below (or Node's flush at the child's exit) cannot start it again.
    socket._handle = null;
    task.handed[s] = true;
    pipe.removeAllListeners('data');
    for (let d = pipe.read() as Buffer | null; d !== null; d = pipe.read() as Buffer | null) send({ t: 'out', id, s: s as 0 | 1, d });
    process.send!({ t: 'pipe', id, s: s as 0 | 1 } satisfies FromSpawner, handle as never, undefined, () => handle.close());
    task.open--;
  });
  forgetIfDone(id, task);
}

function forgetIfDone(id: number, task: Task): void {
  if (!task.exited || task.open > 0) return;
  tasks.delete(id);
  // Old-generation garbage would otherwise grow until V8 sees fit to collect it, and each fork
  // copies the page tables of all of it. A few ms of our CPU every GC_EVERY commands, when idle.
  if (++sinceGc >= GC_EVERY && tasks.size === 0 && collect) {
    sinceGc = 0;
    collect();
  }
}

process.on('message', (m: unknown) => {
  if (!isToSpawner(m)) return; // only our worker talks to us; a shape we do not know is a bug there
  switch (m.t) {
    case 'spawn':
      start(m);
      break;
    case 'ack':
      for (const [id, n] of m.acks) {
        const task = tasks.get(id);
        if (!task || task.handedOver) continue;
        task.unacked = Math.max(0, task.unacked - n);
        if (task.unacked < SPAWNER_WINDOW) for (const p of task.pipes) if (!p.destroyed) p.resume();
      }
      break;
    case 'abandon':
      for (const p of tasks.get(m.id)?.pipes ?? []) p.destroy(); // 'close' follows
      break;
    case 'signal': {
      // Its spawn came before: the command has started (it is here until its pipes are done) or failed.
      const task = tasks.get(m.id);
      if (!task) break;
      try {
        // The group id is bash's pid; while bash is unreaped, or any member lives, it is not reused.
        process.kill(-task.child.pid!, m.signal);
      } catch {
        // ESRCH: the group is gone; EPERM: what is left changed its credentials
      }
      break;
    }
  }
});

process.on('disconnect', () => {
  // A task still in the table has a process, or a pipe holder, that may live: end its group.
  for (const { child } of tasks.values()) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is already gone
    }
  }
  process.exit(0);
});

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
// A send that fails (EPIPE: the worker is gone, its 'disconnect' not yet seen) must not end us
// before the 'disconnect' handler has killed what we started.
process.on('error', () => {});
