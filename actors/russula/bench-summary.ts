/**
 * The summary of one benchmark run, computed from the raw samples its workers kept: pure, so that
 * anyone holding a result file can compute it again and get the same numbers.
 *
 * - The measurement window of each member of the measured group is [ready + warmup, ready + warmup
 *   + duration] on its worker's clock (`ready`: when its process's readiness check passed). Its
 *   first and last samples inside the window are the two ends.
 * - Throughput: the sum over members of the throughput counter's increase divided by the time
 *   between the two ends (per second). Errors: the sum of the error counter's increase (0 when the
 *   counter never appears). Latency p50 / p90 / p99: from the histogram's buckets' increase, summed
 *   over members, as Prometheus' histogram_quantile computes it (in the histogram's unit).
 * - A member with fewer than two samples in its window, or whose samples lack the throughput
 *   counter or the latency histogram, is named in `problems` (TROUPE_E_BENCH_NO_METRIC) and left out.
 */
import { bucketQuantile, histogramOf, sumSeries } from '../../protocols/prometheus-text.js';
import type { Sample } from '../../protocols/russula/index.js';
import { ErrorCodes } from '../../src/errors.js';
import type { BenchSpec } from './scenario-file.js';

export interface MeasuredMember {
  member: string;
  /** Worker clock, ms since the epoch, when its readiness check passed; undefined if it never did. */
  readyAt: number | undefined;
  samples: readonly Sample[];
}

export interface BenchWindow {
  member: string;
  from: number;
  to: number;
  /** Samples inside the window. */
  samples: number;
}

export interface BenchSummary {
  /** Per second, summed over the group's members; null when no member had the counter. */
  throughput: number | null;
  latency: { p50: number | null; p90: number | null; p99: number | null };
  errors: number;
  /** Observations in the latency histogram inside the windows. */
  observations: number;
  windows: BenchWindow[];
  problems: { code: string; message: string }[];
}

export function summarize(spec: BenchSpec, members: readonly MeasuredMember[], warmupMs: number, durationMs: number): BenchSummary {
  const problems: BenchSummary['problems'] = [];
  const windows: BenchWindow[] = [];
  let throughput: number | null = null;
  let errors = 0;
  const buckets = new Map<number, number>();
  for (const m of members) {
    if (m.readyAt === undefined) {
      problems.push({ code: ErrorCodes.BENCH_NO_METRIC, message: `${m.member}: never ready, so never measured` });
      continue;
    }
    const from = m.readyAt + warmupMs;
    const to = from + durationMs;
    const inside = m.samples.filter((s) => s.at >= from && s.at <= to);
    windows.push({ member: m.member, from, to, samples: inside.length });
    if (inside.length < 2) {
      problems.push({ code: ErrorCodes.BENCH_NO_METRIC, message: `${m.member}: ${inside.length} sample${inside.length === 1 ? '' : 's'} in its measurement window (${m.samples.length} in all); two are needed` });
      continue;
    }
    const first = inside[0]!;
    const last = inside[inside.length - 1]!;
    const a = sumSeries(first.values, spec.throughput);
    const b = sumSeries(last.values, spec.throughput);
    if (a === undefined || b === undefined) problems.push({ code: ErrorCodes.BENCH_NO_METRIC, message: `${m.member}: no counter ${spec.throughput} in its samples` });
    else throughput = (throughput ?? 0) + (b - a) / ((last.at - first.at) / 1000);
    errors += Math.max(0, (sumSeries(last.values, spec.errors) ?? 0) - (sumSeries(first.values, spec.errors) ?? 0));
    const h0 = histogramOf(first.values, spec.latency);
    const h1 = histogramOf(last.values, spec.latency);
    if (h1.length === 0) problems.push({ code: ErrorCodes.BENCH_NO_METRIC, message: `${m.member}: no histogram ${spec.latency} (no ${spec.latency}_bucket series) in its samples` });
    for (const { le, count } of h1) buckets.set(le, (buckets.get(le) ?? 0) + count - (h0.find((x) => x.le === le)?.count ?? 0));
  }
  const cumulative = [...buckets.entries()].sort((x, y) => x[0] - y[0]).map(([le, count]) => ({ le, count }));
  const q = (p: number) => bucketQuantile(p, cumulative) ?? null;
  return {
    throughput,
    latency: { p50: q(0.5), p90: q(0.9), p99: q(0.99) },
    errors,
    observations: cumulative.length ? cumulative[cumulative.length - 1]!.count : 0,
    windows,
    problems,
  };
}

/** When a member's readiness check passed, from its states (the worker's clock). */
export function readyAtOf(states: readonly { state: string; at: number | string; ready: boolean }[]): number | undefined {
  const s = states.find((x) => x.ready && x.state === 'running');
  return s === undefined ? undefined : typeof s.at === 'number' ? s.at : Date.parse(s.at);
}
