/**
 * Task directories made ahead of use and deleted behind it, so that neither the making nor the
 * deleting is on a task's path (a Worker gives one to runCommand as `dirs`).
 *
 * Why: on ext4 under load a mkdtemp costs 0.1-0.15 ms and the rmdir of a directory a command just
 * ran in 0.4-0.8 ms, both on the worker's event loop, both between the submit and the result. A
 * rename within one filesystem costs a fifth of that rmdir.
 *
 * What it guarantees:
 * - `take()` returns a fresh, empty directory under `root` (its real path), made with mkdtemp
 *   (prefix TASK_DIR_PREFIX), that nothing else has been given: a spare made in the background, at
 *   most `maxSpareAgeMs` old, or else one made now. Spares are made again in the background, up to
 *   `ahead` of them.
 * - `discard(dir)` takes the directory off its path at once: it is renamed into this instance's
 *   trash directory (`troupe-trash-*` under `root`, the same filesystem), whose entries are deleted
 *   in the background, one at a time, without blocking the event loop. If the rename fails (the
 *   command took away its own write permission, or moved things), the directory is removed in place
 *   as runCommand does without `dirs`, and `discard` resolves after that. Either way its path no
 *   longer exists when `discard` resolves; it resolves with why not, if it could not be removed.
 * - `close()` deletes the spares and the trash, synchronously (it runs from process 'exit'). A
 *   worker that is SIGKILLed leaves its spares and its trash behind, as it leaves its tasks'
 *   directories.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TASK_DIR_PREFIX, removeTaskDir } from './run-command.js';

/** A spare older than this is not handed out (a tmp cleaner may have been at it): 60 seconds. */
export const DEFAULT_MAX_SPARE_AGE_MS = 60_000;
/** The trash directory's name prefix under the root. */
export const TRASH_DIR_PREFIX = 'troupe-trash-';

export interface TaskDirsOptions {
  /** Spares kept made ahead; default 1. 0 makes every directory in `take()`. */
  ahead?: number;
  /** See DEFAULT_MAX_SPARE_AGE_MS. */
  maxSpareAgeMs?: number;
}

export class TaskDirs {
  /** The real path of the root the directories are made under. */
  readonly root: string;
  readonly #ahead: number;
  readonly #maxSpareAgeMs: number;
  readonly #spares: { dir: string; madeAt: number }[] = [];
  #making = 0;
  #trash: string | undefined;
  /** Entries of the trash not yet deleted, oldest first; the first is being deleted while `#deleting`. */
  readonly #doomed: string[] = [];
  #deleting = false;
  #closed = false;
  #seq = 0;
  /** Background operations in flight (spares being made, trash being emptied), and who waits for none. */
  #inFlight = 0;
  #onDrained: (() => void)[] = [];

  /** Throws as fs.realpathSync does when `root` does not exist. */
  constructor(root: string, options: TaskDirsOptions = {}) {
    this.root = fs.realpathSync(root);
    this.#ahead = options.ahead ?? 1;
    this.#maxSpareAgeMs = options.maxSpareAgeMs ?? DEFAULT_MAX_SPARE_AGE_MS;
  }

  /** A fresh directory; throws as fs.mkdtempSync does when none can be made. */
  take(): string {
    const now = Date.now();
    let dir: string | undefined;
    while (dir === undefined && this.#spares.length > 0) {
      const spare = this.#spares.shift()!;
      if (now - spare.madeAt <= this.#maxSpareAgeMs) dir = spare.dir;
      else void this.discard(spare.dir);
    }
    dir ??= fs.mkdtempSync(path.join(this.root, TASK_DIR_PREFIX));
    this.#refill();
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
      this.#deleteNext();
      return undefined;
    } catch {
      return removeTaskDir(dir);
    }
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
    this.#doomed.length = 0;
  }

  /**
   * Resolves when no background work is in flight. After close(), a spare whose making was under
   * way is removed when it arrives: this is when that is over.
   */
  drained(): Promise<void> {
    return this.#inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.#onDrained.push(resolve));
  }

  #begin(): void {
    this.#inFlight++;
  }

  #end(): void {
    if (--this.#inFlight === 0) for (const resolve of this.#onDrained.splice(0)) resolve();
  }

  #trashDir(): string {
    this.#trash ??= fs.mkdtempSync(path.join(this.root, TRASH_DIR_PREFIX));
    return this.#trash;
  }

  #refill(): void {
    if (this.#closed) return;
    while (this.#spares.length + this.#making < this.#ahead) {
      this.#making++;
      this.#begin();
      fs.mkdtemp(path.join(this.root, TASK_DIR_PREFIX), (err, dir) => {
        this.#making--;
        // On an error take() makes one itself, and reports the error if it fails there too.
        if (err) return this.#end();
        if (!this.#closed) {
          this.#spares.push({ dir, madeAt: Date.now() });
          return this.#end();
        }
        fs.rmdir(dir, () => this.#end());
      });
    }
  }

  #deleteNext(): void {
    if (this.#deleting || this.#doomed.length === 0) return;
    this.#deleting = true;
    this.#begin();
    const doomed = this.#doomed[0]!;
    void removeTaskDir(doomed, { sync: false }).then(() => {
      // A failure leaves the entry in the trash; close() tries it once more.
      if (this.#doomed[0] === doomed) this.#doomed.shift();
      this.#deleting = false;
      this.#deleteNext();
      this.#end();
    });
  }
}
