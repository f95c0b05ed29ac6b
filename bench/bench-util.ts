/** What every benchmark here needs: its knobs from the environment, progress on stderr, and a few statistics. */
import fs from 'node:fs';

/** An integer of at least `min` (1 unless given) from the environment variable `name`, or `fallback` when it is unset or empty. */
export function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new TypeError(`${name} must be ${min === 1 ? 'a positive integer' : `an integer ≥ ${min}`}, got ${JSON.stringify(raw)}`);
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

/** A monotonic clock in ms (fractional). */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * `n` runs of `run` over `c` closed-loop lanes (each starts its next run when its last one has
 * finished); each run's latency in ms, and the wall time of them all.
 */
export async function measure(run: () => Promise<void>, n: number, c: number): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      const t0 = nowMs();
      await run();
      latencies.push(nowMs() - t0);
    }
  };
  const t0 = nowMs();
  await Promise.all(Array.from({ length: Math.min(c, n) }, lane));
  return { latencies, wallMs: nowMs() - t0 };
}

/**
 * This process's resident memory in MiB: all of it (rss), and its anonymous part (Linux only, from
 * /proc/self/status; null elsewhere), which is what a fork() from this process copies page tables for.
 */
export function residentMiB(): { rss_mib: number; rss_anon_mib: number | null } {
  const rss = roundTo(process.memoryUsage().rss / 2 ** 20, 1);
  let anon: number | null = null;
  try {
    const kb = /^RssAnon:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb !== undefined) anon = roundTo(Number(kb) / 1024, 1);
  } catch {
    // Not Linux: rss alone.
  }
  return { rss_mib: rss, rss_anon_mib: anon };
}
