/**
 * The Worker (one per worker node): a supervisor of Executors (executor.ts), one per task.
 *
 * The Worker checks in with the receptionist under `worker` with what it is (name, tags, platform,
 * arch, cpus, memory, slots), takes `work` up to its slots, and spawns an Executor for each task,
 * which runs the command and sends its output and result to the Controller (`reportTo`) itself. The
 * Worker routes to the task's Executor what concerns it (`cancelWork`, `throttle`, `resultAck`, a
 * pool's hello, the manager gone, a subscriber back), and reports resource usage every
 * `usageIntervalMs` (DEFAULT_USAGE_INTERVAL_MS) to the pool that introduced itself with `poolHello`.
 * Settings: worker-settings.ts, checked when the Worker is spawned.
 *
 * Without a manager (it is down, or restarting), each Executor holds its task's output, up to
 * `maxHeldOutputBytes` (DEFAULT_MAX_HELD_OUTPUT_BYTES) per task, and keeps the last chunks it sent
 * (the same bound). When a pool says hello (the manager is back), the Worker answers with what
 * runs and what finished with a result not yet acknowledged (`workerState`); a finished task with
 * kept chunks is reported as running again, since what was in the connection when the manager died
 * is lost with it. Its Executor then sends the kept chunks, then the held ones, once the Controller
 * has taken the task in (its `throttle` go-ahead) and one of the task's subscribers is back (at most
 * `subscriberWaitMs`, DEFAULT_SUBSCRIBER_WAIT_MS, after the hello), then the result. Results are
 * kept (the Executor lives on) until the Controller acknowledges them, so nothing finished is lost.
 */
import os from 'node:os';
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { WORKER_KEY } from '../../protocols/receptionist-keys.js';
import type { CancelWork, PoolHello, ResultAck, Throttle, Usage, Work, WorkResult, WorkSpec } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes } from '../../src/errors.js';
import { Spawner } from '../process/spawner.js';
import { TaskDirs } from '../process/task-dirs.js';
import { spawnExecutor, type ExecutorEnded, type ExecutorMessage } from './executor.js';
import { workerSettings, type WorkerOptions } from './worker-settings.js';

export {
  DEFAULT_MAX_HELD_OUTPUT_BYTES,
  DEFAULT_SLOTS,
  DEFAULT_SUBSCRIBER_WAIT_MS,
  DEFAULT_USAGE_INTERVAL_MS,
  workerSettings,
  type WorkerOptions,
  type WorkerSettings,
} from './worker-settings.js';

type WorkerMessage = Work | CancelWork | PoolHello | ResultAck | Throttle | MemberEvent | ExecutorEnded;

/** One task, as its Worker knows it: its Executor, and whether its result has been sent. */
interface Task {
  executor: ActorRef;
  spec: WorkSpec;
  subscribers: ActorRef[];
  startedAt: number;
  /** Set once the Executor says the result is sent; undefined while it runs (or runs again, replaying). */
  result: WorkResult | undefined;
  /** The Executor keeps chunks it sent: after a hello the task is reported running and they go again. */
  replayable: boolean;
  /** The hello since which the task counts as running: an `executor.ended` from before it is stale. */
  since: number;
  /** The Controller acknowledged the result while the Worker still counted the task as running. */
  acked: boolean;
}

/** Spawns the Worker. Throws a SettingError (TROUPE_E_SETTING) for bad options (worker-settings.ts). */
export function spawnWorker(system: ClusterSystem, options: WorkerOptions = {}): ActorRef {
  const settings = workerSettings(options);
  const { slots } = settings;
  const tasks = new Map<string, Task>();
  let attached: { pool: ActorRef; reportTo: ActorRef } | undefined;
  /** Pools' hellos so far. */
  let generation = 0;
  const sampler = new UsageSampler();
  // Task directories made ahead (one per slot) and deleted behind, off the tasks' path. A root that
  // cannot be used now is reported by each task that cannot get a directory (TaskDirs.take).
  const dirs = new TaskDirs(settings.tmpRoot, { ahead: Math.max(1, slots), owner: system.node });
  const ownSpawner = settings.spawner === undefined;
  const spawner = settings.spawner === false ? undefined : (settings.spawner ?? new Spawner());
  if (ownSpawner && spawner) system.log.info({ spawner: spawner.kind, why: spawner.why }, `tasks start through the ${spawner.kind} spawner`);
  const running = () => {
    let n = 0;
    for (const t of tasks.values()) if (t.result === undefined) n++;
    return n;
  };
  const tell = (id: string, msg: ExecutorMessage) => {
    const t = tasks.get(id);
    if (t) system.dispatch(t.executor, msg);
  };
  const tellAll = (msg: ExecutorMessage) => {
    for (const t of tasks.values()) system.dispatch(t.executor, msg);
  };

  const ref = system.spawn<null, WorkerMessage>(
    (state, msg, ctx) => {
      switch (msg.type) {
        case 'poolHello': {
          attached = { pool: msg.pool, reportTo: msg.reportTo };
          generation++;
          const subscribersBy = Date.now() + settings.subscriberWaitMs;
          for (const t of tasks.values()) {
            // A result not yet acknowledged may have gone with the output before it: the task is
            // reported as running again, its output sent again, then its result.
            if (t.result !== undefined && t.replayable) t.result = undefined;
            if (t.result === undefined) t.since = generation;
            const reported = t.result === undefined ? 'running' : 'finished';
            system.dispatch(t.executor, { type: 'executor.attach', reportTo: msg.reportTo, generation, subscribersBy, reported } satisfies ExecutorMessage);
          }
          const all = [...tasks.values()];
          system.dispatch(msg.pool, {
            type: 'workerState',
            worker: system.node,
            running: all.filter((t) => t.result === undefined).map((t) => ({ task: t.spec, startedAt: t.startedAt, subscribers: [...t.subscribers] })),
            finished: all.filter((t) => t.result !== undefined).map((t) => ({ result: t.result!, task: t.spec, subscribers: [...t.subscribers] })),
          });
          // A first usage report at once: the pool knows this worker's load from the start.
          system.dispatch(msg.pool, { type: 'workerUsage', usage: sampler.sample(system.node, running(), slots) });
          break;
        }
        case 'member':
          // The manager gone (or a new one not yet introduced): hold output until a pool says hello.
          if (msg.role === 'manager' && msg.status !== 'up' && attached?.pool.node === msg.node) {
            attached = undefined;
            tellAll({ type: 'executor.detach' });
          }
          // A subscriber back after a manager restart: what waited for it goes now.
          if (msg.status === 'up' && msg.role !== 'worker') tellAll({ type: 'executor.resume' });
          break;
        case 'work':
          // Acknowledgements that came along with the work (result-acks.ts) are older: first.
          for (const id of msg.acks ?? []) acknowledged(id);
          start(msg, ctx.ref);
          break;
        case 'cancelWork':
          tell(msg.id, { type: 'executor.cancel' });
          break;
        case 'throttle':
          tell(msg.id, { type: 'executor.throttle', paused: msg.paused });
          break;
        case 'executor.ended': {
          const t = tasks.get(msg.id);
          // From before the latest hello that counted the task as running: its Executor sends it again.
          if (!t || msg.generation < t.since) break;
          t.result = msg.result;
          t.replayable = msg.replayable;
          if (t.acked) end(msg.id, t);
          break;
        }
        case 'resultAck':
          acknowledged(msg.id);
          break;
      }
      return state;
    },
    'worker',
    {
      initialState: null,
      onCrash: 'resume',
      afterStop: () => {
        // The Executors have stopped first (cancelling their commands).
        clearInterval(usageTimer);
        process.off('exit', closeDirs);
        // Spares and trash go now; a cancelled task's directory, when it ends, the usual way.
        dirs.close();
        // The spawner kills what it still runs (the cancels have not had their grace) and exits.
        if (ownSpawner) spawner?.close();
      },
    },
  );

  function start(msg: Work, self: ActorRef): void {
    const { task } = msg;
    if (tasks.has(task.id)) return;
    if (running() >= slots) {
      if (attached) system.dispatch(attached.pool, { type: 'workRefused', id: task.id, code: ErrorCodes.WORKER_BUSY, reason: `all ${slots} slots busy` });
      return;
    }
    const startedAt = Date.now();
    const executor = spawnExecutor(system, {
      work: msg,
      worker: self,
      reportTo: attached?.reportTo,
      generation,
      killGraceMs: settings.killGraceMs,
      maxHeldOutputBytes: settings.maxHeldOutputBytes,
      dirs,
      spawner,
      run: settings.runCommand,
    });
    tasks.set(task.id, { executor, spec: task, subscribers: [...msg.subscribers], startedAt, result: undefined, replayable: false, since: generation, acked: false });
  }

  /** The Controller acknowledged the task's result (with `resultAck`, or in a work's `acks`). */
  function acknowledged(id: string): void {
    const t = tasks.get(id);
    if (!t) return;
    if (t.result !== undefined) end(id, t);
    else t.acked = true;
  }

  /**
   * The result is acknowledged: the task and its Executor are done. The Executor is stopped after
   * this turn: an acknowledgement most often comes with the next work (result-acks.ts), and
   * stopping an actor (about 35 µs here) would otherwise come before that task's start. Nothing
   * reaches it in between: it is no longer in `tasks`.
   */
  function end(id: string, t: Task): void {
    tasks.delete(id);
    stopping.push(t.executor);
    if (stopping.length === 1) setImmediate(stopEnded);
  }

  const stopping: ActorRef[] = [];
  const stopEnded = () => {
    for (const executor of stopping.splice(0)) system.stop(executor);
  };

  // A worker process that exits (even without stopping this actor) takes its tasks with it:
  // runCommand kills them and removes their directories; the spares and the trash go here. Even a
  // SIGKILLed worker does not leave its commands running: its spawner sees the IPC channel close.
  const closeDirs = () => dirs.close();
  process.on('exit', closeDirs);

  const usageTimer = setInterval(() => {
    const usage = sampler.sample(system.node, running(), slots);
    if (attached) system.dispatch(attached.pool, { type: 'workerUsage', usage });
  }, settings.usageIntervalMs);
  usageTimer.unref();

  system.subscribeMembership(ref);
  system.receptionist.checkIn(WORKER_KEY, ref, {
    name: system.node,
    tags: settings.tags,
    platform: process.platform,
    arch: process.arch,
    cpus: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    slots,
  });
  return ref;
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
