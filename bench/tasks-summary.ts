/** bench:tasks' summaries: a way's latencies and throughput, and a way against a baseline. */
import { distribution, median, roundTo } from './bench-util.js';

const round = (x: number, digits = 3): number => roundTo(x, digits);

export interface Summary {
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  tasks_per_s: number;
  n: number;
}

export function summarize(latencies: readonly number[], wallMs: number): Summary {
  const d = distribution(latencies);
  return { p50_ms: round(d.at(0.5)), p99_ms: round(d.at(0.99)), mean_ms: round(d.mean), tasks_per_s: round((d.n * 1000) / wallMs, 1), n: d.n };
}

/** Against a baseline (the plain spawn): the p50 difference, per block too, and the share of its tasks/s. */
export function versusSpawn(way: Summary, spawnS: Summary, blockP50: readonly number[], spawnBlockP50: readonly number[]) {
  const overhead = round(way.p50_ms - spawnS.p50_ms);
  const ratio = round(way.tasks_per_s / spawnS.tasks_per_s);
  const perBlock = blockP50.map((t, i) => round(t - spawnBlockP50[i]!));
  return { overhead, ratio, perBlock, medianOfBlocks: round(median(perBlock)) };
}
