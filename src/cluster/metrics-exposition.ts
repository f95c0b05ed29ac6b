/**
 * A prom-client registry's Prometheus text exposition, the very text `registry.metrics()` writes
 * (test/cluster/metrics-exposition.test.ts compares the two on a manager's registry), at a fraction
 * of its cost: prom-client builds an object per histogram bucket per series and formats and escapes
 * every label set again at every scrape (about 0.4 ms for a manager's 20 KB, warm; more at one scrape
 * a second, cold). Here each series' line beginnings (`name{labels} `) are formatted once and kept,
 * and a scrape writes only the numbers after them.
 *
 * What it reads: each metric's collect (run first, as prom-client's get does, in registration order,
 * all in one turn unless a collect returns a promise) and the series prom-client keeps for it
 * (`hashMap`: a counter's or gauge's values, a histogram's bucket counts, sum and count). Those are
 * prom-client's internals, so anything else — another metric type (summary), a series of another
 * shape, default labels on the registry, the OpenMetrics content type — is written by prom-client's
 * own code for that metric (or the whole registry), and the text stays the same either way.
 *
 * The kept beginnings are per metric and per series (prom-client's hash of its labels); they are
 * dropped when a metric holds fewer than half the series kept for it, so series that come and go
 * (the worker gauges, rebuilt at each scrape) cannot make them grow without bound.
 */
import promClient, { type Registry } from 'prom-client';

type Labels = Record<string, string | number>;
interface ValueSeries {
  labels: Labels;
  value: number;
}
interface HistogramSeries {
  labels: Labels;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}
/** What is read of a prom-client metric beside its public fields. */
interface Internals {
  name: string;
  help: string;
  type: string;
  collect?: () => unknown;
  hashMap?: Record<string, ValueSeries | HistogramSeries>;
  upperBounds?: number[];
}
/** The registry's own writer of one metric (the fallback). */
type RegistryInternals = Registry & { getMetricsAsString(metric: unknown): Promise<string>; _defaultLabels?: Labels };

interface Kept {
  /** `# HELP …\n# TYPE …` */
  head: string;
  /** A histogram's bounds as prom-client's bucket keys (its `bucketValues` are keyed by them). */
  bounds: string[];
  /** By series hash: a counter's or gauge's one line beginning; a histogram's, bucket by bucket then +Inf, sum, count. */
  lines: Map<string, string[]>;
}

export class Exposition {
  readonly #registry: RegistryInternals;
  readonly #kept = new WeakMap<object, Kept>();

  constructor(registry: Registry) {
    this.#registry = registry as RegistryInternals;
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The text `registry.metrics()` would give now. */
  async text(): Promise<string> {
    const registry = this.#registry;
    const defaults = registry._defaultLabels;
    if (registry.contentType !== promClient.Registry.PROMETHEUS_CONTENT_TYPE || (defaults !== undefined && Object.keys(defaults).length > 0)) return registry.metrics();
    const parts: string[] = [];
    for (const metric of registry.getMetricsAsArray() as unknown as Internals[]) {
      const isHistogram = metric instanceof promClient.Histogram;
      if (!(isHistogram || metric instanceof promClient.Counter || metric instanceof promClient.Gauge)) {
        parts.push(await registry.getMetricsAsString(metric));
        continue;
      }
      if (metric.collect) {
        const v = metric.collect();
        if (v instanceof Promise) await v;
      }
      const series = metric.hashMap;
      const text = series === undefined ? undefined : isHistogram ? this.#histogram(metric, series) : this.#values(metric, series);
      // A shape not known here: prom-client writes it (its get() runs the collect again, which
      // every collect here allows: each sets what it reads).
      parts.push(text ?? (await registry.getMetricsAsString(metric)));
    }
    return `${parts.join('\n\n')}\n`;
  }

  #keep(metric: Internals, size: number): Kept {
    let kept = this.#kept.get(metric);
    if (kept === undefined) {
      const name = escapeString(metric.name);
      kept = { head: `# HELP ${name} ${escapeString(metric.help)}\n# TYPE ${name} ${metric.type}`, bounds: (metric.upperBounds ?? []).map(String), lines: new Map() };
      this.#kept.set(metric, kept);
    } else if (kept.lines.size > 2 * size + 16) kept.lines.clear();
    return kept;
  }

  #values(metric: Internals, hashMap: Record<string, ValueSeries | HistogramSeries>): string | undefined {
    const entries = Object.entries(hashMap);
    const kept = this.#keep(metric, entries.length);
    let text = kept.head;
    for (const [hash, s] of entries) {
      if (typeof (s as ValueSeries).value !== 'number') return undefined;
      let line = kept.lines.get(hash);
      if (line === undefined) kept.lines.set(hash, (line = [`${escapeString(metric.name)}${braces(formatLabels(s.labels))} `]));
      text += `\n${line[0]}${valueString((s as ValueSeries).value)}`;
    }
    return text;
  }

  #histogram(metric: Internals, hashMap: Record<string, ValueSeries | HistogramSeries>): string | undefined {
    const entries = Object.entries(hashMap);
    const kept = this.#keep(metric, entries.length);
    const name = escapeString(metric.name);
    let text = kept.head;
    for (const [hash, s] of entries) {
      const h = s as HistogramSeries;
      if (typeof h.bucketValues !== 'object' || h.bucketValues === null) return undefined;
      let lines = kept.lines.get(hash);
      if (lines === undefined) {
        const shared = formatLabels(h.labels);
        const bucket = (le: string) => `${name}_bucket{${[`le="${le}"`, shared].filter(Boolean).join(',')}} `;
        lines = [...kept.bounds.map(bucket), bucket('+Inf'), `${name}_sum${braces(shared)} `, `${name}_count${braces(shared)} `];
        kept.lines.set(hash, lines);
      }
      let acc = 0;
      let i = 0;
      for (; i < kept.bounds.length; i++) {
        acc += h.bucketValues[kept.bounds[i]!]!;
        text += `\n${lines[i]}${valueString(acc)}`;
      }
      text += `\n${lines[i]}${valueString(h.count)}\n${lines[i + 1]}${valueString(h.sum)}\n${lines[i + 2]}${valueString(h.count)}`;
    }
    return text;
  }
}

/** prom-client's label formatting: in the labels' own order, values escaped, joined by commas. */
function formatLabels(labels: Labels): string {
  const formatted: string[] = [];
  for (const [name, value] of Object.entries(labels)) formatted.push(`${name}="${typeof value === 'string' ? escapeString(value).replace(/"/g, '\\"') : value}"`);
  return formatted.join(',');
}

function braces(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** prom-client's number formatting (NaN is written `Nan`, as it does). */
function valueString(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}
