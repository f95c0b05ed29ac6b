/**
 * Task directories made ahead of use and deleted behind it, so that neither the making nor the
 * deleting is on a task's path. Every runCommand takes its directory from one (`dirs`): the Worker's
 * (one per slot made ahead), the Russula worker's, a test's.
 *
 * Why: on ext4 under load a mkdtemp costs 0.1-0.15 ms and the rmdir of a directory a command just
 * ran in 0.4-0.8 ms, both on the worker's event loop, both between the submit and the result. A
 * rename within one filesystem costs a fifth of that rmdir.
 *
 * How: spares are made right after the turn of the event loop that took one (setImmediate), with
 * mkdtempSync (about 0.05 ms here): by then the command has been sent to start, and the process is
 * awake anyway. Through the thread pool a mkdtemp costs two sleeps and wake-ups (a pool thread
 * woken, and our loop woken by its completion), which cost more CPU than the call itself. The
 * same turn deletes, with rmdirSync, the directories discarded since the last one (most often one;
 * 0.04 ms each here on a quiet machine, the 0.4-0.8 ms above under load: off the task's path, since
 * its bash is starting then, though another slot's events wait behind it). Through the pool each had
 * cost its own wake-up of a pool thread and of our loop, and a batch handed to the pool at once had
 * its four threads contend for the trash directory's lock (sleeping on it). A directory that is not empty (rmdir fails at once) is
 * removed in the thread pool, in the background. With no take to follow (an idle worker), what
 * waits is deleted TRASH_DELAY_MS after it was discarded.
 *
 * What it guarantees:
 * - `take()` returns a fresh, empty directory under `root` (its real path), made with mkdtemp
 *   (prefix TASK_DIR_PREFIX), that nothing else has been given: a spare made ahead, at most
 *   `maxSpareAgeMs` old, or else one made now. Spares are made again after the turn, up to `ahead`
 *   of them.
 * - `discard(dir)` takes the directory off its path at once: it is renamed into this instance's
 *   trash directory (`troupe-trash-*` under `root`, the same filesystem), whose entries are deleted
 *   in the background: right after the turn of the next `take()` (see How), or TRASH_DELAY_MS
 *   after the first of them came, or when `drained()` asks. If the rename fails (the
 *   command took away its own write permission, or moved things), the directory is removed in place
 *   with removeTaskDir (task-dir-removal.ts), and `discard` resolves after that. Either way its path no
 *   longer exists when `discard` resolves; it resolves with why not, if it could not be removed.
 * - A root that cannot be used (it does not exist yet, or is not a directory) is not the
 *   constructor's error but `take()`'s, tried again on each call: a worker whose TMPDIR is missing
 *   still starts, each task fails to start saying why, and tasks run once the directory is there.
 * - `close()` deletes the spares and the trash, synchronously (it runs from process 'exit'). A
 *   worker that is SIGKILLed leaves its spares, its trash and its tasks' directories behind; so:
 * - With an `owner` (the worker's node name), every directory made here is named for its owner and
 *   this process (`troupe-task-OWNER.PID-XXXXXX`, `troupe-trash-OWNER.PID-XXXXXX`), and the
 *   constructor first removes, synchronously, the directories under `root` of the same owner whose
 *   process is gone: what an earlier run of this worker left when it was killed. It never touches a
 *   directory of another owner, nor one whose process still runs (another worker of the same name
 *   on this machine, alive), nor any name it did not make.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NODE_NAME } from '../../protocols/actor-ref.js';
import { settingError } from '../../src/errors.js';
import { TASK_DIR_PREFIX, removeTaskDir } from './task-dir-removal.js';

/** A spare older than this is not handed out (a tmp cleaner may have been at it): 60 seconds. */
export const DEFAULT_MAX_SPARE_AGE_MS = 60_000;
/** The trash directory's name prefix under the root. */
export const TRASH_DIR_PREFIX = 'troupe-trash-';
/** A trash entry waits at most this long for the next take's turn (see How) before it is deleted: 250 ms. */
export const TRASH_DELAY_MS = 250;

export interface TaskDirsOptions {
  /** Spares kept made ahead; default 1. 0 makes every directory in `take()`. */
  ahead?: number;
  /** See DEFAULT_MAX_SPARE_AGE_MS. */
  maxSpareAgeMs?: number;
  /** Whose directories these are (a node name: letters, digits, . _ -, and ~ before a session); see above. Default: none. */
  owner?: string;
}


export class TaskDirs {
  /** The root as given, and its real path once it could be resolved. */
  readonly #given: string;
  #real: string | undefined;
  readonly #owner: string | undefined;
  readonly #ahead: number;
  readonly #maxSpareAgeMs: number;
  readonly #spares: { dir: string; madeAt: number }[] = [];
  #trash: string | undefined;
  #refillQueued = false;
  /** Entries of the trash waiting to be deleted, oldest first. */
  #doomed: string[] = [];
  #trashTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #seq = 0;
  /** A refill queued and background removals in flight, and who waits for none. */
  #inFlight = 0;
  #onDrained: (() => void)[] = [];
  readonly #taskPrefix: string;
  readonly #trashPrefix: string;
  /** What the constructor removed (left by earlier runs of the same owner), as paths. */
  removedLeftovers: readonly string[] = [];

  /** Throws a SettingError for bad options; a root that cannot be used yet is reported by take(). */
  constructor(root: string, options: TaskDirsOptions = {}) {
    if (typeof root !== 'string' || root === '' || root.includes('\0')) throw settingError('root', root, 'a directory path');
    this.#given = root;
    this.#ahead = options.ahead ?? 1;
    this.#maxSpareAgeMs = options.maxSpareAgeMs ?? DEFAULT_MAX_SPARE_AGE_MS;
    const { owner } = options;
    if (owner !== undefined && !NODE_NAME.test(owner)) throw settingError('owner', owner, 'a node name (letters, digits, . _ -, and ~ before a session)');
    const mark = owner === undefined ? '' : `${owner}.${process.pid}-`;
    this.#taskPrefix = TASK_DIR_PREFIX + mark;
    this.#trashPrefix = TRASH_DIR_PREFIX + mark;
    this.#owner = owner;
    try {
      this.#resolve();
    } catch {
      // take() reports it (and tries again)
    }
  }

  /** The real path of the root the directories are made under (as given, until it can be resolved). */
  get root(): string {
    return this.#real ?? this.#given;
  }

  /** The root's real path; the first time, also removes what earlier runs of the owner left. Throws as fs.realpathSync does. */
  #resolve(): string {
    if (this.#real !== undefined) return this.#real;
    const real = fs.realpathSync(this.#given);
    this.#real = real;
    if (this.#owner !== undefined) this.removedLeftovers = removeLeftovers(real, this.#owner);
    return real;
  }

  /** A fresh directory; throws as fs.realpathSync or fs.mkdtempSync does when none can be made. */
  take(): string {
    const root = this.#resolve();
    const now = Date.now();
    let dir: string | undefined;
    while (dir === undefined && this.#spares.length > 0) {
      const spare = this.#spares.shift()!;
      if (now - spare.madeAt <= this.#maxSpareAgeMs) dir = spare.dir;
      else void this.discard(spare.dir);
    }
    dir ??= fs.mkdtempSync(path.join(root, this.#taskPrefix));
    if (this.#spares.length < this.#ahead || this.#doomed.length > 0) this.#queueRefill();
    return dir;
  }

  /** Takes `dir` off its path now and deletes it in the background; resolves with an error, if any. */
  async discard(dir: string): Promise<string | undefined> {
    if (this.#closed) return removeTaskDir(dir);
    try {
      const trash = this.#trashDir();
      const doomed = path.join(trash, `${++this.#seq}`);
      fs.renameSync(dir, doomed);
      this.#doomed.push(doomed);
      // Deleted in the next take's turn; the timer is for a worker that takes none (never cleared:
      // a cleared timer still wakes the loop at its time, see #deleteWaiting).
      this.#trashTimer ??= setTimeout(() => {
        this.#trashTimer = undefined;
        this.#deleteWaiting();
      }, TRASH_DELAY_MS).unref();
      return undefined;
    } catch {
      return removeTaskDir(dir);
    }
  }

  /** Trash entries discarded and not yet deleted (nor handed to the thread pool). */
  get trashWaiting(): number {
    return this.#doomed.length;
  }

  /** Spares and trash made so far, deleted now. Afterwards `take` and `discard` still work, without spares or trash. */
  close(): void {
    this.#closed = true;
    for (const { dir } of this.#spares.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    if (this.#trash !== undefined) {
      try {
        fs.rmSync(this.#trash, { recursive: true, force: true });
      } catch {
        // entries a command made unwritable: removeTaskDir's fallback is async; leave them
      }
      this.#trash = undefined;
    }
    this.#doomed = [];
  }

  /** Starts deleting what waits in the trash; resolves when no refill is queued and no background removal is in flight. */
  drained(): Promise<void> {
    this.#deleteWaiting();
    return this.#inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.#onDrained.push(resolve));
  }

  #begin(): void {
    this.#inFlight++;
  }

  #end(): void {
    if (--this.#inFlight === 0) for (const resolve of this.#onDrained.splice(0)) resolve();
  }

  #trashDir(): string {
    this.#trash ??= fs.mkdtempSync(path.join(this.root, this.#trashPrefix));
    return this.#trash;
  }

  /** Spares made up to `ahead` after this turn, and the trash's waiting entries deleted (see How, above); once however many takes ask. */
  #queueRefill(): void {
    if (this.#refillQueued) return;
    this.#refillQueued = true;
    this.#begin();
    setImmediate(() => {
      this.#refillQueued = false;
      this.#refill();
      this.#deleteWaiting();
      this.#end();
    });
  }

  #refill(): void {
    if (this.#closed || this.#real === undefined) return;
    while (this.#spares.length < this.#ahead) {
      try {
        this.#spares.push({ dir: fs.mkdtempSync(path.join(this.#real, this.#taskPrefix)), madeAt: Date.now() });
      } catch {
        return; // take() makes one itself, and reports the error if it fails there too
      }
    }
  }

  /**
   * Deletes what waits in the trash now, with rmdirSync (see How); an entry that is not empty is
   * removed in the thread pool (a failure there leaves it in the trash; close() tries it once more).
   */
  #deleteWaiting(): void {
    if (this.#doomed.length === 0) return;
    const waiting = this.#doomed;
    this.#doomed = [];
    for (const doomed of waiting) {
      try {
        fs.rmdirSync(doomed);
      } catch {
        this.#begin();
        void removeTaskDir(doomed, { sync: false }).then(() => this.#end());
      }
    }
  }
}

/**
 * Removes the task and trash directories under `root` that `owner` made in a process that is gone.
 * A directory whose entries cannot be removed (a command took away its permissions) is left.
 */
function removeLeftovers(root: string, owner: string): string[] {
  const escaped = owner.replace(/[.]/g, '\\.');
  const mine = new RegExp(`^(?:${TASK_DIR_PREFIX}|${TRASH_DIR_PREFIX})${escaped}\\.(\\d+)-[^/]+$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = Number(mine.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || processRuns(pid)) continue;
    const dir = path.join(root, name);
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // unwritable entries: left, as removeTaskDir's synchronous path leaves them
    }
  }
  return removed;
}

/** True while a process with this pid exists (EPERM: it does, and is not ours to signal). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
