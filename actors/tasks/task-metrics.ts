/**
 * The manager's task metrics, from the Controller's data: tasks by outcome, queue wait and run time
 * as histograms, tasks pending and running, each worker's slots, busy slots, cpu, load and memory
 * (from its last usage report), and Russula runs and steps by outcome. See docs/metrics.md.
 *
 * Two sources, both from outside the Controller: its TaskObserver (every lifecycle change, in the
 * Controller's turn; here a few additions to plain numbers and bucket arrays, nothing that
 * allocates per task: prom-client's counters and histograms are given them in their collects, at
 * scrape time), and, at scrape time only, its `workers()` (the pool's own records,
 * read in place: no query, no message). Labels: outcome and worker name, never task ids or
 * commands.
 */
import promClient, { type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { TaskRecord, TaskStatus } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { metricsRegistry, registerClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { MetricsServer, type MetricsAddress } from '../../src/cluster/metrics-server.js';
import { series, type Series } from '../../src/cluster/metric-series.js';
import type { WorkerInfo } from './worker-info.js';
import type { TaskObserver } from './task-table.js';

const OUTCOMES = ['succeeded', 'failed', 'timed-out', 'cancelled', 'lost'] as const;
/** From a `true` on an idle worker (a few ms) to a long batch job (an hour). */
const TASK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** What a Russula run reports when it ends (scenario-runner's result). */
export interface RussulaRunOutcome {
  ok: boolean;
  steps: readonly { ok: boolean }[];
}

export interface TaskMetrics {
  /** Pass to spawnController (or call from its observer). */
  observer: TaskObserver;
  /** Where the worker gauges read the workers: the Controller's `workers` (until then, none). */
  followWorkers(workers: () => Iterable<WorkerInfo>): void;
  /** Call when a Russula run on this node ends. */
  russulaRun(run: RussulaRunOutcome): void;
}

/** Registers the task metrics on `registry`; the worker gauges read what `followWorkers` is given. */
export function registerTaskMetrics(registry: Registry): TaskMetrics {
  const registers = [registry];
  // What the observer counts, in plain numbers and bucket arrays: prom-client's inc and observe
  // (label hashing and validation, a keyed store per call) cost ~30 µs a task in a live manager,
  // where they run cold at tens a second (perf, December 2026), against ~1 µs here. The counters and
  // histograms are handed these at scrape time, in their collects.
  let submittedN = 0;
  let retriedN = 0;
  const queueWaitN = bucketCounts(TASK_BUCKETS);
  const ended = new Map<string, { n: number; runTime: BucketCounts; series?: Series }>();
  const endedOf = (outcome: string) => {
    let e = ended.get(outcome);
    if (e === undefined) ended.set(outcome, (e = { n: 0, runTime: bucketCounts(TASK_BUCKETS) }));
    return e;
  };
  let submittedSeries: Series | undefined;
  let retriedSeries: Series | undefined;
  for (const outcome of OUTCOMES) endedOf(outcome);
  new promClient.Counter({
    name: 'troupe_tasks_total', help: 'Tasks that ended, by outcome', labelNames: ['outcome'], registers,
    collect() {
      // In place (metric-series.ts): the outcomes only ever grow, in the order they are written.
      for (const [outcome, e] of ended) (e.series ??= series(this, { outcome })).set(e.n);
    },
  });
  new promClient.Counter({ name: 'troupe_tasks_submitted_total', help: 'Tasks submitted (one per worker for a broadcast; adopted ones too)', registers, collect() { (submittedSeries ??= series(this, {})).set(submittedN); } });
  new promClient.Counter({ name: 'troupe_tasks_retried_total', help: 'Attempts lost or refused and placed again', registers, collect() { (retriedSeries ??= series(this, {})).set(retriedN); } });
  new promClient.Histogram({ name: 'troupe_task_queue_wait_seconds', help: 'Time from pending to running (from submission, or from the retry)', buckets: TASK_BUCKETS, registers, collect() { handOver(this, {}, queueWaitN); } });
  new promClient.Histogram({
    name: 'troupe_task_run_seconds', help: 'Run time of tasks that ran to an end, by outcome', labelNames: ['outcome'], buckets: TASK_BUCKETS, registers,
    collect() {
      for (const [outcome, e] of ended) handOver(this, { outcome }, e.runTime);
    },
  });
  let pending = 0;
  let running = 0;
  new promClient.Gauge({ name: 'troupe_tasks_pending', help: 'Tasks waiting for a free worker', registers, collect() { this.set(pending); } });
  new promClient.Gauge({ name: 'troupe_tasks_running', help: 'Tasks running on workers', registers, collect() { this.set(running); } });

  /** When each live task last became pending (ms): the queue wait of a retry counts from its retry. */
  const pendingSince = new Map<string, number>();
  const observer: TaskObserver = (record: TaskRecord, from: TaskStatus | null) => {
    const to = record.status;
    if (from === 'pending') pending--;
    else if (from === 'running') running--;
    if (to === 'pending') {
      pending++;
      pendingSince.set(record.id, from === null ? record.submittedAt : Date.now());
      if (from === null) submittedN++;
      else retriedN++;
    } else if (to === 'running') {
      running++;
      const since = pendingSince.get(record.id);
      pendingSince.delete(record.id);
      if (from === null) submittedN++;
      else if (since !== undefined) observe(queueWaitN, Math.max(0, (record.startedAt ?? Date.now()) - since) / 1000);
    } else {
      pendingSince.delete(record.id);
      const e = endedOf(to);
      e.n++;
      if (from === 'running' && record.durationMs !== null) observe(e.runTime, record.durationMs / 1000);
    }
  };

  // The workers are read where the Controller keeps them (Controller.workers(), handed over by
  // `followWorkers` once it is spawned): no query, nothing copied but the figures. Each gauge is
  // rebuilt at each scrape, so a worker that left has no series.
  let workers: () => Iterable<WorkerInfo> = () => [];
  const workerGauge = (name: string, help: string, value: (w: WorkerInfo) => number | undefined) =>
    new promClient.Gauge({
      name,
      help,
      labelNames: ['worker'],
      registers,
      collect() {
        this.reset();
        for (const w of workers()) {
          const v = value(w);
          if (v !== undefined) this.set({ worker: w.name }, v);
        }
      },
    });
  workerGauge('troupe_worker_slots', 'Tasks the worker runs at once', (w) => w.slots);
  workerGauge('troupe_worker_busy_slots', 'Slots running a task', (w) => w.busy);
  workerGauge('troupe_worker_cpu_ratio', 'CPU use of the whole machine, 0 to 1, over its last report interval', ({ usage: u }) => (u ? u.cpuPercent / 100 : undefined));
  workerGauge('troupe_worker_load1', 'One-minute load average', ({ usage: u }) => u?.load1);
  workerGauge('troupe_worker_memory_used_bytes', 'Memory in use on the machine', ({ usage: u }) => u?.memoryUsedBytes);
  workerGauge('troupe_worker_memory_total_bytes', 'Memory of the machine', ({ usage: u }) => u?.memoryTotalBytes);
  workerGauge('troupe_worker_report_timestamp_seconds', 'When the worker last reported its usage (Unix time)', ({ usage: u }) => (u ? u.at / 1000 : undefined));

  const runs = new promClient.Counter({ name: 'troupe_russula_runs_total', help: 'Russula runs (scenario files) that ended, by outcome', labelNames: ['outcome'], registers });
  const steps = new promClient.Counter({ name: 'troupe_russula_steps_total', help: 'Steps of Russula runs, by outcome', labelNames: ['outcome'], registers });
  for (const outcome of ['passed', 'failed']) {
    runs.inc({ outcome }, 0);
    steps.inc({ outcome }, 0);
  }
  return {
    observer,
    followWorkers(source) {
      workers = source;
    },
    russulaRun(run) {
      runs.inc({ outcome: run.ok ? 'passed' : 'failed' });
      for (const step of run.steps) steps.inc({ outcome: step.ok ? 'passed' : 'failed' });
    },
  };
}

export interface NodeMetrics {
  server: MetricsServer;
  close(): Promise<void>;
}

/**
 * A worker's (or any non-manager node's) endpoint: the cluster and process metrics. Ready once it
 * has joined the manager.
 */
export async function startNodeMetrics(system: ClusterSystem, at: MetricsAddress, log: Logger): Promise<NodeMetrics> {
  const registry = metricsRegistry();
  const detach = registerClusterMetrics(registry, system);
  let ready = false;
  system.ready().then(() => (ready = true), () => {});
  return serve(registry, at, log, () => ready && system.manager !== undefined && system.membership.get(system.manager)?.status === 'up', detach);
}

/** The manager's endpoint: cluster, process and task metrics. Ready once `ready()` says so. */
export async function startManagerMetrics(system: ClusterSystem, at: MetricsAddress, log: Logger, ready: () => boolean): Promise<NodeMetrics & TaskMetrics> {
  const registry = metricsRegistry();
  const detach = registerClusterMetrics(registry, system);
  const tasks = registerTaskMetrics(registry);
  return { ...(await serve(registry, at, log, ready, detach)), ...tasks };
}

async function serve(registry: Registry, at: MetricsAddress, log: Logger, ready: () => boolean, detach: () => void): Promise<NodeMetrics> {
  let server: MetricsServer;
  try {
    server = await MetricsServer.start({ at, registry, ready, log });
  } catch (err) {
    detach();
    throw err;
  }
  return {
    server,
    async close() {
      detach();
      await server.close();
    },
  };
}

/** A histogram's observations as prom-client keeps them: a count per bucket (not cumulative), sum, count. */
interface BucketCounts {
  bounds: readonly number[];
  buckets: Float64Array;
  sum: number;
  count: number;
  /** The histogram series these were last handed to (its hash in prom-client's map), and the bucket keys. */
  kept?: { hash: string; series: HistogramSeries; keys: string[] };
}

function bucketCounts(bounds: readonly number[]): BucketCounts {
  return { bounds, buckets: new Float64Array(bounds.length), sum: 0, count: 0 };
}

/** prom-client's observe: the first bucket whose bound holds the value (none above the last: +Inf). */
function observe(h: BucketCounts, value: number): void {
  const { bounds } = h;
  for (let i = 0; i < bounds.length; i++) {
    if (value <= bounds[i]!) {
      h.buckets[i]! += 1;
      break;
    }
  }
  h.sum += value;
  h.count += 1;
}

/** What prom-client keeps of a histogram series (lib/histogram.js, 15.x): read by its get() and by metrics-exposition.ts. */
interface HistogramSeries {
  labels: Record<string, string>;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/**
 * Writes `h` into the histogram's series for `labels`, as if each value had been observed there:
 * the series is created by the public `zero` (prom-client's own shape and bucket keys), then its
 * figures set. A collect, so it runs before every read of the histogram, by either writer.
 */
function handOver(histogram: promClient.Histogram, labels: Record<string, string>, h: BucketCounts): void {
  const hashMap = (histogram as unknown as { hashMap: Record<string, HistogramSeries> }).hashMap;
  // The series found last time, while it is still the metric's (a reset drops it): looked for once.
  let series = h.kept === undefined ? undefined : hashMap[h.kept.hash];
  if (series === undefined || series !== h.kept!.series) {
    const same = ([, s]: [string, HistogramSeries]) => Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
    let found = Object.entries(hashMap).find(same);
    if (found === undefined) {
      histogram.zero(labels);
      found = Object.entries(hashMap).find(same)!;
    }
    series = found[1];
    // prom-client keys the buckets by their bounds, as property names.
    h.kept = { hash: found[0], series, keys: h.bounds.map(String) };
  }
  const { bucketValues } = series;
  const { keys } = h.kept!;
  for (let i = 0; i < keys.length; i++) bucketValues[keys[i]!] = h.buckets[i]!;
  series.sum = h.sum;
  series.count = h.count;
}
