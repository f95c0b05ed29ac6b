/**
 * The audit trail (on the manager), in the journal's database (table `audit`): every submit, cancel
 * and attach, with who did it (the certificate name from the sending node's connection, never a
 * field of the message; the node name, `<cert>~<session>` for a client), from which address, when,
 * and the command (or task id). Written in the same turn as what it records, before the reply.
 * Read with `troupe audit`; the message catalog lets only managers and clients ask.
 */
import type { AuditEntry } from '../../protocols/journal.js';
import { writeError, type TaskJournal } from './journal.js';

export type AuditAction = 'submit' | 'cancel' | 'attach';
/** Longest command kept in one entry (the rest is cut, said with "…"). */
export const AUDIT_COMMAND_CHARS = 4096;
export const DEFAULT_AUDIT_LIMIT = 1000;

export class AuditTrail {
  readonly #insert;
  constructor(private readonly journal: TaskJournal) {
    this.#insert = journal.db.prepare('INSERT INTO audit (at, action, cert, node, address, task, command) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  /** Records one action; throws TROUPE_E_JOURNAL_WRITE (the action is then refused). */
  record(entry: { action: AuditAction; cert: string; node: string; address: string | null; task: string | null; command: string | null; at?: number }): void {
    const command = entry.command !== null && entry.command.length > AUDIT_COMMAND_CHARS ? `${entry.command.slice(0, AUDIT_COMMAND_CHARS)}…` : entry.command;
    try {
      this.#insert.run(entry.at ?? Date.now(), entry.action, entry.cert, entry.node, entry.address, entry.task, command);
    } catch (err) {
      throw writeError(this.journal.file, err);
    }
  }

  /** The latest `limit` entries since `since` (ms), by the certificate name `by`, oldest first. */
  query(options: { since?: number; by?: string; limit?: number }): AuditEntry[] {
    const rows = this.journal.db
      .prepare(`SELECT at, action, cert, node, address, task, command FROM audit WHERE at >= ? ${options.by !== undefined ? 'AND cert = ?' : ''} ORDER BY n DESC LIMIT ?`)
      .all(...[options.since ?? 0, ...(options.by !== undefined ? [options.by] : []), options.limit ?? DEFAULT_AUDIT_LIMIT]) as AuditEntry[];
    return rows.reverse();
  }
}
