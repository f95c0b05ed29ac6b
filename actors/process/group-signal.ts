/**
 * Signals a process group by its id (a command's bash pid, see run-command.ts), and says whether it
 * went: false when the group is empty (ESRCH), or what is left changed its credentials (EPERM).
 * Never throws for those.
 *
 * Why not process.kill: that throws for ESRCH, and ESRCH is the usual end of a task (the SIGKILL
 * after bash's exit finds its group empty). Node's process.kill then builds an ErrnoException (the
 * errno's name looked up, the message formatted), throws and unwinds it, once a task, in code that
 * stays cold: in perf, 4.5 % of the worker's main thread in a loop of `true` commands through a
 * spawner (loaded machine), where a warm loop measures 2.2-2.5 µs against 0.4 µs for the errno.
 * Node's own `process._kill`, which process.kill wraps, returns the errno instead: it is used when
 * it is there (undocumented, in every Node since 0.x), and process.kill otherwise.
 */
import os from 'node:os';

type RawKill = (pid: number, signal: number) => number;
const rawKill = (process as unknown as { _kill?: RawKill })._kill;
const SIGNALS = { SIGTERM: os.constants.signals.SIGTERM, SIGKILL: os.constants.signals.SIGKILL } as const;

export function signalGroup(pgid: number, signal: 'SIGTERM' | 'SIGKILL'): boolean {
  // A group id is a pid above 1: -0 would be our own group, -1 every process we may signal.
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  if (typeof rawKill === 'function') return rawKill.call(process, -pgid, SIGNALS[signal]) === 0;
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0; // the throw is never read: without a stack trace it costs less
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}
