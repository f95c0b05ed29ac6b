/**
 * The client commands of the task journal: `troupe logs ID` (a task's stored output, finished or
 * running; `--follow` to its end, as `kubectl logs -f`) and `troupe audit` (who submitted, cancelled
 * or attached what, when, from where). Both ask the manager's Controller (see protocols/journal.ts).
 */
import { ActorRef } from '../../protocols/actor-ref.js';
import type { AuditPage, TaskLogsPage } from '../../protocols/journal.js';
import { FINISHED_STATUSES, type OutputStream } from '../../protocols/tasks.js';
import { CONTROLLER_NAME } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../cluster/cluster-system.js';
import { TroupeError, type ErrorCode } from '../errors.js';

/** How often `--follow` asks for more of a running task's output. */
export const FOLLOW_POLL_MS = 250;

async function askController<R>(system: ClusterSystem, manager: string, msg: Record<string, unknown>): Promise<R> {
  const reply = await system.query<{ type: string; code?: string; reason?: string }>(new ActorRef(manager, CONTROLLER_NAME), (replyTo) => ({ ...msg, replyTo }));
  if (reply.type === 'taskError') throw new TroupeError(reply.code as ErrorCode, reply.reason ?? 'refused');
  return reply as R;
}

export interface LogsOptions {
  id: string;
  follow: boolean;
  stream?: OutputStream;
  /** Only the last N lines of what is there now (then, with follow, everything new). */
  tail?: number;
  write: (stream: OutputStream, data: Uint8Array) => void;
  note: (line: string) => void;
}

/** Prints a task's stored output; resolves when it is all printed (with follow: when the task ended). */
export async function printLogs(system: ClusterSystem, manager: string, options: LogsOptions): Promise<void> {
  let after = 0;
  let cutSaid = 0;
  let first = true;
  for (;;) {
    const pages: TaskLogsPage[] = [];
    let page: TaskLogsPage;
    do {
      page = await askController<TaskLogsPage>(system, manager, { type: 'taskLogs', id: options.id, after, ...(options.stream ? { stream: options.stream } : {}) });
      pages.push(page);
      if (page.chunks.length > 0) after = page.chunks[page.chunks.length - 1]!.n;
    } while (page.more);
    if (page.cut > cutSaid) {
      options.note(`troupe: ${page.cut - cutSaid} bytes of ${options.id}'s output were not kept${page.dropped ? ' (dropped for the total output budget)' : ' (the middle of a long output: the head and the tail are kept)'}`);
      cutSaid = page.cut;
    }
    let chunks = pages.flatMap((p) => p.chunks);
    if (first && options.tail !== undefined) chunks = lastLines(chunks, options.tail);
    first = false;
    for (const c of chunks) options.write(c.stream, c.data);
    if (!options.follow || FINISHED_STATUSES.has(page.task.status)) return;
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
  }
}

/** The chunks holding the last `n` lines (the first of them cut to where its line starts). */
function lastLines<C extends { data: Uint8Array }>(chunks: C[], n: number): C[] {
  if (n <= 0) return [];
  let lines = 0;
  for (let i = chunks.length - 1; i >= 0; i--) {
    const data = Buffer.from(chunks[i]!.data);
    for (let j = data.length - 1; j >= 0; j--) {
      // A final newline ends the last line; it does not start one.
      if (data[j] === 0x0a && !(i === chunks.length - 1 && j === data.length - 1)) {
        lines += 1;
        if (lines === n) return [{ ...chunks[i]!, data: data.subarray(j + 1) }, ...chunks.slice(i + 1)];
      }
    }
  }
  return chunks;
}

export async function fetchAudit(system: ClusterSystem, manager: string, filter: { since?: number; by?: string; limit?: number }): Promise<AuditPage['entries']> {
  const page = await askController<AuditPage>(system, manager, { type: 'auditQuery', ...filter });
  return page.entries;
}

/** One line per entry: time, action, certificate (node), address, task or command. */
export function auditLines(entries: AuditPage['entries']): string[] {
  return entries.map((e) => [new Date(e.at).toISOString(), e.action.padEnd(6), e.cert, e.node === e.cert ? '' : `(${e.node})`, e.address ?? 'local', e.task ?? '', e.command !== null ? JSON.stringify(e.command) : ''].filter((f) => f !== '').join('  '));
}
