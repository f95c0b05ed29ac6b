/**
 * What a subscriber received of each task's output, so that a repeat is dropped and a loss is told.
 *
 * Chunks of one attempt of a task are numbered `seq` 0, 1, 2… across both streams by the worker
 * that ran it, and come in that order. A chunk below the next expected number is a repeat (a worker
 * that sent its held output again after a manager restart) and is dropped; one above it means the
 * chunks between were lost (written to a connection that broke). A new attempt (a retry elsewhere)
 * counts from 0 again. When the task ends, what arrived is checked against the byte counts of its
 * final record: fewer bytes than the worker read is a loss too, even with no gap to show it.
 */
import { FINISHED_STATUSES, type TaskOutput, type TaskRecord } from '../../protocols/tasks.js';

interface Account {
  /** The attempt being counted; -1 until a record says (a chunk can come before the submit's reply is handled). */
  attempts: number;
  next: number;
  bytes: number;
  /** Chunks known missing (gaps in seq). */
  missing: number;
}

export class OutputLedger {
  readonly #accounts = new Map<string, Account>();

  /** True if the chunk is new and should be handed on; false for a repeat. */
  take(chunk: TaskOutput): boolean {
    const account = this.#account(chunk.id);
    if (chunk.seq < account.next) return false;
    account.missing += chunk.seq - account.next;
    account.next = chunk.seq + 1;
    account.bytes += chunk.data.byteLength;
    return true;
  }

  /** A record of the task: a new attempt starts a new count. */
  update(task: TaskRecord): void {
    const account = this.#account(task.id);
    if (account.attempts === -1) account.attempts = task.attempts;
    else if (task.attempts > account.attempts && !FINISHED_STATUSES.has(task.status)) {
      this.#accounts.set(task.id, { attempts: task.attempts, next: 0, bytes: 0, missing: 0 });
    }
  }

  /**
   * Why the output of a finished task, as received here from its first chunk, is not whole; or
   * undefined. A task that never ran, or was lost with its worker, has no count to hold it to.
   */
  loss(task: TaskRecord): string | undefined {
    const account = this.#accounts.get(task.id) ?? { attempts: task.attempts, next: 0, bytes: 0, missing: 0 };
    const expected = task.stdoutBytes + task.stderrBytes;
    const ran = task.status !== 'lost' && task.startedAt !== null;
    const short = ran && account.bytes < expected ? expected - account.bytes : 0;
    if (account.missing === 0 && short === 0) return undefined;
    const parts: string[] = [];
    if (short > 0) parts.push(`${short} of its ${expected} bytes did not arrive`);
    if (account.missing > 0) parts.push(`${account.missing} chunk${account.missing === 1 ? '' : 's'} missing`);
    return parts.join(', ');
  }

  forget(id: string): void {
    this.#accounts.delete(id);
  }

  #account(id: string): Account {
    let account = this.#accounts.get(id);
    if (!account) {
      account = { attempts: -1, next: 0, bytes: 0, missing: 0 };
      this.#accounts.set(id, account);
    }
    return account;
  }
}
