/**
 * The Controller's answers to `ask`: the workers (`executors`, `resourceUsage`, from the pool) and
 * the task lists (`tasks`, `tasksPending`, `tasksRunning`, `tasksFinished`, in pages, from the
 * table) and `isFinished`. Read-only: answering a query changes nothing. Called in the Controller's
 * turn; a bad query throws a TaskError, which the Controller sends back as `taskError`.
 */
import { FINISHED_STATUSES, type Answer, type Ask, type TaskStatus } from '../../protocols/tasks.js';
import { ErrorCodes, TaskError } from '../../src/errors.js';
import { DEFAULT_PAGE_TASKS } from './controller-settings.js';
import { parseSelector } from './selector.js';
import type { TaskEntry, TaskTable } from './task-table.js';
import type { WorkerPool } from './worker-pool.js';

const STATUS_SETS: Record<'tasksPending' | 'tasksRunning' | 'tasksFinished', ReadonlySet<TaskStatus>> = {
  tasksPending: new Set(['pending']),
  tasksRunning: new Set(['running']),
  tasksFinished: FINISHED_STATUSES,
};

export interface QuerySources {
  table: TaskTable;
  pool: WorkerPool;
  /** About the most bytes of task records in one page. */
  pageBytes: number;
  /** The task with this id; throws TROUPE_E_NO_SUCH_TASK. */
  entryOf(id: string): TaskEntry;
}

export function answerQuery(msg: Ask, { table, pool, pageBytes, entryOf }: QuerySources): Answer {
  switch (msg.what) {
    case 'executors':
      return {
        type: 'answer',
        what: msg.what,
        executors: pool.matching(parseSelector('')).map((w) => ({
          worker: w.name,
          slots: w.slots,
          busy: w.running.size,
          idle: Math.max(0, w.slots - w.running.size),
          tags: [...w.tags],
          platform: w.platform,
          arch: w.arch,
          running: [...w.running],
        })),
      };
    case 'resourceUsage':
      return { type: 'answer', what: msg.what, usage: pool.matching(parseSelector('')).flatMap((w) => (w.usage ? [w.usage] : [])) };
    case 'tasks':
      return { type: 'answer', what: msg.what, ...table.page(undefined, msg.after ?? 0, msg.limit ?? DEFAULT_PAGE_TASKS, pageBytes) };
    case 'isFinished': {
      if (msg.id === undefined) throw new TaskError(ErrorCodes.INVALID_TASK, 'isFinished needs the id of a task');
      const entry = entryOf(msg.id);
      return { type: 'answer', what: msg.what, finished: table.isFinished(entry), task: entry.record };
    }
    default:
      return { type: 'answer', what: msg.what, ...table.page(STATUS_SETS[msg.what], msg.after ?? 0, msg.limit ?? DEFAULT_PAGE_TASKS, pageBytes) };
  }
}
