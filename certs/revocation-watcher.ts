/**
 * The manager's view of the revocation list: `revoked.crl` read at start and again whenever it
 * changes (fs.watch on its directory for an answer at once, and a poll of its stat every
 * `pollMs` for file systems where fs.watch stays silent).
 *
 * At start, a list that is there but does not verify against the CA throws (TROUPE_E_CRL_INVALID):
 * the manager does not start with a revocation list it cannot trust. No file means nothing is
 * revoked. On a reload, a list that does not verify, is older than the one in use (a lower
 * cRLNumber), or has gone missing is reported as `invalid` and the last good list stays in force:
 * revocation is never undone by a broken, stale or deleted file. Each good new list is `reloaded`.
 *
 * Events: `reloaded` (RevocationList) · `invalid` (CertificateError). (Not `error`: an `error`
 * nobody listens to would throw from a timer and stop the manager.)
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { CertificateError, ErrorCodes, settingError } from '../src/errors.js';
import { normalizeSerial, readRevocationList, type RevocationList } from './revocation-list.js';

/** How often the file's stat is polled besides fs.watch (a missed watch event costs at most this). */
export const DEFAULT_REVOCATION_POLL_MS = 2000;
/** A list that does not parse is reported only once the file has stayed unchanged this long (ms): a copy in progress is not an error. */
const SETTLE_MS = 200;

export interface RevocationWatcherOptions {
  /** The list's path, e.g. `<certs>/revoked.crl`. */
  file: string;
  /** The CA certificate (PEM) the list must be signed by. */
  ca: string;
  /** Default: DEFAULT_REVOCATION_POLL_MS. */
  pollMs?: number;
}

type WatcherEvents = { reloaded: [RevocationList]; invalid: [CertificateError] };

export class RevocationWatcher extends EventEmitter<WatcherEvents> {
  readonly file: string;
  #ca: string;
  #list: RevocationList | undefined;
  #serials = new Set<string>();
  /** What was last read (good or bad), so that an unchanged file is neither parsed nor reported again. */
  #lastText: string | undefined;
  #lastStat = '';
  #watcher: fs.FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #scheduled = false;
  #stopped = false;
  #settle: NodeJS.Timeout | undefined;

  private constructor(options: RevocationWatcherOptions) {
    super();
    this.file = path.resolve(options.file);
    this.#ca = options.ca;
  }

  /** Reads the list (throws TROUPE_E_CRL_INVALID when it is there and bad) and starts watching it. */
  static start(options: RevocationWatcherOptions): RevocationWatcher {
    const pollMs = options.pollMs ?? DEFAULT_REVOCATION_POLL_MS;
    if (!Number.isInteger(pollMs) || pollMs <= 0) throw settingError('revocation.pollMs', pollMs, 'a positive whole number of milliseconds');
    const watcher = new RevocationWatcher(options);
    const text = watcher.#read();
    if (text !== undefined) watcher.#adopt(readRevocationList(text, watcher.#ca, watcher.file), text);
    watcher.#lastStat = watcher.#statKey();
    try {
      watcher.#watcher = fs.watch(path.dirname(watcher.file), (_event, name) => {
        if (name === null || name === path.basename(watcher.file)) watcher.#schedule();
      });
      watcher.#watcher.on('error', () => watcher.#watcher?.close());
    } catch {
      // No fs.watch here (or no directory yet): the poll alone notices changes.
    }
    watcher.#poll = setInterval(() => watcher.#schedule(), pollMs).unref();
    return watcher;
  }

  /** The list in force, or undefined when there is none. */
  get list(): RevocationList | undefined {
    return this.#list;
  }

  /** True when the certificate with this serial number (hex, any case) is revoked. */
  isRevoked(serial: string): boolean {
    try {
      return this.#serials.has(normalizeSerial(serial));
    } catch {
      return false; // not a serial number at all: nothing a list could name
    }
  }

  /** Reads the file again now if it changed (what the watch and the poll do). */
  check(): void {
    if (this.#stopped) return;
    const stat = this.#statKey();
    if (stat === this.#lastStat) return;
    this.#lastStat = stat;
    let text: string | undefined;
    try {
      text = this.#read();
    } catch (err) {
      this.emit('invalid', new CertificateError(ErrorCodes.CRL_INVALID, `${(err as Error).message}; ${this.#keeping()}`, { cause: err }));
      return;
    }
    if (text === undefined) {
      if (this.#list !== undefined && this.#lastText !== undefined) {
        this.#lastText = undefined;
        this.emit('invalid', new CertificateError(ErrorCodes.CRL_INVALID, `${this.file}: gone; the last list read (number ${this.#list.number}, ${this.#list.entries.length} revoked) stays in force`));
      }
      return;
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    let list: RevocationList;
    try {
      list = readRevocationList(text, this.#ca, this.file);
    } catch (err) {
      // Perhaps a copy still being written: reported only if the file stays as it is a moment longer.
      const failed = this.#lastStat;
      clearTimeout(this.#settle);
      this.#settle = setTimeout(() => {
        if (this.#stopped || this.#lastStat !== failed || this.#statKey() !== failed) return;
        this.emit('invalid', new CertificateError(ErrorCodes.CRL_INVALID, `${(err as Error).message}; ${this.#keeping()}`, { cause: err }));
      }, SETTLE_MS).unref();
      return;
    }
    if (this.#list && list.number < this.#list.number) {
      this.emit('invalid', new CertificateError(ErrorCodes.CRL_INVALID, `${this.file}: list number ${list.number} is older than the one in force (${this.#list.number}); ${this.#keeping()}`));
      return;
    }
    this.#adopt(list, text);
    this.emit('reloaded', list);
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
  }

  #keeping(): string {
    return this.#list ? `the last good list (number ${this.#list.number}, ${this.#list.entries.length} revoked) stays in force` : 'nothing was revoked before it, and nothing is now';
  }

  #adopt(list: RevocationList, text: string): void {
    this.#list = list;
    this.#lastText = text;
    this.#serials = new Set(list.entries.map((e) => e.serial));
  }

  // Bursts of watch events (a write, then a rename) are read once, on the next turn.
  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.check();
    });
  }

  #statKey(): string {
    try {
      const stat = fs.statSync(this.file, { throwIfNoEntry: false });
      return stat ? `${stat.ino}:${stat.size}:${stat.mtimeMs}` : 'none';
    } catch (err) {
      return `unreadable:${(err as NodeJS.ErrnoException).code}`;
    }
  }

  #read(): string | undefined {
    try {
      return fs.readFileSync(this.file, 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CertificateError(ErrorCodes.CRL_INVALID, `${this.file}: cannot be read (${(cause as NodeJS.ErrnoException).code})`, { cause });
    }
  }
}
