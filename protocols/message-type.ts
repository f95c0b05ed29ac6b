/**
 * The type of a message for logs and errors: its `type` field when it has a string one (every
 * message declared in protocols/ does), else what `typeof` says. Never more of the message: logs
 * name message types, never payloads.
 */
export function typeOf(msg: unknown): string {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string' ? (msg as { type: string }).type : typeof msg;
}
