/**
 * A parser for the Prometheus text exposition format (version 0.0.4), what `/metrics` endpoints
 * and prom-client's `register.metrics()` return. Pure: no I/O, no state.
 *
 * Guarantees:
 * - Understands `# HELP` and `# TYPE` lines (other comments are skipped), samples `name{labels}
 *   value [timestamp]`, label values with the escapes `\\`, `\"` and `\n`, `HELP` text with `\\` and
 *   `\n`, and the values `NaN`, `+Inf`, `-Inf` (and Go's `Inf`).
 * - Every sample names its family: `http_duration_seconds_bucket` belongs to the histogram
 *   `http_duration_seconds` when one was declared, so that `histogramOf` can find its buckets.
 * - A malformed line is a TroupeError TROUPE_E_METRICS_PARSE naming its line number; nothing else
 *   throws. Input is bounded by the caller (a scrape is cut at its own limit).
 */
import { ErrorCodes, TroupeError } from '../src/errors.js';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** The sample's own name: `requests_total`, `latency_seconds_bucket`. */
  name: string;
  /** The family it belongs to (`latency_seconds` for `latency_seconds_bucket` of a histogram). */
  family: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the line gives one. */
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  type: MetricType;
  help?: string;
}

export interface PromText {
  families: Record<string, PromFamily>;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const SUFFIXES: Record<string, readonly string[]> = { histogram: ['_bucket', '_sum', '_count', '_created'], summary: ['_sum', '_count', '_created'], counter: ['_total', '_created'] };

export class PrometheusTextError extends TroupeError {}

/** Parses an exposition; throws a PrometheusTextError (TROUPE_E_METRICS_PARSE) at the first malformed line. */
export function parsePrometheusText(text: string): PromText {
  const families: Record<string, PromFamily> = Object.create(null) as Record<string, PromFamily>;
  const samples: PromSample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '') continue;
    const fail = (why: string): never => {
      throw new PrometheusTextError(ErrorCodes.METRICS_PARSE, `line ${i + 1}: ${why}: ${JSON.stringify(line.slice(0, 80))}`);
    };
    if (line.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kw, name, rest = ''] = m;
      if (!NAME.test(name!) || NAME.exec(name!)![0] !== name) fail('not a metric name');
      const fam = (families[name!] ??= { name: name!, type: 'untyped' });
      if (kw === 'TYPE') {
        if (!(TYPES as readonly string[]).includes(rest.trim())) fail(`unknown type "${rest.trim()}"`);
        fam.type = rest.trim() as MetricType;
      } else fam.help = unescapeHelp(rest);
      continue;
    }
    const nameMatch = NAME.exec(line);
    if (!nameMatch) fail('expected a metric name');
    const name = nameMatch![0];
    let pos = name.length;
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    if (line[pos] === '{') {
      pos += 1;
      for (;;) {
        while (line[pos] === ' ') pos++;
        if (line[pos] === '}') {
          pos += 1;
          break;
        }
        const ln = LABEL_NAME.exec(line.slice(pos));
        if (!ln) fail('expected a label name');
        pos += ln![0].length;
        while (line[pos] === ' ') pos++;
        if (line[pos] !== '=') fail('expected "=" after a label name');
        pos += 1;
        while (line[pos] === ' ') pos++;
        if (line[pos] !== '"') fail('expected a quoted label value');
        pos += 1;
        let value = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) fail('unterminated label value');
          if (c === '"') break;
          if (c === '\\') {
            const e = line[pos + 1];
            if (e === 'n') value += '\n';
            else if (e === '\\' || e === '"') value += e;
            else fail(`unknown escape "\\${e ?? ''}"`);
            pos += 2;
          } else {
            value += c;
            pos += 1;
          }
        }
        pos += 1;
        if (Object.hasOwn(labels, ln![0])) fail(`label "${ln![0]}" given twice`);
        labels[ln![0]] = value;
        while (line[pos] === ' ') pos++;
        if (line[pos] === ',') pos += 1;
        else if (line[pos] !== '}') fail('expected "," or "}" after a label');
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') fail('expected a value (and an optional timestamp)');
    const value = parseValue(rest[0]!);
    if (value === undefined) fail(`"${rest[0]}" is not a number`);
    const sample: PromSample = { name, family: familyOf(name, families), labels: { ...labels }, value: value! };
    if (rest[1] !== undefined) {
      const ts = Number(rest[1]);
      if (!Number.isInteger(ts)) fail(`"${rest[1]}" is not a timestamp`);
      sample.timestampMs = ts;
    }
    samples.push(sample);
  }
  return { families: { ...families }, samples };
}

/** `1.5`, `1e3`, `NaN`, `+Inf`, `-Inf`, `Inf`. */
export function parseValue(s: string): number | undefined {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

function familyOf(name: string, families: Record<string, PromFamily>): string {
  if (families[name]) return name;
  for (const [type, suffixes] of Object.entries(SUFFIXES)) {
    for (const suffix of suffixes) {
      if (!name.endsWith(suffix)) continue;
      const base = name.slice(0, -suffix.length);
      if (families[base]?.type === type) return base;
    }
  }
  return name;
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_all, e: string) => (e === 'n' ? '\n' : '\\'));
}

/** `name{a="1",b="2"}` with labels sorted and values escaped: one key per series. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

/** The reverse of seriesKey (it is the sample syntax): name and labels. */
export function parseSeriesKey(key: string): { name: string; labels: Record<string, string> } {
  const s = parsePrometheusText(`${key} 0`).samples[0]!;
  return { name: s.name, labels: s.labels };
}

/** Sum over every series of `name` (any labels) in a flat `seriesKey → value` map; undefined when none. */
export function sumSeries(values: Record<string, number>, name: string, where: (labels: Record<string, string>) => boolean = () => true): number | undefined {
  let total: number | undefined;
  for (const [key, v] of Object.entries(values)) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (key !== name && !where(parseSeriesKey(key).labels)) continue;
    total = (total ?? 0) + v;
  }
  return total;
}

/**
 * The cumulative buckets of histogram `name` (summed over its other labels) in a flat
 * `seriesKey → value` map, sorted by their upper bound (`le`), +Inf last. Empty when none.
 */
export function histogramOf(values: Record<string, number>, name: string): { le: number; count: number }[] {
  const byLe = new Map<number, number>();
  for (const [key, v] of Object.entries(values)) {
    if (!key.startsWith(`${name}_bucket{`)) continue;
    const { labels } = parseSeriesKey(key);
    const le = labels.le === undefined ? undefined : parseValue(labels.le);
    if (le === undefined || Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + v);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/**
 * The q-quantile (0..1) of a histogram given as cumulative buckets, as Prometheus'
 * histogram_quantile computes it: linear inside the bucket it falls in, the lowest bucket starting
 * at 0, and the highest finite bound when it falls in +Inf. Undefined with no observations.
 */
export function bucketQuantile(q: number, buckets: readonly { le: number; count: number }[]): number | undefined {
  if (buckets.length === 0) return undefined;
  const total = buckets[buckets.length - 1]!.count;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i]!;
    if (b.count < rank) continue;
    if (b.le === Infinity) return i > 0 ? buckets[i - 1]!.le : undefined;
    const lower = i > 0 ? buckets[i - 1]!.le : 0;
    const below = i > 0 ? buckets[i - 1]!.count : 0;
    const inBucket = b.count - below;
    if (inBucket <= 0) return lower;
    return lower + (b.le - lower) * ((rank - below) / inBucket);
  }
  return buckets[buckets.length - 1]!.le;
}
