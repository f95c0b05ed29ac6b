/**
 * The child processes of bench:scale (bench/scale.ts, whose opening comment says what it measures):
 * `--workers` holds a share of the W worker nodes, `--manager` runs the manager and times its
 * watches of the workers to be killed. Each says on stdout what the bench waits for.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { runManager } from '../actors/nodes.js';
import type { CommandResult, RunCommandOptions, RunningCommand } from '../actors/process/run-command.js';
import { spawnWorker } from '../actors/tasks/worker.js';
import type { ActorRef } from '../protocols/actor-ref.js';
import type { Terminated } from '../protocols/cluster-messages.js';
import { WORKER_KEY } from '../protocols/receptionist-keys.js';
import { WORKER_TASK_MESSAGES } from '../protocols/tasks.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { silentLogger } from '../src/log.js';
import { joinWorkers } from './bench-cluster.js';

/** The command of the tasks that run until cancelled (see noop). */
export const HOLD = 'hold';
/** Wall-clock ms with sub-ms resolution, comparable between processes on this machine. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/**
 * The built-in no-op a bench worker runs instead of bash: it ends at once, exit code 0, no output.
 * The command `hold` instead runs until it is cancelled (the tasks running when workers are killed).
 */
function noop(options: RunCommandOptions): RunningCommand {
  const startedAt = Date.now();
  const ended = (outcome: CommandResult['outcome']): CommandResult => ({ exitCode: outcome === 'exited' ? 0 : null, signal: null, outcome, startedAt, durationMs: Date.now() - startedAt, stdoutBytes: 0, stderrBytes: 0, cwd: '' });
  if (options.command !== HOLD) return { pid: undefined, cwd: '', result: Promise.resolve(ended('exited')), cancel() {}, pause() {}, resume() {} };
  let cancel!: () => void;
  const result = new Promise<CommandResult>((resolve) => (cancel = () => resolve(ended('cancelled'))));
  return { pid: undefined, cwd: '', result, cancel, pause() {}, resume() {} };
}

/** How long the fleet's processes reuse one reading of the machine (see shareMachineReadings). */
export const MACHINE_READING_MS = 100;

/**
 * In a process of the simulated fleet, every worker node reads the same machine: one reading of
 * its CPU times, load and free memory serves them all for MACHINE_READING_MS. Each Worker samples
 * its usage every second, and os.cpus() alone costs about 60 µs (it reads /proc): 5,000 workers
 * took a third of a core for readings of one machine, on the manager's cores. On a real cluster
 * each worker is its own machine and reads it once a second, as before. The manager gets the same
 * reports, at the same rate: only the fleet is cheaper.
 */
export function shareMachineReadings(): void {
  const shared = <T>(read: () => T): (() => T) => {
    let at = -Infinity;
    let value!: T;
    return () => {
      const now = performance.now();
      if (now - at >= MACHINE_READING_MS) (value = read()), (at = now);
      return value;
    };
  };
  os.cpus = shared(os.cpus.bind(os));
  os.loadavg = shared(os.loadavg.bind(os));
  os.freemem = shared(os.freemem.bind(os));
}

/**
 * `--workers DIR PORT FIRST COUNT SLOTS GROUP`: joins the workers GROUP at a time (saying `joined N`
 * after each group),
 * says `ready`, holds them until SIGTERM (or SIGKILL).
 */
export async function workersMain(dir: string, port: number, first: number, count: number, slots: number, group: number): Promise<void> {
  shareMachineReadings();
  const join = { host: '127.0.0.1', port };
  const log = silentLogger();
  const tmpRoot = fs.mkdtempSync(path.join(dir, 'tmp-'));
  // Every Worker adds its exit hook (its task directories): hundreds here, on purpose.
  process.setMaxListeners(0);
  // Why a dial failed (handshake timeouts under load, refusals), counted for the progress line.
  const failures = new Map<string, number>();
  const systems = await joinWorkers(dir, first, count, async (identity) => {
    const system = await ClusterSystem.start({ identity, join, log, messages: WORKER_TASK_MESSAGES });
    system.on('failure', (err: Error & { code?: string }) => void failures.set(err.code ?? err.message, (failures.get(err.code ?? err.message) ?? 0) + 1));
    spawnWorker(system, { slots, spawner: false, tmpRoot, runCommand: noop });
    return system;
  }, (joined) => process.stdout.write(`joined ${joined} ${[...failures].map(([code, n]) => `${code}×${n}`).join(',')}\n`), group);
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void Promise.all(systems.map((s) => s.shutdown())).finally(() => process.exit(0)));
}

/**
 * `--manager DIR`: runManager, as `troupe manager --no-repl` does; prints `port N`. On stdin:
 * `watch FIRST COUNT` watches those workers' Worker actors and prints `fired T` (epoch ms) once all
 * have terminated; `stop` stops the node and exits (writing a --cpu-prof profile).
 */
export async function managerMain(dir: string): Promise<void> {
  const node = await runManager({
    certs: dir,
    listen: { host: '127.0.0.1', port: 0 },
    localWorkers: 0,
    print: (line) => {
      const m = /listening on wss:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) process.stdout.write(`port ${m[1]}\n`);
    },
    log: () => silentLogger(),
    signals: ['SIGTERM'],
  });
  const system = node.system;
  if (process.env.BENCH_SCALE_TRACE) traceManager(system);
  let fired: { left: Set<string>; last: number } | undefined;
  const watcher = system.spawn<null, Terminated>(
    (state, msg) => {
      if (msg.type === 'terminated' && fired?.left.delete(msg.ref.node)) {
        fired.last = epochMs();
        if (fired.left.size === 0) process.stdout.write(`fired ${fired.last}\n`);
      }
      return state;
    },
    'bench-watcher',
    { initialState: null },
  );
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, a, b] = line.split(' ');
    if (cmd === 'watch') {
      const names = new Set(Array.from({ length: Number(b) }, (_, i) => `worker-${Number(a) + i}`));
      const stop = system.receptionist.listing(WORKER_KEY, (entries) => {
        const refs = entries.filter((e) => names.has(e.ref.node)).map((e) => e.ref as ActorRef);
        if (refs.length < names.size) return;
        setImmediate(stop);
        fired = { left: new Set(names), last: 0 };
        for (const ref of refs) system.watch(watcher, ref);
        process.stdout.write('watching\n');
      });
    } else if (cmd === 'stop') {
      void node.stop().finally(() => process.exit(0));
    }
  });
}

/**
 * BENCH_SCALE_TRACE: once a second on stderr, the manager's event-loop lag (the longest a timer
 * waited), its CPU, the member events so far and its heap: a stall shows as lag at low CPU.
 */
function traceManager(system: ClusterSystem): void {
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const events = { up: 0, down: 0 };
  system.on('member', (e) => void (e.status === 'down' ? events.down++ : e.status === 'up' && events.up++));
  let cpu = process.cpuUsage();
  setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const ms = (ns: number) => (ns / 1e6).toFixed(0);
    process.stderr.write(`[manager] lag max ${ms(lag.max)} ms, p99 ${ms(lag.percentile(99))} ms; CPU ${((used.user + used.system) / 1e4).toFixed(0)} %; members up ${events.up}, down ${events.down}; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB\n`);
    lag.reset();
  }, 1000).unref();
}
