/**
 * How many instances each region should have, and the names of the ones to create. N instances
 * are spread over the regions round-robin in the order the settings list them (5 over [a, b]: a
 * gets 3, b 2). Names are `ID-1`, `ID-2`, … across the whole testbed; a new instance takes the
 * lowest number no live instance has, so a partly created testbed is completed, not renumbered.
 */

export function spread(count: number, regions: readonly string[]): Map<string, number> {
  const out = new Map<string, number>(regions.map((r) => [r, 0]));
  for (let i = 0; i < count; i++) out.set(regions[i % regions.length]!, out.get(regions[i % regions.length]!)! + 1);
  return out;
}

/** `ID-n` for the n-th instance of a testbed. */
export function instanceName(id: string, n: number): string {
  return `${id}-${n}`;
}

/** The number of a name `ID-n`, or undefined for any other name. */
export function instanceNumber(id: string, name: string | undefined): number | undefined {
  if (name === undefined || !name.startsWith(`${id}-`)) return undefined;
  const rest = name.slice(id.length + 1);
  return /^[1-9]\d{0,5}$/.test(rest) ? Number(rest) : undefined;
}

/** The `count` lowest numbers not in `taken`. */
export function freeNumbers(taken: Iterable<number>, count: number): number[] {
  const used = new Set(taken);
  const out: number[] = [];
  for (let n = 1; out.length < count; n++) if (!used.has(n)) out.push(n);
  return out;
}
