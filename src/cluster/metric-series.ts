/**
 * One series of a prom-client counter or gauge, written in place at scrape time: `series(metric,
 * labels)` once, then `set(value)` in each collect, instead of the collect's `reset()` and
 * `inc(labels, value)` / `set(labels, value)`. The text either writer gives (registry.metrics() or
 * metrics-exposition.ts) is the same: the value lands in the very entry prom-client's own call
 * makes (its `hashMap`, keyed by the labels' hash, as in lib/util.js of prom-client 15.x), created
 * by that call the first time (or again if the metric was reset), then only its number changes.
 *
 * Why: a collect runs once a scrape, cold among a busy manager's other work, and prom-client's
 * labelled calls validate and hash the labels and build a new entry each time: the collects were
 * about half of a scrape's CPU in a live manager (bench:metrics and a probe, December 2026). Only
 * for series that every scrape writes (fixed label sets, written in the same order from the start):
 * a collect whose series come and go (the worker gauges) still resets and sets.
 */
import type promClient from 'prom-client';

type Labels = Record<string, string | number>;
interface Entry {
  value: number;
  labels: Labels;
}

export interface Series {
  set(value: number): void;
}

/** The series of `metric` for `labels` (label names as the metric declares them; `{}` for none). */
export function series(metric: promClient.Counter | promClient.Gauge, labels: Labels): Series {
  const m = metric as unknown as { hashMap: Record<string, Entry>; sortedLabelNames?: string[] };
  // prom-client's hash: `name:value,` per label, names sorted (lib/util.js hashObject).
  const hash = Object.keys(labels)
    .sort()
    .map((k) => `${k}:${labels[k]},`)
    .join('');
  return {
    set(value) {
      const entry = m.hashMap[hash];
      if (entry !== undefined) {
        entry.value = value;
        return;
      }
      // The first time, or after a reset: prom-client's own call makes the entry.
      const none = Object.keys(labels).length === 0;
      if ('set' in metric) none ? metric.set(0) : metric.set(labels, 0);
      else none ? metric.inc(0) : metric.inc(labels, 0);
      const made = m.hashMap[hash];
      if (made === undefined) throw new Error(`metric-series: prom-client keyed ${JSON.stringify(labels)} otherwise`);
      made.value = value;
    },
  };
}
