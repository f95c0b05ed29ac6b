/**
 * `troupe bench`: runs a scenario once per load (a list, or a search for the breaking point), `runs`
 * times each, and writes one JSON per run under `results/LABEL/`, a summary table, and a plot.
 *
 * - Each run is an ordinary Russula run (scenario-runner.ts) of the scenario parsed with the
 *   parameters `load`, `duration` and `warmup` (seconds) set, every group with metrics scraped by
 *   its own workers every `scrapeIntervalMs`, and the fault group given its faults.
 * - The measurement phase is [ready + warmup, ready + warmup + duration] after the last member of
 *   the measured group became ready (this node's clock). The Russula traffic and the transport's
 *   link counters are read at both ends: what crossed during the phase is in the result
 *   (`measurement.traffic`, `measurement.link`); zero when the system under test ran alone.
 * - Failures are results: a run that failed (a member died, a load generator exited non-zero), a
 *   metric that never appeared, a phase cut short, each is an entry of the run's `errors`, and the
 *   sweep goes on, unless `failFast`. Nothing here throws for a failed run.
 * - Search: from `startingLoad`, doubling while the point is good (the run ok, p99 within
 *   `latencyFactor` × the first point's, throughput still rising by at least 5%), then halving the
 *   interval between the last good and the first bad load (good there: ok, within the latency bound,
 *   throughput not below the last good point's); `maxIterations` points in all, never more.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, RussulaError, messageOf } from '../../src/errors.js';
import type { LinkTraffic, RussulaCoordinator, Traffic } from './coordinator.js';
import { readyAtOf, summarize } from './bench-summary.js';
import { writePlot } from './bench-plot.js';
import type { BenchPoint, BenchRunResult } from './bench-results.js';
import { parseScenario, type Scenario } from './scenario-file.js';
import { runScenario, type Print, type ScenarioResult } from './scenario-runner.js';

/** Measured this long per run unless told otherwise: 10 seconds. */
export const DEFAULT_BENCH_DURATION_MS = 10_000;
/** Not measured at the start of each run: 2 seconds. */
export const DEFAULT_BENCH_WARMUP_MS = 2000;
export const DEFAULT_BENCH_SCRAPE_INTERVAL_MS = 1000;
export const DEFAULT_MAX_ITERATIONS = 8;
/** The search's latency bound: this many times the first point's p99. */
export const DEFAULT_LATENCY_FACTOR = 5;
/** "Still rising": at least 5% more throughput than the previous point. */
const RISING = 1.05;

export interface BenchOptions {
  system: ClusterSystem;
  /** The scenario's text and where it came from. */
  text: string;
  file: string;
  print: Print;
  /** Where `LABEL/` is made; default `results`. */
  resultsDir: string;
  label: string;
  /** Either a list of loads … */
  loads?: number[];
  /** … or a search. */
  search?: { startingLoad: number; maxIterations: number; latencyFactor?: number };
  runs: number;
  durationMs: number;
  warmupMs: number;
  scrapeIntervalMs: number;
  faults?: { count: number; intervalMs: number; recover: boolean; group?: string };
  failFast: boolean;
  /** Values for other declared parameters (`--param NAME=VALUE`). */
  params?: Record<string, string>;
  signal?: AbortSignal;
}

export type { BenchPoint, BenchRunResult } from './bench-results.js';

/** Runs the sweep; resolves with every point (never rejects for a failed run). */
export async function runBench(o: BenchOptions): Promise<BenchPoint[]> {
  const dir = path.join(o.resultsDir, o.label);
  fs.mkdirSync(dir, { recursive: true });
  const points: BenchPoint[] = [];
  let stop = false;
  const point = async (load: number): Promise<BenchPoint> => {
    const p: BenchPoint = { load, runs: [] };
    for (let r = 1; r <= o.runs && !stop && !o.signal?.aborted; r++) {
      const result = await benchRun(o, load, r);
      const file = path.join(dir, `load-${load}-run-${r}.json`);
      writeJson(file, result);
      o.print(`bench ${o.label}: load ${load} run ${r}: ${result.ok ? 'ok' : `${result.errors.length} error${result.errors.length === 1 ? '' : 's'}: ${result.errors[0]!.code}`}; ${file}`);
      p.runs.push(result);
      if (!result.ok && o.failFast) stop = true;
    }
    points.push(p);
    return p;
  };
  if (o.search) {
    await search(o.search, point, () => stop || o.signal?.aborted === true);
  } else {
    for (const load of o.loads ?? []) {
      if (stop || o.signal?.aborted) break;
      await point(load);
    }
  }
  points.sort((a, b) => a.load - b.load);
  for (const line of table(o.label, points)) o.print(line);
  const plot = path.join(dir, 'plot.svg');
  writePlot(plot, [dir]);
  o.print(`bench ${o.label}: ${points.reduce((n, p) => n + p.runs.length, 0)} runs; plot: ${plot}`);
  return points;
}

/** The search for the breaking point; at most `maxIterations` calls of `point`. */
export async function search(s: NonNullable<BenchOptions['search']>, point: (load: number) => Promise<BenchPoint>, stopped: () => boolean): Promise<number[]> {
  const tried: number[] = [];
  const factor = s.latencyFactor ?? DEFAULT_LATENCY_FACTOR;
  let first: Measure | undefined;
  let prev: Measure | undefined;
  let good: number | undefined;
  let bad: number | undefined;
  // Doubling, a good point has ≥ 5% more throughput than the last good one; narrowing, no less.
  let narrowing = false;
  const attempt = async (load: number): Promise<boolean> => {
    tried.push(load);
    const m = measureOf(await point(load));
    first ??= m;
    const rise = narrowing ? 1 : RISING;
    const ok = m.ok && (first.p99 === null || m.p99 === null || m.p99 <= factor * first.p99) && (prev === undefined || (m.throughput ?? 0) >= (prev.throughput ?? 0) * rise);
    if (ok) prev = m;
    return ok;
  };
  let load = s.startingLoad;
  while (tried.length < s.maxIterations && !stopped()) {
    if (await attempt(load)) {
      good = load;
      load *= 2;
    } else {
      bad = load;
      break;
    }
  }
  narrowing = true;
  while (bad !== undefined && good !== undefined && tried.length < s.maxIterations && !stopped()) {
    const mid = Math.round((good + bad) / 2);
    if (mid <= good || mid >= bad) break;
    if (await attempt(mid)) good = mid;
    else bad = mid;
  }
  return tried;
}

interface Measure {
  ok: boolean;
  throughput: number | null;
  p99: number | null;
}

function measureOf(p: BenchPoint): Measure {
  const ok = p.runs.filter((r) => r.ok);
  const mean = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  return { ok: ok.length === p.runs.length && ok.length > 0, throughput: mean(ok.map((r) => r.summary.throughput)), p99: mean(ok.map((r) => r.summary.latency.p99)) };
}

async function benchRun(o: BenchOptions, load: number, run: number): Promise<BenchRunResult> {
  const params: Record<string, string> = { ...o.params, load: String(load) };
  let scenario: Scenario;
  const base = { label: o.label, file: o.file, load, run };
  try {
    // duration and warmup go to the file when it declares them; load always (a sweep of a file without it is a mistake).
    const declared = parseScenario(o.text, path.basename(o.file), o.params ?? {}).params;
    if (!Object.hasOwn(declared, 'load')) throw new RussulaError(ErrorCodes.BENCH_INVALID, `${path.basename(o.file)}: declares no parameter "load" (params: { load: 100 }, used as \${params.load}), so the loads would change nothing`);
    if (Object.hasOwn(declared, 'duration')) params.duration = String(o.durationMs / 1000);
    if (Object.hasOwn(declared, 'warmup')) params.warmup = String(o.warmupMs / 1000);
    scenario = parseScenario(o.text, path.basename(o.file), params);
    if (!scenario.bench) throw new RussulaError(ErrorCodes.BENCH_INVALID, `${path.basename(o.file)}: no group declares metrics, so there is nothing to measure (docs/bench.md)`);
    prepare(scenario, o);
  } catch (err) {
    const error = { code: (err as { code?: string }).code ?? ErrorCodes.BENCH_INVALID, message: messageOf(err) };
    return { ...base, scenario: path.basename(o.file), params, ok: false, errors: [error], measurement: emptyMeasurement(o, ''), summary: summarize({ group: '', throughput: '', latency: '', errors: '' }, [], 0, 0), faults: [], result: failed(o.file, error) };
  }
  const spec = scenario.bench!;
  const measurement = emptyMeasurement(o, spec.group);
  let timers: NodeJS.Timeout[] = [];
  let begin: { traffic: Traffic; link: LinkTraffic } | undefined;
  const observe = (c: RussulaCoordinator) => {
    let armed = false;
    c.on('state', () => {
      const members = c.group(spec.group);
      if (armed || members.length === 0 || !members.every((m) => m.record.state === 'running' && m.record.ready)) return;
      armed = true;
      timers.push(
        setTimeout(() => {
          begin = { traffic: c.traffic(), link: c.linkTraffic() };
          measurement.startedAt = new Date().toISOString();
        }, o.warmupMs),
        setTimeout(() => {
          if (!begin) return;
          measurement.endedAt = new Date().toISOString();
          measurement.traffic = minus(c.traffic(), begin.traffic);
          measurement.link = linkMinus(c.linkTraffic(), begin.link);
        }, o.warmupMs + o.durationMs),
      );
    });
  };
  const result = await runScenario({ system: o.system, scenario, file: o.file, print: () => {}, signal: o.signal, observe });
  for (const t of timers) clearTimeout(t);
  timers = [];
  const errors: BenchRunResult['errors'] = [];
  if (result.error) errors.push(result.error);
  for (const m of result.members) if (m.code && m.code !== ErrorCodes.RUSSULA_STOPPED && !(result.error && result.error.message.startsWith(`${m.member} `))) errors.push({ code: m.code, message: `${m.member} on ${m.worker}: ${m.reason ?? m.code}` });
  if (measurement.endedAt === null) errors.push({ code: ErrorCodes.BENCH_NO_METRIC, message: `the measurement phase (${o.warmupMs} ms warmup, ${o.durationMs} ms) was cut short: the run ended first` });
  const measured = result.members.filter((m) => m.group === spec.group);
  const summary = summarize(spec, measured.map((m) => ({ member: m.member, readyAt: readyAtOf(m.states), samples: m.samples ?? [] })), o.warmupMs, o.durationMs);
  errors.push(...summary.problems);
  for (const m of result.members) if (m.scrapeErrors && m.scrapeErrors.count > 0 && (m.samples ?? []).length === 0) errors.push({ code: ErrorCodes.BENCH_NO_METRIC, message: `${m.member}: ${m.scrapeErrors.count} scrapes failed, none answered: ${m.scrapeErrors.first}` });
  const faults = result.members.flatMap((m) => (m.faults ?? []).map((f) => ({ member: m.member, worker: m.worker, action: f.action, at: new Date(f.at).toISOString(), ...(f.pid !== undefined && { pid: f.pid }) })));
  faults.sort((a, b) => a.at.localeCompare(b.at));
  return { ...base, scenario: scenario.name, params: scenario.params, ok: errors.length === 0, errors, measurement, summary, faults, result };
}

/** Scrape interval on every group with metrics; faults on the fault group. */
function prepare(scenario: Scenario, o: BenchOptions): void {
  for (const g of scenario.groups) if (g.step.metrics) g.step = { ...g.step, metrics: { ...g.step.metrics, intervalMs: o.scrapeIntervalMs } };
  if (!o.faults || o.faults.count === 0) return;
  const name = o.faults.group ?? scenario.groups.find((g) => g.step.protocol === 'server')?.name;
  const g = scenario.groups.find((x) => x.name === name);
  if (!g) throw new RussulaError(ErrorCodes.BENCH_INVALID, `--faults: ${o.faults.group === undefined ? 'no group has protocol server' : `no group named "${o.faults.group}"`} (groups: ${scenario.groups.map((x) => x.name).join(', ')})`);
  if (g.step.protocol !== 'server') throw new RussulaError(ErrorCodes.BENCH_INVALID, `--faults: group ${g.name} has protocol ${g.step.protocol}; faults are for server groups (processes held until stopped)`);
  if (o.faults.count > g.count) throw new RussulaError(ErrorCodes.BENCH_INVALID, `--faults ${o.faults.count}: group ${g.name} has ${g.count} member${g.count === 1 ? '' : 's'}`);
  g.step = { ...g.step, faults: { count: o.faults.count, intervalMs: o.faults.intervalMs, recover: o.faults.recover } };
}

function emptyMeasurement(o: BenchOptions, group: string): BenchRunResult['measurement'] {
  return { group, warmupMs: o.warmupMs, durationMs: o.durationMs, scrapeIntervalMs: o.scrapeIntervalMs, startedAt: null, endedAt: null, traffic: null, link: null };
}

function failed(file: string, error: { code: string; message: string }): ScenarioResult {
  const now = new Date().toISOString();
  return { scenario: path.basename(file), file, run: null, ok: false, error, startedAt: now, finishedAt: now, durationMs: 0, steps: [], members: [], traffic: { sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 } };
}

/** The summary table: one line per run. */
export function table(label: string, points: readonly BenchPoint[]): string[] {
  const fmt = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits));
  const rows = [['label', 'load', 'run', 'ok', 'throughput/s', 'p50', 'p90', 'p99', 'errors', 'faults', 'msgs during']];
  for (const p of points) {
    for (const r of p.runs) {
      const t = r.measurement.traffic;
      rows.push([label, String(p.load), String(r.run), r.ok ? 'ok' : 'FAIL', fmt(r.summary.throughput, 1), fmt(r.summary.latency.p50, 4), fmt(r.summary.latency.p90, 4), fmt(r.summary.latency.p99, 4), String(r.summary.errors), String(r.faults.filter((f) => f.action === 'kill').length), t === null ? '-' : String(t.sentMessages + t.receivedMessages)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => (i <= 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

function writeJson(file: string, value: unknown): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

function minus(a: Traffic, b: Traffic): Traffic {
  return { sentBytes: a.sentBytes - b.sentBytes, receivedBytes: a.receivedBytes - b.receivedBytes, sentMessages: a.sentMessages - b.sentMessages, receivedMessages: a.receivedMessages - b.receivedMessages };
}

function linkMinus(a: LinkTraffic, b: LinkTraffic): LinkTraffic {
  const d = (x: number, y: number) => Math.max(0, x - y);
  return { bytesIn: d(a.bytesIn, b.bytesIn), bytesOut: d(a.bytesOut, b.bytesOut), messagesIn: d(a.messagesIn, b.messagesIn), messagesOut: d(a.messagesOut, b.messagesOut) };
}
