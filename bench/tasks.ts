/**
 * Task benchmark: `npm run bench:tasks`, or `node dist/bench/tasks.js`.
 *
 * N `true` commands, run three ways in one run, at concurrency 1 and at the worker's slots:
 *   - spawn: `/bin/bash -c true` spawned by this process (stdin ignored, see plainSpawn) and
 *     awaited to 'close' (the baseline, what the targets are measured against);
 *   - isolated: the same, but set up as the worker runs a task (actors/run-command.ts with the
 *     worker's TaskDirs): a fresh directory (made ahead) as cwd, its own session and process group
 *     (detached), a minimal environment, stdin ignored, the group SIGKILLed after the exit, the
 *     directory moved off its path (deleted behind). The plain spawn does none of that, so `troupe − isolated` is the cost of troupe's messaging and
 *     actors alone, and `isolated − spawn` the cost of the task's isolation;
 *   - troupe: through a real cluster on loopback with mTLS: a manager and worker-1 as `troupe`
 *     processes (the CLI), and this process as client-1 submitting through a TaskClient. Latency is
 *     submit → finished as the client sees it.
 * Closed loop: `c` lanes, each starting its next task when its last one has finished. The three
 * are alternated in blocks (in a rotating order) so the machine's noise falls on all alike.
 * Prints one JSON object on stdout; progress goes to stderr.
 *
 * Targets (per concurrency): median overhead (troupe p50 − spawn p50) ≤ 0.3 ms; throughput ≥ 90 %
 * of the plain spawn's.
 *
 * Knobs (environment): BENCH_TASKS_N (tasks measured per way and concurrency, default 2000),
 * BENCH_SLOTS (the worker's slots and the second concurrency, default os.availableParallelism()),
 * BENCH_TASKS_BLOCKS (4), BENCH_TASKS_WARMUP (tasks per way and concurrency before measuring, 100).
 * BENCH_CPU_PROF_DIR: run the manager and the worker with `--cpu-prof` into that directory (they are
 * stopped with SIGTERM, so they write their profiles; Node refuses --cpu-prof in NODE_OPTIONS). For
 * this process's own profile: `node --cpu-prof dist/bench/tasks.js`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { INHERITED_ENV_KEYS } from '../actors/run-command.js';
import { TaskDirs } from '../actors/task-dirs.js';
import { WORKER_KEY } from '../actors/worker-pool.js';
import { generateCertificates, loadIdentity } from '../certs/index.js';
import { CLIENT_TASK_MESSAGES } from '../protocols/tasks.js';
import { TaskClient } from '../src/client/task-client.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { silentLogger } from '../src/log.js';
import { distribution, envInt, median, progressTo, roundTo, sleep } from './bench-util.js';

const N = envInt('BENCH_TASKS_N', 2_000);
const SLOTS = envInt('BENCH_SLOTS', os.availableParallelism());
const BLOCKS = envInt('BENCH_TASKS_BLOCKS', 4);
const WARMUP = envInt('BENCH_TASKS_WARMUP', 100);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR ?? '';
const COMMAND = 'true';
const SHELL = '/bin/bash';
/** Targets from the issue: ms over the plain spawn's p50, and a share of its tasks/s. */
const OVERHEAD_TARGET_MS = 0.3;
const THROUGHPUT_TARGET_RATIO = 0.9;
const START_TIMEOUT_MS = 15_000;
/** SIGTERM → SIGKILL grace for the manager and the worker at the end: 5 seconds. */
const STOP_GRACE_MS = 5_000;
const WATCHDOG_MS = 180_000;

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'troupe.js');
const MANAGER = 'manager';
const WORKER = 'worker-1';
const CLIENT = 'client-1';

const progress = progressTo('bench:tasks');

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const round = (x: number, digits = 3): number => roundTo(x, digits);

interface Summary {
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  tasks_per_s: number;
  n: number;
}

function summarize(latencies: readonly number[], wallMs: number): Summary {
  const d = distribution(latencies);
  return { p50_ms: round(d.at(0.5)), p99_ms: round(d.at(0.99)), mean_ms: round(d.mean), tasks_per_s: round((d.n * 1000) / wallMs, 1), n: d.n };
}

// ── the ways of running one task ───────────────────────────────────────────────────────────────

type RunOne = () => Promise<void>;

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${SHELL} -c ${COMMAND} ended with ${code ?? signal}`))));
  });
}

/**
 * Our environment, less what would make bash read ~/.bashrc (below): SSH_CLIENT and SSH2_CLIENT.
 * The worker gives a command a minimal environment, so it never has them.
 */
const PLAIN_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SSH_CLIENT' && k !== 'SSH2_CLIENT'));

/**
 * The baseline: a plain spawn, awaited to 'close'. With stdin ignored, as the worker runs a
 * command: Node's default stdin is a socketpair, which bash takes for a remote shell's connection,
 * and a bash started below SHLVL 2 (our SHLVL can be 0 or unset, depending on who started us) then
 * sources /etc/bash.bashrc and ~/.bashrc, which made this "baseline" cost ~100 ms a task here.
 */
const plainSpawn: RunOne = () => exited(spawn(SHELL, ['-c', COMMAND], { env: PLAIN_ENV, stdio: ['ignore', 'pipe', 'pipe'] }));

/** The task environment the worker gives a command: INHERITED_ENV_KEYS from ours. */
const TASK_ENV: Record<string, string> = Object.fromEntries(INHERITED_ENV_KEYS.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));

/** Task directories as the worker has them (actors/task-dirs.ts): made ahead, deleted behind. */
const TASK_DIRS = new TaskDirs(os.tmpdir(), { ahead: SLOTS });

/** As the worker sets a task up and tears it down (actors/run-command.ts with `dirs`), without any messaging. */
const isolatedSpawn: RunOne = async () => {
  const cwd = TASK_DIRS.take();
  try {
    const child = spawn(SHELL, ['-c', COMMAND], { cwd, env: TASK_ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    await exited(child);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: the group is already empty, as it is for `true`.
    }
  } finally {
    await TASK_DIRS.discard(cwd);
  }
};

/** Where a troupe task's time goes: the submit round trip, and the run as the worker timed it. */
interface TroupeParts {
  submitMs: number[];
  workerCommandMs: number[];
}

function troupeTask(tasks: TaskClient, parts: TroupeParts): RunOne {
  return async () => {
    const t0 = nowMs();
    const [task] = await tasks.submit({ command: COMMAND });
    const submitMs = nowMs() - t0;
    const done = await tasks.finished(task!.id);
    if (done.status !== 'succeeded') throw new Error(`task ${done.id} ${done.status} (exit ${done.exitCode}, ${done.error ?? 'no error'})`);
    parts.submitMs.push(submitMs);
    parts.workerCommandMs.push(done.durationMs ?? NaN);
  };
}

/** `n` tasks over `c` closed-loop lanes; each task's latency in ms, and the wall time. */
async function measure(run: RunOne, n: number, c: number): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      const t0 = nowMs();
      await run();
      latencies.push(nowMs() - t0);
    }
  };
  const t0 = nowMs();
  await Promise.all(Array.from({ length: Math.min(c, n) }, lane));
  return { latencies, wallMs: nowMs() - t0 };
}

// ── the cluster: manager and worker-1 as CLI processes ────────────────────────────────────────

class NodeProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<void>;
  #waiters: { match: RegExp; resolve: (line: string) => void }[] = [];

  constructor(
    readonly name: string,
    args: readonly string[],
  ) {
    const profile = CPU_PROF_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}.cpuprofile`];
    this.child = spawn(process.execPath, [...profile, BIN, ...args], { env: { ...process.env, TROUPE_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
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

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM (a node stops cleanly and writes any --cpu-prof profile), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** Until the Controller lists worker-1 among its executors (the receptionist listing comes first). */
async function waitForWorker(system: ClusterSystem, tasks: TaskClient): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = system.receptionist.listing(WORKER_KEY, (entries) => {
      if (entries.some((e) => e.ref.node === WORKER)) {
        stop();
        resolve();
      }
    });
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const executors = (await tasks.ask('executors')).executors ?? [];
    const worker = executors.find((e) => e.worker === WORKER);
    if (worker) {
      if (worker.slots !== SLOTS) throw new Error(`${WORKER} has ${worker.slots} slots, expected ${SLOTS}`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`the Controller does not know ${WORKER} after ${START_TIMEOUT_MS} ms`);
    await sleep(20);
  }
}

// ── the run ────────────────────────────────────────────────────────────────────────────────────

const WAYS = ['spawn', 'isolated', 'troupe'] as const;
type Way = (typeof WAYS)[number];

interface Sides {
  latencies: Record<Way, number[]>;
  wallMs: Record<Way, number>;
  blockP50: Record<Way, number[]>;
}

async function atConcurrency(c: number, runs: Record<Way, RunOne>, parts: TroupeParts): Promise<Record<string, unknown>> {
  progress(`concurrency ${c}: warmup ${WARMUP} each, then ${BLOCKS} blocks, ${N} tasks each way`);
  for (const way of WAYS) await measure(runs[way], WARMUP, c);
  parts.submitMs.length = 0;
  parts.workerCommandMs.length = 0;
  const sides: Sides = {
    latencies: { spawn: [], isolated: [], troupe: [] },
    wallMs: { spawn: 0, isolated: 0, troupe: 0 },
    blockP50: { spawn: [], isolated: [], troupe: [] },
  };
  const per = Math.ceil(N / BLOCKS);
  for (let b = 0; b < BLOCKS; b++) {
    const n = Math.min(per, N - b * per);
    if (n <= 0) break;
    // Rotate the order, so that none of the three always follows the same one.
    const order = WAYS.map((_, i) => WAYS[(i + b) % WAYS.length]!);
    const line: string[] = [];
    for (const way of order) {
      const { latencies, wallMs } = await measure(runs[way], n, c);
      sides.latencies[way].push(...latencies);
      sides.wallMs[way] += wallMs;
      const s = summarize(latencies, wallMs);
      sides.blockP50[way].push(s.p50_ms);
      line.push(`${way} p50 ${s.p50_ms} ms ${s.tasks_per_s}/s`);
    }
    progress(`  block ${b + 1}: ${line.join('; ')}`);
  }
  const spawnS = summarize(sides.latencies.spawn, sides.wallMs.spawn);
  const isolatedS = summarize(sides.latencies.isolated, sides.wallMs.isolated);
  const troupeS = summarize(sides.latencies.troupe, sides.wallMs.troupe);
  const overhead = round(troupeS.p50_ms - spawnS.p50_ms);
  const ratio = round(troupeS.tasks_per_s / spawnS.tasks_per_s);
  const perBlockOverhead = sides.blockP50.troupe.map((t, i) => round(t - sides.blockP50.spawn[i]!));
  progress(`concurrency ${c}: spawn p50 ${spawnS.p50_ms} ms, isolated ${isolatedS.p50_ms} ms, troupe ${troupeS.p50_ms} ms; troupe/spawn tasks/s ${ratio}`);
  return {
    concurrency: c,
    baseline_spawn: spawnS,
    baseline_isolated: isolatedS,
    troupe: troupeS,
    median_overhead_ms: overhead,
    median_overhead_ms_per_block: perBlockOverhead,
    median_overhead_ms_median_of_blocks: round(median(perBlockOverhead)),
    throughput_ratio: ratio,
    overhead_meets_target: overhead <= OVERHEAD_TARGET_MS,
    throughput_meets_target: ratio >= THROUGHPUT_TARGET_RATIO,
    // troupe's messaging and actors alone, beside a spawn set up as the worker does it:
    messaging_overhead_ms: round(troupeS.p50_ms - isolatedS.p50_ms),
    messaging_throughput_ratio: round(troupeS.tasks_per_s / isolatedS.tasks_per_s),
    // what the task's isolation (temp dir, own process group, cleanup) costs by itself:
    isolation_overhead_ms: round(isolatedS.p50_ms - spawnS.p50_ms),
    // of troupe's latency: the submit round trip (client → Controller → client), and the task's
    // run as the worker timed it (durationMs: from making its directory to bash's exit, so without
    // the directory's removal; compare with baseline_isolated):
    troupe_submit_reply_p50_ms: round(median(parts.submitMs)),
    troupe_worker_command_p50_ms: round(median(parts.workerCommandMs)),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-tasks-'));
  const nodes: NodeProcess[] = [];
  let client: ClusterSystem | undefined;
  const killAll = () => {
    for (const node of nodes) node.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const watchdog = setTimeout(() => {
    progress(`watchdog: the benchmark took over ${WATCHDOG_MS / 1000} s; giving up`);
    killAll();
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal}: stopping`);
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A last resort for any way out that skips the finally below (process.exit elsewhere).
  process.once('exit', () => {
    for (const node of nodes) node.kill();
  });
  try {
    progress('generating a throwaway PKI in', dir);
    generateCertificates({ out: dir, workers: 1, clients: 1 });

    const manager = new NodeProcess(MANAGER, ['manager', '--no-repl', '--certs', dir, '--host', '127.0.0.1', '--port', '0']);
    nodes.push(manager);
    const listening = await manager.waitForLine(/listening on wss:\/\/127\.0\.0\.1:\d+ /);
    const port = Number(/:(\d+) \(certificates/.exec(listening)![1]);
    const worker = new NodeProcess(WORKER, ['worker', '--certs', dir, '--name', WORKER, '--join', `127.0.0.1:${port}`, '--slots', String(SLOTS)]);
    nodes.push(worker);
    await worker.waitForLine(/^joined the cluster through "manager"/);
    progress(`manager on port ${port} (pid ${manager.child.pid}), ${WORKER} with ${SLOTS} slots (pid ${worker.child.pid})`);

    client = await ClusterSystem.start({ identity: loadIdentity({ dir, name: CLIENT }), join: { host: '127.0.0.1', port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
    await client.ready();
    const tasks = TaskClient.start(client);
    await waitForWorker(client, tasks);
    progress(`${WORKER} is known to the Controller`);

    const parts: TroupeParts = { submitMs: [], workerCommandMs: [] };
    const runs: Record<Way, RunOne> = { spawn: plainSpawn, isolated: isolatedSpawn, troupe: troupeTask(tasks, parts) };
    const concurrencies = [...new Set([1, SLOTS])];
    const results: Record<string, unknown>[] = [];
    for (const c of concurrencies) results.push(await atConcurrency(c, runs, parts));

    const result = {
      bench: 'tasks',
      node: process.version,
      cpus: os.availableParallelism(),
      command: COMMAND,
      slots: SLOTS,
      n: N,
      blocks: BLOCKS,
      warmup: WARMUP,
      targets: { median_overhead_ms: OVERHEAD_TARGET_MS, throughput_ratio: THROUGHPUT_TARGET_RATIO, baseline: 'spawn' },
      by_concurrency: results,
      meets_targets: results.every((r) => r.overhead_meets_target === true && r.throughput_meets_target === true),
      duration_s: round((Date.now() - started) / 1000, 1),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    clearTimeout(watchdog);
    await client?.shutdown().catch(() => {});
    // The worker first, so that it does not spend the manager's grace reconnecting.
    for (const node of [...nodes].reverse()) await node.stop().catch(() => node.kill());
    fs.rmSync(dir, { recursive: true, force: true });
    TASK_DIRS.close();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    progress('failed:', err.stack ?? err);
    process.exit(1);
  },
);
