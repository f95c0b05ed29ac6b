/**
 * What observing a manager costs: `npm run bench:metrics`, or `node dist/bench/metrics.js`.
 *
 * Two clusters side by side in one run, each a `troupe manager` CLI process and one `troupe worker`
 * (BENCH_METRICS_SLOTS slots), loaded alike by a client node in this process:
 *   - plain: the manager as it runs by default;
 *   - observed: the same manager with `--metrics`, its /metrics scraped every second by this process
 *     (as Prometheus would), and a real `troupe top` attached (in a pseudo-terminal from script(1)).
 * The same task load on both at the same time: `true` tasks submitted at a fixed rate
 * (BENCH_METRICS_RATE a second, to each cluster on the same clock tick), so both managers do the
 * same work over the same wall time, and the machine's noise falls on both alike. The figure is
 * each manager's own CPU time (utime + stime from /proc/PID/stat) over the same windows, in ms per
 * second; the cost is observed − plain, as a share of plain (each window's, and their median over
 * the windows in which both kept up with the rate).
 * Target: under 5 %. A closed loop (each lane's next task when its last one ends) would not do: the
 * two ways then run different task rates, and the per-second cost of being observed is divided
 * by different numbers of tasks. A window in which a cluster fell behind the rate (finished fewer
 * than 95 % of the tasks due in it) is reported as such (`kept_up: false`) and left out of the
 * median: the load was not the same there.
 *
 * Before the load, both managers' CPU over the same idle window (BENCH_METRICS_IDLE_S seconds):
 * the fixed cost of being observed, per second, whatever the load.
 *
 * Beside those end-to-end figures, two measured in this process, exactly: the CPU of the task
 * observers per task (metrics and live view on a real TaskTable, against the table alone), and the
 * CPU of one scrape of a manager's registry (a real ClusterSystem and Controller, no workers), as
 * the endpoint writes it (metrics-exposition.ts) and as prom-client's registry.metrics() would.
 *
 * Knobs (environment): BENCH_METRICS_RATE (tasks a second to each cluster, default 50),
 * BENCH_METRICS_SLOTS (the worker's, 2), BENCH_METRICS_WINDOW_S (seconds per window, 20),
 * BENCH_METRICS_WINDOWS (6), BENCH_METRICS_IDLE_S
 * (10), BENCH_METRICS_WARMUP (tasks per cluster before measuring, 100), BENCH_METRICS_SETTLE_S
 * (seconds of the paced load before the first window, not measured: 20), BENCH_METRICS_PROF (a
 * directory: both managers run with --cpu-prof and write their profiles there at the end),
 * BENCH_METRICS_OBSERVERS (`scrape,top`; `scrape` or `top` alone to tell their costs apart;
 * `none`: the null comparison, the "observed" manager with --metrics but neither scraped nor
 * watched, which shows what the bench itself puts between two managers: its noise floor),
 * BENCH_METRICS_MANAGER_CPU (pin both managers to this CPU).
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
import { envInt, measure, median, nowMs, progressTo, roundTo, sleep } from './bench-util.js';

const RATE = envInt('BENCH_METRICS_RATE', 50);
const WINDOW_S = envInt('BENCH_METRICS_WINDOW_S', 20);
const WINDOWS = envInt('BENCH_METRICS_WINDOWS', 6);
const WARMUP = envInt('BENCH_METRICS_WARMUP', 100);
/**
 * The paced load runs this long before the first window, unmeasured: in the null comparison
 * (BENCH_METRICS_OBSERVERS=none, December 2026) the first 20 s of load cost the second manager
 * 7 ms/s more than the first and the later windows a few, whatever observed it.
 */
const SETTLE_S = envInt('BENCH_METRICS_SETTLE_S', 20);
const IDLE_S = envInt('BENCH_METRICS_IDLE_S', 10);
const PROF = process.env.BENCH_METRICS_PROF;
/**
 * Both managers pinned to this CPU (taskset), so that the machine's other load falls on them alike
 * (the same core's caches and time slices), not on one more than the other by chance; unset: not pinned.
 */
const MANAGER_CPU = process.env.BENCH_METRICS_MANAGER_CPU;
/** What observes the observed manager: `scrape`, `top`, or both (the default), to tell their costs apart. */
const OBSERVERS = new Set((process.env.BENCH_METRICS_OBSERVERS ?? 'scrape,top').split(','));
/** Submissions are released on this clock, to both clusters in the same tick. */
const TICK_MS = 20;
const SLOTS = envInt('BENCH_METRICS_SLOTS', 2);
const SCRAPE_MS = 1000;
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'troupe.js');
const progress = progressTo('bench:metrics');
const CLOCK_TICK_S = 0.01; // USER_HZ on Linux

interface Cluster {
  name: 'plain' | 'observed';
  manager: ChildProcess;
  worker: ChildProcess;
  top?: ChildProcess;
  metricsUrl?: string;
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

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_S;
}

async function cluster(name: Cluster['name'], certs: string, worker: string, client: string, topClient: string): Promise<Cluster> {
  // Each manager its own journal, new: a shared ./.troupe would have the two contend for one SQLite
  // file, and restore every earlier run's tasks at start.
  const stateDir = path.join(path.dirname(certs), `state-${name}`);
  const args = ['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0', '--state-dir', stateDir, ...(name === 'observed' ? ['--metrics', '127.0.0.1:0'] : [])];
  const manager = start(args, PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.join(PROF, name)]);
  if (MANAGER_CPU !== undefined && MANAGER_CPU !== '') {
    const pin = spawnSync('taskset', ['-pc', MANAGER_CPU, String(manager.pid)], { encoding: 'utf8' });
    if (pin.status !== 0) throw new Error(`taskset -pc ${MANAGER_CPU} ${manager.pid}: ${pin.stderr.trim()}`);
  }
  const listening = await line(manager, /listening on wss:/);
  const port = Number(/wss:\/\/127\.0\.0\.1:(\d+)/.exec(listening)![1]);
  const metricsUrl = /metrics on (http:\/\/\S+)$/.exec(listening)?.[1];
  const w = start(['worker', '--certs', certs, '--name', worker, '--join', `127.0.0.1:${port}`, '--slots', String(SLOTS)]);
  const system = await ClusterSystem.start({ identity: loadIdentity({ dir: certs, name: client }), join: { host: '127.0.0.1', port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
  await system.ready();
  await new Promise<void>((resolve) => {
    const stop = system.receptionist.listing(WORKER_KEY, (entries) => {
      if (entries.length === 1) (setImmediate(stop), resolve());
    });
  });
  let top: ChildProcess | undefined;
  if (name === 'observed' && OBSERVERS.has('top')) {
    // A real top in a pseudo-terminal; what it draws goes nowhere, its stdin stays open.
    const command = `TROUPE_CERTS='${certs}' TROUPE_NAME='${topClient}' '${process.execPath}' '${BIN}' top 127.0.0.1:${port}`;
    top = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' } });
    children.push(top);
  }
  return { name, manager, worker: w, top, metricsUrl, client: system, tasks: TaskClient.start(system), inFlight: 0, finished: 0, failed: 0 };
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

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-metrics-'));
  const certs = path.join(dir, 'certs');
  generateCertificates({ out: certs, workers: 2, clients: 4 });
  let scraper: NodeJS.Timeout | undefined;
  try {
    const plain = await cluster('plain', certs, 'worker-1', 'client-1', '');
    const observed = await cluster('observed', certs, 'worker-2', 'client-2', 'client-3');
    const both = [plain, observed];
    let scrapes = 0;
    let scrapeBytes = 0;
    scraper = setInterval(() => {
      if (!OBSERVERS.has('scrape')) return;
      void fetch(observed.metricsUrl!)
        .then((r) => r.text())
        .then((t) => ((scrapes += 1), (scrapeBytes = t.length)))
        .catch(() => {});
    }, SCRAPE_MS);
    progress(`warming up (${WARMUP} tasks each)`);
    await Promise.all(both.map((c) => warmUp(c, WARMUP)));
    const cpuMsPerS = async (seconds: number, during: Promise<void>) => {
      const c0 = both.map((c) => cpuSeconds(c.manager.pid!));
      const done0 = both.map((c) => c.finished);
      const t0 = nowMs();
      await during;
      const wallS = (nowMs() - t0) / 1000;
      const ms = both.map((c, i) => (1000 * (cpuSeconds(c.manager.pid!) - c0[i]!)) / wallS);
      const tasks = both.map((c, i) => c.finished - done0[i]!);
      return { wallS, ms, tasks, keptUp: tasks.map((n) => n >= 0.95 * RATE * wallS) };
    };
    progress(`idle for ${IDLE_S} s`);
    const idle = await cpuMsPerS(IDLE_S, sleep(IDLE_S * 1000));
    progress(`settling: ${SETTLE_S} s of the paced load, not measured`);
    await paced(both, SETTLE_S);
    const windows: { plain_ms_per_s: number; observed_ms_per_s: number; cost_ms_per_s: number; cost_percent: number; tasks: number[]; kept_up: boolean }[] = [];
    for (let w = 0; w < WINDOWS; w++) {
      const m = await cpuMsPerS(WINDOW_S, paced(both, WINDOW_S));
      const [p, o] = m.ms as [number, number];
      windows.push({ plain_ms_per_s: roundTo(p, 1), observed_ms_per_s: roundTo(o, 1), cost_ms_per_s: roundTo(o - p, 1), cost_percent: roundTo((100 * (o - p)) / p, 1), tasks: m.tasks, kept_up: m.keptUp.every(Boolean) });
      progress(`window ${w + 1}/${WINDOWS}: plain ${roundTo(p, 1)} ms/s, observed ${roundTo(o, 1)} ms/s (${m.tasks.join(' / ')} tasks)`);
    }
    // Let the last tasks end before the managers stop.
    while (both.some((c) => c.inFlight > 0)) await sleep(50);
    progress('in-process figures');
    const exact = await inProcess(certs);
    // The windows in which both clusters ran the whole load: only there was it the same load.
    const same = windows.filter((w) => w.kept_up);
    const med = (f: (w: (typeof windows)[number]) => number) => (same.length === 0 ? null : roundTo(median(same.map(f)), 1));
    const result = {
      bench: 'metrics',
      in_process: exact,
      slots: SLOTS,
      rate_tasks_per_s: RATE,
      window_s: WINDOW_S,
      settle_s: SETTLE_S,
      scrape_interval_ms: SCRAPE_MS,
      scrapes,
      exposition_bytes: scrapeBytes,
      observers: [...OBSERVERS].join(','),
      managers_pinned_to_cpu: MANAGER_CPU ?? null,
      top_attached: observed.top !== undefined && observed.top.exitCode === null,
      failed_tasks: { plain: plain.failed, observed: observed.failed },
      idle_manager_cpu_ms_per_s: { plain: roundTo(idle.ms[0]!, 1), observed: roundTo(idle.ms[1]!, 1) },
      cost_idle_ms_per_s: roundTo(idle.ms[1]! - idle.ms[0]!, 1),
      windows,
      windows_kept_up: same.length,
      manager_cpu_ms_per_s: { plain: med((w) => w.plain_ms_per_s), observed: med((w) => w.observed_ms_per_s) },
      cost_ms_per_s: med((w) => w.cost_ms_per_s),
      cost_percent_of_manager_cpu: med((w) => w.cost_percent),
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
    for (const child of children) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:metrics failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
