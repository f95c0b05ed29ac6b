/**
 * One worker as the Controller shows it to the manager's observers (`Controller.workers()`: the
 * metrics' worker gauges, the live view `troupe top` watches): read in place from the pool's own
 * records when they look, so that neither sends the Controller a query, and nothing is kept twice.
 * Each call walks the pool's workers once, a small object each; nothing is copied but the figures.
 */
import type { Usage } from '../../protocols/tasks.js';
import type { WorkerTraits } from './selector.js';
import type { WorkerPool } from './worker-pool.js';

export interface WorkerInfo extends WorkerTraits {
  slots: number;
  /** Slots running a task. */
  busy: number;
  /** Its last usage report, if any. */
  usage: Usage | undefined;
}

/** The pool's workers as they are now, in no particular order. */
export function* workerInfos(pool: WorkerPool): Iterable<WorkerInfo> {
  for (const w of pool.workers.values()) yield { name: w.name, tags: w.tags, platform: w.platform, arch: w.arch, slots: w.slots, busy: w.running.size, usage: w.usage };
}
