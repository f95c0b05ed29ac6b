/**
 * Heap growth for a node that moves bulk bytes: a manager forwarding task output, a worker sending it.
 *
 * V8 counts the memory of buffers allocated since its last full collection (external memory) against
 * the old generation's limit, which for a small heap is its size plus about 10 MiB. Every chunk of
 * output a node handles is such a buffer (TLS reads hand it over 16 KiB at a time, ws joins those into
 * one message), and young ones are freed only by a scavenge, which on-heap allocation (little, here)
 * paces. So at a few hundred MB/s a manager whose heap is 14 MiB started a full mark-compact every
 * 10 MB or so: about 100 per GB, a quarter of its CPU (bench:output with --trace-gc: 31 in a 300 MB
 * run). Letting a small heap grow 4× before a full collection (V8's own largest growing factor)
 * made that 2 (and the worker's 14 → 2); peak RSS over a 3 GB run rose by 6 MiB (manager) and
 * 16 MiB (worker).
 *
 * Bound: the factor holds only while the heap is under SMALL_HEAP_BYTES (its limit then under 4×
 * that); a manager whose heap grows past it (thousands of workers) goes back to V8's own choice,
 * looked at every CHECK_INTERVAL_MS. It is a V8 flag, so process-wide: the long-running node
 * commands (actors/nodes.ts) set it, as they take the process's signals; a library user of
 * ClusterSystem alone keeps V8's defaults.
 *
 * The `troupe run` client (RECEIVER_GROWTH) receives every byte of a task's output and holds almost
 * nothing else: its live heap is about 9 MiB, so 4× still left it a slack of about 25 MiB, under the
 * 32 MiB of young buffers at which V8 scavenges them (twice its largest semi-space), and it started
 * a full collection every 15 MB or so (20 in a 300 MB run, a quarter of its CPU in `perf`). 11×
 * while its heap is under 16 MiB (so the limit stays under about 180 MiB): 1 full collection in a
 * 300 MB run, the same peak RSS, and a quarter less CPU.
 */
import v8 from 'node:v8';

/** The heap may grow to (1 + this / 100) × its live size before a full collection, while small. */
export const HEAP_GROWING_PERCENT = 300;
/** Live heap under which HEAP_GROWING_PERCENT holds: 64 MiB. */
export const SMALL_HEAP_BYTES = 64 * 1024 * 1024;
/** How often the live heap is looked at: 5 seconds. */
export const CHECK_INTERVAL_MS = 5000;

/** How much a heap may grow, while under how much. */
export interface HeapGrowth {
  percent: number;
  belowBytes: number;
}

/** A manager's or a worker's (see above). */
export const NODE_GROWTH: HeapGrowth = { percent: HEAP_GROWING_PERCENT, belowBytes: SMALL_HEAP_BYTES };
/** The `troupe run` client's (see above): 11× while its live heap is under 16 MiB. */
export const RECEIVER_GROWTH: HeapGrowth = { percent: 1000, belowBytes: 16 * 1024 * 1024 };

let timer: NodeJS.Timeout | undefined;
let current = 0;

/** The growing percent for a live heap of `usedBytes`: 0 is V8's default (a factor from its measured GC and mutator speeds). */
export function heapGrowingPercent(usedBytes: number, growth: HeapGrowth = NODE_GROWTH): number {
  return usedBytes < growth.belowBytes ? growth.percent : 0;
}

/** Lets this process's heap grow `growth.percent` while it is small (see above); once per process. */
export function growSmallHeap(growth: HeapGrowth = NODE_GROWTH): void {
  if (timer !== undefined) return;
  const check = () => {
    const percent = heapGrowingPercent(v8.getHeapStatistics().used_heap_size, growth);
    if (percent !== current) v8.setFlagsFromString(`--heap-growing-percent=${(current = percent)}`);
  };
  check();
  timer = setInterval(check, CHECK_INTERVAL_MS).unref();
}
