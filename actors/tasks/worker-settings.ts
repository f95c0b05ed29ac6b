/**
 * The Worker's settings (`spawnWorker` options), each with its default and its trade-off. Validated
 * once, at construction, with messages that name the option, the value and what was expected
 * (TROUPE_E_SETTING); the CLI's `--slots` and `--tags` are checked here too.
 */
import os from 'node:os';
import { settingError } from '../../src/errors.js';
import { DEFAULT_KILL_GRACE_MS, milliseconds } from '../process/run-options.js';
import type { Spawner } from '../process/spawner.js';
import type { RunCommandOptions, RunningCommand } from '../process/run-command.js';

export { DEFAULT_KILL_GRACE_MS };

/** Tasks run at once: one per cpu. More overlaps waiting commands; fewer leaves cpus to each. */
export const DEFAULT_SLOTS = os.availableParallelism();
/** The most slots a worker may have. */
export const MAX_SLOTS = 10_000;
/** A usage report (cpu, load, memory, running tasks) to the pool every second. */
export const DEFAULT_USAGE_INTERVAL_MS = 1000;
/**
 * Output held per task while there is no manager to send it to: 4 MiB. More lets a command run on
 * through a longer outage without blocking; each running task may hold this much memory. The same
 * bound holds the last chunks sent of each task, kept for a resend after a pool's hello.
 */
export const DEFAULT_MAX_HELD_OUTPUT_BYTES = 4 * 1024 * 1024;
/**
 * After a manager restart, how long a task's held output waits for one of its subscribers (a
 * `troupe run` redialling too) to be back before it is sent anyway: 10 seconds.
 */
export const DEFAULT_SUBSCRIBER_WAIT_MS = 10_000;
/** A tag: a letter or digit, then letters, digits, ".", "_" or "-", 64 in all at most. */
export const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** What TAG accepts, in words (for messages). */
export const TAGS_EXPECTED = 'tags of letters, digits, ".", "_" or "-" (up to 64)';

export interface WorkerOptions {
  /** Tasks run at once (1 to MAX_SLOTS); default: DEFAULT_SLOTS, the number of cpus. */
  slots?: number;
  /** What `tag=` selectors match (see TAG); repeats are dropped. Default: none. */
  tags?: readonly string[];
  /** SIGTERM → SIGKILL grace when a task is cancelled or times out; default: DEFAULT_KILL_GRACE_MS. */
  killGraceMs?: number;
  /** See DEFAULT_USAGE_INTERVAL_MS. */
  usageIntervalMs?: number;
  /** Where each task's temporary directory is made; default: the OS's (os.tmpdir()). */
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
  /** See DEFAULT_SUBSCRIBER_WAIT_MS. */
  subscriberWaitMs?: number;
  /**
   * Benches only (bench/scale.ts): what runs each task instead of runCommand, e.g. a built-in no-op,
   * so that a bench measures the manager with thousands of workers rather than bash. Never set by
   * the CLI; a production worker always runs the command.
   */
  runCommand?: (options: RunCommandOptions) => RunningCommand;
}

export interface WorkerSettings {
  slots: number;
  tags: string[];
  killGraceMs: number;
  usageIntervalMs: number;
  tmpRoot: string;
  /** undefined: the Worker makes its own. */
  spawner: Spawner | false | undefined;
  maxHeldOutputBytes: number;
  subscriberWaitMs: number;
  /** Benches only: see WorkerOptions.runCommand; absent unless given. */
  runCommand?: (options: RunCommandOptions) => RunningCommand;
}

/** The options checked, with their defaults filled in. Throws a SettingError (TROUPE_E_SETTING). */
export function workerSettings(given: WorkerOptions = {}): WorkerSettings {
  if (given === null || typeof given !== 'object') throw settingError('options', given, 'an object');
  const { tmpRoot, spawner } = given;
  if (tmpRoot !== undefined && (typeof tmpRoot !== 'string' || tmpRoot === '' || tmpRoot.includes('\0'))) throw settingError('tmpRoot', tmpRoot, 'a directory path');
  if (spawner !== undefined && spawner !== false && (spawner === null || typeof spawner !== 'object' || typeof spawner.launch !== 'function')) {
    throw settingError('spawner', spawner, 'a Spawner or false');
  }
  if (given.runCommand !== undefined && typeof given.runCommand !== 'function') throw settingError('runCommand', given.runCommand, 'a function');
  return {
    slots: workerSlots(given.slots ?? DEFAULT_SLOTS),
    tags: workerTags(given.tags ?? []),
    killGraceMs: milliseconds('killGraceMs', given.killGraceMs, DEFAULT_KILL_GRACE_MS),
    usageIntervalMs: milliseconds('usageIntervalMs', given.usageIntervalMs, DEFAULT_USAGE_INTERVAL_MS, 1),
    tmpRoot: tmpRoot ?? os.tmpdir(),
    spawner,
    maxHeldOutputBytes: bytes('maxHeldOutputBytes', given.maxHeldOutputBytes ?? DEFAULT_MAX_HELD_OUTPUT_BYTES),
    subscriberWaitMs: milliseconds('subscriberWaitMs', given.subscriberWaitMs, DEFAULT_SUBSCRIBER_WAIT_MS),
    ...(given.runCommand === undefined ? {} : { runCommand: given.runCommand }),
  };
}

/** `slots` checked: a whole number from 1 to MAX_SLOTS. */
export function workerSlots(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SLOTS) throw settingError('slots', value, `a whole number from 1 to ${MAX_SLOTS}`);
  return value;
}

/** `tags` checked (each matches TAG), repeats dropped; `expected` words the message (the CLI adds how they are separated). */
export function workerTags(value: unknown, expected = TAGS_EXPECTED): string[] {
  if (!Array.isArray(value)) throw settingError('tags', value, `an array of ${TAGS_EXPECTED}`);
  for (const tag of value) if (typeof tag !== 'string' || !TAG.test(tag)) throw settingError('tags', tag, expected);
  return [...new Set(value as string[])];
}

function bytes(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw settingError(option, value, 'a whole number of bytes ≥ 0');
  return value;
}
