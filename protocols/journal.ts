/**
 * The messages of the task journal (actors/tasks/journal.ts): a task's stored output (`troupe logs`)
 * and the audit trail (`troupe audit`). Only managers and clients may ask; a worker's attempt is
 * refused by the catalog (TROUPE_E_FORBIDDEN) before it reaches the Controller.
 */
import { Type } from './deferred-schema.js';
import { TActorRef } from './actor-ref.js';
import { defineMessage, type MessageOf } from './message-catalog.js';
import { STREAMS, TaskRecordT } from './tasks.js';

const TaskId = Type.String({ minLength: 1, maxLength: 64 });
const Stream = Type.Union(STREAMS.map((s) => Type.Literal(s)));

/** A page of a task's stored output after the cursor `after` (0: from the start). */
export const TaskLogs = defineMessage(
  'taskLogs',
  { replyTo: TActorRef(), id: TaskId, after: Type.Optional(Type.Integer({ minimum: 0 })), stream: Type.Optional(Stream) },
  { allow: ['manager', 'client'] },
);

export const StoredChunkT = Type.Object({ n: Type.Integer({ minimum: 0 }), stream: Stream, at: Type.Number({ minimum: 0 }), data: Type.Uint8Array() });

/** `cut`: bytes of the task's output not kept (the middle of a long one); `dropped`: its output was dropped for the total budget; `more`: ask again at once after the last chunk's `n`. */
export const TaskLogsPage = defineMessage(
  'taskLogsPage',
  { task: TaskRecordT, chunks: Type.Array(StoredChunkT), cut: Type.Integer({ minimum: 0 }), dropped: Type.Boolean(), more: Type.Boolean() },
  { allow: ['manager'] },
);

/** The audit trail, newest last: since a time, by a certificate name, at most `limit` entries. */
export const AuditQuery = defineMessage(
  'auditQuery',
  {
    replyTo: TActorRef(),
    since: Type.Optional(Type.Number({ minimum: 0 })),
    by: Type.Optional(Type.String({ maxLength: 256 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { allow: ['manager', 'client'] },
);

export const AuditEntryT = Type.Object({
  at: Type.Number({ minimum: 0 }),
  action: Type.String({ maxLength: 32 }),
  cert: Type.String({ maxLength: 256 }),
  node: Type.String({ maxLength: 256 }),
  address: Type.Union([Type.String({ maxLength: 256 }), Type.Null()]),
  task: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
  command: Type.Union([Type.String({ maxLength: 1024 * 1024 }), Type.Null()]),
});

export const AuditPage = defineMessage('auditPage', { entries: Type.Array(AuditEntryT) }, { allow: ['manager'] });

/** A client opened a REPL on the manager (`troupe attach`): recorded in the audit trail; no reply. */
export const Attached = defineMessage('attached', {}, { allow: ['client'] });

export type TaskLogs = MessageOf<typeof TaskLogs>;
export type Attached = MessageOf<typeof Attached>;
export type TaskLogsPage = MessageOf<typeof TaskLogsPage>;
export type AuditQuery = MessageOf<typeof AuditQuery>;
export type AuditPage = MessageOf<typeof AuditPage>;
export type AuditEntry = AuditPage['entries'][number];

/** What a manager accepts of these. */
export const MANAGER_JOURNAL_MESSAGES = [TaskLogs, AuditQuery, Attached];
/** What a client accepts of these. */
export const CLIENT_JOURNAL_MESSAGES = [TaskLogsPage, AuditPage];
