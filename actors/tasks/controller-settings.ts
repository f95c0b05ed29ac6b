/**
 * The Controller's settings, each with its default and its trade-off. Validated once, at
 * construction (`controllerSettings`), with messages that name the option, the value and what was
 * expected (TROUPE_E_SETTING), as src/transport/settings.ts does: a bad value stops the manager
 * before it takes a submission, never half-way through one.
 */
import { settingError } from '../../src/errors.js';
import { DEFAULT_TASK_LIMITS, type TaskObserver } from './task-table.js';
import type { TaskJournal } from './journal.js';

/** Finished tasks remembered (the oldest dropped first): bounds the table's memory. */
export const DEFAULT_MAX_FINISHED = DEFAULT_TASK_LIMITS.maxFinished;
/** Bytes of each stream's output kept per task in the table. */
export const DEFAULT_TAIL_BYTES = DEFAULT_TASK_LIMITS.tailBytes;
/** Longest command accepted, in bytes. */
export const DEFAULT_MAX_COMMAND_BYTES = 64 * 1024;
/** Most retries a submission may ask for. */
export const DEFAULT_MAX_RETRIES = 100;
/** 5 s: the worker's kill grace (2 s) and a slow link besides. */
export const DEFAULT_TIMEOUT_GRACE_MS = 5000;
/** 4 MiB: a page of tasks is a quarter of the default frame limit. */
export const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;
/** Tasks in one page when the asker gives no limit. */
export const DEFAULT_PAGE_TASKS = 1000;
/**
 * The longest a submission may wait for a matching worker (`waitForWorkerMs`): the longest a
 * timer can be set for (about 24.8 days), so "wait until one joins" is this.
 */
export const MAX_WAIT_FOR_WORKER_MS = 2 ** 31 - 1;
/**
 * At most how long the acknowledgement of a result waits for the next `work` to the same worker, to
 * ride in it rather than in a frame of its own (result-acks.ts): 50 ms. Tasks run one after another
 * come well within it (the next submit follows the result). Shorter costs the manager more timer
 * wake-ups (one per this interval, while results come); longer only keeps a finished result (and
 * its Executor) on its worker longer. 0: each acknowledgement at once.
 */
export const DEFAULT_RESULT_ACK_DELAY_MS = 50;

export interface ControllerSettings {
  /** See DEFAULT_MAX_FINISHED. */
  maxFinished: number;
  /** See DEFAULT_TAIL_BYTES. */
  tailBytes: number;
  /** See DEFAULT_MAX_COMMAND_BYTES. */
  maxCommandBytes: number;
  /** See DEFAULT_MAX_RETRIES. */
  maxRetries: number;
  /**
   * How long past a task's timeout the Controller waits for its worker to report the end before it
   * ends the task itself (`timed-out`), in ms. Longer than the worker's SIGTERM → SIGKILL grace.
   */
  timeoutGraceMs: number;
  /** About the most bytes of task records in one answer to a `tasks*` query (one page). */
  pageBytes: number;
  /** See DEFAULT_RESULT_ACK_DELAY_MS. */
  resultAckDelayMs: number;
}

export type ControllerOptions = Partial<ControllerSettings> & {
  /** Told of every task lifecycle change (metrics, the live view): see TaskObserver. Not a setting. */
  observer?: TaskObserver;
  /** The task journal (see journal.ts): the table is restored from it and every change written to it. Not a setting. */
  journal?: TaskJournal;
  /** Per-task and total bounds of the stored output (see output-store.ts; its defaults when absent). */
  outputTaskBytes?: number;
  outputTotalBytes?: number;
  /** After a restart, how long a task the journal says was running waits for its worker to report it before it counts as lost (ms). */
  restoreGraceMs?: number;
  /** How often retention runs (ms). */
  compactIntervalMs?: number;
};

/** 30 s: a worker's rejoin backoff and its state report, with room to spare. */
export const DEFAULT_RESTORE_GRACE_MS = 30_000;
/** Retention of the journal's finished tasks runs once a minute (in batches, between other messages). */
export const DEFAULT_COMPACT_INTERVAL_MS = 60_000;

/** The journal's options (beside the settings, used only with a journal) with defaults; throws a SettingError naming a bad one. */
export function journalOptions(given: ControllerOptions = {}): { restoreGraceMs: number; compactIntervalMs: number; outputTaskBytes?: number; outputTotalBytes?: number } {
  const restoreGraceMs = given.restoreGraceMs ?? DEFAULT_RESTORE_GRACE_MS;
  if (!Number.isFinite(restoreGraceMs) || restoreGraceMs < 0) throw settingError('restoreGraceMs', restoreGraceMs, 'milliseconds ≥ 0');
  const compactIntervalMs = given.compactIntervalMs ?? DEFAULT_COMPACT_INTERVAL_MS;
  if (!Number.isFinite(compactIntervalMs) || compactIntervalMs <= 0) throw settingError('compactIntervalMs', compactIntervalMs, 'milliseconds > 0');
  for (const key of ['outputTaskBytes', 'outputTotalBytes'] as const) {
    const v = given[key];
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw settingError(key, v, 'a positive whole number of bytes');
  }
  return { restoreGraceMs, compactIntervalMs, outputTaskBytes: given.outputTaskBytes, outputTotalBytes: given.outputTotalBytes };
}

export const DEFAULT_CONTROLLER_SETTINGS: Readonly<ControllerSettings> = Object.freeze({
  maxFinished: DEFAULT_MAX_FINISHED,
  tailBytes: DEFAULT_TAIL_BYTES,
  maxCommandBytes: DEFAULT_MAX_COMMAND_BYTES,
  maxRetries: DEFAULT_MAX_RETRIES,
  timeoutGraceMs: DEFAULT_TIMEOUT_GRACE_MS,
  pageBytes: DEFAULT_PAGE_BYTES,
  resultAckDelayMs: DEFAULT_RESULT_ACK_DELAY_MS,
});

/** The settings with defaults filled in; throws a SettingError (TROUPE_E_SETTING) naming the first bad one. */
export function controllerSettings(given: ControllerOptions = {}): ControllerSettings {
  const s: ControllerSettings = { ...DEFAULT_CONTROLLER_SETTINGS };
  for (const key of Object.keys(DEFAULT_CONTROLLER_SETTINGS) as (keyof ControllerSettings)[]) if (given[key] !== undefined) s[key] = given[key];
  if (!Number.isInteger(s.maxFinished) || s.maxFinished < 0) throw settingError('maxFinished', s.maxFinished, 'a whole number of tasks ≥ 0');
  if (!Number.isInteger(s.tailBytes) || s.tailBytes < 0) throw settingError('tailBytes', s.tailBytes, 'a whole number of bytes ≥ 0');
  if (!Number.isInteger(s.maxCommandBytes) || s.maxCommandBytes <= 0) throw settingError('maxCommandBytes', s.maxCommandBytes, 'a positive whole number of bytes');
  if (!Number.isInteger(s.maxRetries) || s.maxRetries < 0) throw settingError('maxRetries', s.maxRetries, 'a whole number ≥ 0');
  if (!Number.isFinite(s.timeoutGraceMs) || s.timeoutGraceMs < 0) throw settingError('timeoutGraceMs', s.timeoutGraceMs, 'milliseconds ≥ 0');
  if (!Number.isInteger(s.pageBytes) || s.pageBytes <= 0) throw settingError('pageBytes', s.pageBytes, 'a positive whole number of bytes');
  if (!Number.isInteger(s.resultAckDelayMs) || s.resultAckDelayMs < 0 || s.resultAckDelayMs > 60_000) {
    throw settingError('resultAckDelayMs', s.resultAckDelayMs, 'a whole number of milliseconds from 0 to 60000');
  }
  return s;
}
