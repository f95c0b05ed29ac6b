/**
 * Scale benchmark: `npm run bench:scale`, or `node dist/bench/scale.js`.
 *
 * One manager with W busy workers: the tasks per second it sustains, its CPU per task, the
 * submit-to-start latency, and how soon it notices a process holding 100 of its workers killed.
 *
 * Per W (BENCH_SCALE_WORKERS, "100,1000,5000"), in one run:
 * - the manager: a child of this script running `runManager` (what `troupe manager --no-repl` runs,
 *   no journal, no metrics), plus one bench actor that watches the 100 workers to be killed, to time
 *   when the manager's watches fire. Its CPU is read from /proc/PID/stat.
 * - W workers: real cluster nodes (ClusterSystem, one certificate each) joined over mTLS on loopback,
 *   each with a real Worker actor of BENCH_SCALE_SLOTS slots, in a few child processes (the first
 *   holds workers 1–100, the rest BENCH_SCALE_PER_PROC each). Tasks run a BUILT-IN NO-OP instead of
 *   bash (the Worker's bench-only `runCommand` option): an Executor per task as always, but no
 *   process, no task directory. This measures the manager, not bash. The workers of one process
 *   share one reading of the machine for their usage reports (scale-nodes.ts shareMachineReadings):
 *   the manager gets the same reports at the same rate, the fleet spends less of the manager's cores. Once joined, the workers'
 *   processes are niced (BENCH_SCALE_WORKERS_NICE, 10; 0: not): on a real cluster they are other machines, and
 *   here, on the manager's cores, they took its CPU (at 2,000 workers it got a third of a core, and
 *   the queue of submits grew past the submit timeout).
 * - the submitter: this process, a client node (its own certificate, role client) with a TaskClient,
 *   keeping BENCH_SCALE_WINDOW × W × slots tasks outstanding (submitted and not finished), so that
 *   the manager's queue is never empty.
 * After BENCH_SCALE_WARMUP_S, throughput, CPU and latency are measured over BENCH_SCALE_DURATION_S.
 * Submit-to-start latency: from the submit call until the submitter learns the task runs (the
 * submit's reply, or the update after it); it includes the time queued behind the window.
 * Then, the load going on, every slot of workers 1–100 is given a task that runs until cancelled
 * (`hold`), and once all run, the process holding them is killed (SIGKILL): (a) the time until the
 * submitter has been told every one of those tasks is lost (retries are 0), (b) until the manager's
 * watches of those 100 Worker actors have all fired.
 *
 * Baseline, in the same run: the same manager, submitter and no-op with ONE worker node of
 * BENCH_SCALE_BASELINE_SLOTS slots (a pool of one; the window scaled the same way): what a task
 * costs the manager when the pool is trivial.
 *
 * Knobs (environment): BENCH_SCALE_WORKERS ("100,1000,5000"), BENCH_SCALE_SLOTS (2),
 * BENCH_SCALE_PER_PROC (500), BENCH_SCALE_JOINING (50: workers joining at once, in all), BENCH_SCALE_WINDOW (3), BENCH_SCALE_WARMUP_S (3),
 * BENCH_SCALE_DURATION_S (10), BENCH_SCALE_BASELINE_SLOTS (100; 0 skips the baseline),
 * BENCH_SCALE_PROF (a directory: the manager and the workers' processes run with --cpu-prof into it;
 * the profiler's own thread costs the manager much of a core at thousands of workers),
 * BENCH_SCALE_TRACE (any value: the manager prints its event-loop lag and CPU each second), BENCH_SCALE_CERTS (a
 * directory to keep the certificates in and reuse on the next run). Prints one JSON object
 * per W on stdout; progress goes to stderr.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadIdentity } from '../certs/index.js';
import { TaskClient } from '../actors/tasks/task-client.js';
import { CLIENT_TASK_MESSAGES, FINISHED_STATUSES, type TaskRecord } from '../protocols/tasks.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { ErrorCodes } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { benchScratch, cpuOf, lines, writeCertificates } from './bench-cluster.js';
import { distribution, envInt, progressTo, roundTo, sleep } from './bench-util.js';
import { epochMs, HOLD, MACHINE_READING_MS, managerMain, workersMain } from './scale-nodes.js';

const WORKER_COUNTS = (process.env.BENCH_SCALE_WORKERS || '100,1000,5000').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n <= 0) throw new TypeError(`BENCH_SCALE_WORKERS: expected counts like 100,1000, got ${JSON.stringify(s)}`);
  return n;
});
const SLOTS = envInt('BENCH_SCALE_SLOTS', 2);
const PER_PROC = envInt('BENCH_SCALE_PER_PROC', 500);
const JOINING = envInt('BENCH_SCALE_JOINING', 50);
const WINDOW = envInt('BENCH_SCALE_WINDOW', 3);
const WARMUP_S = envInt('BENCH_SCALE_WARMUP_S', 3);
const DURATION_S = envInt('BENCH_SCALE_DURATION_S', 10);
const BASELINE_SLOTS = envInt('BENCH_SCALE_BASELINE_SLOTS', 100, 0);
const WORKERS_NICE = envInt('BENCH_SCALE_WORKERS_NICE', 10, 0);
const PROF_DIR = process.env.BENCH_SCALE_PROF || undefined;
/** Signing thousands of certificates takes minutes: a directory to keep them in between runs. */
const CERTS_DIR = process.env.BENCH_SCALE_CERTS || undefined;
/** Workers in the process that is killed. */
const VICTIMS = 100;
const CLIENT = 'bench-client';
const JOIN_TIMEOUT_MS = 900_000;
const DETECT_TIMEOUT_MS = 15_000;
const TARGET = { tasks_per_s_at_1000: 5000, detect_ms: 1000 };

const SELF = fileURLToPath(import.meta.url);
const progress = progressTo('bench:scale');
const round = (x: number, digits = 2): number => roundTo(x, digits);

// ── the submitter and the measurements (this process) ──────────────────────────────────────────────────

interface Round {
  workers: number;
  slots: number;
  procs: number;
  kill: boolean;
}

/** The lines of a child's stdout, to wait for; `onJoined` takes its `joined N` lines instead. */
function childLines(child: ChildProcess, onJoined?: (joined: string) => void): { next(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string> } {
  const seen: string[] = [];
  const waiting: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  lines(child, 'stdout', (line) => {
    if (onJoined && line.startsWith('joined ')) return onJoined(line.slice('joined '.length));
    const at = waiting.findIndex((w) => w.match(line));
    if (at >= 0) waiting.splice(at, 1)[0]!.resolve(line);
    else seen.push(line);
  });
  return {
    next(match, what, timeoutMs = JOIN_TIMEOUT_MS) {
      const at = seen.findIndex(match);
      if (at >= 0) return Promise.resolve(seen.splice(at, 1)[0]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs / 1000} s`)), timeoutMs);
        const onExit = (code: number | null) => reject(new Error(`${what}: the process exited (${code}) first`));
        child.once('exit', onExit);
        waiting.push({
          match,
          resolve: (line) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(line);
          },
        });
      });
    },
  };
}

async function runRound(dir: string, r: Round, children: ChildProcess[]): Promise<Record<string, unknown>> {
  const execArgv = PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [];
  const manager = spawn(process.execPath, [...execArgv, SELF, '--manager', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(manager);
  const managerOut = childLines(manager);
  const port = Number((await managerOut.next((l) => l.startsWith('port '), 'the manager listening')).split(' ')[1]);
  progress(`W=${r.workers} (${r.slots} slots each): manager pid ${manager.pid} on port ${port}; joining from ${r.procs} processes…`);

  const t0 = Date.now();
  const procs: ChildProcess[] = [];
  const victimsIn = r.kill ? Math.min(VICTIMS, r.workers) : 0;
  const shares: [number, number][] = [];
  if (victimsIn > 0) shares.push([1, victimsIn]);
  const restProcs = r.procs - shares.length;
  for (let p = 0, from = victimsIn + 1; p < restProcs; p++) {
    const count = Math.ceil((r.workers - from + 1) / (restProcs - p));
    if (count > 0) shares.push([from, count]);
    from += count;
  }
  // A progress line every few seconds while they join: how many, how fast, and the memory it takes.
  // At most JOINING handshakes in flight in all: under load, hundreds at once all miss the
  // handshake timeout, redial, and miss it again (5,000 workers stalled at 775).
  const group = Math.max(1, Math.min(25, Math.floor(JOINING / shares.length)));
  const joinCpu0 = cpuOf(manager.pid!).cpuS;
  const joinedIn = shares.map(() => 0);
  const failedIn = shares.map(() => '');
  const rssMiB = () => round([manager, ...procs].reduce((sum, p) => sum + (p.exitCode === null ? cpuOf(p.pid!).rssMiB : 0), 0), 0);
  const joinProgress = setInterval(() => {
    const n = joinedIn.reduce((a, b) => a + b, 0);
    const counts = new Map<string, number>();
    for (const [code, k] of failedIn.flatMap((f) => (f ? f.split(',') : [])).map((f) => f.split('×'))) counts.set(code!, (counts.get(code!) ?? 0) + Number(k));
    const failed = [...counts].map(([code, k]) => `${code} ×${k}`).join(', ');
    const m = cpuOf(manager.pid!);
    progress(`W=${r.workers}: ${n} joined in ${((Date.now() - t0) / 1000).toFixed(0)} s; manager ${round(m.cpuS - joinCpu0, 1)} s CPU, ${round(m.rssMiB, 0)} MiB; manager and workers' processes ${rssMiB()} MiB RSS${failed ? `; dials failed: ${failed}` : ''}`);
  }, 5000);
  const joined = shares.map(([from, count], i) => {
    const child = spawn(process.execPath, [...execArgv, SELF, '--workers', dir, String(port), String(from), String(count), String(r.slots), String(group)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    procs.push(child);
    const onJoined = (line: string) => {
      const [n, failed] = line.split(' ');
      joinedIn[i] = Number(n);
      failedIn[i] = failed ?? '';
    };
    return childLines(child, onJoined).next((l) => l === 'ready', `workers ${from}–${from + count - 1} joined`);
  });
  await Promise.all(joined).finally(() => clearInterval(joinProgress));
  const joinedS = (Date.now() - t0) / 1000;
  const joinedRssMiB = rssMiB();
  const joinCpuS = cpuOf(manager.pid!).cpuS - joinCpu0;

  const system = await ClusterSystem.start({ identity: loadIdentity({ dir, name: CLIENT }), join: { host: '127.0.0.1', port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
  await system.ready();
  const tasks = TaskClient.start(system, 'manager');
  // Joined is not yet checked in: wait until the pool knows every worker.
  for (;;) {
    const executors = (await tasks.ask('executors')).executors ?? [];
    if (executors.length >= r.workers) break;
    await sleep(200);
  }
  const joinS = (Date.now() - t0) / 1000;
  // Niced once joined: on a real cluster the workers are other machines, and here they must not
  // take the manager's CPU under load. Not while they join: niced, 5,000 missed their heartbeats.
  if (WORKERS_NICE > 0) for (const p of procs) os.setPriority(p.pid!, WORKERS_NICE);
  if (victimsIn > 0) {
    manager.stdin!.write(`watch 1 ${victimsIn}\n`);
    await managerOut.next((l) => l === 'watching', 'the manager watching the victims');
  }
  progress(`all ${r.workers} joined in ${joinedS.toFixed(1)} s (manager ${round((joinCpuS / r.workers) * 1000, 2)} ms CPU per join; ${joinedRssMiB} MiB RSS, manager and workers' processes), in the pool in ${joinS.toFixed(1)} s; load: ${WINDOW} × ${r.workers * r.slots} tasks outstanding; warm-up ${WARMUP_S} s, then ${DURATION_S} s measured…`);

  // ── the load ──
  const window = WINDOW * r.workers * r.slots;
  let outstanding = 0;
  /** Submits that timed out and whose place is still held: the end of a task not answered frees one. */
  let timedOut = 0;
  let submitting = true;
  let completed = 0;
  let errors = 0;
  let firstError = '';
  let measuring = false;
  const latencies: number[] = [];
  /** Unfinished tasks, their latest record. */
  const live = new Map<string, TaskRecord>();
  const done = new Set<string>();
  /** When the submitter first learned each task runs (or ran), until its submit's continuation took it. */
  const startSeen = new Map<string, number>();
  /** The submit time of a task whose start the submitter has not learned yet. */
  const submitAt = new Map<string, number>();
  const started = new Set<string>();
  /**
   * Tasks whose submit was answered and that have not ended: with the submits not yet answered,
   * what `outstanding` counts. A submit that timed out keeps its place: its task, if the manager
   * made it after all, runs, and the end of a task whose submit was not answered frees one place
   * held so (see `timedOut`). Before, a timeout freed its place at once while the manager made the
   * task all the same: each timeout let one more submit in, and at W=5000 the queue ran away (tens
   * of thousands of timeouts).
   */
  const answered = new Set<string>();
  let onEnd: ((id: string, record: TaskRecord) => void) | undefined;
  tasks.on('update', (task) => {
    if (done.has(task.id)) return;
    const now = performance.now();
    if (task.status !== 'pending' && !started.has(task.id)) {
      started.add(task.id);
      const t = submitAt.get(task.id);
      if (t === undefined) startSeen.set(task.id, now);
      else {
        submitAt.delete(task.id);
        if (measuring) latencies.push(now - t);
      }
    }
    if (FINISHED_STATUSES.has(task.status)) {
      done.add(task.id);
      live.delete(task.id);
      if (measuring) completed++;
      onEnd?.(task.id, task);
      // A window place is freed by the end of a task whose submit was answered (see submitOne).
      if (answered.delete(task.id) || (timedOut > 0 && timedOut-- > 0)) {
        outstanding--;
        pump();
      }
    } else live.set(task.id, task);
  });
  const submitOne = () => {
    outstanding++;
    const t = performance.now();
    tasks.submit({ command: 'noop' }).then(
      ([task]) => {
        const id = task!.id;
        if (done.has(id)) {
          outstanding--;
          pump();
        } else answered.add(id);
        const seen = startSeen.get(id);
        if (seen !== undefined) {
          startSeen.delete(id);
          if (measuring) latencies.push(seen - t);
        } else submitAt.set(id, t);
      },
      (err: unknown) => {
        // A refused submit made no task; one that timed out may have (see `answered`).
        if ((err as { code?: string }).code === ErrorCodes.QUERY_TIMEOUT) timedOut++;
        else outstanding--;
        if (!submitting) return;
        errors++;
        firstError ||= err instanceof Error ? err.message : String(err);
        setTimeout(pump, 10);
      },
    );
  };
  function pump(): void {
    while (submitting && outstanding < window) submitOne();
  }
  pump();
  await sleep(WARMUP_S * 1000);
  const cpu0 = cpuOf(manager.pid!);
  const workersCpu0 = procs.reduce((s, p) => s + cpuOf(p.pid!).cpuS, 0);
  const client0 = process.cpuUsage();
  const w0 = performance.now();
  measuring = true;
  await sleep(DURATION_S * 1000);
  measuring = false;
  const wallS = (performance.now() - w0) / 1000;
  const cpu1 = cpuOf(manager.pid!);
  const workersCpu1 = procs.reduce((s, p) => s + cpuOf(p.pid!).cpuS, 0);
  const client1 = process.cpuUsage(client0);
  const managerCpuS = cpu1.cpuS - cpu0.cpuS;
  const lat = distribution(latencies);
  const tps = completed / wallS;
  progress(`W=${r.workers}: ${Math.round(tps)} tasks/s, manager ${round((managerCpuS / wallS) * 100, 0)} % of a core, ${round((managerCpuS / completed) * 1e6, 0)} µs CPU per task; p50 ${round(lat.at(0.5), 1)} ms p99 ${round(lat.at(0.99), 1)} ms${errors ? `; ${errors} submit errors (${firstError})` : ''}`);

  // ── the kill ──
  // While the load goes on, every slot of workers 1–100 is given a task that runs until cancelled
  // (queued behind the load already queued, in order); once all run there, their process is killed.
  let detection: Record<string, unknown> | undefined;
  if (victimsIn > 0) {
    const held = new Map<string, TaskRecord | undefined>();
    const holds = await Promise.all(
      // waitForWorkerMs: a longer answer time than a plain query's, should the manager lag behind the load.
      Array.from({ length: victimsIn * r.slots }, (_, i) => tasks.submit({ command: HOLD, selector: `name=worker-${(i % victimsIn) + 1}`, waitForWorkerMs: 60_000 }).then(([t]) => t!)),
    );
    for (const t of holds) held.set(t.id, undefined);
    const running = () => holds.every((t) => tasks.tasks.get(t.id)?.status === 'running');
    const t1 = Date.now();
    while (!running() && Date.now() - t1 < DETECT_TIMEOUT_MS * 2) await sleep(20);
    if (!running()) progress(`W=${r.workers}: the tasks to be killed did not all start within ${(DETECT_TIMEOUT_MS * 2) / 1000} s; killing anyway`);
    const ended = { lastMs: 0, statuses: {} as Record<string, number> };
    let allEnded!: () => void;
    const endedP = new Promise<void>((resolve) => (allEnded = resolve));
    const tKill = epochMs();
    onEnd = (id, record) => {
      if (!held.has(id) || held.get(id)) return;
      held.set(id, record);
      ended.statuses[record.status] = (ended.statuses[record.status] ?? 0) + 1;
      ended.lastMs = epochMs() - tKill;
      if ([...held.values()].every((v) => v !== undefined)) allEnded();
    };
    procs[0]!.kill('SIGKILL');
    const firedP = managerOut.next((l) => l.startsWith('fired '), 'the watches firing', DETECT_TIMEOUT_MS).then((l) => Number(l.split(' ')[1]) - tKill);
    const [tasksEnded, watchesMs] = await Promise.all([
      Promise.race([endedP.then(() => true), sleep(DETECT_TIMEOUT_MS).then(() => false)]),
      firedP.catch(() => undefined),
    ]);
    const lost = ended.statuses.lost ?? 0;
    detection = {
      killed_workers: victimsIn,
      tasks_running_there: holds.length,
      tasks_lost: lost,
      statuses: ended.statuses,
      all_lost_ms: tasksEnded && lost === holds.length ? round(ended.lastMs, 1) : null,
      watches_fired_ms: watchesMs === undefined ? null : round(watchesMs, 1),
      load_meanwhile: 'the submitter kept the queue full throughout',
    };
    progress(`W=${r.workers}: killed ${victimsIn} workers running ${holds.length} tasks: all lost in ${detection.all_lost_ms} ms, watches fired in ${detection.watches_fired_ms} ms`);
  }
  submitting = false;

  // ── down ──
  tasks.stop();
  await system.shutdown();
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((resolve) => p.once('exit', resolve)) : undefined)));
  manager.stdin!.write('stop\n');
  await new Promise((resolve) => (manager.exitCode === null ? manager.once('exit', resolve) : resolve(null)));

  return {
    workers: r.workers,
    slots_per_worker: r.slots,
    worker_processes: procs.length,
    outstanding_window: window,
    joined_s: round(joinedS, 1),
    join_s: round(joinS, 1),
    joined_rss_mib: joinedRssMiB,
    join_manager_cpu_ms_per_worker: round((joinCpuS / r.workers) * 1000, 2),
    measured_s: round(wallS, 1),
    tasks: completed,
    tasks_per_s: Math.round(tps),
    manager_cpu_percent: round((managerCpuS / wallS) * 100, 1),
    manager_cpu_us_per_task: completed > 0 ? round((managerCpuS / completed) * 1e6, 1) : null,
    manager_rss_mib: round(cpu1.rssMiB, 1),
    workers_cpu_percent: round(((workersCpu1 - workersCpu0) / wallS) * 100, 1),
    submitter_cpu_percent: round(((client1.user + client1.system) / 1e6 / wallS) * 100, 1),
    submit_to_start_ms: { p50: round(lat.at(0.5), 2), p99: round(lat.at(0.99), 2), n: lat.n },
    submit_errors: errors,
    ...(firstError ? { first_submit_error: firstError } : {}),
    ...(detection ? { kill: detection } : {}),
  };
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === '--workers') return workersMain(args[0]!, Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]), Number(args[5]));
  if (mode === '--manager') return managerMain(args[0]!);

  const maxW = Math.max(...WORKER_COUNTS);
  const { dir, children, cleanup } = benchScratch('troupe-bench-scale-');
  try {
    progress('tasks run a built-in no-op, not bash: this measures the manager');
    progress(`the simulated fleet's processes share one reading of the machine among their workers (${MACHINE_READING_MS} ms): the manager gets the same reports`);
    if (CERTS_DIR && fs.existsSync(path.join(CERTS_DIR, `worker-${maxW}.crt`)) && fs.existsSync(path.join(CERTS_DIR, `${CLIENT}.crt`))) {
      progress(`certificates from ${CERTS_DIR}`);
    } else {
      progress(`certificates for a manager, a client and ${maxW} workers (one shared worker key)…`);
      if (CERTS_DIR) fs.mkdirSync(CERTS_DIR, { recursive: true });
      writeCertificates(CERTS_DIR ?? dir, maxW, [CLIENT]);
    }
    if (CERTS_DIR) for (const f of fs.readdirSync(CERTS_DIR)) fs.copyFileSync(path.join(CERTS_DIR, f), path.join(dir, f));
    // Every worker and the manager hold one socket per node: W=5000 needs more than the usual 1024.
    const fds = Number(execFileSync('/bin/bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
    if (fds < maxW + 1024) progress(`ulimit -n is ${fds}: the manager needs about ${maxW + 1024} descriptors for ${maxW} workers; raise it (ulimit -n) first`);
    const machine = { cpus: os.availableParallelism(), node: process.version, loadavg_1m: round(os.loadavg()[0]!, 2), ulimit_n: fds };
    const common = {
      bench: 'scale',
      task_body: 'built-in no-op (the Worker bench-only runCommand option): no bash, no process, no task directory',
      submitter: 'a client node (own certificate) in the bench process, TaskClient.submit, a window of outstanding tasks',
      fleet_machine_readings: `the fleet's processes share one reading of the machine (CPU times, load, free memory) among their workers for ${MACHINE_READING_MS} ms; the manager gets the same usage reports, at the same rate`,
      workers_nice: WORKERS_NICE === 0 ? 'not niced' : `the workers' processes niced to ${WORKERS_NICE} once joined (they stand for other machines)`,
      machine,
      warmup_s: WARMUP_S,
      duration_s: DURATION_S,
    };
    let baseline: Record<string, unknown> | undefined;
    if (BASELINE_SLOTS > 0) {
      baseline = await runRound(dir, { workers: 1, slots: BASELINE_SLOTS, procs: 1, kill: false }, children);
      console.log(JSON.stringify({ ...common, what: `baseline: one worker node with ${BASELINE_SLOTS} slots (a pool of one), same manager, submitter and no-op`, ...baseline }, null, 2));
    }
    for (const w of WORKER_COUNTS) {
      const procs = Math.min(VICTIMS, w) === w ? 1 : 1 + Math.ceil((w - VICTIMS) / PER_PROC);
      const result = await runRound(dir, { workers: w, slots: SLOTS, procs, kill: true }, children);
      const kill = result.kill as { all_lost_ms: number | null; watches_fired_ms: number | null };
      console.log(
        JSON.stringify(
          {
            ...common,
            ...result,
            ...(baseline ? { baseline_one_worker: { slots: BASELINE_SLOTS, tasks_per_s: baseline.tasks_per_s, manager_cpu_us_per_task: baseline.manager_cpu_us_per_task }, ratio_to_baseline: round((result.tasks_per_s as number) / (baseline.tasks_per_s as number), 2) } : {}),
            target: {
              ...(w === 1000 ? { tasks_per_s_min: TARGET.tasks_per_s_at_1000, tasks_met: (result.tasks_per_s as number) >= TARGET.tasks_per_s_at_1000 } : {}),
              detect_ms_max: TARGET.detect_ms,
              detect_met: kill.all_lost_ms !== null && kill.watches_fired_ms !== null && kill.all_lost_ms <= TARGET.detect_ms && kill.watches_fired_ms <= TARGET.detect_ms,
            },
          },
          null,
          2,
        ),
      );
    }
  } finally {
    cleanup();
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench:scale] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
