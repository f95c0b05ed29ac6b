/**
 * The task benchmark's child processes (see tasks.ts, which forks them): the side of a way that must
 * not run in the bench process itself.
 *
 *   tasks-driver.js spawn SLOTS               the `spawn` and `isolated` ways
 *   tasks-driver.js client CERTS HOST:PORT    the `troupe_client` way, as client-1
 *
 * `spawn` loads only Node's own modules, bench-util.js and actors/task-dirs.js (with run-command.js,
 * spawner.js, protocols/spawner.js and src/errors.js, which import nothing else): fork() cost grows
 * with the parent's resident anonymous memory, so the baseline must fork from a process as small as
 * a plain Node program, not from one that carries a cluster. `client` imports the cluster on demand.
 *
 * Protocol, over fork's IPC channel (serialization 'advanced'): the driver sends `{ ready }` once set
 * up (client: joined the manager). The parent then sends `{ way, n, c }`, one at a time; the driver
 * runs `n` tasks over `c` closed-loop lanes (timed here: IPC is not in the latencies) and replies
 * `{ latencies, wallMs, memory, parts? }`, or `{ error }`. `{ stop: true }`, the channel closing,
 * SIGINT or SIGTERM end it, even mid-run: it cleans up (TaskDirs.close() and the directories of tasks
 * in flight, or the client's shutdown) and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../actors/process/run-command.js';
import { TaskDirs } from '../actors/process/task-dirs.js';
import type { TaskClient } from '../actors/tasks/task-client.js';
import { measure, nowMs, residentMiB } from './bench-util.js';

export const COMMAND = 'true';
const SHELL = '/bin/bash';
const CLIENT = 'client-1';

export type DriverWay = 'spawn' | 'isolated' | 'troupe_client';
export type ToDriver = { way: DriverWay; n: number; c: number } | { stop: true };
export type Memory = ReturnType<typeof residentMiB>;
/** Where a troupe task's time goes: the submit round trip, and the run as the worker timed it. */
export interface TroupeParts {
  submitMs: number[];
  workerCommandMs: number[];
}
export interface RunReply {
  latencies: number[];
  wallMs: number;
  memory: Memory;
  parts?: TroupeParts;
}
export type FromDriver = { ready: true; memory: Memory } | RunReply | { error: string };

type RunOne = () => Promise<void>;

/** One troupe task through `tasks`: submit `true`, await its end, which must be a success. */
export function troupeTask(tasks: TaskClient, parts: TroupeParts): RunOne {
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

// ── spawn: the baselines ───────────────────────────────────────────────────────────────────────

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
const plainEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SSH_CLIENT' && k !== 'SSH2_CLIENT'));

function spawnWays(slots: number): { runs: Partial<Record<DriverWay, RunOne>>; close(): void } {
  const env = plainEnv();
  /**
   * The baseline: a plain spawn, awaited to 'close'. With stdin ignored, as the worker runs
   * a command: Node's default stdin is a socketpair, which bash takes for a remote shell's
   * connection, and a bash started below SHLVL 2 (our SHLVL can be 0 or unset, depending on who
   * started us) then sources /etc/bash.bashrc and ~/.bashrc, which made this "baseline" cost
   * ~100 ms a task here.
   */
  const plain: RunOne = () => exited(spawn(SHELL, ['-c', COMMAND], { env, stdio: ['ignore', 'pipe', 'pipe'] }));

  /** Task directories as the worker has them (actors/process/task-dirs.ts): made ahead, deleted behind. */
  const dirs = new TaskDirs(os.tmpdir(), { ahead: slots });
  /**
   * As the worker runs a task, without any messaging: runCommand with the worker's TaskDirs, forking
   * from this small process (as the worker's spawner does). A task in flight when we exit is ended,
   * and its directory removed, by runCommand itself.
   */
  const isolated: RunOne = async () => {
    const r = await runCommand({ command: COMMAND, dirs, onOutput: () => {} }).result;
    if (r.exitCode !== 0) throw new Error(`${SHELL} -c ${COMMAND} ended with ${r.exitCode ?? r.signal ?? r.error}`);
  };
  return { runs: { spawn: plain, isolated }, close: () => dirs.close() };
}

// ── client: client-1 joined to the bench's manager ─────────────────────────────────────────────

async function clientWay(certs: string, target: string): Promise<{ runs: Partial<Record<DriverWay, RunOne>>; parts: TroupeParts; close(): Promise<void> }> {
  const [{ loadIdentity }, { CLIENT_TASK_MESSAGES }, { TaskClient }, { ClusterSystem }, { silentLogger }] = await Promise.all([
    import('../certs/index.js'),
    import('../protocols/tasks.js'),
    import('../actors/tasks/task-client.js'),
    import('../src/cluster/cluster-system.js'),
    import('../src/log.js'),
  ]);
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const system = await ClusterSystem.start({ identity: loadIdentity({ dir: certs, name: CLIENT }), join: { host, port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
  await system.ready();
  const tasks = TaskClient.start(system);
  const parts: TroupeParts = { submitMs: [], workerCommandMs: [] };
  return {
    runs: { troupe_client: troupeTask(tasks, parts) },
    parts,
    close: async () => {
      tasks.stop();
      await system.shutdown();
    },
  };
}

// ── the driver's loop ──────────────────────────────────────────────────────────────────────────

async function drive(role: string, args: readonly string[]): Promise<void> {
  const send = (msg: FromDriver) => process.send!(msg);
  let side: { runs: Partial<Record<DriverWay, RunOne>>; parts?: TroupeParts; close(): void | Promise<void> };
  if (role === 'spawn') side = spawnWays(Number(args[0]));
  else if (role === 'client') side = await clientWay(args[0]!, args[1]!);
  else throw new TypeError(`tasks-driver: role must be spawn or client, got ${JSON.stringify(role)}`);

  let ending = false;
  const end = async (code: number) => {
    if (ending) return;
    ending = true;
    await Promise.resolve(side.close()).catch(() => {});
    process.exit(code);
  };
  process.on('message', (msg: ToDriver) => {
    if ('stop' in msg) return void end(0);
    const run = side.runs[msg.way];
    if (run === undefined) return send({ error: `the ${role} driver does not run the ${msg.way} way` });
    if (side.parts) {
      side.parts.submitMs = [];
      side.parts.workerCommandMs = [];
    }
    measure(run, msg.n, msg.c).then(
      ({ latencies, wallMs }) => send({ latencies, wallMs, memory: residentMiB(), ...(side.parts ? { parts: side.parts } : {}) }),
      (err: Error) => send({ error: err.stack ?? String(err) }),
    );
  });
  process.once('disconnect', () => void end(0));
  process.once('SIGINT', () => void end(130));
  process.once('SIGTERM', () => void end(143));
  send({ ready: true, memory: residentMiB() });
}

// tasks.ts imports troupeTask and the types from here; only a forked driver runs.
if (process.argv[1] !== undefined && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url))) {
  if (process.send === undefined) {
    process.stderr.write('tasks-driver: run by tasks.ts through fork(), with an IPC channel\n');
    process.exit(2);
  }
  drive(process.argv[2] ?? '', process.argv.slice(3)).catch((err: Error) => {
    process.stderr.write(`[bench:tasks ${process.argv[2]} driver] failed: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}
