/**
 * Running shell commands on the cluster for a person: what the REPL and `troupe run` share.
 *
 * A command is submitted once a worker is there to take it: with no worker in the cluster yet (the
 * Controller's quick first answer says so) it is submitted again with `waitForWorkerMs`, saying that
 * it waits, and the Controller holds it until a worker joins (the one way to wait for a worker; the
 * runner never reads the receptionist). Its output is streamed as it arrives, and its end is told
 * in one status line. Output of one foreground task is written byte for byte; output of several
 * tasks at once (`:all`, background tasks) line by line, each line prefixed (`worker-1: …`, as pdsh).
 *
 * Ordering: the Controller answers a submission before any output of its tasks reaches it (that
 * takes a round trip to the worker), and every message from it to this node keeps its order, so a
 * task's output never comes before its id. Chunks that arrive while a submission is in flight are
 * held all the same (the reply and the first chunk can be in one frame, and the reply resolves a
 * promise while chunks go through an actor's mailbox) and handed over once the id is known.
 *
 * Flow: output is written with backpressure. Once more than `outputHighWaterBytes` written to our
 * stdout (or stderr) wait for its reader, the command's tasks are paused (`pauseOutput`, through the
 * Controller to the worker, whose command then blocks on its pipe) until that stream's backlog is
 * down to about half the mark (everything written before the backlog last passed half of it has
 * been taken): the resume crosses two hops and the output two more, and the half left keeps the
 * reader busy meanwhile, so a fast reader is not kept waiting on every pause. What was already on
 * its way is written meanwhile, so memory stays bounded by the high-water mark and what the links
 * hold. A task whose output did not all arrive (output-ledger.ts) is told in one
 * line, TROUPE_E_OUTPUT_LOST, and its status is at least 1: never 0 with output missing.
 */
import { StringDecoder } from 'node:string_decoder';
import type { TaskOutput, TaskRecord } from '../../protocols/tasks.js';
import { MAX_WAIT_FOR_WORKER_MS } from '../../actors/tasks/controller-settings.js';
import type { SubmitOptions, TaskClient } from '../../actors/tasks/task-client.js';
import { ErrorCodes, TroupeError, hasCode } from '../errors.js';
import { exitStatusOf, statusLine } from './format.js';
import type { Screen, Stream } from './screen.js';

/** Thrown when Ctrl-C interrupted a wait; the REPL reports status 130 and goes on. */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

type Handler = (chunk: TaskOutput) => void;

/** Hands each output chunk to the handler of its task. */
export class TaskRouter {
  readonly #handlers = new Map<string, Handler>();
  #inFlight = 0;
  #early: TaskOutput[] = [];

  constructor(readonly tasks: TaskClient) {
    tasks.on('output', (chunk) => {
      const handler = this.#handlers.get(chunk.id);
      if (handler) handler(chunk);
      else if (this.#inFlight > 0) this.#early.push(chunk);
    });
  }

  /** Submits, and routes the output of each task made to `handlerFor(task)` from its first byte. */
  async submit(options: SubmitOptions, handlerFor: (task: TaskRecord) => Handler, signal?: AbortSignal): Promise<TaskRecord[]> {
    this.#inFlight += 1;
    try {
      const made = await this.tasks.submit(options, signal);
      for (const task of made) this.#handlers.set(task.id, handlerFor(task));
      const ids = new Set(made.map((t) => t.id));
      const early = this.#early.filter((c) => ids.has(c.id));
      this.#early = this.#early.filter((c) => !ids.has(c.id));
      for (const chunk of early) this.#handlers.get(chunk.id)!(chunk);
      return made;
    } finally {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#early = [];
    }
  }

  forget(id: string): void {
    this.#handlers.delete(id);
  }
}

/** Splits a task's output into lines, each written with a prefix; a last partial line is ended on flush. */
export class LinePrefixer {
  readonly #decoders: Record<Stream, StringDecoder> = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  readonly #partial: Record<Stream, string> = { stdout: '', stderr: '' };
  #worker = '';

  constructor(
    private readonly prefix: (chunk: { worker: string }) => string,
    private readonly write: (stream: Stream, text: string) => void,
  ) {}

  push(chunk: TaskOutput): void {
    this.#worker = chunk.worker;
    const text = this.#partial[chunk.stream] + this.#decoders[chunk.stream].write(Buffer.from(chunk.data));
    const lines = text.split('\n');
    this.#partial[chunk.stream] = lines.pop()!;
    if (lines.length > 0) this.write(chunk.stream, lines.map((l) => `${this.prefix(chunk)}${l}\n`).join(''));
  }

  flush(worker: string | null): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.#partial[stream] + this.#decoders[stream].end();
      this.#partial[stream] = '';
      if (rest !== '') this.write(stream, `${this.prefix({ worker: worker ?? this.#worker })}${rest}\n`);
    }
  }
}

export type OutputMode = 'raw' | 'by-worker' | 'by-task';

/**
 * Bytes written to our stdout (or stderr) and not yet read above which the tasks are paused: 2 MiB.
 * Output comes in chunks of up to 1 MiB (a worker's pipe reads; about 540 KB at 200 MB/s). At 1 MiB
 * two chunks not yet taken paused the command: into `wc -c`, on a busy machine, about 200 pauses
 * per 1 GB run (each a round trip to the worker and back while the reader may run dry); at 2 MiB
 * about half as many. 4 MiB halved them again, but let the command get close to 16 MiB ahead of a
 * reader that read nothing (the slow-pipe test's bound; 6–13 MiB at 1 and at 2 MiB alike).
 */
export const DEFAULT_OUTPUT_HIGH_WATER_BYTES = 2 * 1024 * 1024;

export interface RunRequest {
  command: string;
  selector?: string;
  /** One task per matching worker. */
  broadcast?: boolean;
  timeoutMs?: number;
}

export interface RunnerOptions {
  /** Which finished tasks get a status line: every one, or only those that did not simply exit. */
  statusLines: 'all' | 'abnormal';
  /** Rejects when the session can no longer hear about its tasks (a client that lost the manager). */
  lost?: () => Promise<never>;
  /** See DEFAULT_OUTPUT_HIGH_WATER_BYTES. */
  outputHighWaterBytes?: number;
  /** How long a command waits for a first worker in an empty cluster; default: until one joins (MAX_WAIT_FOR_WORKER_MS). */
  waitForWorkerMs?: number;
}

/** A submitted command: its tasks, and the promise of its exit status. */
export interface Started {
  tasks: TaskRecord[];
  /** The exit status: the task's, or for several the highest (0 only when all succeeded). */
  done: Promise<{ status: number; tasks: TaskRecord[]; outputLost: string[] }>;
  cancel(): Promise<void>;
}

export class TaskRunner {
  readonly router: TaskRouter;

  constructor(
    readonly tasks: TaskClient,
    readonly screen: Screen,
    readonly options: RunnerOptions,
  ) {
    this.router = new TaskRouter(tasks);
  }

  /**
   * Waits for a worker if there is none yet, submits, and streams. `signal` aborts the wait (with
   * Interrupted); `interrupt` (default: `signal`), aborted while the submission was in flight,
   * cancels what it made. Once submitted, cancel through the returned `cancel`.
   */
  async start(request: RunRequest, mode: OutputMode, signal?: AbortSignal, interrupt: AbortSignal | undefined = signal): Promise<Started> {
    if (signal?.aborted) throw new Interrupted();
    const prefixers = new Map<string, LinePrefixer>();
    const ids: string[] = [];
    const highWater = this.options.outputHighWaterBytes ?? DEFAULT_OUTPUT_HIGH_WATER_BYTES;
    const backedUp = new Set<Stream>();
    /** Per stream: resolves once what was written before its backlog last passed half the mark is taken. */
    const halfway = new Map<Stream, Promise<void>>();
    // Our reader is slower than the tasks: pause them all until it has caught up (to half the mark).
    const flow = (stream: Stream) => {
      const backlog = this.screen.backlog(stream);
      if (backlog > highWater / 2 && !halfway.has(stream)) {
        const mark = this.screen.drained(stream);
        halfway.set(stream, mark);
        void mark.then(() => {
          if (halfway.get(stream) === mark) halfway.delete(stream);
        });
      }
      if (backedUp.has(stream) || backlog <= highWater) return;
      backedUp.add(stream);
      if (backedUp.size === 1) for (const id of ids) this.tasks.pauseOutput(id, true);
      void (halfway.get(stream) ?? this.screen.drained(stream)).then(() => {
        backedUp.delete(stream);
        if (backedUp.size === 0) for (const id of ids) this.tasks.pauseOutput(id, false);
      });
    };
    const handlerFor = (task: TaskRecord): Handler => {
      ids.push(task.id);
      if (mode === 'raw') {
        return (chunk) => {
          this.screen.write(chunk.stream, chunk.data);
          flow(chunk.stream);
        };
      }
      const prefix = mode === 'by-worker' ? (c: { worker: string }) => `${c.worker}: ` : () => `[${task.id}] `;
      const prefixer = new LinePrefixer(prefix, (stream, text) => this.screen.write(stream, text));
      prefixers.set(task.id, prefixer);
      return (chunk) => {
        prefixer.push(chunk);
        flow(chunk.stream);
      };
    };
    const submit = { command: request.command, selector: request.selector, broadcast: request.broadcast, timeoutMs: request.timeoutMs };
    const waitMs = this.options.waitForWorkerMs ?? MAX_WAIT_FOR_WORKER_MS;
    let made: TaskRecord[];
    try {
      made = await this.router.submit(submit, handlerFor);
    } catch (err) {
      // No worker in the cluster yet: the Controller holds the command until one joins.
      if (!hasCode(err, ErrorCodes.NO_WORKERS) || waitMs === 0) throw err;
      if (signal?.aborted) throw new Interrupted();
      this.screen.note(this.screen.noteColors.yellow('no worker has joined yet; waiting for one (Ctrl-C gives up)…'));
      try {
        made = await this.router.submit({ ...submit, waitForWorkerMs: waitMs }, handlerFor, signal);
      } catch (err) {
        // Withdrawn on Ctrl-C (or the caller's limit): the Controller answered that it gave up.
        if (signal?.aborted) throw new Interrupted();
        throw err;
      }
    }

    const outputLost: string[] = [];
    const finishOne = async (task: TaskRecord): Promise<TaskRecord> => {
      const end = await this.#finished(task.id);
      prefixers.get(task.id)?.flush(end.worker);
      this.router.forget(task.id);
      if (this.options.statusLines === 'all' || !(end.status === 'succeeded' || (end.status === 'failed' && end.exitCode !== null))) {
        this.screen.note(statusLine(end, this.screen.noteColors));
      }
      const loss = this.tasks.outputLoss(end);
      if (loss !== undefined) {
        outputLost.push(end.id);
        this.screen.error(`troupe: ${ErrorCodes.OUTPUT_LOST}: output of ${end.id} on ${end.worker ?? 'no worker'} was lost: ${loss}`);
      }
      return end;
    };
    const done = Promise.all(made.map(finishOne)).then((ended) => ({
      status: Math.max(outputLost.length > 0 ? 1 : 0, ...ended.map(exitStatusOf)),
      tasks: ended,
      outputLost,
    }));
    done.catch(() => {});
    if (interrupt?.aborted) this.cancel(made).catch(() => {});
    return { tasks: made, done, cancel: () => this.cancel(made) };
  }

  /** Cancels what has not ended yet; a task that ended meanwhile is no error. */
  async cancel(tasks: readonly TaskRecord[]): Promise<void> {
    await Promise.all(
      tasks.map(async (t) => {
        try {
          await this.tasks.cancel(t.id);
        } catch (err) {
          if (!hasCode(err, ErrorCodes.TASK_FINISHED)) throw err;
        }
      }),
    );
  }

  #finished(id: string): Promise<TaskRecord> {
    const finished = this.tasks.finished(id);
    return this.options.lost ? Promise.race([finished, this.options.lost()]) : finished;
  }
}

/** The error for a session that lost its manager while it waited for tasks. */
export function managerLost(manager: string, graceMs?: number): TroupeError {
  const away = graceMs === undefined ? '' : ` (not back within ${graceMs / 1000} s)`;
  return new TroupeError(ErrorCodes.NODE_DOWN, `lost the manager "${manager}"${away}; what the tasks did since is unknown here (see :tasks after reconnecting)`);
}
