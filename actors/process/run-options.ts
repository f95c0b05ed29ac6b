/**
 * What runCommand is given, checked once before anything starts: the command, its environment, its
 * timers, where its directory comes from (a TaskDirs, always) and how bash is started. A bad option
 * is a SettingError (TROUPE_E_SETTING) naming the option, the value and what was expected; nothing
 * else here throws. Also the removal of a task directory, which TaskDirs uses when a directory
 * cannot be moved off its path.
 */
import path from 'node:path';
import { settingError } from '../../src/errors.js';
import type { OutputStream, Spawner } from './spawner.js';
import type { TaskDirs } from './task-dirs.js';
// Where a task directory's name and removal are defined (task-dirs.ts uses them too; kept apart so neither imports the other).
export { TASK_DIR_PREFIX, removeTaskDir } from './task-dir-removal.js';

/** SIGTERM → SIGKILL grace on timeout or cancel: 2 seconds. */
export const DEFAULT_KILL_GRACE_MS = 2000;
/**
 * After the group is SIGKILLed, how long (counted only while not paused) we wait for the pipes to
 * reach end-of-file before abandoning them: 1 second. Only a process that escaped the group (setsid)
 * can hold them that long; a short wait costs nothing in the normal case.
 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 1000;
/** The variables a command inherits from the worker's own environment (when set there). */
export const INHERITED_ENV_KEYS: readonly string[] = Object.freeze(['PATH', 'HOME', 'LANG', 'USER', 'SHELL', 'TMPDIR']);
/** setTimeout's largest delay; a larger one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RunCommandOptions {
  /** Run as `/bin/bash -c COMMAND`. */
  command: string;
  /** Added to (and overriding) the inherited INHERITED_ENV_KEYS. Default: none. */
  env?: Record<string, string>;
  /** Milliseconds until the command is timed out. Default: 0, no timeout. */
  timeoutMs?: number;
  /** Milliseconds between SIGTERM and SIGKILL on timeout or cancel. Default: DEFAULT_KILL_GRACE_MS. */
  killGraceMs?: number;
  /** See DEFAULT_DRAIN_TIMEOUT_MS. Default: DEFAULT_DRAIN_TIMEOUT_MS. */
  drainTimeoutMs?: number;
  /** Where the per-task directory comes from and goes to (made ahead, deleted behind). Required. */
  dirs: TaskDirs;
  /** Start bash through this spawner process rather than from this one. Default: none (directly). */
  spawner?: Spawner;
  /** Each chunk read, in order; `seq` counts 0, 1, 2… across both streams. */
  onOutput(stream: OutputStream, data: Buffer, seq: number): void;
}

export interface RunSettings {
  command: string;
  env: Record<string, string>;
  timeoutMs: number;
  killGraceMs: number;
  drainTimeoutMs: number;
  dirs: TaskDirs;
  spawner: Spawner | undefined;
  onOutput: RunCommandOptions['onOutput'];
}

/** The options checked, with their defaults filled in. */
export function runSettings(options: RunCommandOptions): RunSettings {
  if (options === null || typeof options !== 'object') throw settingError('options', options, 'an object');
  const { command, env, onOutput, dirs } = options;
  if (typeof command !== 'string' || command.trim() === '') throw settingError('command', command, 'a non-empty string');
  if (command.includes('\0')) throw settingError('command', '(a string with a NUL byte)', 'a string without NUL bytes');
  if (typeof onOutput !== 'function') throw settingError('onOutput', onOutput, 'a function (stream, data, seq)');
  if (dirs === null || typeof dirs !== 'object' || typeof dirs.take !== 'function' || typeof dirs.discard !== 'function') {
    throw settingError('dirs', dirs, 'a TaskDirs (actors/process/task-dirs.ts)');
  }
  if (options.spawner !== undefined && (options.spawner === null || typeof options.spawner !== 'object' || typeof options.spawner.launch !== 'function')) {
    throw settingError('spawner', options.spawner, 'a Spawner');
  }
  return {
    command,
    env: taskEnv(env),
    timeoutMs: milliseconds('timeoutMs', options.timeoutMs, 0),
    killGraceMs: milliseconds('killGraceMs', options.killGraceMs, DEFAULT_KILL_GRACE_MS),
    drainTimeoutMs: milliseconds('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
    dirs,
    spawner: options.spawner,
    onOutput,
  };
}

/** A timer setting checked: `fallback` when undefined, else an integer from `min` to what setTimeout holds. */
export function milliseconds(option: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw settingError(option, value, `an integer number of milliseconds from ${min} to ${MAX_TIMER_MS}`);
  }
  return value;
}

/** INHERITED_ENV_KEYS from our environment, then the task's variables over them. */
function taskEnv(given: unknown): Record<string, string> {
  if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given))) {
    throw settingError('env', given, 'an object of string values');
  }
  // No prototype: a variable named __proto__ is just a variable.
  const env = Object.create(null) as Record<string, string>;
  for (const key of INHERITED_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  for (const [key, value] of Object.entries((given ?? {}) as Record<string, unknown>)) {
    if (key === '' || key.includes('=') || key.includes('\0')) throw settingError('env', key, 'variable names that are non-empty, without "=" or NUL');
    if (typeof value !== 'string') throw settingError(`env.${key}`, value, 'a string');
    if (value.includes('\0')) throw settingError(`env.${key}`, '(a string with a NUL byte)', 'a string without NUL bytes');
    env[key] = value;
  }
  return env;
}
