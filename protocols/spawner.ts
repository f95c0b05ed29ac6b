/**
 * The messages between a worker and its spawner process (actors/process/spawner.ts, actors/process/spawner-process.ts),
 * over the Node IPC channel of `child_process.fork` with `serialization: 'advanced'` (so a chunk of
 * output travels as bytes, not as JSON).
 *
 *   worker ──spawn, ack, signal, abandon──▶ spawner ──failed | out…, eof | pipe ×2, exit──▶ worker
 *   spawner ──pid records──▶ worker (a second channel, the spawner's descriptor PID_FD)
 *
 * The spawner sends `failed`, `eof` and `exit` at the end of its event loop's turn, those of one
 * turn as one `batch` message (in order); an `out` goes at once, after what waited. An `eof` that
 * comes before the command's exit waits for it, and goes just before the `exit`.
 *
 * Per task the spawner sends, in this order: `failed` (and nothing else), or the output as `out`
 * chunks in the order read with, per stream, an `eof` when its pipe closes or a `pipe` when it hands
 * the pipe over, and `exit` when bash exits: `exit` may come before, between or after them. The IPC
 * channel keeps order (a message after a `pipe` waits for the handle's delivery).
 *
 * Pids: no message says that a command started (waking the worker for it cost ~120 µs of its CPU per
 * task). Instead, right after the fork and before anything else of the task, the spawner writes a
 * PID_RECORD_BYTES record (`id` u32 LE, bash's `pid` u32 LE) to PID_FD, a socket the worker does not
 * watch: it reads what is there when it needs a pid (an exit, a cancel, the spawner's death), so a
 * record is always there before any message of its task, and stays readable after the spawner dies.
 * A stop the worker asks before it has the pid goes as `signal`: the spawner signals the command's
 * process group itself (its `spawn` came first on the channel, so the command has started or failed).
 *
 * Hand-over: when a task's window fills (its output comes faster than the worker takes it), the
 * spawner stops reading its open pipes and sends each to the worker as a `pipe` message carrying the
 * descriptor (`send(msg, handle)`), after the chunks it had read. The worker reads that pipe itself
 * from then on, to its end, and the spawner sends nothing more of that stream (no `eof`), nor takes
 * `ack`s for the task. A `pipe` that arrives without its descriptor (the worker was out of them)
 * means the rest of that stream's output is lost.
 *
 * Flow control: the spawner has at most SPAWNER_WINDOW `out` chunks of a task unacknowledged; at the
 * window it stops reading that task's pipes (the command then blocks on a full pipe) until `ack`s
 * come. The worker acknowledges a chunk once it has delivered it, so a worker that pauses a task holds
 * at most the window.
 *
 * This module imports nothing: the spawner process loads it, and must stay small (see spawner.ts).
 * Both sides check what they receive with the guards below; neither trusts the other's shapes.
 */

/** Unacknowledged `out` chunks per task (each at most one pipe read, 64 KiB): 4. */
export const SPAWNER_WINDOW = 4;

export type SpawnerStream = 0 | 1; // 0 stdout, 1 stderr

// ── worker → spawner ────────────────────────────────────────────────────────────────────────────

export interface SpawnRequest {
  t: 'spawn';
  id: number;
  command: string;
  cwd: string;
  env: Record<string, string>;
}
/** Chunks delivered, per task: [id, count] pairs. */
export interface AckRequest {
  t: 'ack';
  acks: [number, number][];
}
/** Stop reading the task's pipes and close them (what still holds them writes nowhere). */
export interface AbandonRequest {
  t: 'abandon';
  id: number;
}
/** Signal the task's process group (a stop asked before the worker had its pid). */
export interface SignalRequest {
  t: 'signal';
  id: number;
  signal: 'SIGTERM' | 'SIGKILL';
}
export type ToSpawner = SpawnRequest | AckRequest | AbandonRequest | SignalRequest;

/** The spawner's descriptor for the pid records (the fork's stdio entry of that index is a 'pipe'): 4. */
export const PID_FD = 4;
/** A pid record: the task's id, then bash's pid, each a u32 LE: 8 bytes. */
export const PID_RECORD_BYTES = 8;

// ── spawner → worker ────────────────────────────────────────────────────────────────────────────

export interface Failed {
  t: 'failed';
  id: number;
  error: string;
}
export interface Out {
  t: 'out';
  id: number;
  s: SpawnerStream;
  d: Uint8Array;
}
export interface Eof {
  t: 'eof';
  id: number;
  s: SpawnerStream;
}
export interface Exit {
  t: 'exit';
  id: number;
  code: number | null;
  signal: string | null;
}
/** The stream's pipe itself, as the message's handle: the worker reads it from here on. */
export interface Pipe {
  t: 'pipe';
  id: number;
  s: SpawnerStream;
}
export type FromSpawner = Failed | Out | Eof | Pipe | Exit;
/** Several of the above that happened in one turn of the spawner's event loop, in that order (never an `out` or a `pipe`). */
export interface Batch {
  t: 'batch';
  m: FromSpawner[];
}

// ── guards ──────────────────────────────────────────────────────────────────────────────────────

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isStream = (v: unknown): v is SpawnerStream => v === 0 || v === 1;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function isToSpawner(m: unknown): m is ToSpawner {
  if (!isRecord(m)) return false;
  switch (m.t) {
    case 'spawn':
      return (
        isId(m.id) &&
        typeof m.command === 'string' &&
        typeof m.cwd === 'string' &&
        isRecord(m.env) &&
        Object.values(m.env).every((v) => typeof v === 'string')
      );
    case 'ack':
      return Array.isArray(m.acks) && m.acks.every((a) => Array.isArray(a) && a.length === 2 && isId(a[0]) && isId(a[1]));
    case 'abandon':
      return isId(m.id);
    case 'signal':
      return isId(m.id) && (m.signal === 'SIGTERM' || m.signal === 'SIGKILL');
    default:
      return false;
  }
}

/** One message of the spawner's, or a batch of them (each checked). */
export function isFromSpawnerOrBatch(m: unknown): m is FromSpawner | Batch {
  if (isRecord(m) && m.t === 'batch') return Array.isArray(m.m) && m.m.every((one) => isFromSpawner(one) && one.t !== 'pipe');
  return isFromSpawner(m);
}

export function isFromSpawner(m: unknown): m is FromSpawner {
  if (!isRecord(m) || !isId(m.id)) return false;
  switch (m.t) {
    case 'failed':
      return typeof m.error === 'string';
    case 'out':
      return isStream(m.s) && m.d instanceof Uint8Array;
    case 'eof':
    case 'pipe':
      return isStream(m.s);
    case 'exit':
      return (m.code === null || Number.isInteger(m.code)) && (m.signal === null || typeof m.signal === 'string');
    default:
      return false;
  }
}
