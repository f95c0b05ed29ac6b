/**
 * CPU time of the task benchmark's processes (tasks.ts), per process, to the nanosecond: the sum of
 * the first field of /proc/PID/task/TID/schedstat (time on a CPU, ns) over the process' threads, so
 * that the thread pool's and the GC's threads count too. /proc/PID/stat's utime and stime tick at
 * 10 ms, too coarse for a block of a few hundred tasks of about a millisecond each.
 *
 * Beside it, the sleeps: voluntary context switches (/proc/PID/task/TID/status), each a thread
 * blocking (in epoll, a futex, a read) and so, later, one wake-up. A thread that ended between two
 * samples takes its counts with it; the figures are then low, never high. A process that is gone reads as null. Linux only (the bench's JSON says null elsewhere).
 */
import fs from 'node:fs';

/** CPU time and sleeps of one process, summed over its threads. */
export interface CpuSample {
  /** ns on a CPU (schedstat's first field). */
  ns: number;
  /** Times a thread went to sleep (voluntary_ctxt_switches): each is a wake-up later. */
  sleeps: number;
}

/** The process' CPU time and sleeps, summed over its threads; null if it (or /proc) is not there. */
export function cpuSample(pid: number): CpuSample | null {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let ns = 0;
  let sleeps = 0;
  for (const tid of tids) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
      sleeps += Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // the thread ended since readdir
    }
  }
  return { ns, sleeps };
}

/** ns on a CPU, summed over the process' threads; null if the process (or /proc) is not there. */
export function cpuNs(pid: number): number | null {
  return cpuSample(pid)?.ns ?? null;
}

/** The pid of a child of `parent` whose command line contains `marker`, or undefined. */
export function childPid(parent: number, marker: string): number | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${parent}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    let children: string[];
    try {
      children = fs.readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      continue;
    }
    for (const child of children) {
      try {
        if (fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(marker)) return Number(child);
      } catch {
        // it ended since
      }
    }
  }
  return undefined;
}

/**
 * CPU per task, per named process, accumulated over the blocks of one way: `around(n, run)` samples
 * every process before and after `run` and adds the difference, with `n` tasks.
 */
export class CpuTally {
  readonly #sum = new Map<string, CpuSample>();
  #tasks = 0;
  #incomplete = false;

  constructor(readonly processes: () => Record<string, number | undefined>) {}

  async around<T>(n: number, run: () => Promise<T>): Promise<T> {
    const pids = this.processes();
    const before = sample(pids);
    const result = await run();
    const after = sample(pids);
    for (const name of Object.keys(pids)) {
      const a = before[name];
      const b = after[name];
      if (!a || !b) {
        this.#incomplete = true;
        continue;
      }
      const sum = this.#sum.get(name) ?? { ns: 0, sleeps: 0 };
      this.#sum.set(name, { ns: sum.ns + (b.ns - a.ns), sleeps: sum.sleeps + (b.sleeps - a.sleeps) });
    }
    this.#tasks += n;
    return result;
  }

  /** ms of CPU per task per process, and their total; null where a process could not be read. */
  perTaskMs(): Record<string, number> | null {
    return this.#perTask((s) => s.ns / 1e6, 3);
  }

  /** Sleeps (so wake-ups) per task per process, over all its threads, and their total. */
  sleepsPerTask(): Record<string, number> | null {
    return this.#perTask((s) => s.sleeps, 1);
  }

  #perTask(of: (s: CpuSample) => number, digits: number): Record<string, number> | null {
    if (this.#incomplete || this.#tasks === 0) return null;
    const out: Record<string, number> = {};
    const round = (x: number) => Math.round(x * 10 ** digits) / 10 ** digits;
    let total = 0;
    for (const [name, s] of this.#sum) {
      const x = of(s) / this.#tasks;
      out[name] = round(x);
      total += x;
    }
    out.total = round(total);
    return out;
  }
}

function sample(pids: Record<string, number | undefined>): Record<string, CpuSample | null> {
  const out: Record<string, CpuSample | null> = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = pid === undefined ? null : cpuSample(pid);
  return out;
}
