/**
 * Host ranges as ClusterShell writes them: `w[01-16].lab`, `node[1,3,5-7]`, `r[1-2]n[1-4]` (several
 * brackets: every combination, the last bracket varying fastest). A bound written with leading
 * zeros pads every number of its range to its width (`[01-16]`: 01 … 16; `[1-16]`: 1 … 16).
 * A name without brackets is itself. Expansion is capped, so a typo cannot make a million hosts.
 */

/** Most names one pattern may expand to. */
export const MAX_RANGE_HOSTS = 10_000;

const BRACKET = /\[([^\]]*)\]/;

/** Thrown with a message that says what is wrong in the pattern; the caller adds where it is. */
export class RangeSyntaxError extends Error {}

/** The names a pattern stands for, in order. */
export function expandHostRange(pattern: string): string[] {
  if (pattern.includes('[') !== pattern.includes(']') || /\][^[]*\]|\[[^\]]*\[/.test(pattern)) {
    throw new RangeSyntaxError(`unbalanced brackets in "${pattern}"`);
  }
  const match = BRACKET.exec(pattern);
  if (!match) return [pattern];
  const head = pattern.slice(0, match.index);
  const tail = pattern.slice(match.index + match[0].length);
  const values = expandSet(match[1]!, pattern);
  const rest = expandHostRange(tail);
  if (values.length * rest.length > MAX_RANGE_HOSTS) {
    throw new RangeSyntaxError(`"${pattern}" stands for more than ${MAX_RANGE_HOSTS} hosts`);
  }
  const out: string[] = [];
  for (const value of values) for (const r of rest) out.push(`${head}${value}${r}`);
  return out;
}

/** True if the text holds a range (`[`…`]`). */
export function isHostRange(text: string): boolean {
  return BRACKET.test(text);
}

function expandSet(body: string, pattern: string): string[] {
  if (body.trim() === '') throw new RangeSyntaxError(`empty brackets in "${pattern}"`);
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw new RangeSyntaxError(`"${part}" in "${pattern}" is not a number or a range N-M`);
    const [from, to] = [m[1]!, m[2] ?? m[1]!];
    const low = Number(from);
    const high = Number(to);
    if (high < low) throw new RangeSyntaxError(`"${part}" in "${pattern}" runs backwards`);
    if (high - low + 1 + out.length > MAX_RANGE_HOSTS) throw new RangeSyntaxError(`"${pattern}" stands for more than ${MAX_RANGE_HOSTS} hosts`);
    const width = from.length > 1 && from.startsWith('0') ? from.length : 0;
    for (let n = low; n <= high; n++) out.push(String(n).padStart(width, '0'));
  }
  return out;
}
