/**
 * Idle benchmark: `npm run bench:idle`, or `node dist/bench/idle.js`.
 *
 * How much CPU a manager spends holding many connected, idle workers (heartbeats only). The design's
 * target: one manager holds 1,000 connected workers at under 5 % of one core while idle.
 *
 * In one run: a `troupe manager --no-repl` process alone, idle (the baseline), then the same manager
 * with W workers joined over mTLS (ClusterSystems in BENCH_IDLE_PROCS child processes of this script,
 * each holding its share, every one with its own certificate), idle. The manager's CPU is read from
 * /proc/PID/stat (user + system time) over a window of BENCH_IDLE_WINDOW_S seconds, several windows
 * each; the median is reported, as a percentage of one core.
 *
 * Knobs (environment): BENCH_IDLE_WORKERS (1000), BENCH_IDLE_PROCS (2), BENCH_IDLE_WINDOW_S (5),
 * BENCH_IDLE_WINDOWS (3). Prints one JSON object on stdout; progress goes to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { silentLogger } from '../src/log.js';
import { benchScratch, cpuOf, joinWorkers, lines, writeCertificates } from './bench-cluster.js';
import { envInt, median, progressTo, roundTo, sleep } from './bench-util.js';

const WORKERS = envInt('BENCH_IDLE_WORKERS', 1000);
const PROCS = envInt('BENCH_IDLE_PROCS', 2);
const WINDOW_S = envInt('BENCH_IDLE_WINDOW_S', 5);
const WINDOWS = envInt('BENCH_IDLE_WINDOWS', 3);
const TARGET_PERCENT = 5;
const JOIN_TIMEOUT_MS = 180_000;

const SELF = fileURLToPath(import.meta.url);
const BIN = path.join(path.dirname(SELF), '..', 'bin', 'troupe.js');

const progress = progressTo('bench:idle');
const round = (x: number, digits = 2): number => roundTo(x, digits);

/** The manager's CPU over `windows` windows of `seconds`, as % of one core: every window and the median. */
async function measure(pid: number): Promise<{ percents: number[]; median: number; rssMiB: number }> {
  const percents: number[] = [];
  for (let i = 0; i < WINDOWS; i++) {
    const before = cpuOf(pid);
    const t0 = process.hrtime.bigint();
    await sleep(WINDOW_S * 1000);
    const after = cpuOf(pid);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    percents.push(round(((after.cpuS - before.cpuS) / wallS) * 100));
  }
  return { percents, median: round(median(percents)), rssMiB: round(cpuOf(pid).rssMiB, 1) };
}

async function startManager(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BIN, 'manager', '--no-repl', '--certs', dir, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TROUPE_LOG: 'warn' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    const onLine = (line: string) => {
      const m = /listening on wss:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    };
    lines(child, 'stdout', onLine);
    lines(child, 'stderr', onLine);
    child.once('exit', (code) => reject(new Error(`the manager exited (${code}) before it listened`)));
  });
  return { child, port };
}

/** A child of this script: joins `count` workers from `first`, says `ready` when all are in, holds them. */
async function workersMain(dir: string, port: number, first: number, count: number): Promise<void> {
  const join = { host: '127.0.0.1', port };
  const log = silentLogger();
  const systems = await joinWorkers(dir, first, count, (identity) => ClusterSystem.start({ identity, join, log }));
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void Promise.all(systems.map((s) => s.shutdown())).finally(() => process.exit(0)));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--workers') {
    const [dir, port, first, count] = process.argv.slice(3);
    return workersMain(dir!, Number(port), Number(first), Number(count));
  }
  const { dir, children, cleanup } = benchScratch('troupe-bench-idle-');
  try {
    progress(`certificates for a manager and ${WORKERS} workers (one shared worker key)…`);
    writeCertificates(dir, WORKERS);

    const { child: manager, port } = await startManager(dir);
    children.push(manager);
    progress(`manager pid ${manager.pid} on port ${port}; measuring it alone, idle (${WINDOWS} × ${WINDOW_S} s)…`);
    await sleep(1000);
    const alone = await measure(manager.pid!);
    progress(`alone: ${alone.median} % (${alone.percents.join(', ')})`);

    progress(`joining ${WORKERS} workers from ${PROCS} processes…`);
    const t0 = Date.now();
    const per = Math.ceil(WORKERS / PROCS);
    const joined: Promise<void>[] = [];
    for (let p = 0; p < PROCS; p++) {
      const from = 1 + p * per;
      const count = Math.min(per, WORKERS - p * per);
      if (count <= 0) break;
      const child = spawn(process.execPath, [SELF, '--workers', dir, String(port), String(from), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      joined.push(
        new Promise<void>((resolve, reject) => {
          lines(child, 'stdout', (line) => line === 'ready' && resolve());
          child.once('exit', (code) => reject(new Error(`a worker process exited (${code}) before its workers joined`)));
        }),
      );
    }
    const timeout = sleep(JOIN_TIMEOUT_MS).then(() => Promise.reject(new Error(`the workers did not all join within ${JOIN_TIMEOUT_MS / 1000} s`)));
    await Promise.race([Promise.all(joined), timeout]);
    const joinMs = Date.now() - t0;
    progress(`all joined in ${(joinMs / 1000).toFixed(1)} s; settling, then measuring (${WINDOWS} × ${WINDOW_S} s)…`);
    await sleep(2000);
    const loaded = await measure(manager.pid!);
    progress(`with ${WORKERS}: ${loaded.median} % (${loaded.percents.join(', ')})`);

    console.log(
      JSON.stringify(
        {
          bench: 'idle',
          machine: { cpus: os.availableParallelism(), node: process.version },
          workers: WORKERS,
          window_s: WINDOW_S,
          windows: WINDOWS,
          baseline_manager_alone: { cpu_percent_median: alone.median, cpu_percent: alone.percents, rss_mib: alone.rssMiB },
          manager_with_workers: { cpu_percent_median: loaded.median, cpu_percent: loaded.percents, rss_mib: loaded.rssMiB, join_s: round(joinMs / 1000, 1) },
          per_worker_cpu_percent: round((loaded.median - alone.median) / WORKERS, 5),
          target: { cpu_percent_max: TARGET_PERCENT, met: loaded.median < TARGET_PERCENT },
        },
        null,
        2,
      ),
    );
  } finally {
    cleanup();
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench:idle] failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
