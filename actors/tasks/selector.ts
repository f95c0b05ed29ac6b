/**
 * Task selectors: `tag=gpu,platform=linux,name=worker-3`. Every term must match; a key may repeat
 * (`tag=gpu,tag=ssd`: both tags). The empty selector matches every worker.
 */
import { ErrorCodes, TaskError } from '../../src/errors.js';

export const SELECTOR_KEYS = ['tag', 'name', 'platform', 'arch'] as const;
export type SelectorKey = (typeof SELECTOR_KEYS)[number];

export interface Selector {
  readonly text: string;
  readonly terms: readonly { key: SelectorKey; value: string }[];
}

/** What a selector is matched against: a worker's listing metadata. */
export interface WorkerTraits {
  name: string;
  tags: readonly string[];
  platform: string;
  arch: string;
}

export const ANY: Selector = { text: '', terms: [] };

export function parseSelector(text: string | undefined): Selector {
  const trimmed = (text ?? '').trim();
  if (trimmed === '') return ANY;
  const terms = trimmed.split(',').map((part) => {
    const term = part.trim();
    const eq = term.indexOf('=');
    const key = eq < 0 ? term : term.slice(0, eq).trim();
    const value = eq < 0 ? '' : term.slice(eq + 1).trim();
    if (!(SELECTOR_KEYS as readonly string[]).includes(key)) {
      throw new TaskError(ErrorCodes.BAD_SELECTOR, `selector "${trimmed}": unknown key ${JSON.stringify(key)}; use ${SELECTOR_KEYS.map((k) => `${k}=…`).join(', ')}`);
    }
    if (value === '') throw new TaskError(ErrorCodes.BAD_SELECTOR, `selector "${trimmed}": ${key} needs a value (${key}=…)`);
    return { key: key as SelectorKey, value };
  });
  return { text: terms.map((t) => `${t.key}=${t.value}`).join(','), terms };
}

export function matches(selector: Selector, worker: WorkerTraits): boolean {
  return selector.terms.every(({ key, value }) =>
    key === 'tag' ? worker.tags.includes(value) : key === 'name' ? worker.name === value : key === 'platform' ? worker.platform === value : worker.arch === value,
  );
}
