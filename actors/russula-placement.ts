/**
 * Which workers play which group of a Russula run: for each group in file order, the first `count`
 * free workers (natural name order: worker-2 before worker-10) among the `russula` receptionist
 * entries that match its selector; a worker is in at most one group of a run. Too few is an error
 * that names each short group, what matches, and every connected Russula worker.
 */
import type { ListingEntry } from '../protocols/cluster-messages.js';
import { ErrorCodes, RussulaError } from '../src/errors.js';
import type { GroupPlan } from './russula-coordinator.js';
import { matches, parseSelector } from './selector.js';

/** Chooses `count` matching workers per group, in file order, a worker in at most one group. */
export function pick(groups: readonly GroupPlan[], entries: readonly ListingEntry[]): { groups: { plan: GroupPlan; entries: ListingEntry[] }[] } | { error: RussulaError } {
  const taken = new Set<string>();
  const sorted = [...entries].sort((a, b) => String(a.meta.name ?? a.ref.node).localeCompare(String(b.meta.name ?? b.ref.node), 'en', { numeric: true }));
  const chosen: { plan: GroupPlan; entries: ListingEntry[] }[] = [];
  const short: string[] = [];
  for (const plan of groups) {
    const selector = parseSelector(plan.selector);
    const candidates = sorted.filter((e) => matches(selector, traits(e)));
    const free = candidates.filter((e) => !taken.has(e.ref.toString()));
    const picked = free.slice(0, plan.count);
    for (const e of picked) taken.add(e.ref.toString());
    chosen.push({ plan, entries: picked });
    if (picked.length < plan.count) {
      const names = candidates.map((e) => traits(e).name);
      short.push(
        `group ${plan.name} needs ${plan.count} worker${plan.count === 1 ? '' : 's'} matching "${plan.selector || '(any)'}", ${free.length} ${free.length === 1 ? 'is' : 'are'} free` +
          ` (matching: ${names.length ? names.join(', ') : 'none'}; connected Russula workers: ${sorted.map((e) => traits(e).name).join(', ') || 'none'})`,
      );
    }
  }
  if (short.length > 0) return { error: new RussulaError(ErrorCodes.RUSSULA_TOO_FEW_WORKERS, `too few workers: ${short.join('; ')}`) };
  return { groups: chosen };
}

function traits(e: ListingEntry): { name: string; tags: string[]; platform: string; arch: string } {
  const meta = e.meta;
  return {
    name: typeof meta.name === 'string' ? meta.name : e.ref.node,
    tags: Array.isArray(meta.tags) ? meta.tags.filter((t): t is string => typeof t === 'string') : [],
    platform: typeof meta.platform === 'string' ? meta.platform : '',
    arch: typeof meta.arch === 'string' ? meta.arch : '',
  };
}
