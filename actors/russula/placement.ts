/**
 * Which workers play which group of a Russula run, and waiting until there are enough of them.
 *
 * - `pick`: for each group in file order, the first `count` free workers (natural name order:
 *   worker-2 before worker-10) among the `russula` receptionist entries that match its selector; a
 *   worker is in at most one group of a run. Too few is an error that names each short group, what
 *   matches, and every connected Russula worker.
 * - `enoughWorkers`: the `russula` listing once `pick` succeeds on it, or as it is after the wait.
 *   The wait starts with the manager's first answer, so that a wait of 0 means "those connected
 *   now", not "none"; with no answer at all (the manager is gone) it gives up after the query
 *   timeout on top.
 */
import type { ListingEntry } from '../../protocols/cluster-messages.js';
import { RUSSULA_WORKER_KEY, type StepSpec } from '../../protocols/russula/index.js';
import { workerTraits } from '../../protocols/worker-meta.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, RussulaError } from '../../src/errors.js';
import { matches, parseSelector } from '../tasks/selector.js';

/** One group of a run: which workers (selector, count) and what each member runs. */
export interface GroupPlan {
  name: string;
  selector: string;
  count: number;
  step: StepSpec;
}

/** Chooses `count` matching workers per group, in file order, a worker in at most one group. */
export function pick(groups: readonly GroupPlan[], entries: readonly ListingEntry[]): { groups: { plan: GroupPlan; entries: ListingEntry[] }[] } | { error: RussulaError } {
  const taken = new Set<string>();
  const sorted = [...entries].sort((a, b) => nameOf(a).localeCompare(nameOf(b), 'en', { numeric: true }));
  const chosen: { plan: GroupPlan; entries: ListingEntry[] }[] = [];
  const short: string[] = [];
  for (const plan of groups) {
    const selector = parseSelector(plan.selector);
    const candidates = sorted.filter((e) => matches(selector, workerTraits(e.ref.node, e.meta)));
    const free = candidates.filter((e) => !taken.has(e.ref.toString()));
    const picked = free.slice(0, plan.count);
    for (const e of picked) taken.add(e.ref.toString());
    chosen.push({ plan, entries: picked });
    if (picked.length < plan.count) {
      const names = candidates.map(nameOf);
      short.push(
        `group ${plan.name} needs ${plan.count} worker${plan.count === 1 ? '' : 's'} matching "${plan.selector || '(any)'}", ${free.length} ${free.length === 1 ? 'is' : 'are'} free` +
          ` (matching: ${names.length ? names.join(', ') : 'none'}; connected Russula workers: ${sorted.map(nameOf).join(', ') || 'none'})`,
      );
    }
  }
  if (short.length > 0) return { error: new RussulaError(ErrorCodes.RUSSULA_TOO_FEW_WORKERS, `too few workers: ${short.join('; ')}`) };
  return { groups: chosen };
}

/** The name a Russula worker checked in with (its node's when it gave none). */
export function nameOf(e: ListingEntry): string {
  return workerTraits(e.ref.node, e.meta).name;
}

/** The `russula` listing once enough workers match `groups`, or as it is after `waitMs`. */
export async function enoughWorkers(system: ClusterSystem, groups: readonly GroupPlan[], waitMs: number): Promise<ListingEntry[]> {
  let latest: ListingEntry[] = [];
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let stop: (() => void) | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      setImmediate(() => stop?.());
      resolve();
    };
    // No answer at all (the manager is gone): give up after the query timeout on top.
    timer = setTimeout(finish, waitMs + system.settings.queryTimeoutMs);
    let first = true;
    stop = system.receptionist.listing(RUSSULA_WORKER_KEY, (entries) => {
      latest = entries;
      if (!('error' in pick(groups, entries))) return finish();
      if (!first) return;
      first = false;
      clearTimeout(timer);
      timer = setTimeout(finish, waitMs);
    });
  });
  return latest;
}
