/**
 * The Worker (one per worker node) and its Executors (one per task).
 *
 * The Worker checks in with the receptionist under `worker` with what it is (name, tags, platform,
 * arch, cpus, memory, slots), takes `work` up to its slots, runs each task in an Executor child, and
 * reports resource usage every second to the pool that introduced itself with `poolHello`.
 *
 * Output goes straight from the Executor to the Controller (`reportTo`), chunk by chunk, in order.
 * Reading from the child pauses while the link to the manager is congested and while the Controller
 * asks it to (`throttle`: a subscriber is slow): the command then blocks on its full pipe, and
 * nothing is buffered without bound.
 *
 * Without a manager (it is down, or restarting), each running task's output is held, up to
 * `maxHeldOutputBytes` (DEFAULT_MAX_HELD_OUTPUT_BYTES) per task, and the command reads on; past the
 * bound the command is paused (it blocks on its pipe) rather than any output dropped. When a pool
 * says hello (the manager is back), the worker tells it what runs, and sends a task's held output
 * once the Controller has taken the task in (its `throttle` go-ahead, so no chunk arrives before the
 * task is known) and one of the task's subscribers is back in the cluster (at most
 * DEFAULT_SUBSCRIBER_WAIT_MS after the hello), then the task's result. What was written to a
 * connection that then broke (in the socket when the manager died) is lost with it, so the last
 * chunks sent of each task (the same bound) are kept and sent again after the hello, ahead of the
 * held ones; a result not yet acknowledged waits behind them (its task reported as running again).
 * Chunks keep their `seq`: the Controller and the subscribers drop repeats and tell gaps. Results
 * are kept until the Controller acknowledges them, so nothing finished is lost.
 */
import os from 'node:os';
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import type { CancelWork, PoolHello, ResultAck, Throttle, Usage, Work, WorkResult, WorkSpec } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, settingError } from '../../src/errors.js';
import { runCommand, type CommandResult, type RunningCommand } from '../process/run-command.js';
import { Spawner } from '../process/spawner.js';
import { TaskDirs } from '../process/task-dirs.js';
import { WORKER_KEY } from '../../protocols/receptionist-keys.js';

export interface WorkerOptions {
  /** Tasks run at once; default: the number of cpus. */
  slots?: number;
  tags?: readonly string[];
  /** SIGTERM → SIGKILL grace when a task is cancelled or times out. */
  killGraceMs?: number;
  usageIntervalMs?: number;
  /** Where each task's temporary directory is made; default: the OS's. */
  tmpRoot?: string;
  /**
   * Start commands through a spawner process (actors/process/spawner.ts): a fork from it costs less than
   * one from the worker, and it kills the worker's commands if the worker is SIGKILLed. Default: one
   * of the Worker's own, closed when it stops; a Spawner given here is shared and left open; false:
   * fork from this process.
   */
  spawner?: Spawner | false;
  /** See DEFAULT_MAX_HELD_OUTPUT_BYTES. */
  maxHeldOutputBytes?: number;
}

export const DEFAULT_USAGE_INTERVAL_MS = 1000;
/**
 * Output held per task while there is no manager to send it to: 4 MiB. More lets a command run on
 * through a longer outage without blocking; each running task may hold this much memory.
 */
export const DEFAULT_MAX_HELD_OUTPUT_BYTES = 4 * 1024 * 1024;
/**
 * After a manager restart, how long a task's held output waits for one of its subscribers (a
 * `troupe run` redialling too) to be back before it is sent anyway: 10 seconds.
 */
export const DEFAULT_SUBSCRIBER_WAIT_MS = 10_000;
/** At most this many sent chunks are kept per task for a resend (besides the byte bound). */
const MAX_KEPT_CHUNKS = 4096;

type WorkerMessage = Work | CancelWork | PoolHello | ResultAck | Throttle | MemberEvent;

interface Attachment {
  pool: ActorRef;
  reportTo: ActorRef;
}

type OutputMsg = { type: 'workOutput'; id: string; stream: 'stdout' | 'stderr'; seq: number; data: Buffer };

/** One running task: its command, and the output it holds while it may not send. */
class Execution {
  readonly startedAt = Date.now();
  held: OutputMsg[] = [];
  heldBytes = 0;
  /**
   * The last chunks sent (up to the same bound): a connection that breaks loses what it had not
   * yet delivered, so after a pool's hello these are sent again; the Controller drops repeats by seq.
   */
  retained: OutputMsg[] = [];
  retainedBytes = 0;
  throttled = false;
  /** Since a pool's hello: output waits for the Controller's go-ahead (a `throttle` with paused false). */
  awaitingGo = false;
  /** Since a pool's hello: output waits for a subscriber to be back, until this time (ms). */
  subscribersBy = 0;
  /** The command is over; called (to send the result) once the held output is sent. */
  ended: (() => void) | undefined;
  #waiting = false;
  run!: RunningCommand;

  constructor(
    readonly spec: WorkSpec,
    readonly subscribers: readonly ActorRef[],
    private readonly system: ClusterSystem,
    private readonly target: () => ActorRef | undefined,
    private readonly maxHeldBytes: number,
  ) {}

  onOutput(stream: 'stdout' | 'stderr', data: Buffer, seq: number): void {
    const msg = { type: 'workOutput' as const, id: this.spec.id, stream, seq, data };
    const to = this.target();
    if (to && this.held.length === 0 && this.#mayDispatch()) {
      this.#send(to, msg);
      this.#pauseIfCongested(to);
      return;
    }
    this.held.push(msg);
    this.heldBytes += data.length;
    // Asked to pause (or congested): at once. Without a manager to send to: past the bound.
    if ((to && this.throttled) || this.heldBytes >= this.maxHeldBytes) this.run.pause();
  }

  /** A (new) pool said hello: what the old Controller asked is void; wait for the new one's go-ahead. */
  rejoined(subscribersBy: number): void {
    // What was sent before may not have arrived: send it again, ahead of what was held.
    this.held = [...this.retained, ...this.held];
    this.heldBytes += this.retainedBytes;
    this.retained = [];
    this.retainedBytes = 0;
    this.throttled = false;
    this.awaitingGo = true;
    this.subscribersBy = subscribersBy;
  }

  /** Sends what was held and reads on, if it may; then the result, if the command is over. */
  resume(): void {
    const to = this.target();
    if (!to || this.#waiting || !this.#mayDispatch()) return;
    while (this.held.length > 0) {
      const msg = this.held.shift()!;
      this.heldBytes -= msg.data.length;
      this.#send(to, msg);
      if (this.system.isCongested(to.node)) return this.#pauseIfCongested(to);
    }
    if (this.ended) this.ended();
    else this.run.resume();
  }

  #send(to: ActorRef, msg: OutputMsg): void {
    this.system.dispatch(to, msg);
    this.retained.push(msg);
    this.retainedBytes += msg.data.length;
    while (this.retained.length > 0 && (this.retainedBytes > this.maxHeldBytes || this.retained.length > MAX_KEPT_CHUNKS)) {
      this.retainedBytes -= this.retained.shift()!.data.length;
    }
  }

  #mayDispatch(): boolean {
    if (this.throttled || this.awaitingGo) return false;
    if (this.subscribersBy === 0 || this.subscribers.length === 0) return true;
    if (Date.now() >= this.subscribersBy || this.subscribers.some((s) => this.system.isAlive(s))) {
      this.subscribersBy = 0;
      return true;
    }
    return false;
  }

  #pauseIfCongested(to: ActorRef): void {
    if (!this.system.isCongested(to.node)) return;
    this.run.pause();
    this.#waiting = true;
    void this.system.whenWritable(to.node).then(() => {
      this.#waiting = false;
      this.resume();
    });
  }
}

export function spawnWorker(system: ClusterSystem, options: WorkerOptions = {}): ActorRef {
  const slots = options.slots ?? os.availableParallelism();
  const maxHeldOutputBytes = options.maxHeldOutputBytes ?? DEFAULT_MAX_HELD_OUTPUT_BYTES;
  if (!Number.isSafeInteger(maxHeldOutputBytes) || maxHeldOutputBytes < 0) throw settingError('maxHeldOutputBytes', maxHeldOutputBytes, 'a whole number of bytes ≥ 0');
  const tags = [...(options.tags ?? [])];
  const running = new Map<string, Execution>();
  const unacked = new Map<string, { result: WorkResult; task: WorkSpec; subscribers: ActorRef[]; execution: Execution }>();
  let attached: Attachment | undefined;
  const target = () => attached?.reportTo;
  const sampler = new UsageSampler();
  // Task directories made ahead (one per slot) and deleted behind, off the tasks' path. A root that
  // cannot be used now is left to each task to report (runCommand makes its own directory then).
  let dirs: TaskDirs | undefined;
  try {
    dirs = new TaskDirs(options.tmpRoot ?? os.tmpdir(), { ahead: Math.max(1, slots), owner: system.node });
  } catch {
    dirs = undefined;
  }
  const ownSpawner = options.spawner === undefined;
  const spawner = options.spawner === false ? undefined : (options.spawner ?? new Spawner());

  const ref = system.spawn<null, WorkerMessage>(
    (state, msg, ctx) => {
      switch (msg.type) {
        case 'poolHello': {
          attached = { pool: msg.pool, reportTo: msg.reportTo };
          const subscribersBy = Date.now() + DEFAULT_SUBSCRIBER_WAIT_MS;
          // A result not yet acknowledged may have gone with the output before it: the task is
          // reported as running again, its output sent again, then its result.
          for (const [id, u] of unacked) {
            if (u.execution.retained.length === 0) continue;
            unacked.delete(id);
            running.set(id, u.execution);
            u.execution.ended = () => {
              u.execution.ended = undefined;
              running.delete(id);
              unacked.set(id, u);
              const to = target();
              if (to) system.dispatch(to, { type: 'workResult', result: u.result });
            };
          }
          for (const e of running.values()) e.rejoined(subscribersBy);
          if (running.size > 0) setTimeout(resumeAll, DEFAULT_SUBSCRIBER_WAIT_MS).unref();
          system.dispatch(msg.pool, {
            type: 'workerState',
            worker: system.node,
            running: [...running.values()].map((e) => ({ task: e.spec, startedAt: e.startedAt, subscribers: [...e.subscribers] })),
            finished: [...unacked.values()].map(({ result, task, subscribers }) => ({ result, task, subscribers })),
          });
          // A first usage report at once: the pool knows this worker's load from the start.
          system.dispatch(msg.pool, { type: 'workerUsage', usage: sampler.sample(system.node, running.size, slots) });
          break;
        }
        case 'member':
          // The manager gone (or a new one not yet introduced): hold output until a pool says hello.
          if (msg.role === 'manager' && msg.status !== 'up' && attached?.pool.node === msg.node) attached = undefined;
          // A subscriber back after a manager restart: what waited for it goes now.
          if (msg.status === 'up' && msg.role !== 'worker') resumeAll();
          break;
        case 'work':
          start(msg, ctx.ref);
          break;
        case 'cancelWork':
          running.get(msg.id)?.run.cancel();
          break;
        case 'throttle': {
          const e = running.get(msg.id);
          if (e) {
            e.throttled = msg.paused;
            if (!msg.paused) {
              e.awaitingGo = false;
              e.resume();
            }
          }
          break;
        }
        case 'resultAck':
          unacked.delete(msg.id);
          break;
      }
      return state;
    },
    'worker',
    {
      initialState: null,
      onCrash: 'resume',
      afterStop: () => {
        clearInterval(usageTimer);
        process.off('exit', closeDirs);
        for (const e of running.values()) e.run.cancel();
        // Spares and trash go now; a cancelled task's directory, when it ends, the usual way.
        dirs?.close();
        // The spawner kills what it still runs (the cancels above have not had their grace) and exits.
        if (ownSpawner) spawner?.close();
      },
    },
  );

  function start(msg: Work, self: ActorRef): void {
    const { task } = msg;
    if (running.has(task.id) || unacked.has(task.id)) return;
    if (running.size >= slots) {
      if (attached) system.dispatch(attached.pool, { type: 'workRefused', id: task.id, code: ErrorCodes.WORKER_BUSY, reason: `all ${slots} slots busy` });
      return;
    }
    const execution = new Execution(task, msg.subscribers, system, target, maxHeldOutputBytes);
    running.set(task.id, execution);
    execution.run = runCommand({
      command: task.command,
      // Ours last: a task can tell where it runs and as what, and cannot be told otherwise.
      env: { ...task.env, TROUPE_WORKER: system.node, TROUPE_TASK_ID: task.id, TROUPE_TASK_ATTEMPT: String(msg.attempt ?? 1) },
      timeoutMs: task.timeoutMs,
      killGraceMs: options.killGraceMs,
      tmpRoot: options.tmpRoot,
      dirs,
      spawner,
      onOutput: (stream, data, seq) => execution.onOutput(stream, data, seq),
    });
    // The Executor: one child actor per task, alive while its command runs.
    const executor = system.spawn<null, { type: 'cancel' }>(
      (state, m) => {
        if (m.type === 'cancel') execution.run.cancel();
        return state;
      },
      `executor-${task.id}`,
      { parent: self, initialState: null, onCrash: 'resume' },
    );
    void execution.run.result.then((r) => {
      const finish = () => {
        execution.ended = undefined;
        running.delete(task.id);
        const result = toWorkResult(task.id, r);
        unacked.set(task.id, { result, task, subscribers: [...msg.subscribers], execution });
        const to = target();
        if (to) system.dispatch(to, { type: 'workResult', result });
        system.stop(executor);
      };
      // Output held (no manager, or not yet its go-ahead) goes first; until then the task still runs here.
      if (execution.held.length === 0) finish();
      else execution.ended = finish;
    });
  }

  // A worker process that exits (even without stopping this actor) takes its tasks with it:
  // runCommand kills them and removes their directories; the spares and the trash go here. Even a
  // SIGKILLed worker does not leave its commands running: its spawner sees the IPC channel close.
  const closeDirs = () => dirs?.close();
  const resumeAll = () => {
    for (const e of running.values()) e.resume();
  };
  process.on('exit', closeDirs);

  const usageTimer = setInterval(() => {
    const usage = sampler.sample(system.node, running.size, slots);
    if (attached) system.dispatch(attached.pool, { type: 'workerUsage', usage });
  }, options.usageIntervalMs ?? DEFAULT_USAGE_INTERVAL_MS);
  usageTimer.unref();

  system.subscribeMembership(ref);
  system.receptionist.checkIn(WORKER_KEY, ref, {
    name: system.node,
    tags,
    platform: process.platform,
    arch: process.arch,
    cpus: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    slots,
  });
  return ref;
}

function toWorkResult(id: string, r: CommandResult): WorkResult {
  return {
    id,
    outcome: r.outcome,
    exitCode: r.exitCode,
    signal: r.signal,
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    stdoutBytes: r.stdoutBytes,
    stderrBytes: r.stderrBytes,
    error: r.error ?? null,
  };
}

/** CPU % of the whole machine between two samples, load, memory. */
export class UsageSampler {
  #last = cpuTimes();

  sample(worker: string, running: number, slots: number): Usage {
    const now = cpuTimes();
    const busy = now.busy - this.#last.busy;
    const total = now.total - this.#last.total;
    this.#last = now;
    const total_mem = os.totalmem();
    return {
      worker,
      cpuPercent: total > 0 ? Math.round((1000 * busy) / total) / 10 : 0,
      load1: os.loadavg()[0]!,
      memoryUsedBytes: total_mem - os.freemem(),
      memoryTotalBytes: total_mem,
      running,
      slots,
      at: Date.now(),
    };
  }
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.irq + times.idle;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}
