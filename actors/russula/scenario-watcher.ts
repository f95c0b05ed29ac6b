/**
 * `troupe manager --sessions DIR`: runs every scenario file dropped into DIR, one at a time, with a
 * coordinator on the manager, and writes each result beside its file (resultFileFor). Nothing is
 * restarted; a malformed file gets an error result and the watcher goes on.
 *
 * - Which files: `*.yaml` and `*.yml` directly in DIR, not starting with "." (editors' and our own
 *   temporary files). Result files end in `.result.json` and are never taken for scenarios.
 * - When a file runs: when it has no result file, or one older than the file (so a file dropped
 *   again under the same name runs again). That covers the files already there at start: those
 *   without a (newer) result run, in name order; the others are left alone.
 * - Files written in several chunks: a file runs once its size and mtime have stayed the same for
 *   STABLE_MS. A writer that pauses longer than that between chunks should write under another name
 *   (`.x.yaml`, or `x.yaml.part`) and rename it into place: a rename is atomic, and the file is then
 *   whole when it first appears.
 * - fs.watch may coalesce or drop events (and says nothing of which file changed on some systems):
 *   every event only triggers a fresh look at the whole directory, so nothing depends on them being
 *   exact. One queue, FIFO: a run never overlaps another.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../src/log.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, RussulaError } from '../../src/errors.js';
import { resultFileFor, runScenarioFile, type Print, type ScenarioResult } from './scenario-runner.js';

/** A file runs once its size and mtime have not changed for this long: 200 ms. */
export const STABLE_MS = 200;

const SCENARIO_FILE = /^[^.].*\.ya?ml$/i;

export interface ScenarioWatcherOptions {
  system: ClusterSystem;
  dir: string;
  print: Print;
  log: Logger;
  /** Told of each run's result (metrics count runs and steps). */
  onResult?: (result: ScenarioResult) => void;
}

export class ScenarioWatcher {
  readonly dir: string;
  readonly #options: ScenarioWatcherOptions;
  #watcher: fs.FSWatcher | undefined;
  /** Files seen but not yet stable: their last size and mtime. */
  readonly #settling = new Map<string, string>();
  #settleTimer: NodeJS.Timeout | undefined;
  readonly #queue: string[] = [];
  /** Queued or running. */
  readonly #busy = new Set<string>();
  #running: Promise<void> | undefined;
  #abort = new AbortController();
  #stopped = false;

  private constructor(options: ScenarioWatcherOptions) {
    this.#options = options;
    this.dir = path.resolve(options.dir);
  }

  static async start(options: ScenarioWatcherOptions): Promise<ScenarioWatcher> {
    const watcher = new ScenarioWatcher(options);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(watcher.dir);
    } catch (err) {
      throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `--sessions ${options.dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message}`, { cause: err });
    }
    if (!stat.isDirectory()) throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `--sessions ${options.dir}: not a directory`);
    watcher.#watcher = fs.watch(watcher.dir, () => watcher.#scan());
    watcher.#watcher.on('error', (err) => options.log.warn({ err, dir: watcher.dir }, 'sessions directory watch failed'));
    options.print(`sessions: running every scenario file (*.yaml, *.yml) dropped into ${watcher.dir}; results beside them (NAME.result.json)`);
    watcher.#scan();
    return watcher;
  }

  /** Stops watching; a run in progress is stopped (its processes too) and its result written. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    clearTimeout(this.#settleTimer);
    this.#queue.length = 0;
    this.#abort.abort();
    await this.#running;
  }

  #scan(): void {
    if (this.#stopped) return;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => SCENARIO_FILE.test(n)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    } catch (err) {
      this.#options.log.warn({ err, dir: this.dir }, 'cannot read the sessions directory');
      return;
    }
    for (const name of names) {
      if (this.#busy.has(name)) continue;
      const file = path.join(this.dir, name);
      const mark = signature(file);
      if (mark === undefined || !this.#due(file)) {
        this.#settling.delete(name);
        continue;
      }
      if (this.#settling.get(name) === mark) continue;
      this.#settling.set(name, mark);
    }
    if (this.#settling.size > 0) {
      clearTimeout(this.#settleTimer);
      this.#settleTimer = setTimeout(() => this.#settle(), STABLE_MS);
    }
  }

  /** Runs the files whose size and mtime held still for STABLE_MS; looks again at the others. */
  #settle(): void {
    this.#settleTimer = undefined;
    for (const [name, mark] of [...this.#settling]) {
      const file = path.join(this.dir, name);
      const now = signature(file);
      if (now === undefined) {
        this.#settling.delete(name);
      } else if (now === mark) {
        this.#settling.delete(name);
        this.#busy.add(name);
        this.#queue.push(name);
      } else {
        this.#settling.set(name, now);
      }
    }
    if (this.#settling.size > 0) this.#settleTimer = setTimeout(() => this.#settle(), STABLE_MS);
    this.#next();
  }

  #next(): void {
    if (this.#running || this.#stopped) return;
    const name = this.#queue.shift();
    if (name === undefined) return;
    const file = path.join(this.dir, name);
    this.#options.print(`sessions: running ${name}`);
    this.#running = runScenarioFile({ system: this.#options.system, file, print: (line) => this.#options.print(`sessions: ${line}`), signal: this.#abort.signal })
      .then(
        (result) => this.#options.onResult?.(result),
        (err: unknown) => this.#options.log.error({ err, file }, 'scenario run failed unexpectedly'),
      )
      .finally(() => {
        this.#busy.delete(name);
        this.#running = undefined;
        this.#next();
        // The file may have been replaced while it ran: look again.
        this.#scan();
      });
  }

  /** No result yet, or one older than the file. */
  #due(file: string): boolean {
    try {
      const result = fs.statSync(resultFileFor(file));
      return result.mtimeMs < fs.statSync(file).mtimeMs;
    } catch {
      return true;
    }
  }
}

function signature(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    return stat.isFile() ? `${stat.size}:${stat.mtimeMs}` : undefined;
  } catch {
    return undefined;
  }
}
