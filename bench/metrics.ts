/**
 * What observing a manager costs: `npm run bench:metrics`, or `node dist/bench/metrics.js`.
 *
 * Two clusters side by side in one run, A and B, each a `troupe manager` CLI process with
 * `--metrics` and one `troupe worker` (BENCH_METRICS_SLOTS slots), loaded alike by a client node in
 * this process: `true` tasks submitted at a fixed rate (BENCH_METRICS_RATE a second, to each
 * cluster on the same clock tick), so both managers do the same work over the same wall time.
 * The figure is each manager's own CPU time over the same windows, in ms per second, read from
 * /proc/PID/task/TID/schedstat (nanoseconds; utime + stime are counted in 10 ms ticks, 1 ms/s of a
 * 10 s window).
 *
 * The observers move: in even windows A is observed and B is not, in odd windows the reverse.
 * Observed: its /metrics scraped every second by this process (as Prometheus would, on a kept
 * connection) and a real `troupe top` attached (in a pseudo-terminal from script(1)); not observed:
 * the same manager without them. Between windows the scraper is pointed at the other manager and
 * the `top` is stopped and a new one started against it; once the new top has drawn its
 * first view, BENCH_METRICS_SWITCH_S seconds of the load pass unmeasured (its first views, the old
 * one's leaving), then the window starts.
 * Why: two managers are never alike. Which core the scheduler favours, which one started first
 * and what the machine's other load does to each differ by several ms/s, steadily (December 2026:
 * single windows ±5 ms/s, two runs a minute apart 7 and 13 ms/s), as much as the cost being
 * measured. Each window gives a paired difference, observed − not observed; in a pair of windows
 * (A observed, then B) the managers' own difference enters once with each sign, so the pair's mean
 * is the cost with that bias cancelled (and a drift between them over the run, but for half a
 * window's worth). The result is the median over the pairs, with their spread (min, quartiles,
 * max) and the bias itself (A − B, what a fixed assignment would have added to the cost).
 * Its share: the pair's cost over the mean CPU of the manager not observed in it.
 *
 * A window in which a cluster fell behind the rate (finished fewer than 95 % of the tasks due in
 * it) is reported as such (`kept_up: false`), and its pair is left out of the medians: the load was
 * not the same there. A closed loop (each lane's next task when its last one ends) would not do:
 * the two would run different task rates.
 *
 * Both managers run `--metrics`, so the pairs measure being observed (scraped, watched), not the
 * flag. What the flag costs whether or not anyone looks is the task metrics' observer, per task,
 * measured in this process (`in_process.metrics_observer_cpu_us_per_task`, times the rate:
 * `flag_task_observer_ms_per_s`), beside the counts the cluster metrics keep per connection.
 *
 * Before the load, the same alternation at idle (two windows of BENCH_METRICS_IDLE_S seconds, one
 * each way): the fixed cost of being observed, per second, whatever the load.
 *
 * Beside those end-to-end figures, measured in this process: the CPU of the task observers per
 * task (metrics and live view on a real TaskTable, and the metrics' alone, against the table
 * alone), and the CPU of one scrape of a manager's registry (a real ClusterSystem and Controller,
 * no workers), as the endpoint writes it (metrics-exposition.ts) and as prom-client's
 * registry.metrics() would.
 *
 * Knobs (environment): BENCH_METRICS_RATE (tasks a second to each cluster, default 50),
 * BENCH_METRICS_SLOTS (the worker's, 2), BENCH_METRICS_WINDOW_S (seconds per window, 10),
 * BENCH_METRICS_WINDOWS (10, rounded up to pairs), BENCH_METRICS_SWITCH_S (unmeasured seconds after
 * the observers move, 3), BENCH_METRICS_IDLE_S (5), BENCH_METRICS_WARMUP (tasks per cluster before
 * measuring, 100), BENCH_METRICS_SETTLE_S (seconds of the paced load before the first window, not
 * measured, with the observers moving every 10 s, so that both managers have run the observed code
 * before any window: 30), BENCH_METRICS_PROF (a directory: both managers run with --cpu-prof and write their
 * profiles there at the end), BENCH_METRICS_OBSERVERS (`scrape,top`; `scrape` or `top` alone to
 * tell their costs apart; `none`: the null comparison, the same alternation with nothing attached,
 * which shows the bench's noise floor), BENCH_METRICS_MANAGER_CPU (pin both managers to this CPU),
 * BENCH_METRICS_MANAGER_NODE_ARGS (node's options for both managers, e.g. `--perf-basic-prof`).
 * The defaults take about 3.5 minutes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnController } from '../actors/tasks/controller.js';
import { fanOut, spawnLiveView } from '../actors/tasks/live-view.js';
import { registerTaskMetrics } from '../actors/tasks/task-metrics.js';
import { TaskTable } from '../actors/tasks/task-table.js';
import { WORKER_KEY } from '../protocols/receptionist-keys.js';
import { metricsRegistry, registerClusterMetrics } from '../src/cluster/cluster-metrics.js';
import { Exposition } from '../src/cluster/metrics-exposition.js';
import { generateCertificates, loadIdentity } from '../certs/index.js';
import { CLIENT_TASK_MESSAGES } from '../protocols/tasks.js';
import { TaskClient } from '../actors/tasks/task-client.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { silentLogger } from '../src/log.js';
import { distribution, envInt, measure, median, nowMs, progressTo, roundTo, sleep } from './bench-util.js';

const RATE = envInt('BENCH_METRICS_RATE', 50);
const WINDOW_S = envInt('BENCH_METRICS_WINDOW_S', 10);
/**
 * Whole pairs: each pair has A observed once and B once. Twenty windows (ten pairs, about 5.5 min
 * in all): with ten (five pairs) two quiet runs minutes apart gave medians of 5.8 and 5.3 %, single
 * pairs from 1.4 to 14.8 %, too few to decide a 5 % bound (stop 23).
 */
const WINDOWS = 2 * Math.ceil(envInt('BENCH_METRICS_WINDOWS', 20) / 2);
const SWITCH_S = envInt('BENCH_METRICS_SWITCH_S', 3, 0);
const WARMUP = envInt('BENCH_METRICS_WARMUP', 100);
/**
 * The paced load runs this long before the first window, unmeasured: in the null comparison
 * (BENCH_METRICS_OBSERVERS=none, December 2026) the first 20 s of load cost the second manager
 * 7 ms/s more than the first and the later windows a few, whatever observed it.
 */
const SETTLE_S = envInt('BENCH_METRICS_SETTLE_S', 30, 0);
/** The observers move every this many seconds while settling. */
const SETTLE_CHUNK_S = 10;
const IDLE_S = envInt('BENCH_METRICS_IDLE_S', 5);
const PROF = process.env.BENCH_METRICS_PROF;
/**
 * Both managers pinned to this CPU (taskset), so that the machine's other load falls on them alike
 * (the same core's caches and time slices), not on one more than the other by chance; unset: not pinned.
 */
const MANAGER_CPU = process.env.BENCH_METRICS_MANAGER_CPU;
/** Node's options for both managers (space-separated), e.g. `--perf-basic-prof` to profile them with perf. */
const MANAGER_NODE_ARGS = (process.env.BENCH_METRICS_MANAGER_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** What observes the observed manager: `scrape`, `top`, or both (the default), to tell their costs apart. */
const OBSERVERS = new Set((process.env.BENCH_METRICS_OBSERVERS ?? 'scrape,top').split(','));
/** Submissions are released on this clock, to both clusters in the same tick. */
const TICK_MS = 20;
const SLOTS = envInt('BENCH_METRICS_SLOTS', 2);
const SCRAPE_MS = 1000;
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'troupe.js');
const progress = progressTo('bench:metrics');

interface Cluster {
  name: 'a' | 'b';
  manager: ChildProcess;
  worker: ChildProcess;
  workerName: string;
  port: number;
  metricsUrl: string;
  /** The certificate name its `top`s use. */
  topClient: string;
  client: ClusterSystem;
  tasks: TaskClient;
  /** Tasks submitted and not yet finished. */
  inFlight: number;
  finished: number;
  failed: number;
}

const children: ChildProcess[] = [];

function start(args: string[], nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_LOG: 'warn', NO_COLOR: '1' } });
  children.push(child);
  return child;
}

function line(child: ChildProcess, match: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const on = (chunk: Buffer) => {
      text += chunk.toString();
      const found = text.split('\n').find((l) => match.test(l));
      if (found !== undefined) {
        child.stdout!.off('data', on);
        resolve(found);
      }
    };
    child.stdout!.on('data', on);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before printing ${match}`)));
  });
}

/** The CPU time of all of the process' threads (ns, from each one's schedstat), in seconds. */
function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns / 1e9;
}

async function cluster(name: Cluster['name'], certs: string, worker: string, client: string, topClient: string): Promise<Cluster> {
  // Each manager its own journal, new: a shared ./.troupe would have the two contend for one SQLite
  // file, and restore every earlier run's tasks at start.
  const stateDir = path.join(path.dirname(certs), `state-${name}`);
  const args = ['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0', '--state-dir', stateDir, '--metrics', '127.0.0.1:0'];
  const manager = start(args, [...MANAGER_NODE_ARGS, ...(PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.join(PROF, name)])]);
  if (MANAGER_CPU !== undefined && MANAGER_CPU !== '') {
    const pin = spawnSync('taskset', ['-pc', MANAGER_CPU, String(manager.pid)], { encoding: 'utf8' });
    if (pin.status !== 0) throw new Error(`taskset -pc ${MANAGER_CPU} ${manager.pid}: ${pin.stderr.trim()}`);
  }
  const listening = await line(manager, /listening on wss:/);
  const port = Number(/wss:\/\/127\.0\.0\.1:(\d+)/.exec(listening)![1]);
  const metricsUrl = /metrics on (http:\/\/\S+)$/.exec(listening)![1]!;
  const w = start(['worker', '--certs', certs, '--name', worker, '--join', `127.0.0.1:${port}`, '--slots', String(SLOTS)]);
  const system = await ClusterSystem.start({ identity: loadIdentity({ dir: certs, name: client }), join: { host: '127.0.0.1', port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
  await system.ready();
  await new Promise<void>((resolve) => {
    const stop = system.receptionist.listing(WORKER_KEY, (entries) => {
      if (entries.length === 1) (setImmediate(stop), resolve());
    });
  });
  return { name, manager, worker: w, workerName: worker, port, metricsUrl, topClient, client: system, tasks: TaskClient.start(system), inFlight: 0, finished: 0, failed: 0 };
}

/** A real top on `c` in a pseudo-terminal, in a process group of its own; what it draws is read and dropped, its stdin stays open. */
function attachTop(c: Cluster, certs: string): ChildProcess {
  const command = `TROUPE_CERTS='${certs}' TROUPE_NAME='${c.topClient}' '${process.execPath}' '${BIN}' top 127.0.0.1:${c.port}`;
  return spawn('script', ['-qfec', command, '/dev/null'], { detached: true, stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' } });
}

/**
 * Until `top` has drawn `c`'s worker (so it has joined, watched and been sent its first view: from
 * there, what the manager does for it is watching, not letting it in). At most 30 s.
 */
function joined(c: Cluster, top: ChildProcess, worker: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen: string | undefined = '';
    const timer = setTimeout(() => reject(new Error(`top on ${c.name} drew no view within 30 s`)), 30_000);
    // Read to the end (a pseudo-terminal nobody reads would stop top), looked at until the worker shows.
    top.stdout!.on('data', (chunk: Buffer) => {
      if (seen === undefined) return;
      seen = (seen + chunk.toString('latin1')).slice(-4096);
      if (seen.includes(worker)) {
        seen = undefined;
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** Ends a top and all it started (script, the shell, node), and waits for script to be gone. */
async function detachTop(top: ChildProcess | undefined): Promise<void> {
  if (top === undefined || top.pid === undefined) return;
  const gone = top.exitCode !== null || top.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => top.once('exit', () => resolve()));
  try {
    process.kill(-top.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  await gone;
}

async function warmUp(c: Cluster, n: number): Promise<void> {
  await measure(async () => {
    const [t] = await c.tasks.submit({ command: 'true' });
    const done = await c.tasks.finished(t!.id);
    if (done.status !== 'succeeded') throw new Error(`task ${done.id}: ${done.status}`);
  }, n, SLOTS);
}

/** One task on `c`, not awaited by the pacer: counted in flight until it ends. */
function submitOne(c: Cluster): void {
  c.inFlight++;
  void c.tasks
    .submit({ command: 'true' })
    .then(([t]) => c.tasks.finished(t!.id))
    .then((done) => {
      if (done.status !== 'succeeded') c.failed++;
    })
    .catch(() => (c.failed += 1))
    .finally(() => {
      c.inFlight--;
      c.finished++;
    });
}

/** Submits RATE tasks a second to each cluster, on one clock, for `seconds`. */
async function paced(clusters: Cluster[], seconds: number): Promise<void> {
  const t0 = nowMs();
  let sent = 0;
  while (nowMs() - t0 < seconds * 1000) {
    const due = Math.floor(((nowMs() - t0) / 1000) * RATE);
    // Each cluster first in turn, so that neither's tasks always leave first.
    for (; sent < due; sent++) for (let i = 0; i < clusters.length; i++) submitOne(clusters[(sent + i) % clusters.length]!);
    await sleep(TICK_MS);
  }
}

/** CPU µs per task of driving a real TaskTable through a task's life, with `observe` or without. */
function tableCpuUsPerTask(observer: ConstructorParameters<typeof TaskTable>[1] | undefined, n: number): number {
  const table = new TaskTable({ maxFinished: 1000, tailBytes: 0 }, observer);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const now = Date.now();
    const e = table.add({ id: table.newId(), command: 'true', env: {}, timeoutMs: 0 }, { selector: '', retries: 0, subscribers: [], broadcast: null, now });
    table.running(e, 'worker-1', now);
    table.result(e, { id: e.record.id, outcome: 'exited', exitCode: 0, signal: null, startedAt: now, durationMs: 2, stdoutBytes: 0, stderrBytes: 0, error: null }, now);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

async function inProcess(certs: string): Promise<Record<string, number>> {
  const system = await ClusterSystem.start({ identity: loadIdentity({ dir: certs, name: 'manager' }), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
  try {
    const registry = metricsRegistry();
    const detach = registerClusterMetrics(registry, system);
    const metrics = registerTaskMetrics(registry);
    const live = spawnLiveView(system);
    const controller = spawnController(system);
    live.followWorkers(controller.workers);
    metrics.followWorkers(controller.workers);
    const n = 200_000;
    tableCpuUsPerTask(undefined, 20_000);
    tableCpuUsPerTask(fanOut(live.observer, metrics.observer), 20_000);
    const bare = tableCpuUsPerTask(undefined, n);
    const observed = tableCpuUsPerTask(fanOut(live.observer, metrics.observer), n);
    // The metrics' alone: what --metrics adds per task (the live view runs on every manager).
    tableCpuUsPerTask(metrics.observer, 20_000);
    const metricsOnly = tableCpuUsPerTask(metrics.observer, n);
    // What the endpoint writes (metrics-exposition.ts), and prom-client's own writer of the same text.
    const exposition = new Exposition(registry);
    const scrapes = 200;
    const scrapeMs = async (scrape: () => Promise<string>) => {
      for (let i = 0; i < 20; i++) await scrape();
      const c0 = process.cpuUsage();
      for (let i = 0; i < scrapes; i++) await scrape();
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000 / scrapes;
    };
    const promClientMs = await scrapeMs(() => registry.metrics());
    const ourMs = await scrapeMs(() => exposition.text());
    live.close();
    detach();
    return {
      table_cpu_us_per_task: roundTo(bare, 2),
      table_with_observers_cpu_us_per_task: roundTo(observed, 2),
      observers_cpu_us_per_task: roundTo(observed - bare, 2),
      metrics_observer_cpu_us_per_task: roundTo(metricsOnly - bare, 2),
      scrape_cpu_ms: roundTo(ourMs, 3),
      scrape_prom_client_cpu_ms: roundTo(promClientMs, 3),
    };
  } finally {
    await system.shutdown();
  }
}

async function stopManagers(clusters: Cluster[]): Promise<void> {
  // SIGTERM: a clean stop, so that --cpu-prof writes its profile.
  await Promise.all(
    clusters.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.manager.exitCode !== null) return resolve();
          const timer = setTimeout(() => (c.manager.kill('SIGKILL'), resolve()), 10_000);
          c.manager.once('exit', () => (clearTimeout(timer), resolve()));
          c.manager.kill('SIGTERM');
        }),
    ),
  );
}

/** The quartiles, ends and median of `xs` (nearest rank). */
function spread(xs: readonly number[]): { min: number; q1: number; median: number; q3: number; max: number } | null {
  if (xs.length === 0) return null;
  const d = distribution(xs);
  return { min: roundTo(d.at(0), 1), q1: roundTo(d.at(0.25), 1), median: roundTo(median(xs), 1), q3: roundTo(d.at(0.75), 1), max: roundTo(d.at(1), 1) };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-metrics-'));
  const certs = path.join(dir, 'certs');
  generateCertificates({ out: certs, workers: 2, clients: 4 });
  let scraper: NodeJS.Timeout | undefined;
  let top: ChildProcess | undefined;
  try {
    const a = await cluster('a', certs, 'worker-1', 'client-1', 'client-3');
    const b = await cluster('b', certs, 'worker-2', 'client-2', 'client-4');
    const both = [a, b];
    progress(`managers: A pid ${a.manager.pid}, B pid ${b.manager.pid}`);
    let target: Cluster | undefined;
    let scrapes = 0;
    let scrapeBytes = 0;
    scraper = setInterval(() => {
      if (target === undefined || !OBSERVERS.has('scrape')) return;
      void fetch(target.metricsUrl)
        .then((r) => r.text())
        .then((t) => ((scrapes += 1), (scrapeBytes = t.length)))
        .catch(() => {});
    }, SCRAPE_MS);
    /** Points the scraper and `top` at `c`, then lets `during` (the switch's unmeasured seconds) pass. */
    const observe = async (c: Cluster, during: Promise<void>) => {
      target = c;
      await detachTop(top);
      if (OBSERVERS.has('top')) {
        top = attachTop(c, certs);
        await joined(c, top, c.workerName);
      } else top = undefined;
      await during;
    };
    progress(`warming up (${WARMUP} tasks each)`);
    await Promise.all(both.map((c) => warmUp(c, WARMUP)));
    /** Both managers' CPU over `during` (ms/s), with the tasks each finished in it. */
    const cpuMsPerS = async (during: Promise<void>, seconds: number) => {
      const c0 = both.map((c) => cpuSeconds(c.manager.pid!));
      const done0 = both.map((c) => c.finished);
      const t0 = nowMs();
      await during;
      const wallS = (nowMs() - t0) / 1000;
      const ms = both.map((c, i) => (1000 * (cpuSeconds(c.manager.pid!) - c0[i]!)) / wallS);
      const tasks = both.map((c, i) => c.finished - done0[i]!);
      return { ms, tasks, keptUp: seconds === 0 || tasks.every((n) => n >= 0.95 * RATE * wallS) };
    };
    interface Window {
      observed: Cluster['name'];
      a_ms_per_s: number;
      b_ms_per_s: number;
      cost_ms_per_s: number;
      tasks: number[];
      kept_up: boolean;
    }
    /** Window `w` (A observed when even), after the observers moved and SWITCH_S seconds passed. */
    const window = async (w: number, seconds: number, load: boolean): Promise<Window> => {
      const on = w % 2 === 0 ? a : b;
      await observe(on, load ? paced(both, SWITCH_S) : sleep(SWITCH_S * 1000));
      const m = await cpuMsPerS(load ? paced(both, seconds) : sleep(seconds * 1000), load ? seconds : 0);
      const [am, bm] = m.ms as [number, number];
      return { observed: on.name, a_ms_per_s: roundTo(am, 2), b_ms_per_s: roundTo(bm, 2), cost_ms_per_s: roundTo(on === a ? am - bm : bm - am, 2), tasks: m.tasks, kept_up: m.keptUp };
    };
    /** A pair of windows (A observed, then B): the cost with the managers' own difference cancelled. */
    const pairsOf = (windows: Window[]) => {
      const pairs = [];
      for (let i = 0; i + 1 < windows.length; i += 2) {
        const [x, y] = [windows[i]!, windows[i + 1]!];
        const cost = (x.cost_ms_per_s + y.cost_ms_per_s) / 2;
        // Not observed: B in the first, A in the second.
        const plain = (x.b_ms_per_s + y.a_ms_per_s) / 2;
        pairs.push({ plain_ms_per_s: roundTo(plain, 2), observed_ms_per_s: roundTo(plain + cost, 2), cost_ms_per_s: roundTo(cost, 2), cost_percent: roundTo((100 * cost) / plain, 2), bias_a_minus_b_ms_per_s: roundTo((x.cost_ms_per_s - y.cost_ms_per_s) / 2, 2), kept_up: x.kept_up && y.kept_up });
      }
      return pairs;
    };
    progress(`idle: ${IDLE_S} s with A observed, ${IDLE_S} s with B`);
    const idleWindows = [await window(0, IDLE_S, false), await window(1, IDLE_S, false)];
    const [idle] = pairsOf(idleWindows);
    // Settling with the observers moving too: code that runs only for an observer (the scrape, the
    // views) is tiered up by V8 as it runs, so each manager is observed for a while before any window.
    const chunks = Math.ceil(SETTLE_S / SETTLE_CHUNK_S);
    progress(`settling: ${SETTLE_S} s of the paced load, the observers moving ${chunks} times, not measured`);
    for (let i = 0; i < chunks; i++) await observe(i % 2 === 0 ? a : b, paced(both, Math.min(SETTLE_CHUNK_S, SETTLE_S - i * SETTLE_CHUNK_S)));
    const windows: Window[] = [];
    for (let w = 0; w < WINDOWS; w++) {
      windows.push(await window(w, WINDOW_S, true));
      const x = windows[w]!;
      progress(`window ${w + 1}/${WINDOWS}: ${x.observed.toUpperCase()} observed; A ${roundTo(x.a_ms_per_s, 1)} ms/s, B ${roundTo(x.b_ms_per_s, 1)} ms/s, cost ${roundTo(x.cost_ms_per_s, 1)} ms/s (${x.tasks.join(' / ')} tasks)`);
    }
    await detachTop(top);
    top = undefined;
    target = undefined;
    // Let the last tasks end before the managers stop.
    while (both.some((c) => c.inFlight > 0)) await sleep(50);
    progress('in-process figures');
    const exact = await inProcess(certs);
    const pairs = pairsOf(windows);
    // The pairs in which both clusters ran the whole load: only there was it the same load.
    const same = pairs.filter((p) => p.kept_up);
    const med = (f: (p: (typeof pairs)[number]) => number) => (same.length === 0 ? null : roundTo(median(same.map(f)), 1));
    const result = {
      bench: 'metrics',
      in_process: exact,
      slots: SLOTS,
      rate_tasks_per_s: RATE,
      window_s: WINDOW_S,
      switch_s: SWITCH_S,
      settle_s: SETTLE_S,
      scrape_interval_ms: SCRAPE_MS,
      scrapes,
      exposition_bytes: scrapeBytes,
      observers: [...OBSERVERS].join(','),
      managers_pinned_to_cpu: MANAGER_CPU ?? null,
      failed_tasks: { a: a.failed, b: b.failed },
      idle_manager_cpu_ms_per_s: { plain: roundTo(idle!.plain_ms_per_s, 1), observed: roundTo(idle!.observed_ms_per_s, 1) },
      cost_idle_ms_per_s: roundTo(idle!.cost_ms_per_s, 1),
      windows,
      pairs,
      pairs_kept_up: same.length,
      manager_cpu_ms_per_s: { plain: med((p) => p.plain_ms_per_s), observed: med((p) => p.observed_ms_per_s) },
      cost_ms_per_s: med((p) => p.cost_ms_per_s),
      cost_percent_of_manager_cpu: med((p) => p.cost_percent),
      cost_percent_spread: spread(same.map((p) => p.cost_percent)),
      bias_a_minus_b_ms_per_s: med((p) => p.bias_a_minus_b_ms_per_s),
      flag_task_observer_ms_per_s: roundTo((exact.metrics_observer_cpu_us_per_task! * RATE) / 1000, 2),
      target_percent: 5,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    clearInterval(scraper);
    for (const c of both) {
      c.tasks.stop();
      await c.client.shutdown();
    }
    if (PROF !== undefined) await stopManagers(both);
  } finally {
    clearInterval(scraper);
    await detachTop(top);
    for (const child of children) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:metrics failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
