/**
 * The Executor (one per task): a child of the Worker (`worker/executor-ID`), alive from the task's
 * start until the Controller acknowledges its result. It owns the task's execution: it runs the
 * command (runCommand, in a directory of the Worker's TaskDirs), sends its output and its result,
 * pauses and resumes it, and cancels it. The Worker only routes to it (`cancelWork`, `throttle`, a
 * pool's hello, the manager gone, a subscriber back) and is told when the result has been sent.
 *
 * Output goes straight from the Executor to the Controller (`reportTo`), chunk by chunk, in order,
 * numbered `seq` as runCommand read it. Reading from the child pauses while the link to the manager
 * is congested and while the Controller asks it to (`throttle`: a subscriber is slow): the command
 * then blocks on its full pipe, and nothing is buffered without bound.
 *
 * Without a manager (detached), output is held, up to `maxHeldOutputBytes`, and the command reads
 * on; past the bound the command is paused (it blocks on its pipe) rather than any output dropped.
 * The last chunks sent (the same bound, at most MAX_KEPT_CHUNKS) are kept: a connection that breaks
 * loses what it had not delivered. When a pool says hello (`executor.attach`) and the Worker
 * reported this task as running, the kept chunks go again, ahead of the held ones, once the new
 * Controller has given its go-ahead (a `throttle` with paused false: it knows the task) and one of
 * the task's subscribers is back (or `subscribersBy` has passed); then the result, if the command is
 * over (a result the Controller had not acknowledged waits behind its output). Chunks keep their
 * `seq`: the Controller and the subscribers drop repeats and tell gaps.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { Work, WorkResult, WorkSpec } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { runCommand, type CommandResult, type RunningCommand } from '../process/run-command.js';
import type { Spawner } from '../process/spawner.js';
import type { TaskDirs } from '../process/task-dirs.js';

/** At most this many sent chunks are kept per task for a resend (besides the byte bound). */
export const MAX_KEPT_CHUNKS = 4096;

/** What the Worker (its parent) tells an Executor. Local messages only, never from the wire. */
export type ExecutorMessage =
  | { type: 'executor.cancel' }
  | { type: 'executor.throttle'; paused: boolean }
  /** A pool said hello; `reported`: how the Worker told it of this task (finished: with its result). */
  | { type: 'executor.attach'; reportTo: ActorRef; generation: number; subscribersBy: number; reported: 'running' | 'finished' }
  /** The manager is gone: hold output until a pool says hello. */
  | { type: 'executor.detach' }
  /** A subscriber may be back: send what waited for one. */
  | { type: 'executor.resume' };

/**
 * What an Executor tells its Worker once its result is sent (or kept, without a manager), after the
 * attach of `generation` (0: none yet). `replayable`: chunks are kept, to be sent again after a hello.
 */
export interface ExecutorEnded {
  type: 'executor.ended';
  id: string;
  generation: number;
  result: WorkResult;
  replayable: boolean;
}

export interface ExecutorStart {
  work: Work;
  /** The Worker: the parent, told `executor.ended`. */
  worker: ActorRef;
  /** Where output and the result go now; undefined while there is no manager. */
  reportTo: ActorRef | undefined;
  /** The Worker's count of pools' hellos so far. */
  generation: number;
  killGraceMs: number;
  maxHeldOutputBytes: number;
  dirs: TaskDirs;
  spawner: Spawner | undefined;
  /** Benches only (WorkerOptions.runCommand): runs the task instead of runCommand. */
  run?: typeof runCommand;
}

type OutputMsg = { type: 'workOutput'; id: string; stream: 'stdout' | 'stderr'; seq: number; data: Buffer };

/** Spawns the Executor of `start.work` under the Worker; the command starts at once. Throws a SettingError for a command runCommand refuses. */
export function spawnExecutor(system: ClusterSystem, start: ExecutorStart): ActorRef {
  const { task, subscribers } = start.work;
  let reportTo = start.reportTo;
  let generation = start.generation;
  let result: WorkResult | undefined;
  let subscriberTimer: NodeJS.Timeout | undefined;
  const execution = new Execution(task, subscribers, system, () => reportTo, start.maxHeldOutputBytes);
  execution.run = (start.run ?? runCommand)({
    command: task.command,
    // Ours last: a task can tell where it runs and as what, and cannot be told otherwise.
    env: { ...task.env, TROUPE_WORKER: system.node, TROUPE_TASK_ID: task.id, TROUPE_TASK_ATTEMPT: String(start.work.attempt ?? 1) },
    timeoutMs: task.timeoutMs,
    killGraceMs: start.killGraceMs,
    dirs: start.dirs,
    spawner: start.spawner,
    onOutput: (stream, data, seq) => execution.onOutput(stream, data, seq),
  });

  const sendResult = () => {
    execution.ended = undefined;
    if (reportTo) system.dispatch(reportTo, { type: 'workResult', result: result! });
    const ended: ExecutorEnded = { type: 'executor.ended', id: task.id, generation, result: result!, replayable: execution.retained.length > 0 };
    system.dispatch(start.worker, ended);
  };

  const ref = system.spawn<null, ExecutorMessage>(
    (state, msg) => {
      switch (msg.type) {
        case 'executor.cancel':
          execution.run.cancel();
          break;
        case 'executor.throttle':
          execution.throttled = msg.paused;
          if (!msg.paused) {
            execution.awaitingGo = false;
            execution.resume();
          }
          break;
        case 'executor.attach': {
          reportTo = msg.reportTo;
          generation = msg.generation;
          // Reported finished: the new pool has the result from the Worker's state; nothing to send.
          if (msg.reported === 'finished') break;
          // What the old Controller asked is void; wait for the new one's go-ahead.
          execution.rejoined(msg.subscribersBy);
          // Over, and reported as running again: its output once more, then its result.
          if (result) execution.ended = sendResult;
          clearTimeout(subscriberTimer);
          subscriberTimer = setTimeout(() => system.dispatch(ref, { type: 'executor.resume' }), Math.max(0, msg.subscribersBy - Date.now()));
          subscriberTimer.unref();
          break;
        }
        case 'executor.detach':
          reportTo = undefined;
          break;
        case 'executor.resume':
          execution.resume();
          break;
      }
      return state;
    },
    `executor-${task.id}`,
    {
      parent: start.worker,
      initialState: null,
      onCrash: 'resume',
      afterStop: () => {
        clearTimeout(subscriberTimer);
        execution.run.cancel();
      },
    },
  );

  void execution.run.result.then((r) => {
    result = toWorkResult(task.id, r);
    // Output held (no manager, or not yet its go-ahead) goes first; until then the task still runs here.
    if (execution.held.length === 0) sendResult();
    else execution.ended = sendResult;
  });
  return ref;
}

/** One task's command, and the output it holds while it may not send. */
class Execution {
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
