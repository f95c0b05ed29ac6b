/**
 * The messages of task execution (see DESIGN "The actors"):
 *
 *   client / manager ──submit, cancel, ask──▶ Controller ──▶ WorkerPool ──work, cancelWork──▶ Worker ─▶ Executor
 *   subscriber ◀──taskUpdate, taskOutput── Controller ◀──workOutput, workResult── Worker / Executor
 *
 * Who may send what is declared with each message: only managers and clients submit, cancel or ask;
 * only the manager hands out work; only workers report it.
 */
import type { Static } from '@sinclair/typebox';
import { Type } from './deferred-schema.js';
import { TActorRef } from './actor-ref.js';
import { defineMessage, type MessageOf } from './message-catalog.js';
import { BoundedRecord } from './wire.js';

/** The name of the Controller actor on the manager: where every task message goes. */
export const CONTROLLER_NAME = 'controller';

/** What a task is, once finished: how it ended. */
export const TASK_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'timed-out', 'cancelled', 'lost'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const FINISHED_STATUSES: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'timed-out', 'cancelled', 'lost']);

export const OUTCOMES = ['exited', 'timed-out', 'cancelled', 'failed-to-start'] as const;
export const STREAMS = ['stdout', 'stderr'] as const;
export type OutputStream = (typeof STREAMS)[number];

/** Wire bounds: generous, so the Controller can answer with its own, clearer limits. */
const MAX_WIRE_COMMAND = 1024 * 1024;
const TaskId = Type.String({ minLength: 1, maxLength: 64 });
/** At most this many result acknowledgements ride in one `work`. */
export const MAX_ACKS_PER_WORK = 256;
const NodeName = Type.String({ minLength: 1, maxLength: 63 });
const Env = BoundedRecord(256, Type.String({ maxLength: 64 * 1024 }));
const Millis = Type.Number({ minimum: 0 });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Stream = Type.Union(STREAMS.map((s) => Type.Literal(s)));
const Status = Type.Union(TASK_STATUSES.map((s) => Type.Literal(s)));
const Outcome = Type.Union(OUTCOMES.map((s) => Type.Literal(s)));
const SubmitterRoles = ['manager', 'client'] as const;

// ── client / manager → Controller ──────────────────────────────────────────────────────────────

export const Submit = defineMessage(
  'submit',
  {
    replyTo: TActorRef(),
    command: Type.String({ maxLength: MAX_WIRE_COMMAND }),
    env: Type.Optional(Env),
    /** 0 or absent: no timeout. */
    timeoutMs: Type.Optional(Type.Number()),
    /** `tag=gpu,platform=linux,name=worker-3`: every term must match. */
    selector: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Run again elsewhere this many times if the worker is lost mid-task. */
    retries: Type.Optional(Type.Integer()),
    /** One task per matching worker instead of one task. */
    broadcast: Type.Optional(Type.Boolean()),
    /** Gets taskUpdate and taskOutput for the tasks made. */
    subscriber: Type.Optional(TActorRef()),
    /**
     * How long the Controller may hold the submission while no worker matches it, in ms: it is
     * placed as soon as a matching worker joins, or answered TROUPE_E_NO_WORKERS /
     * TROUPE_E_NO_MATCHING_WORKER once this has passed. 0 or absent: answered at once.
     */
    waitForWorkerMs: Type.Optional(Type.Number()),
  },
  { allow: SubmitterRoles },
);

/**
 * The submitter gives up a submission that is still waiting for a worker (sent with the same
 * `replyTo`); it is answered TROUPE_E_NO_WORKERS then. Nothing happens when it was placed already.
 */
export const WithdrawSubmit = defineMessage('withdrawSubmit', { replyTo: TActorRef() }, { allow: SubmitterRoles });

export const Cancel = defineMessage('cancel', { replyTo: TActorRef(), id: TaskId }, { allow: SubmitterRoles });

export const ASK_WHAT = ['executors', 'tasks', 'tasksPending', 'tasksRunning', 'tasksFinished', 'isFinished', 'resourceUsage'] as const;
export type AskWhat = (typeof ASK_WHAT)[number];

/**
 * The Controller's queries; `id` for isFinished. The task lists (`tasks*`) come in pages, each
 * small enough for one frame: `after` is the cursor the previous page's answer gave as `next`
 * (absent: from the start), `limit` caps the tasks in the page (the Controller may give fewer, by
 * size). An answer without `next` is the last page.
 */
export const Ask = defineMessage(
  'ask',
  {
    replyTo: TActorRef(),
    what: Type.Union(ASK_WHAT.map((w) => Type.Literal(w))),
    id: Type.Optional(TaskId),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { allow: SubmitterRoles },
);

/** Adds a subscriber to tasks already submitted (e.g. a client that reconnected). */
export const Subscribe = defineMessage('subscribeTasks', { replyTo: TActorRef(), ids: Type.Array(TaskId, { maxItems: 10_000 }), subscriber: TActorRef() }, { allow: SubmitterRoles });

/**
 * A subscriber cannot write a task's output as fast as it comes (its stdout is a slow pipe): the
 * task's command is paused until every subscriber that asked has said `paused: false` (or gone down).
 */
export const PauseOutput = defineMessage('pauseOutput', { id: TaskId, subscriber: TActorRef(), paused: Type.Boolean() }, { allow: SubmitterRoles });

// ── Controller → client / manager ──────────────────────────────────────────────────────────────

export const TaskRecordT = Type.Object({
  id: TaskId,
  command: Type.String({ maxLength: MAX_WIRE_COMMAND }),
  selector: Type.String({ maxLength: 1024 }),
  status: Status,
  worker: Nullable(NodeName),
  attempts: Type.Integer({ minimum: 0 }),
  retries: Type.Integer({ minimum: 0 }),
  submittedAt: Millis,
  startedAt: Nullable(Millis),
  finishedAt: Nullable(Millis),
  exitCode: Nullable(Type.Integer()),
  signal: Nullable(Type.String({ maxLength: 16 })),
  durationMs: Nullable(Millis),
  stdoutBytes: Type.Integer({ minimum: 0 }),
  stderrBytes: Type.Integer({ minimum: 0 }),
  /** Why it failed to start, was lost, or was refused. */
  error: Nullable(Type.String({ maxLength: 2048 })),
  /** The id of the broadcast it belongs to, if any. */
  broadcast: Nullable(TaskId),
});
export type TaskRecord = Static<typeof TaskRecordT>;

export const Submitted = defineMessage('submitted', { ids: Type.Array(TaskId), tasks: Type.Array(TaskRecordT) }, { allow: ['manager'] });
export const TaskError = defineMessage('taskError', { code: Type.String({ maxLength: 64 }), reason: Type.String({ maxLength: 2048 }) }, { allow: ['manager'] });
export const Cancelled = defineMessage('cancelled', { task: TaskRecordT }, { allow: ['manager'] });

/** A task changed status (pending → running → finished). */
export const TaskUpdate = defineMessage('taskUpdate', { task: TaskRecordT }, { allow: ['manager'] });
/** A chunk of a task's live output, in order per task (`seq` counts both streams). */
export const TaskOutput = defineMessage('taskOutput', { id: TaskId, worker: NodeName, stream: Stream, seq: Type.Integer({ minimum: 0 }), data: Type.Uint8Array() }, { allow: ['manager'] });

export const ExecutorInfoT = Type.Object({
  worker: NodeName,
  slots: Type.Integer({ minimum: 0 }),
  busy: Type.Integer({ minimum: 0 }),
  idle: Type.Integer({ minimum: 0 }),
  tags: Type.Array(Type.String({ maxLength: 64 })),
  platform: Type.String({ maxLength: 32 }),
  arch: Type.String({ maxLength: 32 }),
  running: Type.Array(TaskId),
});
export type ExecutorInfo = Static<typeof ExecutorInfoT>;

export const UsageT = Type.Object({
  worker: NodeName,
  /** Percent of all cpus, 0–100, over the last report interval. */
  cpuPercent: Type.Number(),
  load1: Type.Number(),
  memoryUsedBytes: Type.Number(),
  memoryTotalBytes: Type.Number(),
  running: Type.Integer({ minimum: 0 }),
  slots: Type.Integer({ minimum: 0 }),
  at: Millis,
});
export type Usage = Static<typeof UsageT>;

export const Answer = defineMessage(
  'answer',
  {
    what: Type.Union(ASK_WHAT.map((w) => Type.Literal(w))),
    executors: Type.Optional(Type.Array(ExecutorInfoT)),
    tasks: Type.Optional(Type.Array(TaskRecordT)),
    finished: Type.Optional(Type.Boolean()),
    task: Type.Optional(TaskRecordT),
    usage: Type.Optional(Type.Array(UsageT)),
    /** A task list continues: ask again with `after: next`. */
    next: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { allow: ['manager'] },
);

// ── WorkerPool / Controller ↔ Worker ───────────────────────────────────────────────────────────

export const WorkSpecT = Type.Object({
  id: TaskId,
  command: Type.String({ minLength: 1, maxLength: MAX_WIRE_COMMAND }),
  env: Env,
  timeoutMs: Millis,
});
export type WorkSpec = Static<typeof WorkSpecT>;

/** The pool hands a task to a worker; output and result go to `reportTo` (the Controller). */
export const Work = defineMessage(
  'work',
  {
    task: WorkSpecT,
    reportTo: TActorRef(),
    subscribers: Type.Array(TActorRef(), { maxItems: 1024 }),
    /** Which run of the task this is (1, 2, … after retries): the command sees it as TROUPE_TASK_ATTEMPT. */
    attempt: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Results the Controller has recorded, acknowledged here rather than by a `resultAck` each (actors/tasks/result-acks.ts); taken before the task. */
    acks: Type.Optional(Type.Array(TaskId, { maxItems: MAX_ACKS_PER_WORK })),
  },
  { allow: ['manager'] },
);
export const CancelWork = defineMessage('cancelWork', { id: TaskId }, { allow: ['manager'] });
/** A (new) pool introduces itself: the worker answers with workerState, then reports usage to it. */
export const PoolHello = defineMessage('poolHello', { pool: TActorRef(), reportTo: TActorRef() }, { allow: ['manager'] });
/** The Controller's subscriber for a task cannot keep up: stop (or go on) reading its output. */
export const Throttle = defineMessage('throttle', { id: TaskId, paused: Type.Boolean() }, { allow: ['manager'] });
/** The Controller has recorded a result: the worker may forget it. */
export const ResultAck = defineMessage('resultAck', { id: TaskId }, { allow: ['manager'] });

export const WorkResultT = Type.Object({
  id: TaskId,
  outcome: Outcome,
  exitCode: Nullable(Type.Integer()),
  signal: Nullable(Type.String({ maxLength: 16 })),
  startedAt: Millis,
  durationMs: Millis,
  stdoutBytes: Type.Integer({ minimum: 0 }),
  stderrBytes: Type.Integer({ minimum: 0 }),
  error: Nullable(Type.String({ maxLength: 2048 })),
});
export type WorkResult = Static<typeof WorkResultT>;

export const WorkOutput = defineMessage('workOutput', { id: TaskId, stream: Stream, seq: Type.Integer({ minimum: 0 }), data: Type.Uint8Array({ maxByteLength: 1024 * 1024 }) }, { allow: ['worker'] });
export const WorkResult = defineMessage('workResult', { result: WorkResultT }, { allow: ['worker'] });
export const WorkRefused = defineMessage('workRefused', { id: TaskId, code: Type.String({ maxLength: 64 }), reason: Type.String({ maxLength: 2048 }) }, { allow: ['worker'] });
export const WorkerState = defineMessage(
  'workerState',
  {
    worker: NodeName,
    /** With the subscribers each task was handed out with, so a new Controller can serve them. */
    running: Type.Array(Type.Object({ task: WorkSpecT, startedAt: Millis, subscribers: Type.Array(TActorRef(), { maxItems: 1024 }) }), { maxItems: 100_000 }),
    /** Results not yet acknowledged (the manager restarted before it saw them). */
    finished: Type.Array(Type.Object({ result: WorkResultT, task: WorkSpecT, subscribers: Type.Array(TActorRef(), { maxItems: 1024 }) }), { maxItems: 100_000 }),
  },
  { allow: ['worker'] },
);
export const WorkerUsage = defineMessage('workerUsage', { usage: UsageT }, { allow: ['worker'] });

export type Submit = MessageOf<typeof Submit>;
export type WithdrawSubmit = MessageOf<typeof WithdrawSubmit>;
export type Cancel = MessageOf<typeof Cancel>;
export type Ask = MessageOf<typeof Ask>;
export type Subscribe = MessageOf<typeof Subscribe>;
export type PauseOutput = MessageOf<typeof PauseOutput>;
export type Submitted = MessageOf<typeof Submitted>;
export type TaskErrorReply = MessageOf<typeof TaskError>;
export type Cancelled = MessageOf<typeof Cancelled>;
export type TaskUpdate = MessageOf<typeof TaskUpdate>;
export type TaskOutput = MessageOf<typeof TaskOutput>;
export type Answer = MessageOf<typeof Answer>;
export type Work = MessageOf<typeof Work>;
export type CancelWork = MessageOf<typeof CancelWork>;
export type PoolHello = MessageOf<typeof PoolHello>;
export type ResultAck = MessageOf<typeof ResultAck>;
export type Throttle = MessageOf<typeof Throttle>;
export type WorkOutput = MessageOf<typeof WorkOutput>;
export type WorkResultMsg = MessageOf<typeof WorkResult>;
export type WorkRefused = MessageOf<typeof WorkRefused>;
export type WorkerState = MessageOf<typeof WorkerState>;
export type WorkerUsage = MessageOf<typeof WorkerUsage>;

/** What a manager accepts from other nodes. */
export const MANAGER_TASK_MESSAGES = [Submit, WithdrawSubmit, Cancel, Ask, Subscribe, PauseOutput, WorkOutput, WorkResult, WorkRefused, WorkerState, WorkerUsage];
/** What a worker accepts. */
export const WORKER_TASK_MESSAGES = [Work, CancelWork, PoolHello, ResultAck, Throttle];
/** What a client accepts (replies and subscriptions). */
export const CLIENT_TASK_MESSAGES = [Submitted, TaskError, Cancelled, TaskUpdate, TaskOutput, Answer];
