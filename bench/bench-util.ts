/** What every benchmark here needs: its knobs from the environment, progress on stderr, and a few statistics. */

/** A positive integer from the environment variable `name`, or `fallback` when it is unset or empty. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new TypeError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** A progress printer for stderr: stdout carries only the JSON result. */
export function progressTo(label: string): (...parts: unknown[]) => void {
  return (...parts) => void process.stderr.write(`[${label}] ${parts.join(' ')}\n`);
}

export function roundTo(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Quantiles (the nearest-rank sample at or below q) and the mean of a set of samples. */
export function distribution(samples: readonly number[]): { at(q: number): number; mean: number; n: number } {
  const s = Float64Array.from(samples).sort();
  return {
    at: (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    n: s.length,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
