/**
 * What observing a manager costs: `npm run bench:metrics`, or `node dist/bench/metrics.js`.
 *
 * Two clusters side by side in one run, each a `troupe manager` CLI process and one `troupe worker`
 * (2 slots), loaded alike by a client node in this process (N `true` tasks per block, closed loop at
 * the worker's slots):
 *   - plain: the manager as it runs by default;
 *   - observed: the same manager with `--metrics`, its /metrics scraped every second by this process
 *     (as Prometheus would), and a real `troupe top` attached (in a pseudo-terminal from script(1)).
 * The blocks alternate (plain, observed, observed, plain, …) so the machine's noise falls on both.
 * The figure is each manager's own CPU time (utime + stime from /proc/PID/stat) over its blocks,
 * per task; the cost is observed − plain, as a share of plain. Target: under 5 %. Before the load,
 * both managers' CPU over the same idle window (BENCH_METRICS_IDLE_S seconds): the fixed cost of
 * being observed, per second, whatever the load; with it the cost splits into that fixed part and a
 * marginal part per task (each way's CPU over its blocks less its idle rate over the same time).
 *
 * Beside those end-to-end figures (noisy on a shared machine: the manager's CPU is a few percent of
 * a core at this load), two measured in this process, exactly: the CPU of the task observers per
 * task (metrics and live view on a real TaskTable, against the table alone), and the CPU of one
 * scrape of a manager's registry (a real ClusterSystem and Controller, no workers).
 *
 * Knobs (environment): BENCH_METRICS_N (tasks per block, default 1000), BENCH_METRICS_BLOCKS (blocks
 * per way, default 3), BENCH_METRICS_WARMUP (tasks per cluster before measuring, 100).
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
import { generateCertificates, loadIdentity } from '../certs/index.js';
import { CLIENT_TASK_MESSAGES } from '../protocols/tasks.js';
import { TaskClient } from '../actors/tasks/task-client.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { silentLogger } from '../src/log.js';
import { envInt, measure, progressTo, roundTo } from './bench-util.js';

const N = envInt('BENCH_METRICS_N', 1000);
const BLOCKS = envInt('BENCH_METRICS_BLOCKS', 3);
const WARMUP = envInt('BENCH_METRICS_WARMUP', 100);
const IDLE_S = envInt('BENCH_METRICS_IDLE_S', 10);
const SLOTS = 2;
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
  cpuS: number;
  tasksRun: number;
  wallMs: number;
}

const children: ChildProcess[] = [];

function start(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_LOG: 'warn', NO_COLOR: '1' } });
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
  const args = ['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0', ...(name === 'observed' ? ['--metrics', '127.0.0.1:0'] : [])];
  const manager = start(args);
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
  if (name === 'observed') {
    // A real top in a pseudo-terminal; what it draws goes nowhere, its stdin stays open.
    const command = `TROUPE_CERTS='${certs}' TROUPE_NAME='${topClient}' '${process.execPath}' '${BIN}' top 127.0.0.1:${port}`;
    top = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' } });
    children.push(top);
  }
  return { name, manager, worker: w, top, metricsUrl, client: system, tasks: TaskClient.start(system), cpuS: 0, tasksRun: 0, wallMs: 0 };
}

async function run(c: Cluster, n: number): Promise<{ wallMs: number }> {
  return measure(async () => {
    const [t] = await c.tasks.submit({ command: 'true' });
    const done = await c.tasks.finished(t!.id);
    if (done.status !== 'succeeded') throw new Error(`task ${done.id}: ${done.status}`);
  }, n, SLOTS);
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
    const metrics = registerTaskMetrics(registry, system);
    const live = spawnLiveView(system);
    spawnController(system);
    const n = 200_000;
    tableCpuUsPerTask(undefined, 20_000);
    tableCpuUsPerTask(fanOut(live.observer, metrics.observer), 20_000);
    const bare = tableCpuUsPerTask(undefined, n);
    const observed = tableCpuUsPerTask(fanOut(live.observer, metrics.observer), n);
    await registry.metrics();
    const scrapes = 200;
    const c0 = process.cpuUsage();
    for (let i = 0; i < scrapes; i++) await registry.metrics();
    const c = process.cpuUsage(c0);
    live.close();
    detach();
    return {
      table_cpu_us_per_task: roundTo(bare, 2),
      table_with_observers_cpu_us_per_task: roundTo(observed, 2),
      observers_cpu_us_per_task: roundTo(observed - bare, 2),
      scrape_cpu_ms: roundTo((c.user + c.system) / 1000 / scrapes, 3),
    };
  } finally {
    await system.shutdown();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-metrics-'));
  const certs = path.join(dir, 'certs');
  generateCertificates({ out: certs, workers: 2, clients: 4 });
  let scraper: NodeJS.Timeout | undefined;
  try {
    const plain = await cluster('plain', certs, 'worker-1', 'client-1', '');
    const observed = await cluster('observed', certs, 'worker-2', 'client-2', 'client-3');
    let scrapes = 0;
    let scrapeBytes = 0;
    scraper = setInterval(() => {
      void fetch(observed.metricsUrl!)
        .then((r) => r.text())
        .then((t) => ((scrapes += 1), (scrapeBytes = t.length)))
        .catch(() => {});
    }, SCRAPE_MS);
    progress(`warming up (${WARMUP} tasks each)`);
    await run(plain, WARMUP);
    await run(observed, WARMUP);
    progress(`idle for ${IDLE_S} s`);
    const idle0 = [cpuSeconds(plain.manager.pid!), cpuSeconds(observed.manager.pid!)];
    await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000));
    const idle = [cpuSeconds(plain.manager.pid!) - idle0[0]!, cpuSeconds(observed.manager.pid!) - idle0[1]!].map((s) => roundTo((1000 * s) / IDLE_S, 1));
    const order: Cluster[] = [];
    for (let b = 0; b < BLOCKS; b++) order.push(...(b % 2 === 0 ? [plain, observed] : [observed, plain]));
    for (const c of order) {
      const cpu0 = cpuSeconds(c.manager.pid!);
      const { wallMs } = await run(c, N);
      c.cpuS += cpuSeconds(c.manager.pid!) - cpu0;
      c.tasksRun += N;
      c.wallMs += wallMs;
      progress(`${c.name}: ${N} tasks in ${Math.round(wallMs)} ms`);
    }
    const figures = (c: Cluster) => ({
      tasks: c.tasksRun,
      manager_cpu_s: roundTo(c.cpuS, 2),
      manager_cpu_ms_per_task: roundTo((1000 * c.cpuS) / c.tasksRun, 4),
      manager_cpu_percent: roundTo((100 * c.cpuS) / (c.wallMs / 1000), 1),
      tasks_per_s: roundTo(c.tasksRun / (c.wallMs / 1000), 1),
    });
    const marginal = (c: Cluster, idleMsPerS: number) => (1000 * c.cpuS - idleMsPerS * (c.wallMs / 1000)) / c.tasksRun;
    const p = figures(plain);
    const o = figures(observed);
    progress('in-process figures');
    const exact = await inProcess(certs);
    const result = {
      bench: 'metrics',
      in_process: exact,
      slots: SLOTS,
      tasks_per_block: N,
      blocks_per_way: BLOCKS,
      scrape_interval_ms: SCRAPE_MS,
      scrapes,
      exposition_bytes: scrapeBytes,
      top_attached: observed.top !== undefined && observed.top.exitCode === null,
      idle_manager_cpu_ms_per_s: { plain: idle[0], observed: idle[1] },
      plain: p,
      observed: o,
      cost_percent_of_manager_cpu: roundTo((100 * (o.manager_cpu_ms_per_task - p.manager_cpu_ms_per_task)) / p.manager_cpu_ms_per_task, 1),
      // The same cost in its two parts: per second whatever the load (the idle window), and per task
      // beyond the idle rate (each way's CPU over its blocks less its idle CPU over the same time).
      cost_fixed_ms_per_s: roundTo(idle[1]! - idle[0]!, 1),
      cost_marginal_ms_per_task: roundTo(marginal(observed, idle[1]!) - marginal(plain, idle[0]!), 4),
      target_percent: 5,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    for (const c of [plain, observed]) {
      c.tasks.stop();
      await c.client.shutdown();
    }
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
