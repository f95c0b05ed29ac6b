/**
 * Logs refused messages from other nodes (a worker reporting on a task it was not given) without
 * letting a node that keeps sending them fill the log: at most one warning per node per interval,
 * with the count of those not logged since.
 */
import type { Logger } from 'pino';

export const DEFAULT_REFUSAL_LOG_INTERVAL_MS = 10_000;

export class RefusalLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_REFUSAL_LOG_INTERVAL_MS,
  ) {}

  /** Total refusals so far (for tests and metrics). */
  total = 0;

  refused(node: string, fields: Record<string, unknown>, message: string): void {
    this.total += 1;
    const now = Date.now();
    const last = this.#last.get(node);
    if (last && now - last.at < this.intervalMs) {
      last.suppressed += 1;
      return;
    }
    if (this.#last.size > 10_000) this.#last.clear();
    this.#last.set(node, { at: now, suppressed: 0 });
    this.log.warn({ peer: node, ...fields, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) }, message);
  }
}
