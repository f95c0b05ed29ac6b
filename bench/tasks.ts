/**
 * Task benchmark: `npm run bench:tasks`, or `node dist/bench/tasks.js`.
 *
 * N `true` commands, run four ways in one run, at concurrency 1 and at the worker's slots:
 *   - spawn: `/bin/bash -c true` spawned by a small Node process (stdin ignored, see the spawn
 *     driver) and awaited to 'close' (the issue's baseline, what the targets are measured against);
 *   - isolated: the same, but set up as the worker runs a task (actors/process/run-command.ts with the
 *     worker's TaskDirs): a fresh directory (made ahead) as cwd, its own session and process group
 *     (detached), a minimal environment, stdin ignored, the group SIGKILLed after the exit, the
 *     directory moved off its path (deleted behind). The plain spawn does none of that, so
 *     `troupe − isolated` is the cost of troupe's messaging and actors alone, and
 *     `isolated − spawn` the cost of the task's isolation;
 *   - troupe: submitted on the manager itself, as a person typing into the manager's REPL does (the
 *     main use case): a TaskClient in the manager's process, tasks run by worker-1;
 *   - troupe_client: submitted by client-1, a client node that joined the manager (as
 *     `troupe attach` does), tasks run by worker-1;
 *   - posix_spawn: a second baseline, the fastest local spawn: posix_spawn from a small C program
 *     (tasks-posix-spawn.ts; left out without a C compiler).
 * A troupe task's latency is submit → finished as its submitter sees it.
 *
 * The processes: this one is the manager (runManager, as `troupe manager` starts it: listening on
 * loopback with mTLS, the Controller beside it) and submits the `troupe` way. worker-1 is a
 * `troupe worker` CLI process. Two small drivers (tasks-driver.ts, forked) run the other ways: the
 * `spawn` driver the two baselines, the `client` driver the `troupe_client` way; each times its
 * own tasks. Why the baselines are not run here: fork() cost grows with the parent's resident
 * anonymous memory, and a process that carries a cluster forks `bash -c true` about twice as slowly
 * (p50 3.8 ms vs 1.9 ms from a bare node, measured). The worker forks from a small spawner process,
 * so the honest baseline forks from a small process too; the JSON gives both processes' memory.
 *
 * Closed loop: `c` lanes, each starting its next task when its last one has finished. The four are
 * alternated in blocks (in a rotating order) so the machine's noise falls on all alike.
 * Prints one JSON object on stdout; progress goes to stderr. About a minute with the defaults on 2 cores.
 *
 * Targets (per concurrency, for `troupe` and for `troupe_client`; issue 17): median overhead (p50 −
 * spawn p50) ≤ 0.5 ms (moonshot 0.3 ms); throughput ≥ 90 % of the plain spawn's.
 *
 * CPU per task: each way's blocks are bracketed by samples of the CPU time of every process it runs
 * in (tasks-cpu.ts: all threads, to the ns), so the JSON gives, per concurrency and way, the ms of
 * CPU per task in each process and their total (`cpu_ms_per_task`; troupe's total across its
 * processes is `cpu_ms_per_task.troupe.total`), and the sleeps per task (`sleeps_per_task`: each one
 * a wake-up, the hops and thread-pool round trips). The progress lines print both.
 *
 * Knobs (environment): BENCH_TASKS_N (tasks measured per way and concurrency, default 2000),
 * BENCH_SLOTS (the worker's slots and the second concurrency, default os.availableParallelism()),
 * BENCH_TASKS_BLOCKS (4), BENCH_TASKS_WARMUP (tasks per way and concurrency before measuring, 100),
 * BENCH_TASKS_WATCHDOG_S (180: the whole run's limit).
 * BENCH_CPU_PROF_DIR: run the worker and the two drivers with `--cpu-prof` into that directory (they
 * are stopped with SIGTERM or asked to leave, so they write their profiles; Node refuses --cpu-prof
 * in NODE_OPTIONS). For this process's own profile (the manager's): `node --cpu-prof dist/bench/tasks.js`.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MEMBERSHIP_VIEW } from '../src/cli/membership-view.js';
import { generateCertificates } from '../certs/index.js';
import { TaskClient } from '../actors/tasks/task-client.js';
import { runManager, type ManagerNode } from '../actors/nodes.js';
import type { ClusterSystem } from '../src/cluster/cluster-system.js';
import { createLogger } from '../src/log.js';
import { BenchChild } from './bench-child.js';
import { envInt, measure, median, progressTo, residentMiB, roundTo, sleep } from './bench-util.js';
import { CpuTally, childPid } from './tasks-cpu.js';
import { posixSpawnRunner } from './tasks-posix-spawn.js';
import { summarize, versusSpawn, type Summary } from './tasks-summary.js';
import { COMMAND, troupeTask, type DriverWay, type FromDriver, type Memory, type RunReply, type TroupeParts } from './tasks-driver.js';

const N = envInt('BENCH_TASKS_N', 2_000);
const SLOTS = envInt('BENCH_SLOTS', os.availableParallelism());
const BLOCKS = envInt('BENCH_TASKS_BLOCKS', 4);
const WARMUP = envInt('BENCH_TASKS_WARMUP', 100);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR ?? '';
/** Targets from issue 17: ms over the plain spawn's p50 (0.5; the moonshot 0.3), and a share of its tasks/s. */
const OVERHEAD_TARGET_MS = 0.5;
const OVERHEAD_MOONSHOT_MS = 0.3;
const THROUGHPUT_TARGET_RATIO = 0.9;
const START_TIMEOUT_MS = 15_000;
/** SIGTERM → SIGKILL grace for the worker and the drivers at the end: 5 seconds. */
/** SIGTERM → SIGKILL grace for every child on a signal or the watchdog: 2 seconds. */
const ABORT_GRACE_MS = 2_000;
/**
 * BENCH_JOURNAL: `off` (the default), `on` (the manager keeps its task journal, actors/tasks/journal.ts,
 * in the bench's temp dir), or `both`: the whole bench with it off, then on, in one run of one build,
 * and the journal's cost as the ratio of tasks/s on/off at each concurrency.
 */
const JOURNAL_MODE = process.env.BENCH_JOURNAL ?? 'off';
if (!['off', 'on', 'both'].includes(JOURNAL_MODE)) throw new Error(`BENCH_JOURNAL: off, on or both, got ${JOURNAL_MODE}`);
/** BENCH_TASKS_WATCHDOG_S: give up after this long (180 s; twice that with BENCH_JOURNAL=both). A loaded machine needs more. */
const WATCHDOG_MS = envInt('BENCH_TASKS_WATCHDOG_S', 180) * 1000 * (JOURNAL_MODE === 'both' ? 2 : 1);

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(HERE, '..', 'bin', 'troupe.js');
const DRIVER = path.join(HERE, 'tasks-driver.js');
const WORKER = 'worker-1';

const progress = progressTo('bench:tasks');

const round = (x: number, digits = 3): number => roundTo(x, digits);
const cpuProfArgs = (name: string): string[] => (CPU_PROF_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}.cpuprofile`]);

// ── the drivers: the ways that run in a child process ──────────────────────────────────────────

/** A forked tasks-driver.js: one request at a time (see its protocol). */
class Driver extends BenchChild {
  readonly ready: Promise<Memory>;
  /** Its resident memory, as of its last reply. */
  memory: Memory | undefined;
  #pending: { resolve: (reply: RunReply) => void; reject: (err: Error) => void } | undefined;

  constructor(
    readonly role: 'spawn' | 'client',
    args: readonly string[],
  ) {
    // execArgv [] : none of our own flags (--cpu-prof, --inspect…) unless asked for.
    super(fork(DRIVER, [role, ...args], { execArgv: cpuProfArgs(`${role}-driver`), serialization: 'advanced', stdio: ['ignore', 2, 'inherit', 'ipc'] }));
    let settleReady!: { resolve: (m: Memory) => void; reject: (err: Error) => void };
    this.ready = new Promise((resolve, reject) => (settleReady = { resolve, reject }));
    const timer = setTimeout(() => settleReady.reject(new Error(`the ${role} driver was not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    this.ready.then(() => clearTimeout(timer), () => clearTimeout(timer));
    // Not started, or not killable: its 'exit' (or the ready timeout) says the rest.
    this.child.on('error', (err) => progress(`${role} driver: ${err.message}`));
    this.child.on('message', (msg: FromDriver) => {
      if ('ready' in msg) {
        this.memory = msg.memory;
        return settleReady.resolve(msg.memory);
      }
      const pending = this.#pending;
      this.#pending = undefined;
      if ('error' in msg) return pending?.reject(new Error(`${role} driver: ${msg.error}`));
      this.memory = msg.memory;
      pending?.resolve(msg);
    });
    this.child.once('exit', (code, signal) => {
      const err = new Error(`the ${role} driver exited (${code ?? signal})`);
      settleReady.reject(err);
      this.#pending?.reject(err);
      this.#pending = undefined;
    });
  }

  run(way: DriverWay, n: number, c: number): Promise<RunReply> {
    if (this.#pending) return Promise.reject(new Error(`the ${this.role} driver is busy`));
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.child.send({ way, n, c }, (err) => {
        if (err && this.#pending) {
          this.#pending = undefined;
          reject(new Error(`the ${this.role} driver cannot be reached: ${err.message}`));
        }
      });
    });
  }

  /** Asks it to leave (it cleans up, and writes any --cpu-prof profile). */
  protected override askToStop(): void {
    // Its channel may be closing under us (it is leaving already): then SIGTERM.
    if (this.child.connected) this.child.send({ stop: true }, (err) => err && this.child.kill('SIGTERM'));
    else this.child.kill('SIGTERM');
  }
}

// ── worker-1 as a CLI process ──────────────────────────────────────────────────────────────────

class NodeProcess extends BenchChild {
  readonly lines: string[] = [];
  #waiters: { match: RegExp; resolve: (line: string) => void }[] = [];

  constructor(
    readonly name: string,
    args: readonly string[],
  ) {
    super(spawn(process.execPath, [...cpuProfArgs(name), BIN, ...args], { env: { ...process.env, TROUPE_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => (w.match.test(line) ? (w.resolve(line), false) : true));
      }
    });
    // Its warnings and errors (TROUPE_LOG=warn) go on to our stderr, with progress.
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => process.stderr.write(chunk.replace(/^(?=.)/gm, `[${name}] `)));
  }

  waitForLine(match: RegExp): Promise<string> {
    const seen = this.lines.find((line) => match.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no line matching ${match} within ${START_TIMEOUT_MS} ms; stdout:\n${this.lines.join('\n')}`)), START_TIMEOUT_MS);
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`${this.name} exited (${code ?? signal}); stdout:\n${this.lines.join('\n')}`));
      this.child.once('exit', onExit);
      this.#waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          this.child.off('exit', onExit);
          resolve(line);
        },
      });
    });
  }
}

/**
 * Until the Controller knows worker-1: a first `true` task held by the Controller until the worker
 * has joined (waitForWorkerMs, the one way to wait for a worker), then its slots checked.
 */
async function waitForWorker(tasks: TaskClient): Promise<void> {
  const [first] = await tasks.submit({ command: 'true', selector: `name=${WORKER}`, waitForWorkerMs: START_TIMEOUT_MS });
  await tasks.finished(first!.id);
  const worker = ((await tasks.ask('executors')).executors ?? []).find((e) => e.worker === WORKER);
  if (worker?.slots !== SLOTS) throw new Error(`${WORKER} has ${worker?.slots} slots, expected ${SLOTS}`);
}

// ── the run ────────────────────────────────────────────────────────────────────────────────────

const ALL_WAYS = ['spawn', 'isolated', 'troupe', 'troupe_client', 'posix_spawn'] as const;
type Way = (typeof ALL_WAYS)[number];
/** The ways of this run: posix_spawn (tasks-posix-spawn.ts) only where it could be compiled (main() decides). */
let WAYS: readonly Way[] = ALL_WAYS;
/** `n` tasks of one way over `c` lanes, timed where they run. */
type Runner = (n: number, c: number) => Promise<{ latencies: number[]; wallMs: number; parts?: TroupeParts }>;

interface Sides {
  latencies: Record<Way, number[]>;
  wallMs: Record<Way, number>;
  blockP50: Record<Way, number[]>;
  parts: Record<'troupe' | 'troupe_client', TroupeParts>;
}

const byWay = <T>(make: () => T): Record<Way, T> => Object.fromEntries(WAYS.map((w) => [w, make()])) as Record<Way, T>;

/** The processes whose CPU counts for each way (tasks-cpu.ts), by name: pid. */
type CpuProcesses = Record<Way, () => Record<string, number | undefined>>;

async function atConcurrency(c: number, runs: Record<Way, Runner>, cpuOf: CpuProcesses): Promise<Record<string, unknown>> {
  progress(`concurrency ${c}: warmup ${WARMUP} each, then ${BLOCKS} blocks, ${N} tasks each way`);
  for (const way of WAYS) await runs[way](WARMUP, c);
  const cpu = byWay(() => undefined as CpuTally | undefined);
  for (const way of WAYS) cpu[way] = new CpuTally(cpuOf[way]);
  const sides: Sides = {
    latencies: byWay(() => []),
    wallMs: byWay(() => 0),
    blockP50: byWay(() => []),
    parts: { troupe: { submitMs: [], workerCommandMs: [] }, troupe_client: { submitMs: [], workerCommandMs: [] } },
  };
  const per = Math.ceil(N / BLOCKS);
  for (let b = 0; b < BLOCKS; b++) {
    const n = Math.min(per, N - b * per);
    if (n <= 0) break;
    // Rotate the order, so that none of the ways always follows the same one.
    const order = WAYS.map((_, i) => WAYS[(i + b) % WAYS.length]!);
    const line: string[] = [];
    for (const way of order) {
      const { latencies, wallMs, parts } = await cpu[way]!.around(n, () => runs[way](n, c));
      sides.latencies[way].push(...latencies);
      sides.wallMs[way] += wallMs;
      if (parts && (way === 'troupe' || way === 'troupe_client')) {
        sides.parts[way].submitMs.push(...parts.submitMs);
        sides.parts[way].workerCommandMs.push(...parts.workerCommandMs);
      }
      const s = summarize(latencies, wallMs);
      sides.blockP50[way].push(s.p50_ms);
      line.push(`${way} p50 ${s.p50_ms} ms ${s.tasks_per_s}/s`);
    }
    progress(`  block ${b + 1}: ${line.join('; ')}`);
  }
  const s = byWay((): Summary | undefined => undefined);
  for (const way of WAYS) s[way] = summarize(sides.latencies[way], sides.wallMs[way]);
  const posix = s.posix_spawn ? versusSpawn(s.troupe!, s.posix_spawn, sides.blockP50.troupe, sides.blockP50.posix_spawn) : undefined;
  const { spawn: spawnS, isolated: isolatedS, troupe: troupeS, troupe_client: clientS } = s as Record<Way, Summary>;
  const local = versusSpawn(troupeS, spawnS, sides.blockP50.troupe, sides.blockP50.spawn);
  const client = versusSpawn(clientS, spawnS, sides.blockP50.troupe_client, sides.blockP50.spawn);
  const cpuMs = byWay(() => null as Record<string, number> | null);
  const sleeps = byWay(() => null as Record<string, number> | null);
  // posix_spawn's process is not sampled (one per block): null.
  for (const way of WAYS) cpuMs[way] = way === 'posix_spawn' ? null : cpu[way]!.perTaskMs();
  for (const way of WAYS) sleeps[way] = way === 'posix_spawn' ? null : cpu[way]!.sleepsPerTask();
  progress(`concurrency ${c}: CPU ms per task: ${WAYS.map((w) => `${w} ${JSON.stringify(cpuMs[w])}`).join('; ')}`);
  progress(`concurrency ${c}: sleeps per task: ${WAYS.map((w) => `${w} ${JSON.stringify(sleeps[w])}`).join('; ')}`);
  progress(
    `concurrency ${c}: p50 spawn ${spawnS.p50_ms} ms, isolated ${isolatedS.p50_ms} ms, troupe ${troupeS.p50_ms} ms, troupe_client ${clientS.p50_ms} ms; ` +
      `tasks/s over spawn's: troupe ${local.ratio}, troupe_client ${client.ratio}`,
  );
  return {
    concurrency: c,
    baseline_spawn: spawnS,
    baseline_isolated: isolatedS,
    // posix_spawn from C (tasks-posix-spawn.ts): the fastest local spawn; troupe against it too.
    baseline_posix_spawn: s.posix_spawn ?? null,
    median_overhead_over_posix_spawn_ms: posix?.overhead ?? null,
    throughput_ratio_to_posix_spawn: posix?.ratio ?? null,
    troupe: troupeS,
    troupe_client: clientS,
    // Submitted on the manager (the main use case):
    median_overhead_ms: local.overhead,
    median_overhead_ms_per_block: local.perBlock,
    median_overhead_ms_median_of_blocks: local.medianOfBlocks,
    throughput_ratio: local.ratio,
    overhead_meets_target: local.overhead <= OVERHEAD_TARGET_MS,
    overhead_meets_moonshot: local.overhead <= OVERHEAD_MOONSHOT_MS,
    throughput_meets_target: local.ratio >= THROUGHPUT_TARGET_RATIO,
    // Submitted by a client node (one more hop each way, client ↔ manager):
    client_median_overhead_ms: client.overhead,
    client_median_overhead_ms_per_block: client.perBlock,
    client_median_overhead_ms_median_of_blocks: client.medianOfBlocks,
    client_throughput_ratio: client.ratio,
    client_overhead_meets_target: client.overhead <= OVERHEAD_TARGET_MS,
    client_throughput_meets_target: client.ratio >= THROUGHPUT_TARGET_RATIO,
    // troupe's messaging and actors alone, beside a spawn set up as the worker does it:
    messaging_overhead_ms: round(troupeS.p50_ms - isolatedS.p50_ms),
    messaging_throughput_ratio: round(troupeS.tasks_per_s / isolatedS.tasks_per_s),
    client_messaging_overhead_ms: round(clientS.p50_ms - isolatedS.p50_ms),
    // what the task's isolation (temp dir, own process group, cleanup) costs by itself:
    isolation_overhead_ms: round(isolatedS.p50_ms - spawnS.p50_ms),
    // Of each troupe way's latency: the submit round trip (submitter → Controller → submitter), and
    // the task's run as the worker timed it (durationMs: from making its directory to bash's exit,
    // so without the directory's removal, and started through the worker's spawner process;
    // compare with baseline_isolated):
    troupe_submit_reply_p50_ms: round(median(sides.parts.troupe.submitMs)),
    troupe_worker_command_p50_ms: round(median(sides.parts.troupe.workerCommandMs)),
    troupe_client_submit_reply_p50_ms: round(median(sides.parts.troupe_client.submitMs)),
    troupe_client_worker_command_p50_ms: round(median(sides.parts.troupe_client.workerCommandMs)),
    // CPU per task (ms) in each process a way runs in, and their total (bench/tasks-cpu.ts: every
    // thread, from /proc/PID/task/*/schedstat; null where it could not be read). bash's own CPU is in
    // none of them. troupe: the manager (this process, which also submits), the worker and its
    // spawner; troupe_client: client-1 too; spawn and isolated: the spawn driver that forks them.
    cpu_ms_per_task: cpuMs,
    // Times a thread of each process went to sleep, per task (each one a wake-up: the hops, the
    // thread pool's round trips): voluntary context switches over all its threads.
    sleeps_per_task: sleeps,
  };
}

/** Set on a signal or the watchdog: from then on abort() in main() owns the way out. */
let aborting = false;

async function main(journal: boolean): Promise<Record<string, unknown>> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-tasks-'));
  const nodes: NodeProcess[] = [];
  const drivers: Driver[] = [];
  let manager: ManagerNode | undefined;
  let tasks: TaskClient | undefined;
  // On a signal or the watchdog: SIGTERM to every child, on which each cleans up (the worker and
  // the spawn driver delete their task directories), SIGKILL to what is left after the grace.
  const abort = async (code: number) => {
    if (aborting) return;
    aborting = true;
    const children = [...nodes, ...drivers].filter((p) => p.running);
    for (const p of children) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(children.map((p) => p.exited)), sleep(ABORT_GRACE_MS)]);
    for (const p of children) p.kill();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  };
  const watchdog = setTimeout(() => {
    progress(`watchdog: the benchmark took over ${WATCHDOG_MS / 1000} s; giving up`);
    void abort(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal}: stopping`);
    void abort(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A last resort for any way out that skips the finally below (process.exit elsewhere).
  process.once('exit', () => {
    for (const node of nodes) node.kill();
    for (const driver of drivers) driver.kill();
  });
  try {
    progress('generating a throwaway PKI in', dir);
    generateCertificates({ out: dir, workers: 1, clients: 1 });
    const spawnDriver = new Driver('spawn', [String(SLOTS)]);
    drivers.push(spawnDriver);

    manager = await runManager({
      certs: dir,
      listen: { host: '127.0.0.1', port: 0 },
      localWorkers: 0,
      print: (line) => progress(`manager: ${line}`),
      membership: MEMBERSHIP_VIEW,
      log: (node) => createLogger({ node, level: 'warn' }),
      signals: [],
      ...(journal ? { stateDir: path.join(dir, 'state') } : {}),
    });
    const { port } = manager.system.address!;
    const worker = new NodeProcess(WORKER, ['worker', '--certs', dir, '--name', WORKER, '--join', `127.0.0.1:${port}`, '--slots', String(SLOTS)]);
    nodes.push(worker);
    await worker.waitForLine(/^joined the cluster through "manager"/);
    progress(`manager in this process (pid ${process.pid}) on port ${port}, ${WORKER} with ${SLOTS} slots (pid ${worker.child.pid})`);
    // On the manager, as its REPL does (src/cli/sessions.ts).
    tasks = TaskClient.start(manager.system);
    await waitForWorker(tasks);
    progress(`${WORKER} is known to the Controller`);

    const clientDriver = new Driver('client', [dir, `127.0.0.1:${port}`]);
    drivers.push(clientDriver);
    const [spawnMemoryAtStart] = await Promise.all([spawnDriver.ready, clientDriver.ready]);
    progress(`drivers ready: spawn (pid ${spawnDriver.child.pid}), client-1 (pid ${clientDriver.child.pid})`);

    const onManager = tasks;
    const posixSpawn = posixSpawnRunner(dir);
    progress(posixSpawn.why);
    WAYS = ALL_WAYS.filter((w) => w !== 'posix_spawn' || posixSpawn.run !== undefined);
    const runs: Record<Way, Runner> = {
      spawn: (n, c) => spawnDriver.run('spawn', n, c),
      isolated: (n, c) => spawnDriver.run('isolated', n, c),
      troupe: async (n, c) => {
        const parts: TroupeParts = { submitMs: [], workerCommandMs: [] };
        return { ...(await measure(troupeTask(onManager, parts), n, c)), parts };
      },
      troupe_client: (n, c) => clientDriver.run('troupe_client', n, c),
      posix_spawn: posixSpawn.run ?? (() => Promise.reject(new Error(posixSpawn.why))),
    };
    const concurrencies = [...new Set([1, SLOTS])];
    const results: Record<string, unknown>[] = [];
    // The worker's spawner: found again on each block, in case it was started anew.
    const spawner = () => childPid(worker.child.pid!, 'spawner-process') ?? childPid(worker.child.pid!, 'troupe-spawn');
    const troupeCpu = () => ({ manager: process.pid, worker: worker.child.pid, spawner: spawner() });
    const cpuOf: CpuProcesses = {
      spawn: () => ({ spawn_driver: spawnDriver.child.pid }),
      isolated: () => ({ spawn_driver: spawnDriver.child.pid }),
      troupe: troupeCpu,
      troupe_client: () => ({ client: clientDriver.child.pid, ...troupeCpu() }),
      posix_spawn: () => ({}), // a process per block: not sampled
    };
    for (const c of concurrencies) results.push(await atConcurrency(c, runs, cpuOf));

    // What the forks come from: the baselines' small process, and the cluster's processes.
    const bench = residentMiB();
    const result = {
      bench: 'tasks',
      node: process.version,
      cpus: os.availableParallelism(),
      command: COMMAND,
      slots: SLOTS,
      n: N,
      blocks: BLOCKS,
      warmup: WARMUP,
      targets: { median_overhead_ms: OVERHEAD_TARGET_MS, median_overhead_moonshot_ms: OVERHEAD_MOONSHOT_MS, throughput_ratio: THROUGHPUT_TARGET_RATIO, baseline: 'spawn' },
      bench_process_rss_mib: bench.rss_mib,
      bench_process_rss_anon_mib: bench.rss_anon_mib,
      spawn_driver_rss_mib: spawnDriver.memory?.rss_mib ?? null,
      spawn_driver_rss_anon_mib: spawnDriver.memory?.rss_anon_mib ?? null,
      // Before its first spawn: its heap grows with the garbage that spawning makes.
      spawn_driver_rss_anon_mib_at_start: spawnMemoryAtStart.rss_anon_mib,
      client_driver_rss_mib: clientDriver.memory?.rss_mib ?? null,
      by_concurrency: results,
      meets_targets: results.every((r) => r.overhead_meets_target === true && r.throughput_meets_target === true),
      client_meets_targets: results.every((r) => r.client_overhead_meets_target === true && r.client_throughput_meets_target === true),
      duration_s: round((Date.now() - started) / 1000, 1),
      journal,
    };
    return result;
  } finally {
    clearTimeout(watchdog);
    // Aborting: abort() stops everything and exits; the failures its SIGTERMs caused end here.
    if (aborting) await new Promise(() => {});
    // The drivers first (client-1 leaves while the manager is there), then the worker, so that it
    // does not spend the manager's grace reconnecting, then the manager.
    await Promise.all(drivers.map((driver) => driver.stop().catch(() => driver.kill())));
    tasks?.stop();
    for (const node of nodes) await node.stop().catch(() => node.kill());
    await manager?.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function all(): Promise<void> {
  if (JOURNAL_MODE !== 'both') {
    process.stdout.write(`${JSON.stringify(await main(JOURNAL_MODE === 'on'))}\n`);
    return;
  }
  progress('journal off:');
  const off = await main(false);
  progress('journal on:');
  const on = await main(true);
  const tps = (r: Record<string, unknown>) => (r.by_concurrency as { concurrency: number; troupe: Summary; troupe_client: Summary }[]);
  const cost = tps(off).map((o, i) => ({
    concurrency: o.concurrency,
    troupe_tasks_per_s_off: o.troupe.tasks_per_s,
    troupe_tasks_per_s_on: tps(on)[i]!.troupe.tasks_per_s,
    troupe_ratio_on_off: round(tps(on)[i]!.troupe.tasks_per_s / o.troupe.tasks_per_s),
    troupe_client_ratio_on_off: round(tps(on)[i]!.troupe_client.tasks_per_s / o.troupe_client.tasks_per_s),
    troupe_p50_ms_off: o.troupe.p50_ms,
    troupe_p50_ms_on: tps(on)[i]!.troupe.p50_ms,
  }));
  process.stdout.write(`${JSON.stringify({ bench: 'tasks', journal: 'both', journal_cost: cost, off, on })}\n`);
}

all().then(
  () => process.exit(0),
  (err: Error) => {
    progress('failed:', err.stack ?? err);
    process.exit(1);
  },
);
